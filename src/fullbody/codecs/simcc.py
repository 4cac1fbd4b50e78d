"""SimCC codec: each keypoint as two 1-D classifications, x over ``W*r`` bins, y over ``H*r``.

The coordinate classification of SimCC (Li et al. 2022) as RTMPose, DWPose and RTMW use it
(mmpose's ``SimCCLabel``): bin ``i`` of an axis is the input-crop coordinate ``i / r``
(``r``: the split ratio, 2.0), the frame of RTMPose's published ONNX files, so one decoder reads
this project's SimCC models and those files. Targets are unnormalised Gaussians (peak 1) of
``sigma`` bins around the sub-bin keypoint position ("Gaussian label smoothing"); the loss
applies a softmax over each vector (:class:`fullbody.models.loss.SimCCLoss`).

Input-crop pixels follow OpenCV's convention (pixel centres at integer coordinates), so
mirroring a crop of width ``W`` maps ``x -> W - 1 - x``; in bins that is a reversal of the
vector plus a shift of ``r - 1`` bins (:meth:`SimCCCodec.flip`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fullbody.codecs.argmax import max_last
from fullbody.keypoints import FLIP_INDEX

#: RTMPose's label widths (x, y) in bins for 192-wide and 288-wide inputs (256x192, 384x288).
_RTMPOSE_SIGMA = {192: (4.9, 5.66), 288: (6.0, 6.93)}


def default_sigma(input_size: tuple[int, int]) -> tuple[float, float]:
    """RTMPose's sigma for its two published input widths, linear in the width between them
    (and beyond: 3.8, 4.39 bins at 128x96); never below 1 bin."""
    w = int(input_size[1])
    if w in _RTMPOSE_SIGMA:
        return _RTMPOSE_SIGMA[w]
    (w0, (x0, y0)), (w1, (x1, y1)) = sorted(_RTMPOSE_SIGMA.items())
    t = (w - w0) / (w1 - w0)
    return max(1.0, x0 + t * (x1 - x0)), max(1.0, y0 + t * (y1 - y0))


class SimCCCodec:
    """Encode input-pixel keypoints as SimCC label vectors and decode vectors back to points.

    ``input_size`` is (height, width); ``sigma`` (x, y) is in bins (default
    :func:`default_sigma`). A point whose x or y Gaussian lies entirely outside its axis
    (beyond 3 sigma) gets weight 0 in :meth:`encode_weights`.
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        split_ratio: float,
        sigma: tuple[float, float] | None = None,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if split_ratio < 1:
            raise ValueError(f"split_ratio must be >= 1, got {split_ratio}")
        self.split_ratio = float(split_ratio)
        sx, sy = default_sigma(self.input_size) if sigma is None else sigma
        if sx <= 0 or sy <= 0:
            raise ValueError(f"sigma must be positive, got {(sx, sy)}")
        self.sigma = (float(sx), float(sy))
        h, w = self.input_size
        self.bins = (round(w * self.split_ratio), round(h * self.split_ratio))  # (x, y)

    def encode(
        self, keypoints_xy: Tensor | np.ndarray, weights: Tensor | np.ndarray | None = None
    ) -> tuple[Tensor, Tensor]:
        """(B,K,2) input-pixel points -> targets (B,K,W*r) and (B,K,H*r), float32.

        Points with weight 0 (or non-finite) get all-zero vectors. Runs on the input's device.
        """
        xy = torch.as_tensor(keypoints_xy).float()
        w = self.encode_weights(xy, weights)
        mu = torch.where(torch.isfinite(xy), xy, torch.zeros_like(xy)) * self.split_ratio
        keep = (w > 0).unsqueeze(-1)
        out = []
        for axis in (0, 1):
            bins = torch.arange(self.bins[axis], device=xy.device, dtype=torch.float32)
            g = torch.exp(-((bins - mu[..., axis : axis + 1]) ** 2) / (2 * self.sigma[axis] ** 2))
            out.append(g * keep)
        return out[0], out[1]

    def encode_weights(
        self, keypoints_xy: Tensor | np.ndarray, weights: Tensor | np.ndarray | None = None
    ) -> Tensor:
        """(B,K) weights of the targets: ``weights`` (1 when None), 0 where the point is
        non-finite or its Gaussian misses an axis."""
        xy = torch.as_tensor(keypoints_xy).float()
        finite = torch.isfinite(xy).all(-1)
        inside = finite
        for axis in (0, 1):
            c = xy[..., axis] * self.split_ratio
            r = 3.0 * self.sigma[axis]
            inside = inside & (c > -r) & (c < self.bins[axis] - 1 + r)
        w = torch.ones_like(inside, dtype=torch.float32) if weights is None else weights
        return torch.as_tensor(w, device=xy.device).float() * inside.float()

    def decode(
        self, simcc_x: Tensor | np.ndarray, simcc_y: Tensor | np.ndarray
    ) -> tuple[Tensor, Tensor]:
        """(B,K,W*r), (B,K,H*r) vectors -> (B,K,2) input pixels and (B,K) scores.

        Sub-bin decoding: the arg-max bin moved to the vertex of the parabola through it and
        its two neighbours (within 0.05 bins for a Gaussian label of sigma >= 1, the edge bins aside; for logits,
        which a softmax turns into such labels, the parabola is the log-domain fit). The score
        is the smaller of the two axis maxima, as RTMPose (raw values: logits stay logits).
        """
        vx, vy = torch.as_tensor(simcc_x).float(), torch.as_tensor(simcc_y).float()
        x, sx = _peak(vx)
        y, sy = _peak(vy)
        xy = torch.stack([x, y], -1) / self.split_ratio
        return xy, torch.minimum(sx, sy)

    def flip(
        self,
        simcc_x: Tensor,
        simcc_y: Tensor,
        flip_index: np.ndarray | Tensor = FLIP_INDEX,
    ) -> tuple[Tensor, Tensor]:
        """Vectors predicted on a mirrored crop -> vectors of the original crop (flip test).

        Left/right keypoints swap; x reverses and shifts by ``r - 1`` bins (linear
        interpolation for a fractional ratio, the edge bin repeated).
        """
        index = torch.tensor(np.asarray(flip_index), device=simcc_x.device, dtype=torch.long)
        vx = simcc_x.index_select(1, index)
        n = vx.shape[-1]
        # original bin i looks at mirrored bin n - r - i
        src = (n - self.split_ratio) - torch.arange(n, device=vx.device, dtype=torch.float32)
        src = src.clamp(0, n - 1)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=n - 1)
        t = (src - lo.float()).to(vx.dtype)
        flipped = vx[..., lo] * (1 - t) + vx[..., hi] * t
        return flipped, simcc_y.index_select(1, index)

    def targets(
        self, xy: Tensor, weight: Tensor, channels_last: bool = False
    ) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """(B,K,2) input-crop px, (B,K) weights -> ((simcc_x, simcc_y), (B,K) weights).
        ``channels_last`` is the common codec signature's; (B,K,bins) vectors have one layout."""
        return self.encode(xy, weight), self.encode_weights(xy, weight)

    def flip_outputs(self, outputs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``(simcc_x, simcc_y)`` of mirrored crops -> those of the original crops."""
        return self.flip(*outputs)

    def decode_outputs(self, outputs: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``(simcc_x, simcc_y)`` -> (B,K,2) input-crop px and (B,K) scores."""
        return self.decode(*outputs)


def _peak(v: Tensor) -> tuple[Tensor, Tensor]:
    """Sub-bin arg-max and maximum of (..., N) vectors along the last axis."""
    score, idx = max_last(v)
    n = v.shape[-1]
    left = v.gather(-1, (idx - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    right = v.gather(-1, (idx + 1).clamp(max=n - 1).unsqueeze(-1)).squeeze(-1)
    curv = left - 2 * score + right
    inner = (idx > 0) & (idx < n - 1) & (curv < -1e-12)
    safe = torch.where(inner, curv, -torch.ones_like(curv))
    offset = torch.where(inner, 0.5 * (left - right) / safe, torch.zeros_like(curv))
    return idx.float() + offset.clamp(-0.5, 0.5), score
