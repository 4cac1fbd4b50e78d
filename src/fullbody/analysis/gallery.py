"""Crops of analysed instances with ground truth and prediction drawn side by side.

Hands are often a dozen pixels wide, so each crop is warped up to a fixed size first and the
points are drawn on the enlarged crop (sub-pixel, anti-aliased). The part's links come from
:data:`fullbody.keypoints.SKELETON` and its colour from :data:`~fullbody.keypoints.PART_COLORS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fullbody.analysis.part_errors import PointErrors
from fullbody.annotations import WholeBodySet
from fullbody.images import read_image
from fullbody.keypoints import PART_COLORS, PART_SLICES, SKELETON

_SHIFT = 4  # sub-pixel drawing: coordinates in 1/16 px
_GT_MARK = (255, 255, 255)
_ERROR = (40, 40, 230)  # BGR red


def part_links(side: str) -> list[tuple[int, int]]:
    """Skeleton links inside one layout part, as local index pairs."""
    sl = PART_SLICES[side]
    return [(a - sl.start, b - sl.start) for a, b in SKELETON
            if sl.start <= a < sl.stop and sl.start <= b < sl.stop]  # fmt: skip


def crop_box(gt: np.ndarray, pred: np.ndarray, pad: float = 0.25, min_side: float = 24.0):
    """Square crop (x0, y0, side) around the labelled ground-truth points and their
    predictions, padded by ``pad`` of its side and at least ``min_side`` px."""
    lab = gt[:, 2] > 0
    pts = np.concatenate([gt[lab, :2], pred[lab, :2]]) if lab.any() else pred[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    side = max(float((hi - lo).max()) * (1 + 2 * pad), min_side)
    centre = (lo + hi) / 2
    return float(centre[0] - side / 2), float(centre[1] - side / 2), side


def _warp(image: np.ndarray, box: tuple[float, float, float], out_px: int) -> np.ndarray:
    x0, y0, side = box
    k = out_px / side
    m = np.array([[k, 0, -k * x0], [0, k, -k * y0]])
    return cv2.warpAffine(image, m, (out_px, out_px), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(32, 32, 32))  # fmt: skip


def _fixed(xy: np.ndarray) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in p) for p in np.round(xy * (1 << _SHIFT))]


def draw_part(
    image: np.ndarray,
    points: np.ndarray,
    side: str,
    shown: np.ndarray,
    hollow: np.ndarray | None = None,
    radius: float = 3.0,
    thickness: int = 2,
) -> None:
    """Draw one part's links and points (local (K, 2) pixel coordinates) in place.

    ``shown``: (K,) points to draw; ``hollow``: (K,) points drawn as rings (occluded or
    low-confidence)."""
    color = PART_COLORS[side]
    pts = _fixed(points[:, :2])
    for a, b in part_links(side):
        if shown[a] and shown[b]:
            cv2.line(image, pts[a], pts[b], color, thickness, cv2.LINE_AA, _SHIFT)
    r = round(radius * (1 << _SHIFT))
    for i in np.flatnonzero(shown):
        ring = hollow is not None and hollow[i]
        cv2.circle(image, pts[i], r, color, 1 if ring else -1, cv2.LINE_AA, _SHIFT)
        if not ring:
            cv2.circle(image, pts[i], r, (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)


def crop_pair(
    image: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    side: str,
    occluded: np.ndarray | None = None,
    out_px: int = 192,
    conf_threshold: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth, prediction) RGB crops of one part instance, ``out_px`` square each.

    ``gt`` (K, 3) x, y, v and ``pred`` (K, 3) x, y, confidence in image pixels (BGR ``image``).
    Left: labelled points (``occluded`` (K,) ones as rings). Right: the prediction of the
    labelled points (those with confidence <= ``conf_threshold`` as rings; points the ground
    truth does not label are not evaluated and not drawn), a white dot at each ground-truth point
    and a red line from it to its prediction: the error.
    """
    box = crop_box(gt, pred)
    k = out_px / box[2]
    g = (gt[:, :2] - box[:2]) * k
    p = (pred[:, :2] - box[:2]) * k
    base = _warp(image, box, out_px)
    lab = gt[:, 2] > 0
    left = base.copy()
    draw_part(left, g, side, lab, hollow=occluded)
    right = base.copy()
    gp, pp = _fixed(g), _fixed(p)
    for i in np.flatnonzero(lab):
        cv2.line(right, gp[i], pp[i], _ERROR, 1, cv2.LINE_AA, _SHIFT)
    draw_part(right, p, side, lab, hollow=pred[:, 2] <= conf_threshold)
    for i in np.flatnonzero(lab):
        cv2.circle(right, gp[i], 1 << _SHIFT, _GT_MARK, -1, cv2.LINE_AA, _SHIFT)
    return cv2.cvtColor(left, cv2.COLOR_BGR2RGB), cv2.cvtColor(right, cv2.COLOR_BGR2RGB)


@dataclass
class GalleryItem:
    """One instance of the gallery: its crops and what the title says about it."""

    ground_truth: np.ndarray  # (out_px, out_px, 3) RGB
    prediction: np.ndarray  # (out_px, out_px, 3) RGB
    image_id: int
    side: str
    size: float  # ground-truth box side, px
    error: float  # mean normalised error
    oks: float


def gallery_items(
    errors: PointErrors,
    rows: np.ndarray,
    gt: WholeBodySet,
    image_dir: str | os.PathLike,
    out_px: int = 192,
) -> list[GalleryItem]:
    """Crops for the instances ``rows`` of ``errors`` (e.g. :func:`worst_instances`), read
    from ``image_dir`` (the ground truth's ``file_name`` under it) as training reads them
    (:func:`fullbody.images.read_image`: EXIF ignored, truncated files and sizes that disagree
    with the record refused)."""
    items = []
    cache: dict[int, np.ndarray] = {}
    for r in np.asarray(rows, dtype=np.int64):
        img_id = int(errors.image_id[r])
        if img_id not in cache:
            path = gt.image_path(img_id, image_dir)
            image = read_image(path, record=gt.images[img_id], source=gt.path)
            cache[img_id] = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # crop_pair draws in BGR
        left, right = crop_pair(
            cache[img_id], errors.gt[r], errors.pred[r], errors.side[r], errors.occluded[r], out_px
        )
        side, size = str(errors.side[r]), float(errors.size[r])
        err, oks = float(errors.instance_error[r]), float(errors.oks[r])
        items.append(GalleryItem(left, right, img_id, side, size, err, oks))
    return items


def image_dir_of(gt_file: str | os.PathLike) -> Path:
    """The usual image folder beside a ground-truth file: ``images/`` next to it, or next to
    its parent folder (``annotations/x.json`` -> ``images/``)."""
    here = Path(gt_file).resolve().parent
    for cand in (here / "images", here.parent / "images"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"{gt_file}: no images/ folder beside it; set IMAGE_DIR")
