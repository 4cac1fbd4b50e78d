"""Training augmentations on top of :mod:`fullbody.geometry`: half-body crops and the
clipped-normal draws of the random scale and rotation (SimpleBaseline/HRNet recipe)."""

from __future__ import annotations

import numpy as np

from fullbody.keypoints import PART_SLICES

#: Body keypoints (COCO order) of the upper half: nose, eyes, ears, shoulders, elbows, wrists.
UPPER_BODY = np.arange(0, 11)
#: Body keypoints of the lower half: hips, knees, ankles.
LOWER_BODY = np.arange(11, 17)
#: All 133 points of each half: the upper half adds face and hands, the lower half the feet.
UPPER_HALF = np.concatenate(
    [
        UPPER_BODY,
        np.arange(PART_SLICES["face"].start, PART_SLICES["face"].stop),
        np.arange(PART_SLICES["lefthand"].start, PART_SLICES["righthand"].stop),
    ]
)
LOWER_HALF = np.concatenate(
    [LOWER_BODY, np.arange(PART_SLICES["foot"].start, PART_SLICES["foot"].stop)]
)


def half_body_box(
    keypoints: np.ndarray,
    rng: np.random.Generator,
    *,
    min_total: int = 9,
    min_upper: int = 2,
    min_lower: int = 3,
) -> np.ndarray | None:
    """xywh box around the upper or the lower half of a person, or ``None`` when not possible.

    Counts the labelled (v > 0) body keypoints: with at least ``min_total`` of them, picks the
    upper or lower half at random among those holding at least ``min_upper`` / ``min_lower``
    labelled body points, and returns the extent of all labelled points of that half (the upper
    half includes face and hands, the lower half the feet). The caller widens it (padding 1.5
    in the usual recipe) into a crop.
    """
    lab = keypoints[:, 2] > 0
    if lab[: LOWER_BODY[-1] + 1].sum() < min_total:
        return None
    choices = []
    if lab[UPPER_BODY].sum() >= min_upper:
        choices.append(UPPER_HALF)
    if lab[LOWER_BODY].sum() >= min_lower:
        choices.append(LOWER_HALF)
    if not choices:
        return None
    idx = choices[int(rng.integers(len(choices)))]
    pts = keypoints[idx][lab[idx], :2]
    lo, hi = pts.min(0), pts.max(0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def truncated_normal(rng: np.random.Generator, sd: float, limit: float) -> float:
    """A draw of N(0, sd²) clipped to ``[-limit, limit]`` (the SimpleBaseline/HRNet recipe)."""
    return min(max(sd * float(rng.standard_normal()), -limit), limit)


def inside(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Whether (..., 2) points lie on an (h, w) pixel grid's area ``[-0.5, w - 0.5) x [-0.5, h - 0.5)``."""
    h, w = size
    x, y = points[..., 0], points[..., 1]
    return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
