"""Why a part fails: AP by size and occlusion, per-keypoint errors, left/right hand swaps.

Everything works for one *analysis part*: ``"lefthand"``, ``"righthand"``, ``"hands"`` (both
hands), ``"face"``, ``"foot"`` or ``"body"``, and is built on the official metric:

* **AP by bucket** (:func:`ap_by_size`, :func:`ap_by_occlusion`) is
  :mod:`fullbody.evaluation.breakdown`: the official matching over all instances, ground truths
  outside the bucket ignored. Size is the part's box side: the longer side of its labelled
  points' extent, in pixels. For ``"hands"`` the two hands are also evaluated as one pool
  (:func:`pool_hands`), where a predicted hand may match either ground-truth hand.
* **Errors** (:func:`point_errors`) are measured on people matched by the metric's own greedy
  matching (:func:`pair_people`, body OKS >= 0.5 by default), so a hand is analysed whenever its
  person was found — also when the hand itself is far off, which is what error analysis needs.
  A point's error is its distance to the ground truth divided by the ground-truth part's box side.
* **Swaps** (:func:`detect_swaps`): a predicted hand that matches the person's other hand better
  (by the hand's OKS) than its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.breakdown import (
    OCCLUSION_EDGES,
    Breakdown,
    occlusion_breakdown,
    part_box_side,
    size_breakdown,
)
from fullbody.evaluation.wholebody import IOU_THRESHOLDS, MAX_DETS, match, prepare_part
from fullbody.keypoints import KEYPOINT_NAMES, PART_SLICES, part_sigmas
from fullbody.results import Predictions

#: Parts the analysis accepts: the five parts and "hands" (left and right together).
ANALYSIS_PARTS = ("lefthand", "righthand", "hands", "face", "foot", "body")
HANDS = ("lefthand", "righthand")
#: The hand box side buckets (px): < 16, 16-32, 32-64, >= 64.
SIZE_EDGES = (0.0, 16.0, 32.0, 64.0, np.inf)
_EPS = np.spacing(1)


def sides(part: str) -> tuple[str, ...]:
    """The parts of the 133-point layout an analysis part is made of ("hands": both hands)."""
    if part == "hands":
        return HANDS
    if part not in PART_SLICES:
        raise KeyError(f"unknown analysis part {part!r}; expected one of {ANALYSIS_PARTS}")
    return (part,)


def local_names(part: str) -> tuple[str, ...]:
    """Names of a part's points, without the side for hands ("hand_root", "thumb1", ...)."""
    sl = PART_SLICES[sides(part)[0]]
    names = KEYPOINT_NAMES[sl]
    if sides(part)[0] in HANDS:
        names = tuple(n.split("_", 1)[1] for n in names)
    return names


