"""AP/AR broken down by instance size and by how occluded a part is.

Both use the mechanism COCO uses for its area ranges: a bucket is evaluated with the official
matching over *all* detections and ground truths, where ground truths outside the bucket are
ignored (a detection matched to one is ignored too) and unmatched detections outside it are
ignored. Buckets are half-open ``[lo, hi)``, the last one closed.

* **Size** (:func:`size_breakdown`): by the person's size sqrt(area) (``by="person"``, COCO's
  notion; a detection's size is that of its area for the area ranges: its box's, else its body
  points' extent) or by the part's own size: sqrt(w·h) of its labelled points' extent (``by="part"``) or the extent's longer side
  max(w, h) (``by="part_side"``, the "hand box side", robust to thin boxes of straight
  fingers); a detection's from its confident points. So small hands can be studied either as
  hands of small people or as small hands.
* **Occlusion** (:func:`occlusion_breakdown`, face and hands by default): the fraction of the
  part's points that are unlabelled (v = 0) or labelled invisible (0 < v < 2 — counted only
  for parts whose labels use v = 2 somewhere in the set; COCO-WholeBody marks every labelled face
  point v = 1, so there only unlabelled points count). A detection has no occlusion of its own:
  an unmatched one belongs to the bucket of the ground truth it overlaps most (highest OKS,
  if >= 0.5), and one overlapping none is a false positive in every bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.wholebody import (
    MAX_DETS,
    PartMatch,
    PartResult,
    Planes,
    evaluate_ranges,
    prepare_part,
)
from fullbody.keypoints import EVAL_PARTS, PART_SLICES_WITH_WHOLE
from fullbody.results import Predictions

#: Default size buckets, sqrt(area) in pixels.
SIZE_EDGES = (0.0, 32.0, 64.0, 96.0, 128.0, np.inf)
#: Default occlusion buckets, fraction of the part's points.
OCCLUSION_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0)
OCCLUSION_PARTS = ("face", "lefthand", "righthand")
BUCKET_STATS = ("AP", "AP50", "AP75", "AR", "num_gt")
Breakdown = dict[str, dict[str, dict[str, float]]]


def _bucket_labels(edges: Sequence[float], fmt: str) -> list[str]:
    return [
        f"{fmt.format(lo)}+" if np.isinf(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"
        for lo, hi in zip(edges[:-1], edges[1:])
    ]


def _bucket_of(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bucket index of each value ([lo, hi), last bucket closed); -1 outside all buckets."""
    e = np.asarray(edges, dtype=np.float64)
    b = np.searchsorted(e, values, side="right") - 1
    b[values == e[-1]] = len(e) - 2
    return np.where((values < e[0]) | (values > e[-1]) | np.isnan(values), -1, b)


def _stats(res: PartResult) -> dict[str, dict[str, float]]:
    return {
        label: {
            "AP": res.ap(label),
            "AP50": res.ap(label, 0.5),
            "AP75": res.ap(label, 0.75),
            "AR": res.ar(label),
            "num_gt": float(res.num_gt[i]),
        }
        for i, label in enumerate(res.labels)
    }


#: Size measures of :func:`size_breakdown`.
SIZE_MEASURES = ("person", "part", "part_side")


def _extent_size(x: np.ndarray, y: np.ndarray, ok: np.ndarray, side: bool = False) -> np.ndarray:
    """sqrt(w·h) (or, with ``side``, max(w, h)) of the extent of the points where ``ok``;
    NaN for rows without any."""
    w = np.where(ok, x, -np.inf).max(1) - np.where(ok, x, np.inf).min(1)
    h = np.where(ok, y, -np.inf).max(1) - np.where(ok, y, np.inf).min(1)
    with np.errstate(invalid="ignore"):
        size = np.maximum(w, h) if side else np.sqrt(np.maximum(w * h, 0.0))
        return np.where(ok.any(1), size, np.nan)


def part_box_side(keypoints: np.ndarray, part: str) -> np.ndarray:
    """Per person, the longer side (px) of ``part``'s labelled (v > 0) points' extent; NaN
    without labelled points. ``keypoints``: (N, 133, 3). The size ``by="part_side"`` uses."""
    kp = np.asarray(keypoints, dtype=np.float64)[:, PART_SLICES_WITH_WHOLE[part]]
    return _extent_size(kp[..., 0], kp[..., 1], kp[..., 2] > 0, side=True)


