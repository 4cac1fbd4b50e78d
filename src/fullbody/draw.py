"""Drawing 133-point whole-body poses: skeleton links and points, coloured by part.

Pure functions on numpy images (BGR, uint8, OpenCV order), usable from training callbacks,
demos and notebooks alike. Colours and links come from :mod:`fullbody.keypoints`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fullbody.keypoints import KEYPOINT_PART, NUM_KEYPOINTS, PART_COLORS, SKELETON


def draw_wholebody(
    image: np.ndarray,
    keypoints: np.ndarray,
    threshold: float = 0.3,
    radius: int | None = None,
    thickness: int | None = None,
    boxes: np.ndarray | None = None,
) -> np.ndarray:
    """Draw poses on a copy of ``image`` (H,W,3 BGR uint8) and return it.

    ``keypoints``: (133,3) or (N,133,3) rows of x, y, score (image pixels; a score may be a
    confidence or a COCO visibility); points with score <= ``threshold`` and links touching
    them are skipped. ``boxes``: optional (N,4) xywh person boxes. Sizes default to the
    image's scale. Links take the colour of the part of their second point, so wrist-to-hand
    links are drawn in the hand's colour.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) BGR, got shape {image.shape}")
    kpts = np.asarray(keypoints, dtype=np.float64)
    if kpts.ndim == 2:
        kpts = kpts[None]
    if kpts.ndim != 3 or kpts.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got shape {kpts.shape}")
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    scale = max(out.shape[:2]) / 640.0
    r = radius if radius is not None else max(1, round(2 * scale))
    t = thickness if thickness is not None else max(1, round(1.5 * scale))
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    f = float(1 << shift)
    if boxes is not None:
        for x, y, w, h in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            p0 = (round(x * f), round(y * f))
            p1 = (round((x + w) * f), round((y + h) * f))
            cv2.rectangle(out, p0, p1, (0, 255, 255), t, cv2.LINE_AA, shift)
    for person in kpts:
        ok = np.isfinite(person).all(1) & (person[:, 2] > threshold)
        pts = np.round(person[:, :2] * f).astype(np.int64)
        for a, b in SKELETON:
            if ok[a] and ok[b]:
                color = PART_COLORS[KEYPOINT_PART[b]]
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), color, t, cv2.LINE_AA, shift)
        for i in np.flatnonzero(ok):
            cv2.circle(out, tuple(pts[i]), r * (1 << shift), PART_COLORS[KEYPOINT_PART[i]], -1,
                       cv2.LINE_AA, shift)  # fmt: skip
    return out


def tile_images(images: Sequence[np.ndarray], columns: int = 4, pad: int = 2) -> np.ndarray:
    """Tile equally sized (H,W,3) images into one grid image (row-major, black padding)."""
    if not images:
        raise ValueError("tile_images needs at least one image")
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError("tile_images needs images of one size")
    cols = max(1, min(columns, len(images)))
    rows = -(-len(images) // cols)
    grid = np.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), np.uint8)
    for i, im in enumerate(images):
        y, x = divmod(i, cols)
        grid[y * (h + pad) : y * (h + pad) + h, x * (w + pad) : x * (w + pad) + w] = im
    return grid