def point_groups(part: str) -> dict[str, np.ndarray]:
    """Groups of a part's points (local indices) whose errors are compared.

    Hands: wrist, knuckles (the three joints below each tip), fingertips; face (iBUG 68):
    jaw, brows, nose, eyes, mouth; feet: big toes, small toes, heels; body: head, arms, legs.
    """
    names = local_names(part)
    base = sides(part)[0]
    if base in HANDS:
        return {
            "wrist": np.array([0]),
            "knuckles": np.array([i for i, n in enumerate(names) if n[-1] in "123"]),
            "fingertips": np.array([i for i, n in enumerate(names) if n.endswith("4")]),
        }
    if base == "face":
        spans = {"jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48)}
        return {**{k: np.arange(*v) for k, v in spans.items()}, "mouth": np.arange(48, 68)}
    if base == "foot":
        ends = {"big toes": "big_toe", "small toes": "small_toe", "heels": "heel"}
        return {g: np.array([i for i, n in enumerate(names) if n.endswith(e)])
                for g, e in ends.items()}  # fmt: skip
    return {"head": np.arange(0, 5), "arms": np.arange(5, 11), "legs": np.arange(11, 17)}


def aligned_oks(
    pred: np.ndarray, gt: np.ndarray, area: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """OKS of aligned rows: ``pred`` (R, K, >=2) against ``gt`` (R, K, 3) with areas (R,).

    The metric's formula over the ground truth's labelled points (v > 0); NaN for rows without
    any (the metric's rule for those — distance to an enlarged box — is no error measure).
    """
    d2 = ((np.asarray(pred)[..., :2] - gt[..., :2]) ** 2).sum(-1)
    e = d2 / (2 * np.asarray(sigmas)) ** 2 / (np.asarray(area, float)[:, None] + _EPS) / 2
    lab = gt[..., 2] > 0
    n = lab.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (np.exp(-e) * lab).sum(-1) / n, np.nan)


# -------------------------------------------------------------------------------- AP buckets
def pool_hands(
    gt: WholeBodySet, preds: Predictions, max_dets: int = MAX_DETS
) -> tuple[WholeBodySet, Predictions]:
    """Both hands of every person as instances of one part, held in the left-hand slot.

    The ground truth gets each person twice (the right hand moved to the left-hand slot in the
    copy); so do the predictions, each hand ranked by its own part score. Each side keeps the
    predictions the official evaluation keeps for it (the top ``max_dets`` per image), so
    evaluate the pool with ``2 * max_dets``. Hand sigmas are the same on both sides.
    """
    lh, rh = PART_SLICES["lefthand"], PART_SLICES["righthand"]
    n = len(gt)
    pooled_gt = gt.subset(np.concatenate([np.arange(n), np.arange(n)]))
    pooled_gt.keypoints[n:, lh] = gt.keypoints[:, rh]
    copies = []
    for side in HANDS:
        keep = prepare_part(gt, preds, side, max_dets=max_dets).det_rows
        kp = preds.keypoints[keep].copy()
        kp[:, lh] = preds.keypoints[keep, PART_SLICES[side]]
        copies.append(
            Predictions(
                preds.image_ids[keep],
                kp,
                preds.scores[keep],
                {"lefthand": preds.score_for(side)[keep]},
            )
        )
    return pooled_gt, Predictions.concatenate(copies)


def _by_bucket(gt: WholeBodySet, preds: Predictions, part: str, fn, **kw) -> Breakdown:
    out = fn(gt, preds, sides(part), **kw)
    if part == "hands":
        pg, pp = pool_hands(gt, preds)
        out["hands"] = fn(pg, pp, ["lefthand"], max_dets=2 * MAX_DETS, **kw)["lefthand"]
    return out


def ap_by_size(
    gt: WholeBodySet, preds: Predictions, part: str, edges: Sequence[float] = SIZE_EDGES
) -> Breakdown:
    """``{label: {bucket: stats}}`` by the part's box side (px); labels "lefthand",
    "righthand" and "hands" (the pool) for ``part="hands"``, else the part."""
    return _by_bucket(gt, preds, part, size_breakdown, edges=edges, by="part_side")


def ap_by_occlusion(
    gt: WholeBodySet, preds: Predictions, part: str, edges: Sequence[float] = OCCLUSION_EDGES
) -> Breakdown:
    """``{label: {bucket: stats}}`` by the fraction of the part's points unlabelled or
    invisible (:func:`fullbody.evaluation.breakdown.occlusion_fraction`)."""
    return _by_bucket(gt, preds, part, occlusion_breakdown, edges=edges)


# -------------------------------------------------------------------------------- matching
@dataclass
class PersonPairs:
    """Ground-truth people and the predictions the official matching assigns them."""

    gt_rows: np.ndarray  # (P,) rows of the ground truth
    pred_rows: np.ndarray  # (P,) rows of the predictions
    oks: np.ndarray  # (P,) OKS of the pair on the matching part

    def __len__(self) -> int:
        return len(self.gt_rows)


def pair_people(
    gt: WholeBodySet, preds: Predictions, by: str = "body", iou: float = 0.5
) -> PersonPairs:
    """Pairs (ground truth, prediction) matched by the official greedy matching on part ``by``
    at OKS threshold ``iou`` (one of 0.50:0.05:0.95); crowd and unlabelled people excluded."""
    t = np.flatnonzero(np.isclose(IOU_THRESHOLDS, iou))
    if len(t) != 1:
        raise ValueError(f"iou must be one of the metric's thresholds 0.50:0.05:0.95, got {iou}")
    preds.validate(gt.images, str(preds.path) if preds.path else "<predictions>")
    pm = prepare_part(gt, preds, by)
    dt_gt, dt_ignore, _ = match(
        pm, np.zeros((1, len(pm.gt_rows)), bool), np.zeros((1, len(pm.det_rows)), bool)
    )
    d = np.flatnonzero((dt_gt[0, t[0]] >= 0) & ~dt_ignore[0, t[0]])
    g = dt_gt[0, t[0], d]
    key = pm.pair_det * len(pm.gt_rows) + pm.pair_gt  # increasing: detection-major, gt order
    oks = pm.pair_oks[np.searchsorted(key, d * len(pm.gt_rows) + g)]
    order = np.argsort(pm.gt_rows[g], kind="stable")
    return PersonPairs(pm.gt_rows[g][order], pm.det_rows[d][order], oks[order])


# -------------------------------------------------------------------------------- errors
@dataclass
class PointErrors:
    """Errors of a part's points on matched people: one row per (pair, side) instance.

    ``error`` is the distance to the ground truth divided by ``size``, the ground-truth part's
    box side (px); NaN where the ground truth is unlabelled. Instances whose prediction of the
    part has no confidence > 0 (the metric drops it) are left out and counted in ``unpredicted``;
    so are ground-truth parts with a box side under ``min_size`` px (``too_small``).
    """

    part: str
    names: tuple[str, ...]  # (K,) local point names
    side: np.ndarray  # (R,) the layout part of each instance ("lefthand", ...)
    gt_row: np.ndarray  # (R,)
    pred_row: np.ndarray  # (R,)
    image_id: np.ndarray  # (R,)
    size: np.ndarray  # (R,) ground-truth box side, px
    gt: np.ndarray  # (R, K, 3) ground-truth points (x, y, v)
    pred: np.ndarray  # (R, K, 3) predicted points (x, y, confidence)
    error_px: np.ndarray  # (R, K)
    error: np.ndarray  # (R, K) error_px / size
    occluded: np.ndarray  # (R, K) labelled but marked invisible (0 < v < 2, when v = 2 is used)
    oks: np.ndarray  # (R,) OKS of the instance with the part's sigmas
    unpredicted: int = 0
    too_small: int = 0

    def __len__(self) -> int:
        return len(self.gt_row)

    @property
    def labelled(self) -> np.ndarray:
        """(R, K) ground-truth points that are labelled (v > 0)."""
        return self.gt[..., 2] > 0

    @property
    def instance_error(self) -> np.ndarray:
        """(R,) mean normalised error over each instance's labelled points."""
        n = self.labelled.sum(1)
        return np.where(self.labelled, self.error, 0).sum(1) / np.maximum(n, 1)


def point_errors(
    gt: WholeBodySet,
    preds: Predictions,
    part: str,
    pairs: PersonPairs | None = None,
    min_size: float = 1.0,
) -> PointErrors:
    """Per-point errors of ``part`` on matched people (:func:`pair_people` unless given)."""
    pairs = pair_people(gt, preds) if pairs is None else pairs
    uses_v2 = {s: bool((gt.keypoints[:, PART_SLICES[s], 2] >= 2).any()) for s in sides(part)}
    chunks: list[dict[str, np.ndarray]] = []
    unpredicted = too_small = 0
    for side in sides(part):
        sl = PART_SLICES[side]
        g = gt.keypoints[pairs.gt_rows, sl]
        p = preds.keypoints[pairs.pred_rows, sl]
        size = part_box_side(gt.keypoints[pairs.gt_rows], side)
        labelled = (g[..., 2] > 0).any(1) & ~gt.iscrowd[pairs.gt_rows]
        predicted = (p[..., 2] > 0).any(1)
        big = size >= min_size
        unpredicted += int((labelled & ~predicted).sum())
        too_small += int((labelled & predicted & ~big).sum())
        keep = labelled & predicted & big
        g, p, size = g[keep], p[keep], size[keep]
        lab = g[..., 2] > 0
        px = np.where(lab, np.hypot(*(p[..., :2] - g[..., :2]).transpose(2, 0, 1)), np.nan)
        occ = lab & (g[..., 2] < 2) if uses_v2[side] else np.zeros_like(lab)
        chunks.append(
            {
                "side": np.full(keep.sum(), side, dtype=object),
                "gt_row": pairs.gt_rows[keep],
                "pred_row": pairs.pred_rows[keep],
                "image_id": gt.image_ids[pairs.gt_rows[keep]],
                "size": size,
                "gt": g,
                "pred": p,
                "error_px": px,
                "error": px / size[:, None],
                "occluded": occ,
                "oks": aligned_oks(p, g, gt.areas[pairs.gt_rows[keep]], part_sigmas(side)),
            }
        )
    cat = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return PointErrors(part, local_names(part), **cat, unpredicted=unpredicted, too_small=too_small)


def group_summary(
    errors: PointErrors, groups: dict[str, np.ndarray] | None = None
) -> dict[str, dict[str, float]]:
    """Per point group (fingertips, knuckles, ...): labelled points, median and mean
    normalised error, and PCK@0.1 / PCK@0.2 (share of points within 0.1 / 0.2 part sizes)."""
    groups = point_groups(errors.part) if groups is None else groups
    out = {}
    for name, idx in {**groups, "all": np.arange(len(errors.names))}.items():
        e = errors.error[:, idx][errors.labelled[:, idx]]
        nan = float("nan")
        out[name] = {
            "points": float(e.size),
            "median": float(np.median(e)) if e.size else nan,
            "mean": float(e.mean()) if e.size else nan,
            "PCK@0.1": float((e <= 0.1).mean()) if e.size else nan,
            "PCK@0.2": float((e <= 0.2).mean()) if e.size else nan,
        }
    return out


def worst_instances(
    errors: PointErrors, n: int = 8, min_points: int = 3, among: np.ndarray | None = None
) -> np.ndarray:
    """Rows of the ``n`` instances with the largest mean normalised error, worst first, among
    those with at least ``min_points`` labelled points (and, given, the rows where ``among``,
    e.g. ``errors.size < 16``)."""
    keep = errors.labelled.sum(1) >= min_points
    ok = np.flatnonzero(keep if among is None else keep & np.asarray(among, bool))
    order = np.argsort(-errors.instance_error[ok], kind="stable")
    return ok[order[:n]]


# -------------------------------------------------------------------------------- swaps
@dataclass
class SwapReport:
    """For each predicted hand of a matched person whose two ground-truth hands are labelled:
    its OKS against its own side and against the other side, and whether it is swapped."""

    side: np.ndarray  # (S,) side of the predicted hand
    gt_row: np.ndarray  # (S,)
    pred_row: np.ndarray  # (S,)
    image_id: np.ndarray  # (S,)
    oks_same: np.ndarray  # (S,) against the ground-truth hand of the same side
    oks_other: np.ndarray  # (S,) against the other ground-truth hand
    swapped: np.ndarray  # (S,) bool
    margin: float
    min_oks: float

    def __len__(self) -> int:
        return len(self.side)

    @property
    def rate(self) -> float:
        """Share of the checked hands that are swapped (NaN when none was checked)."""
        return float(self.swapped.mean()) if len(self) else float("nan")

    def people_swapped(self) -> np.ndarray:
        """Ground-truth rows of people with *both* hands swapped (left and right exchanged)."""
        rows, counts = np.unique(self.gt_row[self.swapped], return_counts=True)
        return rows[counts == 2]


def detect_swaps(
    gt: WholeBodySet,
    preds: Predictions,
    pairs: PersonPairs | None = None,
    margin: float = 0.1,
    min_oks: float = 0.5,
) -> SwapReport:
    """Flag predicted hands that match the person's other hand better than their own.

    A hand is swapped when its OKS against the other ground-truth hand is at least ``min_oks``
    (it really lies on that hand) and exceeds its OKS against its own side by more than
    ``margin``. Checked: matched people (:func:`pair_people`) with both ground-truth hands
    labelled and the hand predicted (some confidence > 0).
    """
    pairs = pair_people(gt, preds) if pairs is None else pairs
    g = gt.keypoints[pairs.gt_rows]
    p = preds.keypoints[pairs.pred_rows]
    area = gt.areas[pairs.gt_rows]
    both = np.all([(g[:, PART_SLICES[s], 2] > 0).any(1) for s in HANDS], 0)
    both &= ~gt.iscrowd[pairs.gt_rows]
    sig = part_sigmas("lefthand")  # the same for both hands
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("side", "rows", "same", "other")}
    for side, other in (HANDS, HANDS[::-1]):
        ph = p[:, PART_SLICES[side]]
        keep = np.flatnonzero(both & (ph[..., 2] > 0).any(1))
        cols["side"].append(np.full(len(keep), side, dtype=object))
        cols["rows"].append(keep)
        cols["same"].append(aligned_oks(ph[keep], g[keep][:, PART_SLICES[side]], area[keep], sig))
        cols["other"].append(aligned_oks(ph[keep], g[keep][:, PART_SLICES[other]], area[keep], sig))
    rows = np.concatenate(cols["rows"])
    same, other = np.concatenate(cols["same"]), np.concatenate(cols["other"])
    return SwapReport(
        side=np.concatenate(cols["side"]),
        gt_row=pairs.gt_rows[rows],
        pred_row=pairs.pred_rows[rows],
        image_id=gt.image_ids[pairs.gt_rows[rows]],
        oks_same=same,
        oks_other=other,
        swapped=(other >= min_oks) & (other > same + margin),
        margin=margin,
        min_oks=min_oks,
    )
