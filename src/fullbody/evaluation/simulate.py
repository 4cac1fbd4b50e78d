"""Deterministic fake predictions made from ground truth, for testing and benchmarking the metric.

:func:`simulate_predictions` perturbs every (non-crowd) person of a :class:`WholeBodySet` the
way a real top-down model errs, and adds the cases that exercise every rule of the official
metric: per-point noise scaled by the point's sigma and the person's sqrt(area), missed people,
duplicates, false positives (some in images without people), points and whole parts predicted
with confidence 0, per-part scores on some records only, tied scores, images with more than 20
predictions, and a shuffled file order. The same seed gives the same arrays.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES, SIGMAS
from fullbody.results import SCORE_FIELDS, Predictions

_PART_OF_POINT = np.concatenate(
    [np.full(s.stop - s.start, i) for i, s in enumerate(PART_SLICES.values())]
)


@dataclass(frozen=True)
class SimulationConfig:
    """Rates and ranges of the simulated errors (defaults give AP roughly 0.3-0.8 per part)."""

    miss_rate: float = 0.08  # ground-truth people left without a prediction
    noise: tuple[float, float] = (0.03, 0.9)  # per-person error, in units of 2·sigma·sqrt(area)
    part_noise: tuple[float, float] = (0.5, 2.0)  # per-person, per-part multiplier of the error
    point_drop: float = 0.05  # points predicted with confidence 0
    part_drop: float = 0.08  # foot/face/hand parts predicted with all confidences 0
    body_drop: float = 0.02  # bodies predicted with all confidences 0
    all_drop: float = 0.01  # predictions with every confidence 0
    duplicate_rate: float = 0.15  # a second, slightly different prediction of the same person
    false_positives: float = 0.5  # mean number per image (poses placed at random)
    crowded_rate: float = 0.01  # images given 21-30 extra false positives (maxDets = 20)
    part_score_rate: float = 0.5  # records that carry per-part scores
    tie_rate: float = 0.3  # scores rounded to multiples of 0.05, so that they tie
    decimals: int = 2  # rounding of coordinates, confidences and scores


def simulate_predictions(
    gt: WholeBodySet, seed: int = 0, config: SimulationConfig | None = None
) -> Predictions:
    """Perturbed predictions for the people of ``gt`` (see the module docstring)."""
    cfg = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    people = np.flatnonzero(~gt.iscrowd)
    people = people[rng.random(len(people)) >= cfg.miss_rate]

    kp, img, box = _perturb(gt, people, rng, cfg, scale=1.0)
    score = rng.uniform(0.05, 1.0, len(people))

    dup = rng.random(len(people)) < cfg.duplicate_rate
    dkp, dimg, dbox = _perturb(gt, people[dup], rng, cfg, scale=0.5)
    dscore = np.where(
        rng.random(dup.sum()) < 0.3, score[dup], score[dup] * rng.uniform(0.5, 1.0, dup.sum())
    )

    fkp, fimg, fbox = _false_positives(gt, people, rng, cfg)
    fscore = rng.uniform(0.0, 0.7, len(fimg))

    keypoints = np.concatenate([kp, dkp, fkp])
    image_ids = np.concatenate([img, dimg, fimg])
    bboxes = np.concatenate([box, dbox, fbox])
    scores = np.concatenate([score, dscore, fscore])
    m = len(scores)

    # confidences: drop points, parts, bodies and whole predictions
    conf = keypoints[..., 2]
    conf[rng.random((m, NUM_KEYPOINTS)) < cfg.point_drop] = 0
    for p, sl in PART_SLICES.items():
        rate = cfg.body_drop if p == "body" else cfg.part_drop
        conf[rng.random(m) < rate, sl] = 0
    conf[rng.random(m) < cfg.all_drop] = 0

    tie = rng.random(m) < cfg.tie_rate
    scores[tie] = np.round(scores[tie] * 20) / 20
    with_parts = rng.random(m) < cfg.part_score_rate
    part_scores = {}
    for p in SCORE_FIELDS:
        ps = np.where(with_parts, scores * rng.uniform(0.4, 1.0, m), np.nan)
        ps[tie] = np.round(ps[tie] * 20) / 20
        part_scores[p] = ps

    order = rng.permutation(m)
    d = cfg.decimals
    return Predictions(
        image_ids=image_ids[order],
        keypoints=np.round(keypoints[order], d),
        scores=np.round(scores[order], d),
        part_scores={p: np.round(v[order], d) for p, v in part_scores.items()},
        bboxes=np.round(bboxes[order], d),
    )


def _perturb(
    gt: WholeBodySet,
    rows: np.ndarray,
    rng: np.random.Generator,
    cfg: SimulationConfig,
    scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy copies of people ``rows``: keypoints with confidences, image ids, boxes."""
    n = len(rows)
    base = gt.keypoints[rows]
    boxes = gt.bboxes[rows]
    level = rng.uniform(*cfg.noise, n) * scale
    per_part = rng.uniform(*cfg.part_noise, (n, len(PART_SLICES)))[:, _PART_OF_POINT]
    std = level[:, None] * per_part * 2 * SIGMAS * np.sqrt(np.maximum(gt.areas[rows], 1.0))[:, None]
    xy = base[..., :2] + rng.normal(size=(n, NUM_KEYPOINTS, 2)) * std[..., None]
    labelled = base[..., 2] > 0
    anywhere = boxes[:, None, :2] + rng.random((n, NUM_KEYPOINTS, 2)) * boxes[:, None, 2:]
    xy = np.where(labelled[..., None], xy, anywhere)
    conf = np.where(
        labelled, rng.uniform(0.2, 1.0, (n, NUM_KEYPOINTS)), rng.uniform(0, 0.5, (n, NUM_KEYPOINTS))
    )
    jitter = rng.normal(0, 0.05, (n, 4)) * boxes[:, [2, 3, 2, 3]]
    return np.concatenate([xy, conf[..., None]], -1), gt.image_ids[rows], boxes + jitter


