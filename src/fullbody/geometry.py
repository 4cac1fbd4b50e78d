"""Crop geometry as pure functions: boxes, affine matrices, warps, flips, batched rotated crops.

The ground floor of the package (it imports only :mod:`fullbody.keypoints`): training data,
the predictor and the pseudo-label teachers all crop with these, so a crop and the points
mapped through it agree exactly wherever they are made.

Conventions (see CONTRACTS.md): image and crop coordinates are OpenCV pixel coordinates, pixel
centres at integers, so pixel ``i`` covers ``[i - 0.5, i + 0.5]``. A crop of ``scale = (sw, sh)``
image pixels around ``center`` maps the box's outer edges ``center ± scale / 2`` onto the crop's
outer edges ``-0.5`` and ``W - 0.5``, and ``center`` onto the crop centre ``((W - 1) / 2,
(H - 1) / 2)``. Mirroring the crop is then exactly ``x -> W - 1 - x``, which is also what mirroring
a heatmap array does in the codec's centre-aligned heatmap frame.

A whole training sample needs one matrix: box -> (centre, scale) -> random scale/rotation ->
optional mirror, composed by :func:`affine_matrix`; keypoints follow it through
:func:`transform_points` and the left/right swap :data:`fullbody.keypoints.FLIP_INDEX`.

Batched crops (the teachers'): a crop is a square of ``side`` image pixels centred on ``center``
whose "up" is the unit image vector ``up``: warped to ``size`` x ``size`` pixels, ``up`` points to
the top of the crop and the crop's x axis is ``up`` turned 90 degrees clockwise (for
``up = (0, -1)`` the crop is an axis-aligned, unrotated square, the same as
:func:`affine_matrix` without rotation).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fullbody.keypoints import FLIP_INDEX


def box_to_center_scale(
    box: np.ndarray, aspect_ratio: float, padding: float
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size (image px) of the crop around xywh box(es), widened to ``aspect_ratio``.

    ``aspect_ratio`` is the crop's width / height (192 / 256 = 0.75 by default): the shorter
    side of the box grows until the box has that ratio (never shrinks, so the person stays
    whole), then both sides grow by ``padding`` (the model's ``TopDownSpec.padding``).
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


def person_affines(boxes: np.ndarray, input_size: tuple[int, int], padding: float) -> np.ndarray:
    """Image -> input-crop affines (N, 2, 3) of (N, 4) xywh person boxes: the crop of
    evaluation, inference and the checkpoint/ONNX teachers (the box widened to the aspect ratio
    of the ``input_size`` (h, w) crop, times ``padding``, unrotated, unmirrored) — a model's
    ``TopDownSpec.input_size`` and ``padding``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = input_size
    centers, scales = box_to_center_scale(boxes, w / h, padding)
    out = np.empty((len(boxes), 2, 3), dtype=np.float64)
    for i, (c, s) in enumerate(zip(centers, scales)):
        out[i] = affine_matrix(c, s, 0.0, (h, w))
    return out


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


#: The upright direction in image coordinates (y grows downwards).
UP = np.array([0.0, -1.0])


