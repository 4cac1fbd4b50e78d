"""Top-down crop geometry as pure functions: boxes, affine matrices, warps, flips, half-body.

Conventions (see CONTRACTS.md): image and crop coordinates are OpenCV pixel coordinates, pixel
centres at integers, so pixel ``i`` covers ``[i - 0.5, i + 0.5]``. A crop of ``scale = (sw, sh)``
image pixels around ``center`` maps the box's outer edges ``center ± scale / 2`` onto the crop's
outer edges ``-0.5`` and ``W - 0.5``, and ``center`` onto the crop centre ``((W - 1) / 2,
(H - 1) / 2)``. Mirroring the crop is then exactly ``x -> W - 1 - x``, which is also what mirroring
a heatmap array does in the codec's centre-aligned heatmap frame.

A whole training sample needs one matrix: box -> (centre, scale) -> random scale/rotation ->
optional mirror, composed by :func:`affine_matrix`; keypoints follow it through
:func:`transform_points` and the left/right swap :data:`fullbody.keypoints.FLIP_INDEX`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fullbody.keypoints import FLIP_INDEX, PART_SLICES

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


def box_to_center_scale(
    box: np.ndarray, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size (image px) of the crop around xywh box(es), widened to ``aspect_ratio``.

    ``aspect_ratio`` is the crop's width / height (192 / 256 = 0.75 by default): the shorter
    side of the box grows until the box has that ratio (never shrinks, so the person stays
    whole), then both sides grow by ``padding`` (1.25 as in SimpleBaseline/HRNet/AlphaPose).
    Works on (4,) or (N, 4) arrays; returns arrays of shape (..., 2).
    """
    box = np.asarray(box, dtype=np.float64)
    xy, wh = box[..., :2], box[..., 2:]
    # w' = max(w, h * ar), h' = max(h, w / ar): one elementwise maximum.
    scale = np.maximum(wh, wh[..., ::-1] * (aspect_ratio, 1.0 / aspect_ratio)) * padding
    return xy + wh * 0.5, scale


def affine_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation: float,
    output_size: tuple[int, int],
    flip: bool = False,
) -> np.ndarray:
    """The (2, 3) affine taking image px to crop px (``output_size`` = (h, w)).

    ``p_crop = S R (p - center) + ((W - 1) / 2, (H - 1) / 2)``, ``R`` turning the content by
    ``rotation`` degrees counter-clockwise as seen on screen, ``S = diag(W / sw, H / sh)``. With
    ``flip`` the crop is mirrored afterwards (``x -> W - 1 - x``); keypoints then also swap
    sides through :func:`flip_index_points`.
    """
    out_h, out_w = output_size
    sw, sh = float(scale[0]), float(scale[1])
    if sw <= 0 or sh <= 0:
        raise ValueError(f"crop scale must be positive, got {(sw, sh)}")
    a = math.radians(rotation)
    cos, sin = math.cos(a), math.sin(a)
    sx, sy = out_w / sw, out_h / sh
    # S @ R with R = [[cos, sin], [-sin, cos]]: counter-clockwise on screen (y down).
    a00, a01, a10, a11 = sx * cos, sx * sin, -sy * sin, sy * cos
    if flip:
        a00, a01 = -a00, -a01
    cx, cy = float(center[0]), float(center[1])
    tx = (out_w - 1) * 0.5 - (a00 * cx + a01 * cy)
    ty = (out_h - 1) * 0.5 - (a10 * cx + a11 * cy)
    return np.array([[a00, a01, tx], [a10, a11, ty]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine (crop -> image for a matrix from :func:`affine_matrix`)."""
    (a, b, tx), (c, d, ty) = np.asarray(matrix, dtype=np.float64).tolist()
    det = a * d - b * c
    if det == 0:
        raise ValueError("affine matrix is singular")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine ``p -> outer(inner(p))`` of two (2, 3) matrices."""
    outer = np.asarray(outer, dtype=np.float64)
    inner = np.asarray(inner, dtype=np.float64)
    lin = outer[:, :2] @ inner[:, :2]
    return np.concatenate([lin, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]], axis=1)


def reduced_to_full(factor: int) -> np.ndarray:
    """The affine from pixels of an image decoded at 1/``factor`` scale to full-size pixels.

    libjpeg's DCT scaling averages ``factor x factor`` blocks: reduced pixel ``j`` covers full
    pixels ``[f j, f j + f - 1]``, whose centre is ``f j + (f - 1) / 2``.
    """
    f = float(factor)
    return np.array([[f, 0.0, (f - 1) * 0.5], [0.0, f, (f - 1) * 0.5]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply an affine to the x, y of points (other columns kept).

    ``matrix`` is one (2, 3) affine for (..., >=2) points, or a batch (n, 2, 3) of affines for
    (n, k, >=2) points, one affine per row.
    """
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    shift = matrix[..., 2] if matrix.ndim == 2 else matrix[..., None, :, 2]
    out = points.copy()
    out[..., :2] = points[..., :2] @ np.swapaxes(matrix[..., :2], -1, -2) + shift
    return out


def warp(
    image: np.ndarray,
    matrix: np.ndarray,
    output_size: tuple[int, int],
    border_value: int | tuple[int, ...] = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Crop ``image`` through ``matrix`` (image -> crop px) to ``output_size`` = (h, w).

    Bilinear, constant border: one ``cv2.warpAffine`` does box crop, padding, scale, rotation
    and mirror at once, and keeps the input dtype (uint8 stays uint8). ``out``: a contiguous
    array of the crop's shape and dtype to write into (a buffer reused over many crops).
    """
    out_h, out_w = output_size
    if out is not None:
        want = (int(out_h), int(out_w), *image.shape[2:])
        if out.shape != want or out.dtype != image.dtype or not out.flags.c_contiguous:
            # OpenCV would silently write elsewhere
            raise ValueError(f"out must be a contiguous {image.dtype} {want} array")
    return cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (int(out_w), int(out_h)),
        dst=out,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


def flip_index_points(points: np.ndarray, flip_index: np.ndarray = FLIP_INDEX) -> np.ndarray:
    """Swap left/right keypoints (rows along axis -2) of (..., K, C) arrays: no coordinates move.

    Use after points went through a mirroring affine (``affine_matrix(..., flip=True)``).
    """
    return np.take(points, flip_index, axis=-2)


def flip_keypoints(
    points: np.ndarray, width: float, flip_index: np.ndarray = FLIP_INDEX
) -> np.ndarray:
    """Mirror (..., K, C) keypoints of an image ``width`` pixels wide: ``x -> width - 1 - x``
    and left/right swapped. Applying it twice gives the input back."""
    out = flip_index_points(np.asarray(points, dtype=np.float64), flip_index).copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out


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
