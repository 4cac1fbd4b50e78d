"""Target codecs: how keypoints become training targets and how predictions become keypoints.

Each codec works in input-crop pixels; :mod:`fullbody.codecs.topdown` carries its points to the
image (flip test, decoding, crop affine) for training, evaluation and inference alike.
"""

from fullbody.codecs.heatmap import HeatmapCodec, encode_reference, flip_heatmaps
from fullbody.codecs.simcc import SimCCCodec
from fullbody.codecs.spec import TopDownSpec
from fullbody.codecs.topdown import (
    PoseCodec,
    crop_to_image_points,
    decode_to_image,
    flip_merge,
    image_to_crop_points,
    is_channels_last,
    person_score,
)

__all__ = [
    "HeatmapCodec",
    "PoseCodec",
    "SimCCCodec",
    "TopDownSpec",
    "crop_to_image_points",
    "decode_to_image",
    "encode_reference",
    "flip_heatmaps",
    "flip_merge",
    "image_to_crop_points",
    "is_channels_last",
    "person_score",
]
