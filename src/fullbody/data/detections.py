"""Person detections in the COCO results format, as arrays, with errors that name file and field.

A results file is a JSON list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
records (what COCO evaluation reads and what detectors such as mmdet write). Non-person
categories are dropped when ``category_id`` is present.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.jsonio import AnnotationError, read_json

PERSON_CATEGORY = 1


@dataclass
class PersonDetections:
    """Person boxes of a results file; row ``i`` is one detection (file order kept)."""

    image_ids: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 4) float64, xywh image px
    scores: np.ndarray  # (N,) float64
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.image_ids)

    def above(self, threshold: float) -> PersonDetections:
        """The detections with ``score >= threshold`` (as COCO keypoint evaluation filters)."""
        keep = self.scores >= threshold
        return PersonDetections(
            self.image_ids[keep], self.boxes[keep], self.scores[keep], path=self.path
        )

    @classmethod
    def from_json(
        cls, data: Any, path: str | os.PathLike | None = None, images: Iterable[int] | None = None
    ) -> PersonDetections:
        """Parse a loaded results list; with ``images``, every image id must be one of them."""
        src = str(path) if path is not None else "<json>"
        if not isinstance(data, list):
            raise AnnotationError(src, "top level", "(root)", "expected a list of detections")
        known = None if images is None else {int(i) for i in images}
        ids, boxes, scores = [], [], []
        for i, det in enumerate(data):
            rec = f"detection #{i}"
            if not isinstance(det, dict):
                raise AnnotationError(src, rec, "(record)", "expected an object")
            if det.get("category_id", PERSON_CATEGORY) != PERSON_CATEGORY:
                continue
            for key in ("image_id", "bbox", "score"):
                if key not in det:
                    raise AnnotationError(src, rec, key, "missing")
            box = det["bbox"]
            if not (isinstance(box, list) and len(box) == 4 and all(_num(v) for v in box)):
                raise AnnotationError(src, rec, "bbox", f"expected 4 numbers, got {box!r}")
            if not np.isfinite(box).all() or box[2] < 0 or box[3] < 0:
                raise AnnotationError(src, rec, "bbox", f"non-finite or negative size in {box}")
            if not _num(det["score"]) or not np.isfinite(det["score"]):
                raise AnnotationError(src, rec, "score", f"expected a number, got {det['score']!r}")
            if known is not None and int(det["image_id"]) not in known:
                raise AnnotationError(
                    src, rec, "image_id", f"image {det['image_id']!r} is not in the annotations"
                )
            ids.append(int(det["image_id"]))
            boxes.append(box)
            scores.append(float(det["score"]))
        return cls(
            np.asarray(ids, dtype=np.int64),
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(scores, dtype=np.float64),
            path=Path(path) if path is not None else None,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, images: Iterable[int] | None = None) -> PersonDetections:
        """Read a COCO results file of person boxes (see :meth:`from_json`)."""
        data = read_json(path, "detection results file")
        return cls.from_json(data, path, images)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xywh boxes, (N, 4) x (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(ax1[:, None], bx1[None])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(ay1[:, None], by1[None])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
