"""Merge teacher predictions with the human body labels into 133-point pseudo-labels.

Rules (one home for them):

- The body (points 0-16) stays exactly the human label, confidences included.
- Every other part comes from the teacher assigned to it, or from several fused per point
  (:func:`fuse`). A predicted point is labelled when its confidence is at least ``min_conf``
  (one threshold, or one per part), its coordinates are finite and it lies inside
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

from collections.abc import Mapping, Sequence

import numpy as np

from fullbody.annotations import BOX_PARTS, PARTS, points_box
from fullbody.errors import ConfigError
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES
from fullbody.pseudo.teachers.base import TEACHER_PARTS, Prediction

COORD_DECIMALS = 2
CONF_DECIMALS = 4
FUSION_MODES = ("max", "mean")


def part_min_conf(min_conf: float | Mapping[str, float]) -> dict[str, float]:
    """Per teacher part, the confidence a point needs to be labelled: ``min_conf`` for all, or a
    mapping with a value per part (parts left out get 0.5)."""
    if isinstance(min_conf, Mapping):
        bad = sorted(set(min_conf) - set(TEACHER_PARTS))
        if bad:
            raise ConfigError(f"min_conf names unknown parts {bad}; parts are {TEACHER_PARTS}")
        out = {p: float(min_conf.get(p, 0.5)) for p in TEACHER_PARTS}
    else:
        out = dict.fromkeys(TEACHER_PARTS, float(min_conf))
    for part, v in out.items():
        if not 0.0 < v <= 1.0:
            raise ConfigError(f"min_conf must lie in (0, 1], got {v} for {part}")
    return out


def fuse(predictions: Sequence[Prediction], mode: str = "max") -> Prediction:
    """Several teachers' predictions of the same people fused per point.

    ``max``: each point from the teacher most confident about it (ties: the first).
    ``mean``: coordinates averaged with the confidences as weights, confidence the highest of
    them (the points agree at least that well), the hidden flag from the most confident.
    Points no teacher predicts (all confidences 0) keep the first teacher's values.
    """
    if mode not in FUSION_MODES:
        raise ConfigError(f"fusion must be one of {FUSION_MODES}, got {mode!r}")
    if len(predictions) == 1:
        return predictions[0]
    xy = np.stack([np.nan_to_num(p.xy) for p in predictions])  # (t, n, k, 2)
    conf = np.stack([np.nan_to_num(p.conf) * np.isfinite(p.xy).all(-1) for p in predictions])
    occ = np.stack([p.occluded for p in predictions])
    best = conf.argmax(0)  # (n, k)
    pick = np.take_along_axis
    out_conf = pick(conf, best[None], 0)[0]
    out_occ = pick(occ, best[None], 0)[0]
    if mode == "max":
        out_xy = pick(xy, best[None, ..., None], 0)[0]
    else:
        w = conf.sum(0)
        mean = (conf[..., None] * xy).sum(0) / np.maximum(w, 1e-12)[..., None]
        out_xy = np.where((w > 0)[..., None], mean, xy[0])
    return Prediction(out_xy, out_conf, out_occ)


def merge_predictions(
    body: np.ndarray,
    body_conf: np.ndarray,
    predictions: Mapping[str, Prediction],
    image_size: tuple[float, float],
    min_conf: float | Mapping[str, float] = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-labels of ``n`` people of one image.

    ``body`` (n, 17, 3) and ``body_conf`` (n, 17) are the human labels; ``predictions`` maps
    each teacher part to the prediction of the teacher assigned to it; ``image_size`` is
    (width, height); ``min_conf`` one threshold or one per part (:func:`part_min_conf`).
    Returns keypoints (n, 133, 3), conf (n, 133), valid (n, 5) in
    :data:`PARTS` order and part boxes (n, 3, 4) in :data:`BOX_PARTS` order.
    """
    thresholds = part_min_conf(min_conf)
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
        keep = finite & inside & (c >= thresholds[part])
        vis = np.where(pred.occluded[:, sl], 1.0, 2.0)
        kpts[:, sl, :2] = np.where(keep[..., None], np.round(xy, COORD_DECIMALS), 0.0)
        kpts[:, sl, 2] = np.where(keep, vis, 0.0)
        c = np.clip(np.round(np.nan_to_num(c), CONF_DECIMALS), 10.0**-CONF_DECIMALS, 1.0)
        conf[:, sl] = np.where(keep, c, 0.0)
    lab = kpts[..., 2] > 0
    valid = np.stack([lab[:, PART_SLICES[p]].any(1) for p in PARTS], axis=1)
    boxes = np.stack([points_box(kpts[:, PART_SLICES[p]]) for p in BOX_PARTS], axis=1)
    return kpts, conf, valid, boxes
