"""RMPE's symmetric spatial transformer (SSTN) and parallel SPPE (Fang et al., ICCV 2017, 3.2).

A person box from a detector is often off: the person is cut off, off-centre or too small in
the crop. The SSTN lets the network re-crop: a small localisation network looks at the input
crop and predicts a bounded affine transform, the crop is resampled through it
(``grid_sample``), the single-person pose estimator (SPPE) predicts heatmaps on the
transformed crop, and the *de-transformer* resamples those heatmaps back through the inverse
transform. :class:`STNPoseNet` therefore maps an input crop to heatmaps **in the original crop's
heatmap frame**, exactly like the plain network, so decoding, the flip test and evaluation do
not know it is there.

Frames. ``grid_sample``/``affine_grid`` work in normalised coordinates; with
``align_corners=False`` a frame of width W has ``u = (2x + 1) / W - 1`` for pixel x, i.e. pixel
centres at integer coordinates — the OpenCV convention of the input crop (CONTRACTS.md). The
codec's centre-aligned crop <-> heatmap mapping ``x_hm = (x_in + 0.5) W_hm / W_in - 0.5`` gives
a heatmap pixel *the same normalised coordinate* as the crop point it stands for, so one
normalised affine ``theta`` is the transform of the crop and of its heatmaps alike; only its
pixel form depends on the frame's size (:func:`theta_to_pixel`).

Convention: ``theta`` (B,2,3) maps normalised coordinates of the *transformed* frame to the
*original* frame (what ``affine_grid`` wants for sampling the transformed crop);
:func:`invert_theta` gives the other direction. The transform is parameterised in crop pixels
about the crop centre — per-axis scale ``exp(tanh(a) log s_max)`` in [1/s_max, s_max],
rotation ``tanh(b) r_max``, shift ``tanh(c) t_max`` of the crop size — so it is the identity
exactly when the localisation network's last layer is zero (its initialisation), and cannot
collapse (no zero scale, no flip, no shift out of the crop).

Why resample the heatmaps rather than map decoded points back: the wrapped network keeps the
plain network's contract ((B,3,H,W) -> (B,K,h,w) heatmaps of the original frame), so the flip
test averages heatmaps of the same frame, the heatmap loss is taken in the original frame
against the usual targets (the gradient reaches the localisation network through both
resamplings — the "symmetric" in SSTN), and nothing downstream changes. Regions of the original
frame that the transformed crop did not see come back as heatmap 0 ("no keypoint here"). The
resampling is bilinear, which moves a Gaussian's peak by a few hundredths of a heatmap pixel
(measured in tests); the frame relationships themselves are exact (:func:`transform_points`).

Parallel SPPE (training only): a frozen SPPE applied to the transformed crop, with a heatmap
loss against the labels mapped into the transformed frame and re-centred there (translated so
that the centre of the labelled points' box is the crop centre). Its weights do not move; only
the localisation network receives its gradient, which therefore says "centre the person", as
RMPE's parallel branch does (:class:`ParallelSPPE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from fullbody.codecs.heatmap import HeatmapCodec

# ---------------------------------------------------------------------------- frame geometry


def affine_theta(scale: Tensor, angle: Tensor, shift: Tensor, size: Sequence[int]) -> Tensor:
    """Normalised (B,2,3) transform (transformed frame -> original frame) from pixel terms.

    In crop pixels, ``p = c + R(angle) diag(scale) (p' - c) + shift * (W, H)`` with ``c`` the
    crop centre: ``scale`` (B,2) per axis (x, y), ``angle`` (B,) radians, ``shift`` (B,2) as a
    fraction of the frame size, ``size`` = (H, W) of the crop the parameters are meant for.
    """
    h, w = float(size[0]), float(size[1])
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = scale[:, 0], scale[:, 1]
    # Pixel linear part L = R diag(s); normalised: D L D^-1 with D = diag(2/W, 2/H).
    row0 = torch.stack([cos * sx, -sin * sy * (h / w), 2.0 * shift[:, 0]], -1)
    row1 = torch.stack([sin * sx * (w / h), cos * sy, 2.0 * shift[:, 1]], -1)
    return torch.stack([row0, row1], 1)


def invert_theta(theta: Tensor) -> Tensor:
    """Exact inverse of (B,2,3) affines: ``[A | t] -> [A^-1 | -A^-1 t]``.

    Closed form (elementwise ops only, so it exports to ONNX, which has no matrix inverse).
    """
    a, b, tx = theta[..., 0, 0], theta[..., 0, 1], theta[..., 0, 2]
    c, d, ty = theta[..., 1, 0], theta[..., 1, 1], theta[..., 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    row0 = torch.stack([ia, ib, -(ia * tx + ib * ty)], -1)
    row1 = torch.stack([ic, id_, -(ic * tx + id_ * ty)], -1)
    return torch.stack([row0, row1], -2)


def theta_to_pixel(theta: Tensor, size: Sequence[int]) -> Tensor:
    """Normalised (B,2,3) affine -> the same map in pixels of a frame of ``size`` = (H, W).

    With ``u = (2x + 1) / W - 1`` (``align_corners=False``), ``x = d u + o`` where
    ``d = W / 2`` and ``o = (W - 1) / 2`` (per axis).
    """
    h, w = float(size[0]), float(size[1])
    d = theta.new_tensor([w / 2.0, h / 2.0])
    off = theta.new_tensor([(w - 1) / 2.0, (h - 1) / 2.0])
    a, t = theta[..., :2], theta[..., 2]
    # x = d u + o and u = A u' + t with u' = (x' - o) / d give
    # x = (diag(d) A diag(1/d)) x' + d t + o - (diag(d) A diag(1/d)) o.
    a_px = a * d[:, None] / d[None, :]
    t_px = d * t + off - (a_px @ off)
    return torch.cat([a_px, t_px.unsqueeze(-1)], -1)


def transform_points(xy: Tensor, theta: Tensor, size: Sequence[int]) -> Tensor:
    """Map (B,K,2) pixel points of a frame of ``size`` = (H, W) through normalised ``theta``.

    With ``theta`` from :func:`affine_theta`, this takes transformed-frame points to the
    original frame; pass :func:`invert_theta` of it for the other way. Computed in float64.
    """
    m = theta_to_pixel(theta.to(torch.float64), size)
    out = torch.einsum("bij,bkj->bki", m[..., :2], xy.to(torch.float64)) + m[:, None, :, 2]
    return out.to(xy.dtype)


def warp(x: Tensor, theta: Tensor, size: Sequence[int] | None = None) -> Tensor:
    """Resample (B,C,H,W) maps so that output pixel p' holds ``x`` at ``theta`` p'.

    Bilinear, zeros outside (a normalised crop's mean colour; an empty heatmap), pixel
    centres at integer coordinates (``align_corners=False``). ``size`` (H, W) of the output
    defaults to the input's. At least float32 even under autocast: in bfloat16 the sampling
    points would be off by up to a tenth of a heatmap pixel.
    """
    h, w = (x.shape[-2], x.shape[-1]) if size is None else (int(size[0]), int(size[1]))
    dtype = torch.promote_types(x.dtype, torch.float32)
    with torch.autocast(x.device.type, enabled=False):
        grid = affine_grid(theta.to(dtype), h, w)
        return F.grid_sample(
            x.to(dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )


def affine_grid(theta: Tensor, h: int, w: int) -> Tensor:
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` in elementwise operations.

    (B,2,3) -> (B,h,w,2) normalised sampling points. Written out because ONNX has an affine-grid
    operator only from opset 20; this exports at any opset (and equals it to rounding, tested).
    """
    xs = (2.0 * torch.arange(w, device=theta.device, dtype=theta.dtype) + 1.0) / w - 1.0
    ys = (2.0 * torch.arange(h, device=theta.device, dtype=theta.dtype) + 1.0) / h - 1.0
    t = theta[:, :, :, None, None]  # (B,2,3,1,1)
    xy = t[:, :, 0] * xs + t[:, :, 1] * ys[:, None] + t[:, :, 2]  # (B,2,h,w)
    return xy.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------- networks


class LocalisationNet(nn.Module):
    """Small CNN on a downsampled crop -> the five raw transform parameters (zero at init).

    The crop is average-pooled to ``input_size``, passed through stride-2 3x3 convolutions
    (BN, ReLU) of ``channels``, pooled to a ``grid`` map that is *flattened* (global pooling
    would discard where the person is), then two linear layers; the last is zeroed so the
    transform starts as the identity.
    """

    NUM_PARAMS = 5  # log-scale x, log-scale y, rotation, shift x, shift y (pre-squashing)

    def __init__(
        self,
        input_size: Sequence[int] = (64, 48),
        channels: Sequence[int] = (16, 32, 64, 128),
        grid: Sequence[int] = (4, 3),
        hidden: int = 128,
    ) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        layers: list[nn.Module] = []
        c = 3
        for width in channels:
            layers += [
                nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            c = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(tuple(grid))
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(c * grid[0] * grid[1], hidden), nn.ReLU(inplace=True)
        )
        self.out = nn.Linear(hidden, self.NUM_PARAMS)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, image: Tensor) -> Tensor:
        """(B,3,H,W) normalised crop -> (B,5) raw parameters."""
        x = F.adaptive_avg_pool2d(image, self.input_size)
        hidden = self.fc(self.pool(self.features(x)))
        with torch.autocast(image.device.type, enabled=False):  # the transform in float32
            return self.out(hidden.float())


#: The localisation network's learning rate as a fraction of the pose network's
#: (``model.stn_kwargs.lr_mult``): at the full rate of the default recipe its bounded outputs ran
#: to their limits (30 degrees, scale 1.5) within a few hundred steps and stayed there, since
#: tanh's gradient vanishes at the bounds (docs/ablations.md).
LOC_LR_MULT = 0.1


class BoundedAffine(nn.Module):
    """Raw (B,5) parameters -> bounded normalised affine ``theta`` (identity at zero)."""

    def __init__(
        self, max_scale: float = 1.5, max_shift: float = 0.25, max_rotation: float = 30.0
    ) -> None:
        super().__init__()
        if max_scale <= 1.0:
            raise ValueError(f"stn max_scale must be > 1, got {max_scale}")
        if not 0.0 <= max_shift <= 0.5:
            raise ValueError(f"stn max_shift must be in [0, 0.5] (of the crop), got {max_shift}")
        if not 0.0 <= max_rotation < 90.0:
            raise ValueError(f"stn max_rotation must be in [0, 90) degrees, got {max_rotation}")
        self.log_max_scale = math.log(max_scale)
        self.max_shift = float(max_shift)
        self.max_rotation = math.radians(max_rotation)

    def forward(self, raw: Tensor, size: Sequence[int]) -> Tensor:
        """(B,5) raw parameters, crop ``size`` (H, W) -> (B,2,3) theta."""
        raw = raw.float()
        scale = torch.exp(torch.tanh(raw[:, 0:2]) * self.log_max_scale)
        angle = torch.tanh(raw[:, 2]) * self.max_rotation
        shift = torch.tanh(raw[:, 3:5]) * self.max_shift
        return affine_theta(scale, angle, shift, size)


class STNOutput(NamedTuple):
    """Everything one SSTN forward computed (the parallel SPPE needs the middle of it)."""

    heatmaps: Tensor  # (B,K,h,w) in the original crop's heatmap frame
    crop: Tensor  # (B,3,H,W) the transformed crop the SPPE saw
    heatmaps_transformed: Tensor  # (B,K,h,w) the SPPE's heatmaps, transformed frame
    theta: Tensor  # (B,2,3) normalised, transformed frame -> original frame


class STNPoseNet(nn.Module):
    """SSTN around a pose network: (B,3,H,W) crop -> (B,K,h,w) heatmaps of the ORIGINAL frame.

    ``pose_net`` is any module mapping crops to heatmaps (e.g. :class:`PoseNet`); its
    parameters keep their role and names under ``pose_net.``. The localisation network and the
    bounds are configurable; see :class:`LocalisationNet` and :class:`BoundedAffine`.
    """

    def __init__(
        self,
        pose_net: nn.Module,
        max_scale: float = 1.5,
        max_shift: float = 0.25,
        max_rotation: float = 30.0,
        loc_input_size: Sequence[int] = (64, 48),
        loc_channels: Sequence[int] = (16, 32, 64, 128),
        loc_hidden: int = 128,
    ) -> None:
        super().__init__()
        self.pose_net = pose_net
        self.localisation = LocalisationNet(loc_input_size, loc_channels, hidden=loc_hidden)
        self.affine = BoundedAffine(max_scale, max_shift, max_rotation)

    def transform(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The crop resampled through the predicted transform, and the transform (theta)."""
        theta = self.affine(self.localisation(image), image.shape[-2:])
        return warp(image, theta), theta

    def forward_detailed(self, image: Tensor) -> STNOutput:
        """Transform, estimate, de-transform; returns the intermediate tensors too."""
        crop, theta = self.transform(image)
        hm_t = self.pose_net(crop)
        heatmaps = warp(hm_t, invert_theta(theta))
        return STNOutput(heatmaps, crop, hm_t, theta)

    def forward(self, image: Tensor) -> Tensor:
        """(B,3,H,W) -> (B,K,h,w) heatmaps in the original crop's heatmap frame."""
        return self.forward_detailed(image).heatmaps


# ---------------------------------------------------------------------------- parallel SPPE


def recentred_targets(
    target_xy: Tensor,
    target_weight: Tensor,
    theta: Tensor,
    heatmap_size: Sequence[int],
    recentre: bool = True,
) -> Tensor:
    """Labels (B,K,2, original heatmap px) -> the transformed frame, re-centred there.

    The points go through ``theta``'s inverse; with ``recentre`` they are then translated so
    that the centre of the box of the labelled ones (``target_weight > 0``) is the heatmap
    centre — RMPE's "centre-located" pose. Samples without a labelled point are left as mapped.
    The result is a label: detached from ``theta``.
    """
    xy = transform_points(target_xy.detach(), invert_theta(theta.detach()), heatmap_size)
    if not recentre:
        return xy
    labelled = (target_weight > 0) & torch.isfinite(xy).all(-1)
    inf = torch.full_like(xy, math.inf)
    lo = torch.where(labelled.unsqueeze(-1), xy, inf).amin(1)
    hi = torch.where(labelled.unsqueeze(-1), xy, -inf).amax(1)
    h, w = heatmap_size
    centre = xy.new_tensor([(w - 1) / 2.0, (h - 1) / 2.0])
    offset = centre - 0.5 * (lo + hi)
    offset = torch.where(labelled.any(1, keepdim=True), offset, torch.zeros_like(offset))
    return xy + offset.unsqueeze(1)


class ParallelSPPE(nn.Module):
    """The frozen parallel SPPE branch: heatmaps of the transformed crop + their targets.

    ``reference``: a frozen network from a checkpoint (kept in eval mode, outside the state
    dict and the optimiser). Without it, the branch runs the *current* pose network with its
    parameters detached and its BatchNorm buffers copied: an always-up-to-date frozen copy
    that costs no memory, whose loss moves only the localisation network (training from
    scratch, a copy frozen at initialisation would be a random network).
    """

    def __init__(
        self, codec: HeatmapCodec, reference: nn.Module | None = None, recentre: bool = True
    ) -> None:
        super().__init__()
        self.codec = codec
        self.recentre = recentre
        # A list, so the reference is not a registered submodule (no state dict, no optimiser,
        # not switched back to train mode by Lightning).
        self._reference: list[nn.Module] = []
        if reference is not None:
            reference.eval().requires_grad_(False)
            self._reference.append(reference)

    @property
    def reference(self) -> nn.Module | None:
        return self._reference[0] if self._reference else None

    def predict(self, pose_net: nn.Module, crop: Tensor) -> Tensor:
        """Frozen heatmaps of the transformed crop; the gradient flows to ``crop`` only."""
        if self.reference is not None:
            ref = self.reference.to(crop.device)
            return ref(crop)
        params = {n: p.detach() for n, p in pose_net.named_parameters()}
        buffers = {n: b.clone() for n, b in pose_net.named_buffers()}
        return functional_call(pose_net, {**params, **buffers}, (crop,))

    def forward(
        self, pose_net: nn.Module, out: STNOutput, target_xy: Tensor, target_weight: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> (pred, target heatmaps, target weights), all in the transformed frame.

        ``target_xy``/``target_weight`` are the batch's (input-crop px of the original crop);
        feed the three to the heatmap loss.
        """
        pred = self.predict(pose_net, out.crop)
        xy = recentred_targets(
            self.codec.input_to_heatmap(target_xy),
            target_weight,
            out.theta,
            pred.shape[-2:],
            recentre=self.recentre,
        )
        target, weight = self.codec.encode(xy, target_weight)
        return pred, target, weight


def stn_statistics(theta: Tensor, size: Sequence[int]) -> dict[str, Tensor]:
    """Batch means of what the transforms of crops of ``size`` (H, W) do, for the logs.

    ``scale``: sqrt(det) of the linear part (> 1: the transformed crop shows a larger region);
    ``shift``: how far the crop centre moves, as a fraction of the crop size; ``rotation``:
    |angle| in degrees (exact for the :class:`BoundedAffine` family).
    """
    t = theta.detach().float()
    h, w = float(size[0]), float(size[1])
    scale = torch.linalg.det(t[:, :, :2]).abs().sqrt()
    shift = (0.5 * t[:, :, 2]).norm(dim=-1)
    rotation = torch.rad2deg(torch.atan2(t[:, 1, 0] * (h / w), t[:, 0, 0])).abs()
    return {"scale": scale.mean(), "shift": shift.mean(), "rotation": rotation.mean()}
