"""Pose NMS: OKS-NMS and RMPE/AlphaPose's parametric pose NMS, as plain vectorised functions.

Both work on the poses of one image: ``keypoints`` (N, K, 3) with (x, y, confidence) in image
pixels. Pairwise quantities are computed for all pairs at once; only the greedy selection is a
(short) loop. :func:`pose_nms` is the one per-image dispatcher over the methods (the predictor's and
:func:`nms_per_image`'s, which applies it to every image of a :class:`Predictions`).

**OKS-NMS** (as in mmpose): take the highest-scoring pose, remove every other whose OKS with it
exceeds ``threshold`` (OKS over the points both poses are confident about, with the mean of the
two areas), repeat.

**Parametric pose NMS** (Fang et al., RMPE, ICCV 2017; AlphaPose's ``pPose_nms``). Poses are
taken in order of their mean keypoint confidence. With r = alpha · max(box w, h) of the taken
pose, the pose distance to another pose is

    sim = Σ_k tanh(c_k/δ1) · tanh(c'_k/δ1) · [d_k <= r·s_k]  +  μ · Σ_k exp(-d_k / (δ2·s_k))

over the keypoints both poses are confident about (confidence >= ``kpt_thr``); d_k is the pixel
distance between the two poses' k-th points and s_k a per-part scale (1 for the body). The
other pose is removed, and merged into the taken one, when sim > γ or when at least
``match_thr`` confident points lie within min(r, 7)·s_k px. The kept pose becomes the
confidence-weighted mean of its cluster's points within min(r, 15)·s_k px (point confidence:
Σc²/Σc); poses whose best merged confidence is below ``score_thr`` are dropped, and the score is
mean + 1.25 · max merged confidence + box score. With part ``groups`` (the whole-body variant)
each sum becomes a weighted sum over groups of per-group means.

Differences from AlphaPose's code, deliberately: the soft score matching uses the box-scaled
radius r·s_k of the paper and the original implementation (AlphaPose's Python ports compare
raw pixel distances with 1, so the term only fires for identical points); the whole-body
variant keeps *confident* points (AlphaPose's mask selects the unconfident ones) and takes its
part boundaries from the 133-point layout (AlphaPose hard-codes 136 points); the whole-body
match count is a plain count, like the body's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fullbody.errors import ConfigError
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES, SIGMAS
from fullbody.results import Predictions

_EPS = np.spacing(1)


# ------------------------------------------------------------------------ OKS-NMS
def pose_boxes(keypoints: np.ndarray, conf_thr: float = 0.0) -> np.ndarray:
    """xywh extent of each pose's points with confidence > ``conf_thr`` (all points if none is)."""
    ok = keypoints[..., 2] > conf_thr
    ok = np.where(ok.any(1, keepdims=True), ok, True)
    x, y = keypoints[..., 0], keypoints[..., 1]
    x0, x1 = np.where(ok, x, np.inf).min(1), np.where(ok, x, -np.inf).max(1)
    y0, y1 = np.where(ok, y, np.inf).min(1), np.where(ok, y, -np.inf).max(1)
    return np.stack([x0, y0, x1 - x0, y1 - y0], 1)


def _default_sigmas(k: int) -> np.ndarray:
    if k == NUM_KEYPOINTS:
        return SIGMAS
    if k == 17:
        return SIGMAS[:17]
    raise ValueError(f"no default sigmas for {k} keypoints; pass sigmas=")


