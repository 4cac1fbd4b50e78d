"""Tiny COCO-WholeBody data sets made on the fly: images with a coloured dot at every keypoint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import NUM_KEYPOINTS

#: A standing person in a 100 x 200 box whose top-left corner is (0, 0): body points only.
BODY = np.array(
    [
        [50, 15], [44, 8], [56, 8], [36, 12], [64, 12],  # nose, eyes, ears
        [30, 40], [70, 40], [25, 70], [75, 70], [20, 100], [80, 100],  # arms
        [38, 105], [62, 105], [36, 145], [64, 145], [35, 185], [65, 185],  # legs
    ],
    dtype=np.float64,
)  # fmt: skip


def person(x0: float, y0: float, s: float = 1.0, *, whole: bool = True) -> np.ndarray:
    """(133, 3) keypoints (whole pixels) of a standing person at (x0, y0), scale ``s``; with
    ``whole`` also some foot, face and hand points."""
    kp = np.zeros((NUM_KEYPOINTS, 3))
    kp[:17, :2] = BODY * s + (x0, y0)
    kp[:17, 2] = 2
    if whole:
        kp[17:23, :2] = kp[[15, 15, 15, 16, 16, 16], :2] + np.array(
            [[-4, 8], [-1, 8], [2, 6], [4, 8], [1, 8], [-2, 6]]
        ) * s  # fmt: skip
        kp[17:23, 2] = 2
        for j, k in enumerate((23, 31, 39, 53, 59, 68)):  # a few face points around the nose
            kp[k, :2] = kp[0, :2] + np.array([(j - 2.5) * 4, 9]) * s
            kp[k, 2] = 1
        kp[91, :2], kp[112, :2] = kp[9, :2] + (0, 7 * s), kp[10, :2] + (0, 7 * s)
        kp[[91, 112], 2] = 2
    kp[:, :2] = np.round(kp[:, :2])  # dots are drawn at whole pixels
    return kp


#: 17 well-separated RGB colours for the body points (no grey, none a blend of another with
#: the grey background); every other point is painted white.
_LEVELS = (60, 160, 250)
BODY_COLOURS = [(r, g, b) for r in _LEVELS for g in _LEVELS for b in _LEVELS if not r == g == b][
    ::-1
][:17]


def dot_colour(k: int) -> tuple[int, int, int]:
    """The RGB colour of keypoint ``k``'s dot: distinct for body points, white otherwise."""
    k = int(k)
    return BODY_COLOURS[k] if k < 17 else (255, 255, 255)


def paint(size: tuple[int, int], people: list[np.ndarray], radius: int = 3) -> np.ndarray:
    """RGB (h, w, 3) image: grey background, one filled circle per labelled keypoint."""
    h, w = size
    img = np.full((h, w, 3), 30, np.uint8)
    for kp in people:
        for k in np.flatnonzero(kp[:, 2] > 0):
            cv2.circle(img, tuple(round(v) for v in kp[k, :2]), radius, dot_colour(k), -1)
    return img


def write_set(
    root: Path,
    scenes: list[tuple[tuple[int, int], list[np.ndarray]]],
    *,
    conf: list[np.ndarray] | None = None,
    ext: str = ".png",
    name: str = "ann.json",
) -> tuple[Path, Path]:
    """Write images (one per scene: (h, w) and its people) and their JSON; returns both paths."""
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, image_ids, kpts, boxes = [], [], [], []
    for i, (size, people) in enumerate(scenes):
        fname = f"{i:04d}{ext}"
        cv2.imwrite(str(image_dir / fname), paint(size, people)[:, :, ::-1])
        images.append({"id": i + 1, "file_name": fname, "height": size[0], "width": size[1]})
        for kp in people:
            lab = kp[kp[:, 2] > 0, :2]
            if not len(lab):  # an unlabelled person: a box near its first point
                lab = kp[:1, :2] + [[-20, -20], [20, 20]]
            lo, hi = lab.min(0) - 5, lab.max(0) + 5
            lo = np.maximum(lo, 0)
            hi = np.minimum(hi, (size[1] - 1, size[0] - 1))
            image_ids.append(i + 1)
            kpts.append(kp)
            boxes.append([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
    ws = WholeBodySet.from_arrays(
        images, np.array(image_ids), np.array(kpts), np.array(boxes),
        conf=None if conf is None else np.array(conf),
    )  # fmt: skip
    ann_file = ws.save(root / name)
    return ann_file, image_dir
