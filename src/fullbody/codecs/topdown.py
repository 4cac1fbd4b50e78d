"""One home for the frames of a top-down prediction: network outputs -> input crop -> image.

Every codec (:class:`~fullbody.codecs.heatmap.HeatmapCodec`,
:class:`~fullbody.codecs.simcc.SimCCCodec`) speaks :class:`PoseCodec`: it renders training
targets from input-crop pixels, mirrors outputs for the flip test, and decodes outputs to
input-crop pixels. The functions here do the rest the same way for both: merge the flip test,
decode, carry the points through the crop affine and score the person. The LightningModule, the predictor and the
prediction-image callback all call them, so no caller converts frames by hand.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor

#: A network's output: heatmaps (B,K,h,w), or SimCC vectors ``(simcc_x, simcc_y)``.
Outputs = Tensor | tuple[Tensor, ...]


class PoseCodec(Protocol):
    """What the training and inference code needs of a codec."""

    input_size: tuple[int, int]

    def targets(
        self, xy: Tensor, weight: Tensor, channels_last: bool = False
    ) -> tuple[Outputs, Tensor]:
        """(B,K,2) input-crop px, (B,K) weights -> training targets and their (B,K) weights;
        maps laid out channels-last when asked (that of the network's outputs)."""
        ...

    def flip_outputs(self, outputs: Outputs) -> Outputs:
        """Outputs of mirrored crops -> outputs of the original crops (left/right swapped)."""
        ...

    def decode_outputs(self, outputs: Outputs) -> tuple[Tensor, Tensor]:
        """Outputs -> (B,K,2) input-crop px and (B,K) keypoint scores."""
        ...


def is_channels_last(outputs: Outputs) -> bool:
    """Whether outputs are (B,K,h,w) maps stored channels-last (not also standard-layout)."""
    return (
        isinstance(outputs, Tensor)
        and outputs.dim() == 4
        and outputs.is_contiguous(memory_format=torch.channels_last)
        and not outputs.is_contiguous()
    )


def as_float(outputs: Outputs) -> Outputs:
    """Outputs in float32 (a network may run in half precision) and the standard memory layout
    (a channels-last network's maps slow every element-wise op of decoding several-fold)."""
    if isinstance(outputs, tuple | list):
        return tuple(o.float().contiguous() for o in outputs)
    return outputs.float().contiguous()


def flip_merge(codec: PoseCodec, outputs: Outputs, mirrored: Outputs) -> Outputs:
    """Flip test: the mean of the outputs and those of the mirrored crops, flipped back."""
    back = codec.flip_outputs(as_float(mirrored))
    outputs = as_float(outputs)
    if isinstance(outputs, tuple):
        return tuple(0.5 * (a + b) for a, b in zip(outputs, back))
    return 0.5 * (outputs + back)


def decode_to_image(
    codec: PoseCodec, outputs: Outputs, crop_to_image: Tensor | np.ndarray
) -> tuple[Tensor, Tensor]:
    """Outputs -> (B,K,2) image px (float64) and (B,K) keypoint scores, through the
    (B,2,3) crop -> image affines."""
    xy_in, scores = codec.decode_outputs(outputs)
    a = torch.as_tensor(crop_to_image, device=xy_in.device)
    return crop_to_image_points(xy_in.double(), a), scores


def person_score(keypoint_scores: Tensor, box_score: Tensor, threshold: float) -> Tensor:
    """Box score x mean of the keypoint scores above ``threshold`` (0 when none is; the
    spec's ``score_threshold``).

    (B,K), (B,) -> (B,). The re-scoring of mmpose/AlphaPose top-down pipelines.
    """
    confident = keypoint_scores > threshold
    n = confident.sum(-1)
    mean = (keypoint_scores * confident).sum(-1) / n.clamp_min(1)
    return box_score.to(mean.dtype) * torch.where(n > 0, mean, torch.zeros_like(mean))


def crop_to_image_points(xy_in: Tensor, crop_to_image: Tensor) -> Tensor:
    """(B,K,2) input-crop pixels -> (B,K,2) image pixels through (B,2,3) affines."""
    a = crop_to_image.to(torch.float64)
    out = torch.einsum("bij,bkj->bki", a[:, :, :2], xy_in.to(torch.float64)) + a[:, None, :, 2]
    return out.to(xy_in.dtype)


def image_to_crop_points(xy_img: Tensor, crop_to_image: Tensor) -> Tensor:
    """(B,K,2) image px -> (B,K,2) input-crop px: the inverse of (B,2,3) ``crop_to_image``."""
    a = crop_to_image.to(torch.float64)
    full = torch.zeros(a.shape[0], 3, 3, dtype=torch.float64, device=a.device)
    full[:, :2] = a
    full[:, 2, 2] = 1
    inv = torch.linalg.inv(full)[:, :2]
    p = xy_img.to(torch.float64)
    return (torch.einsum("bij,bkj->bki", inv[:, :, :2], p) + inv[:, None, :, 2]).float()
