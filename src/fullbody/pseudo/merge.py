"""Merge teacher predictions with the human body labels into 133-point pseudo-labels.

Rules (one home for them):

- The body (points 0-16) stays exactly the human label, confidences included.
- Every other part comes from the one teacher assigned to it. A predicted point is labelled
  when its confidence is at least ``min_conf``, its coordinates are finite and it lies inside
  the image; it then gets v = 2, or v = 1 when the teacher says it is located but hidden, and
  keeps the teacher's confidence as its ``conf``. Any other point is unlabelled: x = y = v = 0,
  conf 0 (weight zero in training), never invented. Points no teacher predicts (e.g. the small
  toes) are unlabelled the same way.
- Teacher coordinates are stored to 0.01 px and confidences to 1e-4 (at least 1e-4 for a
  labelled point): far below any teacher's error, and it keeps a train2017 file a third the size.
- A part is valid when it has at least one labelled point; the face and hand boxes are the
  extent of their labelled points (:func:`fullbody.annotations.points_box`), zeros otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fullbody.annotations import BOX_PARTS, PARTS, points_box
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES
from fullbody.pseudo.teachers.base import TEACHER_PARTS, Prediction

COORD_DECIMALS = 2
CONF_DECIMALS = 4


def merge_predictions(
    body: np.ndarray,
    body_conf: np.ndarray,
    predictions: Mapping[str, Prediction],
    image_size: tuple[float, float],
    min_conf: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-labels of ``n`` people of one image.

    ``body`` (n, 17, 3) and ``body_conf`` (n, 17) are the human labels; ``predictions`` maps
    each teacher part to the prediction of the teacher assigned to it; ``image_size`` is
    (width, height). Returns keypoints (n, 133, 3), conf (n, 133), valid (n, 5) in
    :data:`PARTS` order and part boxes (n, 3, 4) in :data:`BOX_PARTS` order.
    """
    if not 0.0 < min_conf <= 1.0:
        raise ValueError(f"min_conf must lie in (0, 1], got {min_conf}")
    n = len(body)
    kpts = np.zeros((n, NUM_KEYPOINTS, 3))
    conf = np.zeros((n, NUM_KEYPOINTS))
    body_sl = PART_SLICES["body"]
    kpts[:, body_sl] = body
    conf[:, body_sl] = body_conf
    w, h = image_size
    for part, pred in predictions.items():
        if part not in TEACHER_PARTS:
            raise ValueError(f"cannot merge part {part!r}; teachers label {TEACHER_PARTS}")
        sl = PART_SLICES[part]
        xy, c = pred.xy[:, sl], pred.conf[:, sl]
        finite = np.isfinite(xy).all(-1) & np.isfinite(c)
        xy = np.where(finite[..., None], xy, 0.0)
        inside = (xy >= -0.5).all(-1) & (xy[..., 0] <= w - 0.5) & (xy[..., 1] <= h - 0.5)
        keep = finite & inside & (c >= min_conf)
        vis = np.where(pred.occluded[:, sl], 1.0, 2.0)
        kpts[:, sl, :2] = np.where(keep[..., None], np.round(xy, COORD_DECIMALS), 0.0)
        kpts[:, sl, 2] = np.where(keep, vis, 0.0)
        c = np.clip(np.round(np.nan_to_num(c), CONF_DECIMALS), 10.0**-CONF_DECIMALS, 1.0)
        conf[:, sl] = np.where(keep, c, 0.0)
    lab = kpts[..., 2] > 0
    valid = np.stack([lab[:, PART_SLICES[p]].any(1) for p in PARTS], axis=1)
    boxes = np.stack([points_box(kpts[:, PART_SLICES[p]]) for p in BOX_PARTS], axis=1)
    return kpts, conf, valid, boxes