def _false_positives(
    gt: WholeBodySet, people: np.ndarray, rng: np.random.Generator, cfg: SimulationConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poses of random people moved to random boxes of random images."""
    ids = np.array(sorted(gt.images), dtype=np.int64)
    counts = rng.poisson(cfg.false_positives, len(ids))
    counts[rng.random(len(ids)) < cfg.crowded_rate] += rng.integers(21, 31)
    img = np.repeat(ids, counts)
    n = len(img)
    if n == 0 or len(people) == 0:
        return np.zeros((0, NUM_KEYPOINTS, 3)), np.zeros(0, np.int64), np.zeros((0, 4))
    tmpl = rng.choice(people, n)
    kp, _, src = _perturb(gt, tmpl, rng, cfg, scale=1.0)
    size = np.array([[gt.images[int(i)]["width"], gt.images[int(i)]["height"]] for i in img])
    side = rng.uniform(20, 400, n)
    wh = np.maximum(src[:, 2:], 1.0)
    new_wh = wh * (side / wh.max(1))[:, None]
    new_xy = rng.random((n, 2)) * np.maximum(size - new_wh, 1.0)
    kp[..., :2] = new_xy[:, None] + (kp[..., :2] - src[:, None, :2]) / wh[:, None] * new_wh[:, None]
    return kp, img, np.concatenate([new_xy, new_wh], 1)


def synthetic_case(
    num_images: int,
    gt_seed: int,
    pred_seed: int,
    config: SimulationConfig | None = None,
    crowd_rate: float = 0.02,
) -> tuple[WholeBodySet, Predictions]:
    """Ground truth from the synthetic label generator and simulated predictions for it.

    ``crowd_rate`` of the people become crowd annotations (half of them without any labelled
    point, as COCO's crowds), so that the case exercises every ground-truth rule.
    """
    from fullbody.synthetic import generate_labels

    gt = generate_labels(num_images, seed=gt_seed)
    rng = np.random.default_rng([gt_seed, pred_seed])
    crowd = rng.random(len(gt)) < crowd_rate
    gt.iscrowd = gt.iscrowd | crowd
    gt.keypoints[crowd & (rng.random(len(gt)) < 0.5)] = 0.0
    return gt, simulate_predictions(gt, seed=pred_seed, config=config)


def config_dict(config: SimulationConfig) -> dict:
    """The config as plain JSON values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def fingerprint(gt: WholeBodySet, preds: Predictions) -> str:
    """SHA-256 of every array the metric reads, to tell whether two inputs are identical."""
    h = hashlib.sha256()
    arrays = [
        np.array(sorted(gt.images), dtype=np.int64),
        gt.image_ids, gt.keypoints, gt.bboxes, gt.areas, gt.iscrowd,
        preds.image_ids, preds.keypoints, preds.scores,
        *(preds.part_scores[p] for p in sorted(preds.part_scores)),
    ]  # fmt: skip
    for a in arrays:
        a = np.asarray(a)
        a = a.astype(np.int64) if a.dtype.kind in "biu" else a.astype(np.float64)
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