def oks_matrix(
    keypoints: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | None = None,
    conf_thr: float | None = None,
) -> np.ndarray:
    """Symmetric (N, N) OKS between poses, using the mean of each pair's areas.

    With ``conf_thr`` only points whose confidences exceed it in both poses count (a pair
    without such points has OKS 0); without it every point counts.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    sig = _default_sigmas(kp.shape[1]) if sigmas is None else np.asarray(sigmas, float)
    var = (2 * sig) ** 2
    d2 = ((kp[:, None, :, :2] - kp[None, :, :, :2]) ** 2).sum(-1)  # (N, N, K)
    area = (areas[:, None] + areas[None, :]) / 2
    sim = np.exp(-d2 / var / (area[..., None] + _EPS) / 2)
    if conf_thr is None:
        return sim.mean(-1)
    ok = kp[:, None, :, 2] > conf_thr
    ok = ok & np.swapaxes(ok, 0, 1)
    n = ok.sum(-1)
    return np.where(n > 0, (sim * ok).sum(-1) / np.maximum(n, 1), 0.0)


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray | None = None,
    threshold: float = 0.9,
    sigmas: np.ndarray | None = None,
    conf_thr: float | None = None,
) -> np.ndarray:
    """Indices of the poses OKS-NMS keeps, highest score first (ties: lower index first).

    ``areas`` default to the w·h of each pose's confident points; mmpose passes box areas.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if len(kp) == 0:
        return np.zeros(0, dtype=np.int64)
    if areas is None:
        box = pose_boxes(kp)
        areas = box[:, 2] * box[:, 3]
    areas = np.asarray(areas, dtype=np.float64)
    oks = oks_matrix(kp, areas, sigmas, conf_thr)
    return _greedy(np.argsort(-np.asarray(scores), kind="stable"), oks > threshold)[0]


