"""Gaussian heatmap codec: keypoints <-> per-keypoint heatmaps, batched on the training device.

Frames (see also :mod:`fullbody.data.batch`): the input crop follows OpenCV's convention (pixel
centres at integer coordinates); heatmap pixels map to it centre-aligned,

    x_hm = (x_in + 0.5) * (W_hm / W_in) - 0.5,

so mirroring a heatmap array is exactly the heatmap of the mirrored crop (no flip-test shift).
Targets are unnormalised Gaussians (peak 1) centred at the *sub-pixel* keypoint, which is what
lets DARK decoding recover points far below the heatmap's pixel size.
"""

from __future__ import annotations

import math
import sys
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fullbody.codecs.argmax import max_last
from fullbody.keypoints import FLIP_INDEX

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)
#: Gaussian factors below 2**-63 (exponents beyond this) are set to 0: the product of two
#: factors at or above it is a normal float32, and producing or multiplying subnormals (the far
#: tails of exp) is several times slower on CPUs.
_MAX_EXPONENT = 63 * math.log(2)


class HeatmapCodec:
    """Encode keypoints (heatmap px) as Gaussian heatmaps and decode heatmaps back to points.

    ``input_size`` and ``heatmap_size`` are (height, width); ``sigma`` is in heatmap pixels;
    ``dark``: the default decoding (:meth:`decode`). A point whose Gaussian lies entirely
    outside the heatmap (beyond 3 sigma) gets weight 0.
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        sigma: float,
        *,
        dark: bool,
        blur_kernel: int = 11,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        if blur_kernel % 2 != 1:
            raise ValueError(f"blur_kernel must be odd, got {blur_kernel}")
        self.blur_kernel = blur_kernel
        self.dark = dark
        self._scale = (
            self.heatmap_size[1] / self.input_size[1],
            self.heatmap_size[0] / self.input_size[0],
        )
        self._cpu_buffer: np.ndarray | None = None  # see _output

    def input_to_heatmap(self, xy: ArrayT) -> ArrayT:
        """Input-crop pixels -> heatmap pixels (last axis x, y)."""
        scale = _like(self._scale, xy)
        return (xy + 0.5) * scale - 0.5

    def heatmap_to_input(self, xy: ArrayT) -> ArrayT:
        """Heatmap pixels -> input-crop pixels (last axis x, y)."""
        scale = _like(self._scale, xy)
        return (xy + 0.5) / scale - 0.5

    def encode(
        self, target_xy: Tensor, target_weight: Tensor, channels_last: bool = False
    ) -> tuple[Tensor, Tensor]:
        """(B,K,2) heatmap-px points, (B,K) weights -> (B,K,h,w) float32 heatmaps, (B,K) weights.

        Runs on the tensors' device; separable, so it costs O(B*K*(h+w)) exponentials.
        ``channels_last``: the maps are laid out (B,h,w,K) in memory, as a channels-last
        network's outputs are, so the loss compares them element by element without a copy.
        """
        h, w = self.heatmap_size
        xy = target_xy.float()
        inside = self._inside(xy)
        xy = torch.where(torch.isfinite(xy), xy, torch.zeros_like(xy))
        xs = torch.arange(w, device=xy.device, dtype=torch.float32)
        ys = torch.arange(h, device=xy.device, dtype=torch.float32)
        denom = 2.0 * self.sigma**2
        weight = target_weight.float() * inside.float()
        gx = _gaussian((xs - xy[..., :1]).square_().div_(denom))  # (B,K,w)
        # the mask goes into the small factor, so the full maps are written only once
        gy = _gaussian((ys - xy[..., 1:]).square_().div_(denom)).mul_((weight > 0).unsqueeze(-1))
        out = self._output((*xy.shape[:-1], h, w), xy.device, channels_last)
        return torch.mul(gy.unsqueeze(-1), gx.unsqueeze(-2), out=out), weight

    def _output(
        self, shape: tuple[int, ...], device: torch.device, channels_last: bool = False
    ) -> Tensor:
        """An uninitialised (B,K,h,w) float32 tensor for :meth:`encode`'s heatmaps
        (channels-last strides when asked).

        On the CPU, the last output's memory is used again once nothing refers to it any more
        (its NumPy buffer is then held by this codec alone: a tensor, a view of it or a graph
        that saved it each hold a reference). A fresh 50 MB batch of heatmaps makes the kernel
        zero its pages first, which costs as much as rendering them (measured: 11-26 ms a batch
        of 32 on one core of a loaded 2-core VM, 8-10 ms with the memory reused).
        """
        if device.type != "cpu":
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            return torch.empty(shape, dtype=torch.float32, device=device, memory_format=fmt)
        stored = (shape[0], shape[2], shape[3], shape[1]) if channels_last else shape
        # free: referenced by the attribute and getrefcount's argument only
        free = self._cpu_buffer is not None and sys.getrefcount(self._cpu_buffer) == 2
        if not free or self._cpu_buffer.shape != stored:
            self._cpu_buffer = np.empty(stored, dtype=np.float32)
        out = torch.from_numpy(self._cpu_buffer)
        return out.permute(0, 3, 1, 2) if channels_last else out

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cpu_buffer": None}  # a cache, not state: never pickled

    def targets(
        self, xy: Tensor, weight: Tensor, channels_last: bool = False
    ) -> tuple[Tensor, Tensor]:
        """(B,K,2) input-crop px, (B,K) weights -> (B,K,h,w) heatmaps and (B,K) weights
        (laid out channels-last when asked, :meth:`encode`)."""
        return self.encode(self.input_to_heatmap(xy.float()), weight, channels_last)

    def flip_outputs(self, heatmaps: Tensor) -> Tensor:
        """Heatmaps of mirrored crops -> heatmaps of the original crops."""
        return flip_heatmaps(heatmaps)

    def decode_outputs(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """(B,K,h,w) heatmaps -> (B,K,2) input-crop px and (B,K) scores."""
        xy, scores = self.decode(heatmaps)
        return self.heatmap_to_input(xy), scores

    def _inside(self, xy: Tensor) -> Tensor:
        h, w = self.heatmap_size
        r = 3.0 * self.sigma
        x, y = xy[..., 0], xy[..., 1]
        finite = torch.isfinite(xy).all(-1)
        return finite & (x > -r) & (x < w - 1 + r) & (y > -r) & (y < h - 1 + r)

    def decode(self, heatmaps: Tensor, dark: bool | None = None) -> tuple[Tensor, Tensor]:
        """(B,K,h,w) heatmaps -> (B,K,2) heatmap-px points and (B,K) scores (the peak value).

        Without ``dark``: the arg-max moved a quarter pixel towards the higher neighbour.
        With ``dark``: DARK's second-order Taylor refinement of the blurred log-heatmap; exact to
        ~0.05 px for a clean Gaussian at least 1.5 sigma inside the border.
        """
        dark = self.dark if dark is None else dark
        b, k, _, w = heatmaps.shape
        hm = heatmaps.float()
        flat = hm.reshape(b, k, -1)
        scores, idx = max_last(flat)
        x = (idx % w).float()
        y = torch.div(idx, w, rounding_mode="floor").float()
        xy = torch.stack([x, y], -1)
        offset = self._dark_offset(hm, idx) if dark else 0.25 * self._neighbour_sign(hm, idx)
        return xy + offset, scores

    @staticmethod
    def _gather(padded: Tensor, idx: Tensor, w: int, pad: int, dx: int, dy: int) -> Tensor:
        """Values of a padded (B,K,h+2p,w+2p) map at arg-max positions shifted by (dx, dy)."""
        x = idx % w + pad + dx
        y = torch.div(idx, w, rounding_mode="floor") + pad + dy
        flat_idx = y * (w + 2 * pad) + x
        return padded.flatten(2).gather(2, flat_idx.unsqueeze(-1)).squeeze(-1)

    def _neighbour_sign(self, hm: Tensor, idx: Tensor) -> Tensor:
        w = hm.shape[-1]
        p = F.pad(hm, (1, 1, 1, 1), mode="replicate")
        g = self._gather
        sx = torch.sign(g(p, idx, w, 1, 1, 0) - g(p, idx, w, 1, -1, 0))
        sy = torch.sign(g(p, idx, w, 1, 0, 1) - g(p, idx, w, 1, 0, -1))
        return torch.stack([sx, sy], -1)

    def _dark_offset(self, hm: Tensor, idx: Tensor) -> Tensor:
        w = hm.shape[-1]
        log = torch.log(self._blur(hm).clamp_min(1e-10))
        p = F.pad(log, (2, 2, 2, 2), mode="replicate")

        def at(dx: int, dy: int) -> Tensor:
            return self._gather(p, idx, w, 2, dx, dy)

        c = at(0, 0)
        gx = 0.5 * (at(1, 0) - at(-1, 0))
        gy = 0.5 * (at(0, 1) - at(0, -1))
        hxx = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
        hyy = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
        hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
        det = hxx * hyy - hxy**2
        ok = det.abs() > 1e-12
        safe = torch.where(ok, det, torch.ones_like(det))
        ox = -(hyy * gx - hxy * gy) / safe
        oy = -(hxx * gy - hxy * gx) / safe
        off = torch.stack([ox, oy], -1) * ok.unsqueeze(-1)
        return off.clamp(-1.0, 1.0)

    def _blur(self, hm: Tensor) -> Tensor:
        """Gaussian blur (OpenCV's sigma for the kernel size) that keeps each map's peak."""
        ks = self.blur_kernel
        s = 0.3 * ((ks - 1) * 0.5 - 1) + 0.8
        r = torch.arange(ks, device=hm.device, dtype=hm.dtype) - ks // 2
        g = torch.exp(-(r**2) / (2 * s * s))
        g = g / g.sum()
        b, k, h, w = hm.shape
        x = hm.reshape(b * k, 1, h, w)
        pad = ks // 2
        # Zero padding biases border peaks least (measured: reflect/replicate padding pull a
        # Gaussian 1.5 sigma from the border by 0.5/0.14 px, zeros by 0.05 px).
        x = F.conv2d(F.pad(x, (pad, pad, 0, 0)), g.view(1, 1, 1, ks))
        x = F.conv2d(F.pad(x, (0, 0, pad, pad)), g.view(1, 1, ks, 1))
        x = x.reshape(b, k, h, w)
        peak = hm.amax((-2, -1), keepdim=True)
        return x * peak / x.amax((-2, -1), keepdim=True).clamp_min(1e-12)


def encode_reference(
    target_xy: np.ndarray,
    target_weight: np.ndarray,
    heatmap_size: tuple[int, int],
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample CPU reference of :meth:`HeatmapCodec.encode`: (K,2), (K,) -> (K,h,w), (K,)."""
    h, w = heatmap_size
    k = len(target_xy)
    heatmaps = np.zeros((k, h, w), dtype=np.float32)
    weights = np.asarray(target_weight, dtype=np.float32).copy()
    ys, xs = np.mgrid[0:h, 0:w]
    r = 3 * sigma
    for j in range(k):
        x, y = target_xy[j]
        inside = math.isfinite(x) and math.isfinite(y) and -r < x < w - 1 + r and -r < y < h - 1 + r
        if not inside:
            weights[j] = 0.0
        if weights[j] > 0:
            heatmaps[j] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return heatmaps, weights


def flip_heatmaps(heatmaps: Tensor, flip_index: np.ndarray | Tensor = FLIP_INDEX) -> Tensor:
    """Heatmaps predicted on a mirrored crop -> heatmaps of the original crop (flip test)."""
    index = torch.tensor(np.asarray(flip_index), device=heatmaps.device, dtype=torch.long)
    return heatmaps.flip(-1).index_select(1, index)


def _gaussian(exponent: Tensor) -> Tensor:
    """exp(-exponent), exactly 0 where that would be below 2**-63 (see ``_MAX_EXPONENT``); in
    place (``exponent`` is overwritten): fresh temporaries cost page faults on the CPU."""
    keep = exponent < _MAX_EXPONENT
    return exponent.clamp_(max=_MAX_EXPONENT).neg_().exp_().mul_(keep)


def _like(values: tuple[float, float], ref: ArrayT) -> ArrayT:
    if isinstance(ref, Tensor):
        return torch.tensor(values, dtype=ref.dtype, device=ref.device)
    return np.asarray(values, dtype=np.result_type(ref, np.float64))