def size_breakdown(
    gt: WholeBodySet,
    results: Predictions,
    parts: Sequence[str] = EVAL_PARTS,
    edges: Sequence[float] = SIZE_EDGES,
    by: str = "person",
    sigmas: str = "official",
    max_dets: int = MAX_DETS,
) -> Breakdown:
    """``{part: {bucket: {"AP", "AP50", "AP75", "AR", "num_gt"}}}`` by instance size.

    ``by``: one of :data:`SIZE_MEASURES` (see the module docstring). ``max_dets``: detections
    kept per image (COCO's 20; more only for sets that pool several instances per person).
    """
    if by not in SIZE_MEASURES:
        raise ValueError(f"by must be one of {SIZE_MEASURES}, got {by!r}")
    results.validate(gt.images)
    planes = (Planes.of(gt.keypoints), Planes.of(results.keypoints))
    labels = _bucket_labels(edges, "{:g}")
    out: Breakdown = {}
    for part in parts:
        pm = prepare_part(gt, results, part, sigmas, max_dets, planes=planes)
        if by == "person":
            g_size = np.sqrt(pm.gt_area)
            d_size = np.sqrt(pm.det_area)
        else:
            sl, side = PART_SLICES_WITH_WHOLE[part], by == "part_side"
            gp, dp = planes
            g_size = _extent_size(
                gp.x[pm.gt_rows, sl], gp.y[pm.gt_rows, sl], gp.v[pm.gt_rows, sl] > 0, side
            )
            d_size = _extent_size(
                dp.x[pm.det_rows, sl], dp.y[pm.det_rows, sl], dp.v[pm.det_rows, sl] > 0, side
            )
        gb, db = _bucket_of(g_size, edges), _bucket_of(d_size, edges)
        ranges = [(lab, gb != b, db != b) for b, lab in enumerate(labels)]
        out[part] = _stats(evaluate_ranges(pm, ranges))
    return out


def occlusion_fraction(gt: WholeBodySet, part: str) -> np.ndarray:
    """Per person, the fraction of ``part``'s points unlabelled or labelled invisible."""
    v = gt.keypoints[:, PART_SLICES_WITH_WHOLE[part], 2]
    hidden = v <= 0
    if (v >= 2).any():  # the labels distinguish visible (2) from occluded (0 < v < 2)
        hidden |= v < 2
    return hidden.mean(1)


def _attribute(pm: PartMatch) -> np.ndarray:
    """For each detection, the ground truth it overlaps most (OKS >= 0.5), else -1."""
    best = np.full(len(pm.det_rows), -1, dtype=np.int64)
    cand = pm.pair_oks >= 0.5
    if cand.any():
        d, g, o = pm.pair_det[cand], pm.pair_gt[cand], pm.pair_oks[cand]
        order = np.lexsort((o, d))  # per detection, by OKS ascending: the last one is the best
        best[d[order]] = g[order]
    return best


def occlusion_breakdown(
    gt: WholeBodySet,
    results: Predictions,
    parts: Sequence[str] = OCCLUSION_PARTS,
    edges: Sequence[float] = OCCLUSION_EDGES,
    sigmas: str = "official",
    max_dets: int = MAX_DETS,
) -> Breakdown:
    """``{part: {bucket: {"AP", "AP50", "AP75", "AR", "num_gt"}}}`` by occluded fraction."""
    results.validate(gt.images)
    planes = (Planes.of(gt.keypoints), Planes.of(results.keypoints))
    labels = _bucket_labels(edges, "{:.2f}")
    out: Breakdown = {}
    for part in parts:
        pm = prepare_part(gt, results, part, sigmas, max_dets, planes=planes)
        gb = _bucket_of(occlusion_fraction(gt, part)[pm.gt_rows], edges)
        owner = _attribute(pm)
        db = np.where(owner >= 0, gb[np.maximum(owner, 0)], -2)  # -2: overlaps no ground truth
        ranges = [(lab, gb != b, (db != b) & (db != -2)) for b, lab in enumerate(labels)]
        out[part] = _stats(evaluate_ranges(pm, ranges))
    return out


def format_breakdown(breakdown: Breakdown, title: str) -> str:
    """A table: one row per (part, bucket) with AP, AP50, AP75, AR and the ground-truth count."""
    head = f"{title:<22}" + "".join(f"{s:>8}" for s in BUCKET_STATS)
    rows = [head, "-" * len(head)]
    for part, buckets in breakdown.items():
        for label, st in buckets.items():
            cells = "".join(f"{st[s]:>8.3f}" for s in BUCKET_STATS[:-1])
            rows.append(f"{part + ' ' + label:<22}{cells}{int(st['num_gt']):>8d}")
    return "\n".join(rows)
