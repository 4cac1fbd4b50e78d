"""Target codecs: how keypoints become training targets and how predictions become keypoints."""

from fullbody.codecs.heatmap import (
    HeatmapCodec,
    crop_to_image_points,
    encode_reference,
    flip_heatmaps,
)
from fullbody.codecs.simcc import SimCCCodec

__all__ = [
    "HeatmapCodec",
    "SimCCCodec",
    "crop_to_image_points",
    "encode_reference",
    "flip_heatmaps",
]
