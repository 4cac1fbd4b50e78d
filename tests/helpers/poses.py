"""People, ground truth and predictions built by hand (or drawn at random) for the tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.simulate import simulate_predictions
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.results import Predictions

_UNIT = np.random.default_rng(12345).uniform(0.05, 0.95, (NUM_KEYPOINTS, 2))


def pose(x: float, y: float, size: float = 100.0, v: float = 2.0) -> np.ndarray:
    """A fixed 133-point pose spread over the box (x, y, size, size); all points labelled v."""
    kp = np.empty((NUM_KEYPOINTS, 3))
    kp[:, :2] = np.array([x, y]) + _UNIT * size
    kp[:, 2] = v
    return kp


def ground_truth(
    people: list[tuple[int, np.ndarray]],
    images: list[int] | None = None,
    *,
    size: int = 2000,
    box_points: slice = slice(None),
    iscrowd: Sequence[bool] | np.ndarray | None = None,
    areas: Sequence[float] | None = None,
    boxes: np.ndarray | None = None,
) -> WholeBodySet:
    """Ground truth from (image_id, (133, 3) keypoints) pairs in ``size`` x ``size`` images
    (plus the empty ``images``); boxes from the extent of the labelled ``box_points``."""
    ids = sorted({i for i, _ in people} | set(images or []))
    imgs = [{"id": i, "file_name": f"{i:012d}.jpg", "width": size, "height": size} for i in ids]
    if not people:
        return WholeBodySet.from_json({"images": imgs, "annotations": []})
    kp = np.stack([k for _, k in people])
    if boxes is None:
        part = kp[:, box_points]
        xy = np.where((part[..., 2] > 0)[..., None], part[..., :2], np.nan)
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(xy, 1), np.nanmax(xy, 1)
        boxes = np.concatenate([lo, hi - lo], 1)
    return WholeBodySet.from_arrays(
        imgs,
        np.array([i for i, _ in people]),
        kp,
        boxes,
        iscrowd=None if iscrowd is None else np.array(iscrowd),
        areas=None if areas is None else np.array(areas, float),
    )


def predictions(
    rows: list[tuple[int, np.ndarray, float]], part_scores: dict[str, list[float]] | None = None
) -> Predictions:
    """Predictions from (image_id, (133, 3) keypoints with confidences, score) triples."""
    return Predictions(
        image_ids=np.array([r[0] for r in rows], dtype=np.int64),
        keypoints=np.stack([r[1] for r in rows]) if rows else np.zeros((0, 133, 3)),
        scores=np.array([r[2] for r in rows], dtype=float),
        part_scores={k: np.array(v, float) for k, v in (part_scores or {}).items()},
    )


def as_prediction(kp: np.ndarray, conf: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """A ground-truth pose turned into a prediction: confidence ``conf``, moved by ``shift``."""
    out = kp.copy()
    out[:, :2] += shift
    out[:, 2] = conf
    return out


def random_case(
    num_images: int = 30, seed: int = 0, odd: bool = True
) -> tuple[WholeBodySet, Predictions]:
    """Random people (30-300 px, some points unlabelled, some crowd, varied areas) and simulated
    predictions; with ``odd`` an odd number of them (so DistributedSampler repeats one)."""
    rng = np.random.default_rng(seed)
    images = [
        {"id": 10 + i, "file_name": f"{i}.jpg", "width": 1000, "height": 1000}
        for i in range(num_images)
    ]
    ids, kps, boxes = [], [], []
    for im in images:
        for _ in range(rng.integers(0, 5)):
            size = rng.uniform(30, 300)
            x, y = rng.uniform(0, 1000 - size, 2)
            kp = np.concatenate([[x, y] + _UNIT * size, np.full((NUM_KEYPOINTS, 1), 2.0)], 1)
            kp[rng.random(NUM_KEYPOINTS) < 0.2, 2] = 0
            kp[rng.random(NUM_KEYPOINTS) < 0.2, 2] = 1
            ids.append(im["id"])
            kps.append(kp)
            boxes.append([x, y, size, size])
    n = len(ids)
    boxes = np.array(boxes)
    areas = boxes[:, 2] * boxes[:, 3] * rng.uniform(0.3, 1.0, n)
    gt = WholeBodySet.from_arrays(
        images, np.array(ids), np.array(kps), boxes, areas=areas, iscrowd=rng.random(n) < 0.05
    )
    preds = simulate_predictions(gt, seed=seed)
    if odd and len(preds) % 2 == 0:
        preds = preds.subset(np.arange(len(preds) - 1))
    return gt, preds