def _greedy(order: np.ndarray, removes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Greedy suppression: take poses in ``order``; a taken pose removes the row's True ones.

    Returns the taken indices and, for each, the cluster it removed (itself included).
    """
    alive = np.ones(len(order), dtype=bool)
    keep, clusters = [], []
    for i in order:
        if not alive[i]:
            continue
        members = np.flatnonzero(alive & removes[i])
        members = np.union1d(members, [i])
        alive[members] = False
        keep.append(i)
        clusters.append(members)
    return np.array(keep, dtype=np.int64), clusters


# ------------------------------------------------------------------------ parametric pose NMS
@dataclass(frozen=True)
class KeypointGroup:
    """Keypoints whose pose-distance terms are averaged together (whole-body variant)."""

    name: str
    indices: slice
    scale: float = 1.0  # multiplies the matching radii and δ2
    score_weight: float = 1.0
    dist_weight: float = 1.0


#: AlphaPose's whole-body grouping: body + feet, face (scale 1.9), both hands (scale 0.55,
#: spatial weight 1.5, score weight 0.1), on the 133-point layout.
WHOLEBODY_GROUPS = (
    KeypointGroup("body", slice(PART_SLICES["body"].start, PART_SLICES["foot"].stop)),
    KeypointGroup("face", PART_SLICES["face"], scale=1.9),
    KeypointGroup(
        "hands",
        slice(PART_SLICES["lefthand"].start, PART_SLICES["righthand"].stop),
        scale=0.55,
        score_weight=0.1,
        dist_weight=1.5,
    ),
)


@dataclass(frozen=True)
class PoseNMSParams:
    """Parameters of parametric pose NMS; the defaults are AlphaPose's published body ones."""

    delta1: float = 1.0  # softness of the confidence matching, tanh(c / δ1)
    mu: float = 1.7  # weight of the spatial term
    delta2: float = 2.65  # decay of the spatial term, pixels
    gamma: float = 22.48  # a pose more similar than this is removed
    score_thr: float = 0.3  # poses whose best merged confidence is lower are dropped
    match_thr: int = 5  # ... or sharing this many points within min(r, match_radius) px
    alpha: float = 0.1  # reference scale r = alpha * max(box w, h)
    kpt_thr: float = 0.0  # points less confident than this take no part in the distance
    match_radius: float = 7.0
    merge_radius: float = 15.0
    groups: tuple[KeypointGroup, ...] | None = field(default=None)


#: AlphaPose's body (17-point) defaults.
BODY_PARAMS = PoseNMSParams()
#: AlphaPose's whole-body defaults.
WHOLEBODY_PARAMS = PoseNMSParams(
    delta1=1.0,
    mu=1.65,
    delta2=8.0,
    gamma=3.6,
    score_thr=0.01,
    match_thr=3,
    alpha=0.15,
    kpt_thr=0.01,
    groups=WHOLEBODY_GROUPS,
)


@dataclass
class PoseNMSResult:
    """What parametric pose NMS keeps: one row per surviving pose, in the order taken."""

    keep: np.ndarray  # (n,) index of the pose each survivor was taken from
    keypoints: np.ndarray  # (n, K, 3) merged points and confidences
    scores: np.ndarray  # (n,) mean + 1.25 * max merged confidence + box score
    clusters: list[np.ndarray]  # indices merged into each survivor (itself included)


def _scales(k: int, params: PoseNMSParams) -> np.ndarray:
    s = np.ones(k)
    for g in params.groups or ():
        s[g.indices] = g.scale
    return s


def pose_similarity(
    keypoints: np.ndarray, ref_dist: np.ndarray, params: PoseNMSParams = BODY_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """Pose distance ``sim[i, j]`` and matched-point count ``matches[i, j]`` for all pairs.

    Row ``i`` uses pose i's reference scale ``ref_dist[i]`` (it is the pose taken first).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    n, k = kp.shape[:2]
    if params.groups is not None and k != NUM_KEYPOINTS:
        raise ValueError(f"keypoint groups need the {NUM_KEYPOINTS}-point layout, got {k}")
    scale = _scales(k, params)
    c = kp[..., 2]
    dist = np.sqrt(((kp[:, None, :, :2] - kp[None, :, :, :2]) ** 2).sum(-1))  # (N, N, K)
    conf_ok = c >= params.kpt_thr
    both = conf_ok[:, None, :] & conf_ok[None, :, :]
    r = ref_dist[:, None, None]
    soft = np.tanh(c / params.delta1)
    score_term = np.where(both & (dist <= r * scale), soft[:, None, :] * soft[None, :, :], 0.0)
    spatial = np.where(both, np.exp(-dist / (params.delta2 * scale)), 0.0)
    if params.groups is None:
        sim = score_term.sum(-1) + params.mu * spatial.sum(-1)
    else:
        sim = np.zeros((n, n))
        for g in params.groups:
            sim += g.score_weight * score_term[..., g.indices].mean(-1)
            sim += params.mu * g.dist_weight * spatial[..., g.indices].mean(-1)
    radius = np.minimum(ref_dist, params.match_radius)[:, None, None] * scale
    matches = (both & (dist <= radius)).sum(-1)
    return sim, matches


def parametric_pose_nms(
    keypoints: np.ndarray,
    boxes: np.ndarray,
    box_scores: np.ndarray,
    params: PoseNMSParams | None = None,
) -> PoseNMSResult:
    """Parametric pose NMS of one image's poses (see the module docstring).

    ``boxes`` are the person boxes (xywh) that set each pose's reference scale; ``params``
    defaults to :data:`WHOLEBODY_PARAMS` for 133 points and :data:`BODY_PARAMS` otherwise.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    n, k = kp.shape[:2]
    if params is None:
        params = WHOLEBODY_PARAMS if k == NUM_KEYPOINTS else BODY_PARAMS
    if n == 0:
        return PoseNMSResult(np.zeros(0, np.int64), np.zeros((0, k, 3)), np.zeros(0), [])
    boxes = np.asarray(boxes, dtype=np.float64).reshape(n, 4)
    ref_dist = params.alpha * np.maximum(boxes[:, 2], boxes[:, 3])
    sim, matches = pose_similarity(kp, ref_dist, params)
    removes = (sim > params.gamma) | (matches >= params.match_thr)
    human = kp[..., 2].mean(1)
    taken, clusters = _greedy(np.argsort(-human, kind="stable"), removes)

    scale = _scales(k, params)
    out_kp, out_score, out_keep, out_clusters = [], [], [], []
    for i, members in zip(taken, clusters):
        pts = kp[members]  # (m, K, 3)
        dist = np.sqrt(((pts[..., :2] - kp[i, None, :, :2]) ** 2).sum(-1))
        near = dist <= min(ref_dist[i], params.merge_radius) * scale
        w = np.where(near, pts[..., 2], 0.0)
        total = w.sum(0)
        safe = np.where(total > 0, total, 1.0)
        xy = np.where(
            total[:, None] > 0, (w[..., None] * pts[..., :2]).sum(0) / safe[:, None], kp[i, :, :2]
        )
        conf = np.where(total > 0, (w * pts[..., 2]).sum(0) / safe, 0.0)
        if conf.max() < params.score_thr:
            continue
        out_kp.append(np.concatenate([xy, conf[:, None]], 1))
        out_score.append(conf.mean() + 1.25 * conf.max() + float(box_scores[i]))
        out_keep.append(i)
        out_clusters.append(members)
    if not out_keep:
        return PoseNMSResult(np.zeros(0, np.int64), np.zeros((0, k, 3)), np.zeros(0), [])
    return PoseNMSResult(
        np.array(out_keep, np.int64), np.stack(out_kp), np.array(out_score), out_clusters
    )


# ------------------------------------------------------------------------ one dispatcher
NMSMethod = Literal["none", "oks", "parametric"]
NMS_METHODS: tuple[str, ...] = ("none", "oks", "parametric")


def check_nms_method(method: str, option: str = "nms") -> NMSMethod:
    """``method`` when it names a pose NMS, else a ConfigError naming ``option``."""
    if method not in NMS_METHODS:
        raise ConfigError(
            f"{option}={method}: unknown pose NMS method; expected one of {list(NMS_METHODS)}"
        )
    return method  # type: ignore[return-value]


def pose_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    box_scores: np.ndarray,
    method: NMSMethod,
    *,
    oks_threshold: float = 0.9,
    params: PoseNMSParams | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The poses of one image that ``method`` keeps: (rows kept, their keypoints, their scores).

    "none" keeps every pose, best score first; "oks" keeps a subset (areas from ``boxes``,
    scores unchanged); "parametric" merges poses and re-scores them from ``box_scores``.
    """
    method = check_nms_method(method)
    if method == "parametric":
        res = parametric_pose_nms(keypoints, boxes, box_scores, params)
        return res.keep, res.keypoints, res.scores
    if method == "oks":
        keep = oks_nms(keypoints, scores, boxes[:, 2] * boxes[:, 3], oks_threshold)
    else:
        keep = np.argsort(-scores, kind="stable")
    return keep, keypoints[keep], scores[keep]


def nms_per_image(
    preds: Predictions,
    method: NMSMethod = "oks",
    *,
    oks_threshold: float = 0.9,
    params: PoseNMSParams | None = None,
) -> Predictions:
    """Apply :func:`pose_nms` to the predictions of every image.

    "oks" keeps a subset in the original order (areas from ``bboxes`` when present, else from
    the confident points' extent). "parametric" uses the prediction's ``score`` as box score and
    the parametric score as the new ``score`` (per-part scores are dropped, so every part is
    ranked by the new score); boxes default to the points' extent. "none" changes nothing.
    """
    if check_nms_method(method) == "none":
        return preds
    order = np.argsort(preds.image_ids, kind="stable")
    ids, starts = np.unique(preds.image_ids[order], return_index=True)
    groups = np.split(order, starts[1:]) if len(order) else []
    boxes = preds.bboxes if preds.bboxes is not None else pose_boxes(preds.keypoints)
    kept = [
        pose_nms(preds.keypoints[rows], preds.scores[rows], boxes[rows], preds.scores[rows],
                 method, oks_threshold=oks_threshold, params=params)
        for rows in groups
    ]  # fmt: skip
    if method == "oks":
        keep = [rows[k] for rows, (k, _, _) in zip(groups, kept)]
        return preds.subset(np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64))
    if not kept:
        return Predictions(np.zeros(0, np.int64), np.zeros((0, NUM_KEYPOINTS, 3)), np.zeros(0))
    return Predictions(
        image_ids=np.concatenate([np.full(len(k), i, np.int64) for i, (k, _, _) in zip(ids, kept)]),
        keypoints=np.concatenate([kp for _, kp, _ in kept]),
        scores=np.concatenate([sc for _, _, sc in kept]),
        bboxes=np.concatenate([boxes[rows][k] for rows, (k, _, _) in zip(groups, kept)]),
    )
