"""The batch contract: every tensor a top-down batch carries, its shape and coordinate frame.

Datasets produce it, the LightningModule and callbacks consume it. Training targets are *not*
in it: the model's codec (:mod:`fullbody.codecs`) renders them from ``target_xy``/``target_weight``
on the training device, which is far cheaper than moving 133x64x48 floats a sample.
"""

from __future__ import annotations

from typing import TypedDict

from torch import Tensor


class Batch(TypedDict):
    """A collated batch of B person crops."""

    image: Tensor  # (B, 3, H, W) float32, normalised RGB crop (input frame, e.g. 256x192)
    target_xy: Tensor  # (B, 133, 2) float32, keypoints in input-crop pixels (x right, y down)
    target_weight: Tensor  # (B, 133) float32, 0 unlabelled, teacher conf (floored) or 1 human
    crop_to_image: Tensor  # (B, 2, 3) float64, affine: input-crop pixel -> image pixel
    bbox: Tensor  # (B, 4) float32, the person box used for the crop (xywh, image pixels)
    box_score: Tensor  # (B,) float32, detector score (1 for ground-truth boxes)
    image_id: Tensor  # (B,) int64, COCO image id
    person_id: Tensor  # (B,) int64, unique per sample (annotation id or detection index)
    flipped: Tensor  # (B,) bool, whether the crop was mirrored (training augmentation)