def unit(v: np.ndarray, fallback: np.ndarray = UP) -> np.ndarray:
    """Rows of ``v`` (..., 2) scaled to length 1; zero-length rows become ``fallback``."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), np.broadcast_to(fallback, v.shape))


def crop_affines(
    center: np.ndarray,
    side: np.ndarray,
    up: np.ndarray,
    size: int | tuple[int, int],
) -> np.ndarray:
    """Image -> crop affines (n, 2, 3) for crops with (n, 2) centres and (n, 2) up vectors.

    ``side`` is (n,) for squares or (n, 2) ``(width, height)`` in image px along the crop's own
    axes; ``size`` is the output side, or ``(width, height)`` for a rectangular output.
    """
    center = np.asarray(center, np.float64).reshape(-1, 2)
    n = len(center)
    side = np.asarray(side, np.float64)
    side = np.broadcast_to(side[..., None] if side.ndim <= 1 else side, (n, 2))
    if (side <= 0).any() or not np.isfinite(side).all():
        raise ValueError(f"crop sides must be positive and finite, got {side.tolist()}")
    out_wh = np.broadcast_to(np.asarray(size, np.float64), (2,))
    u = unit(np.broadcast_to(np.asarray(up, np.float64), (n, 2)))
    right = np.stack([-u[:, 1], u[:, 0]], axis=1)  # crop x axis in the image
    rot = np.stack([right, -u], axis=1)  # rows: crop x axis, crop y axis (down = -up)
    lin = (out_wh / side)[:, :, None] * rot
    shift = (out_wh - 1) / 2.0 - np.einsum("nij,nj->ni", lin, center)
    return np.concatenate([lin, shift[:, :, None]], axis=2)


def mirror_affines(affines: np.ndarray, width: int) -> np.ndarray:
    """Image -> crop affines (n, 2, 3) followed by a left-right mirror of a ``width``-pixel-wide
    crop (x -> width - 1 - x, pixel centres at integers): the crop a flip test runs on."""
    out = np.array(affines, np.float64).reshape(-1, 2, 3)
    out[:, 0] *= -1
    out[:, 0, 2] += width - 1
    return out


def invert_affines(affines: np.ndarray) -> np.ndarray:
    """Inverse of each (n, 2, 3) affine (crop -> image for an image -> crop one)."""
    if not len(affines):
        return np.zeros((0, 2, 3))
    return np.stack([invert_affine(a) for a in affines]).reshape(-1, 2, 3)


def warp_crops(image: np.ndarray, affines: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Cut (n, H, W, C) crops out of an (H, W, C) image; outside the image is black.

    ``size`` is the side of square crops or ``(width, height)``.
    """
    w, h = (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))
    out = np.zeros((len(affines), h, w, image.shape[2]), dtype=image.dtype)
    for i, a in enumerate(affines):
        out[i] = warp(image, a, (h, w)).reshape(h, w, -1)
    return out


def warp_crop_antialiased(
    image: np.ndarray, affine: np.ndarray, size: int | tuple[int, int]
) -> np.ndarray:
    """One crop through an image -> crop ``affine`` (2, 3), like :func:`warp_crops`, but when
    the crop shrinks the image (scale < 1) the image is first reduced to that scale by area
    averaging (``cv2.INTER_AREA``), so fine detail does not alias; the crop still corresponds
    exactly to ``affine`` (the reduction is folded back into the warp)."""
    a = np.asarray(affine, np.float64).reshape(2, 3)
    scale = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
    if scale >= 1.0:
        return warp_crops(image, a[None], size)[0]
    h, w = image.shape[:2]
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA).reshape(sh, sw, -1)
    rx, ry = sw / w, sh / h  # cv2.resize maps pixel centres x -> (x + 0.5) rx - 0.5
    small_to_image = invert_affine(np.array([[rx, 0, 0.5 * rx - 0.5], [0, ry, 0.5 * ry - 0.5]]))
    return warp_crops(small, compose_affine(a, small_to_image)[None], size)[0]


def box_to_square(boxes: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Centres (n, 2) and sides (n,) of squares around xywh boxes: ``scale`` x the long side."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return b[:, :2] + b[:, 2:] / 2, scale * b[:, 2:].max(1)


def rotated_extent(
    points: np.ndarray, mask: np.ndarray, up: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (n, 2) and long side (n,) of each point set's box in its own ``up``-aligned frame.

    This is how MediaPipe turns landmarks back into a region: the bounding box of the points
    measured along the rotated axes (rows with no masked point give a zero side).
    """
    u = unit(np.asarray(up, np.float64))
    right = np.stack([-u[:, 1], u[:, 0]], axis=1)
    rot = np.stack([right, -u], axis=1)
    local = np.einsum("nij,nkj->nki", rot, points)
    m = mask[..., None]
    lo = np.where(m, local, np.inf).min(1)
    hi = np.where(m, local, -np.inf).max(1)
    ok = mask.any(1)
    lo, hi = np.where(ok[:, None], lo, 0.0), np.where(ok[:, None], hi, 0.0)
    centre_local = (lo + hi) / 2
    centre = np.einsum("nji,nj->ni", rot, centre_local)
    return centre, (hi - lo).max(1)
