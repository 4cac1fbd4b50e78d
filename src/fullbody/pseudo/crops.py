"""Rotated square crops and their inverse affines, shared by every teacher.

A crop is a square of ``side`` image pixels centred on ``center`` whose "up" is the unit image
vector ``up``: warped to ``size`` x ``size`` pixels, ``up`` points to the top of the crop and the
crop's x axis is ``up`` turned 90 degrees clockwise (for ``up = (0, -1)`` the crop is an
axis-aligned, unrotated square). Both image and crop use OpenCV's convention: pixel centres at
integer coordinates, as in :mod:`fullbody.data.transforms` (whose single-crop warp and inverse
these batch), so warped pixels and mapped points agree exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from fullbody.data.transforms import compose_affine, invert_affine, warp

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
