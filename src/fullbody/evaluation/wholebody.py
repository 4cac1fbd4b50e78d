"""The official COCO-WholeBody keypoint metric: AP/AR per part, exact and vectorised.

This reproduces, number for number, what mmpose's ``CocoWholeBodyMetric`` gets from xtcocotools'
``COCOeval`` (one evaluation per part, iouType ``keypoints_<part>``, the part's sigmas,
``use_area=True``), without depending on xtcocotools. The rules, in the order they apply:

* Images: every image of the ground truth. OKS thresholds 0.50:0.05:0.95, 101 recall thresholds,
  at most 20 detections per image, area ranges all / medium (32²-96²) / large (96²-1e10).
* A ground truth is *ignored* for a part when it is crowd or has no labelled point (v > 0) in
  the part; ignored ground truths stay in the matching (a detection matched to one is ignored,
  not a false positive). One whose ``area`` lies outside an area range is ignored for that range.
* A detection is dropped for a part when none of the part's confidences is > 0. It is ranked by
  its part score (``face_score``, ..., ``wholebody_score``) when it has one, else by ``score``
  (the body always by ``score``). Sorting is stable: ties keep results-file order within an
  image, and image-id order across images.
* A detection's area is its ``bbox``'s w·h when the results carry boxes (``loadRes`` of
  xtcocotools and pycocotools takes the box branch first), else the extent of its 17 **body**
  points (what ``loadRes`` computes from the split layout's ``keypoints`` field, as for mmpose's
  results, which carry no box); an unmatched detection outside an area range is ignored.
* OKS = mean over the ground truth's labelled points of exp(-d² / (2σ)² / (area + eps) / 2) with
  the ground truth's ``area``; for a ground truth without labelled points, d is the distance
  outside its box enlarged to [x - w, x + 2w] x [y - h, y + 2h], averaged over all points.
* Greedy matching per image and threshold, detections by score, each taking the unmatched
  ground truth of highest OKS >= threshold, non-ignored ones first (ties: the later one); COCO
  precision interpolation and the 10 summary numbers; a cell without ground truth gives -1.

Everything runs on arrays: OKS for all same-image (detection, ground truth) pairs at once, the
greedy matching as one vectorised step per detection rank (over all images, thresholds and area
ranges together), accumulation with cumulative sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import EVAL_PARTS, PART_SLICES_WITH_WHOLE, part_sigmas
from fullbody.results import Predictions

#: The ten summary numbers of COCO keypoint evaluation, in COCO's order.
STATS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
#: OKS thresholds, built exactly as cocoeval builds them (comparisons are exact).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: COCO keypoint area ranges (label, min, max), bounds inclusive.
AREA_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0**2, 1e5**2),
    ("medium", 32**2, 96**2),
    ("large", 96**2, 1e5**2),
)
MAX_DETS = 20
_EPS = np.spacing(1)
#: Pair-block size (pairs x keypoints) for the OKS computation, to bound memory.
_BLOCK = 1 << 15


@dataclass
class PartMatch:
    """Detections, ground truths and their OKS for one part: the input of the matching.

    Ground truths are ordered by image then file order; detections by image then score (stable,
    file order on ties), at most ``max_dets`` per image. ``pair_*`` list every same-image
    (detection, ground truth) pair with its OKS.
    """

    part: str
    image_ids: np.ndarray  # (I,) sorted ground-truth image ids
    gt_rows: np.ndarray  # (G,) rows into the ground-truth set
    gt_image: np.ndarray  # (G,) index into image_ids
    gt_ignore: np.ndarray  # (G,) crowd or no labelled point in the part
    gt_crowd: np.ndarray  # (G,)
    gt_area: np.ndarray  # (G,)
    det_rows: np.ndarray  # (D,) rows into the predictions
    det_image: np.ndarray  # (D,)
    det_rank: np.ndarray  # (D,) position within its image after sorting by score
    det_score: np.ndarray  # (D,)
    det_area: np.ndarray  # (D,) box w*h, else extent of the 17 body points (detection_areas)
    pair_det: np.ndarray  # (P,) index into the detections
    pair_gt: np.ndarray  # (P,) index into the ground truths
    pair_oks: np.ndarray  # (P,) OKS, or -1 where it is certainly below the lowest threshold


@dataclass
class PartResult:
    """Accumulated evaluation of one part over a set of ranges (area ranges by default)."""

    part: str
    labels: tuple[str, ...]  # one per range
    precision: np.ndarray  # (T, R, A); -1 where a range has no ground truth
    recall: np.ndarray  # (T, A)
    num_gt: np.ndarray  # (A,) non-ignored ground truths per range

    def ap(self, label: str = "all", iou: float | None = None) -> float:
        """Mean interpolated precision of one range (at one OKS threshold, or all)."""
        s = self.precision[:, :, self.labels.index(label)]
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        return _mean_valid(s)

    def ar(self, label: str = "all", iou: float | None = None) -> float:
        """Mean maximal recall of one range (at one OKS threshold, or all)."""
        s = self.recall[:, self.labels.index(label)]
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        return _mean_valid(s)

    @property
    def stats(self) -> dict[str, float]:
        """The ten COCO keypoint summary numbers (needs the 'all', 'medium', 'large' ranges)."""
        return {
            "AP": self.ap(),
            "AP50": self.ap(iou=0.5),
            "AP75": self.ap(iou=0.75),
            "APM": self.ap("medium"),
            "APL": self.ap("large"),
            "AR": self.ar(),
            "AR50": self.ar(iou=0.5),
            "AR75": self.ar(iou=0.75),
            "ARM": self.ar("medium"),
            "ARL": self.ar("large"),
        }


def _mean_valid(s: np.ndarray) -> float:
    """cocoeval's summary: the mean of the entries > -1, or -1 when there are none."""
    v = s[s > -1]
    return -1.0 if v.size == 0 else float(np.mean(v))


# ------------------------------------------------------------------------ preparation
@dataclass
class Planes:
    """x, y and v (visibility or confidence) of (N, 133, 3) points as contiguous (N, 133) arrays.

    Reductions over keypoints run ~30x faster on these than on strided (N, K, 3) views.
    """

    x: np.ndarray
    y: np.ndarray
    v: np.ndarray

    @classmethod
    def of(cls, points: np.ndarray) -> Planes:
        xyv = np.ascontiguousarray(np.moveaxis(np.asarray(points, dtype=np.float64), -1, 0))
        return cls(xyv[0], xyv[1], xyv[2])


def body_extent_area(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Area of the x/y extent of the 17 body points (all of them, whatever their confidence).

    ``x``, ``y``: (N, 133) or (N, 17). This is the detection area the official evaluation uses:
    ``loadRes`` computes it from the results' ``keypoints`` field, which holds the body points in
    mmpose's split layout.
    """
    bx, by = x[:, :17], y[:, :17]
    return (bx.max(1) - bx.min(1)) * (by.max(1) - by.min(1))


def detection_areas(results: Predictions, rows: np.ndarray | None = None) -> np.ndarray:
    """The area of each detection (of ``rows``) for the area ranges, as ``loadRes`` sets it:
    w·h of its ``bbox`` when the predictions carry boxes, else the extent of its 17 body points."""
    rows = np.arange(len(results)) if rows is None else rows
    if results.bboxes is not None:
        return results.bboxes[rows, 2] * results.bboxes[rows, 3]
    return body_extent_area(results.keypoints[rows, :17, 0], results.keypoints[rows, :17, 1])


def _group_starts(sorted_groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(sorted_groups, minlength=n_groups)
    return counts, np.cumsum(counts) - counts


def prepare_part(
    gt: WholeBodySet,
    results: Predictions,
    part: str,
    sigmas: str | np.ndarray = "official",
    max_dets: int = MAX_DETS,
    planes: tuple[Planes, Planes] | None = None,
) -> PartMatch:
    """Select, rank and pair one part's detections and ground truths, and compute their OKS.

    ``planes`` (ground truth, results) may be passed to share them between parts.
    """
    sl = PART_SLICES_WITH_WHOLE[part]
    sig = part_sigmas(part, sigmas) if isinstance(sigmas, str) else np.asarray(sigmas, float)
    if sig.shape != (sl.stop - sl.start,):
        raise ValueError(f"{part}: expected {sl.stop - sl.start} sigmas, got {sig.shape}")
    gp, dp = planes or (Planes.of(gt.keypoints), Planes.of(results.keypoints))
    image_ids = np.array(sorted(gt.images), dtype=np.int64)
    n_img = len(image_ids)

    g_img_all = np.searchsorted(image_ids, gt.image_ids)
    gt_rows = np.argsort(g_img_all, kind="stable")
    g_img = g_img_all[gt_rows]
    g_lab = gp.v[gt_rows, sl] > 0  # (copies: cheap next to the pair arithmetic)
    g_nlab = g_lab.sum(1)
    g_crowd = gt.iscrowd[gt_rows].astype(bool)
    g_area = gt.areas[gt_rows].astype(np.float64)
    g_box = gt.bboxes[gt_rows]

    d_rows = np.flatnonzero((dp.v[:, sl] > 0).any(1))
    if not np.isin(results.image_ids[d_rows], image_ids).all():
        raise ValueError(f"{part}: predictions hold image ids that are not in the ground truth")
    d_score = results.score_for(part)[d_rows]
    d_img = np.searchsorted(image_ids, results.image_ids[d_rows])
    order = np.lexsort((-d_score, d_img))  # by image, then score descending; stable
    d_rows, d_score, d_img = d_rows[order], d_score[order], d_img[order]
    _, d_start = _group_starts(d_img, n_img)
    d_rank = np.arange(len(d_rows)) - d_start[d_img]
    top = d_rank < max_dets
    d_rows, d_score, d_img, d_rank = d_rows[top], d_score[top], d_img[top], d_rank[top]

    # every same-image (detection, ground truth) pair, detection-major, ground truths in order
    g_cnt, g_start = _group_starts(g_img, n_img)
    per_det = g_cnt[d_img]
    pair_det = np.repeat(np.arange(len(d_rows)), per_det)
    offsets = np.cumsum(per_det) - per_det
    pair_gt = np.repeat(g_start[d_img] - offsets, per_det) + np.arange(len(pair_det))

    variances = (sig * 2) ** 2
    # the box of ground truths without labelled points, enlarged to [x - w, x + 2w] x [y - h, y + 2h]
    empty = g_nlab == 0
    wide = np.stack(
        [g_box[:, 0] - g_box[:, 2], g_box[:, 0] + g_box[:, 2] * 2,
         g_box[:, 1] - g_box[:, 3], g_box[:, 1] + g_box[:, 3] * 2], 1
    )  # fmt: skip
    in_order = bool(np.all(gt_rows == np.arange(len(gt_rows))))  # usual: files list by image
    gt = _GtPart(gp, sl, None if in_order else gt_rows, g_lab, g_nlab, empty, wide, g_area)
    near = _may_reach(dp, sl, d_rows, gt, variances, pair_det, pair_gt)
    pair_oks = np.full(len(pair_det), -1.0)
    pair_oks[near] = _pair_oks(dp, sl, d_rows, gt, variances, pair_det[near], pair_gt[near])
    return PartMatch(
        part=part,
        image_ids=image_ids,
        gt_rows=gt_rows,
        gt_image=g_img,
        gt_ignore=g_crowd | empty,
        gt_crowd=g_crowd,
        gt_area=g_area,
        det_rows=d_rows,
        det_image=d_img,
        det_rank=d_rank,
        det_score=d_score,
        det_area=detection_areas(results, d_rows),
        pair_det=pair_det,
        pair_gt=pair_gt,
        pair_oks=pair_oks,
    )


@dataclass
class _GtPart:
    """One part of the ground truths, in matching order (rows ``rows`` of the planes)."""

    planes: Planes
    sl: slice
    rows: np.ndarray | None  # None: the planes are already in matching order
    lab: np.ndarray  # (G, K) labelled points
    nlab: np.ndarray  # (G,)
    empty: np.ndarray  # (G,) no labelled point
    wide: np.ndarray  # (G, 4) x0, x1, y0, y1 of the enlarged box
    area: np.ndarray  # (G,)


def _may_reach(
    dp: Planes,
    sl: slice,
    d_rows: np.ndarray,
    gt: _GtPart,
    variances: np.ndarray,
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
) -> np.ndarray:
    """Pairs whose OKS may reach the lowest threshold (a cheap, conservative box test).

    OKS >= 0.5 needs one point with exp(-e) >= 0.5, i.e. a detected point within
    R = sqrt(2 ln 2 · max variance · (area + eps)) of its ground-truth point (or of the enlarged
    box, for ground truths without labelled points). So the detection's extent must come within
    R of the ground truth's labelled extent; every other pair is below 0.5 and needs no OKS.
    """
    scale = gt.area + _EPS
    with np.errstate(invalid="ignore"):  # a non-positive area prunes nothing
        reach = np.where(scale > 0, np.sqrt(2 * np.log(2) * variances.max() * scale), np.inf)
    reach = reach * (1 + 1e-6) + 1e-6  # slack for rounding
    ok = np.ones(len(pair_det), dtype=bool)
    for d_plane, g_plane, lo, hi in ((dp.x, gt.planes.x, 0, 1), (dp.y, gt.planes.y, 2, 3)):
        d = d_plane[:, sl]
        d_lo, d_hi = d.min(1)[d_rows], d.max(1)[d_rows]
        g = g_plane[:, sl] if gt.rows is None else g_plane[gt.rows, sl]
        g_lo = np.where(gt.lab, g, np.inf).min(1, initial=np.inf)
        g_hi = np.where(gt.lab, g, -np.inf).max(1, initial=-np.inf)
        g_lo = np.where(gt.empty, gt.wide[:, lo], g_lo)
        g_hi = np.where(gt.empty, gt.wide[:, hi], g_hi)
        gap = np.maximum(d_lo[pair_det] - g_hi[pair_gt], g_lo[pair_gt] - d_hi[pair_det])
        ok &= gap <= reach[pair_gt]
    return ok


def _pair_oks(
    dp: Planes,
    sl: slice,
    d_rows: np.ndarray,
    gt: _GtPart,
    variances: np.ndarray,
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
) -> np.ndarray:
    """OKS of each (detection, ground truth) pair, with cocoeval's computeOks arithmetic.

    Blocks of pairs small enough to stay in cache; every operation in place, in cocoeval's order:
    e = (dx² + dy²) / variances / (area + eps) / 2, OKS = Σ exp(-e) / count.
    """
    k = len(variances)
    out = np.empty(len(pair_det))
    step = max(1, _BLOCK // k)
    g_area = gt.area + _EPS
    for s in range(0, len(pair_det), step):
        pd, pg = pair_det[s : s + step], pair_gt[s : s + step]
        rd, rg = d_rows[pd], pg if gt.rows is None else gt.rows[pg]
        xd, yd = dp.x[rd, sl], dp.y[rd, sl]
        dx = xd - gt.planes.x[rg, sl]
        dy = yd - gt.planes.y[rg, sl]
        empty = gt.empty[pg]
        if empty.any():
            ge, xe, ye = pg[empty], xd[empty], yd[empty]
            w = gt.wide[ge]
            dx[empty] = np.maximum(0, w[:, 0, None] - xe) + np.maximum(0, xe - w[:, 1, None])
            dy[empty] = np.maximum(0, w[:, 2, None] - ye) + np.maximum(0, ye - w[:, 3, None])
        np.square(dx, out=dx)
        np.square(dy, out=dy)
        dx += dy
        dx /= variances
        dx /= g_area[pg, None]
        dx /= 2
        np.negative(dx, out=dx)
        np.exp(dx, out=dx)
        use = gt.lab[pg]
        use[empty] = True
        dx *= use  # exp(...) >= 0 and finite: the same as zeroing the unused terms
        out[s : s + step] = dx.sum(1) / np.where(empty, k, gt.nlab[pg])
    return out


# ------------------------------------------------------------------------ matching
def match(
    pm: PartMatch, gt_out: np.ndarray, det_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy COCO matching for several ranges at once.

    ``gt_out`` (A, G) and ``det_out`` (A, D) say which ground truths / detections fall outside
    each range. Returns ``dt_gt`` (A, T, D): matched ground-truth index or -1, ``dt_ignore``
    (A, T, D), and the effective ground-truth ignore flags (A, G).
    """
    thr = IOU_THRESHOLDS
    n_ranges, n_thr = gt_out.shape[0], len(thr)
    n_det, n_gt = len(pm.det_rows), len(pm.gt_rows)
    gt_ig = pm.gt_ignore[None, :] | gt_out
    # a dummy ground truth (index n_gt) pads the candidate lists
    gt_ig_x = np.concatenate([gt_ig, np.ones((n_ranges, 1), bool)], axis=1)
    crowd_x = np.append(pm.gt_crowd, False)
    dt_gt = np.full((n_ranges, n_thr, n_det), -1, dtype=np.int64)

    cand = pm.pair_oks >= thr[0]
    c_det, c_gt, c_oks = pm.pair_det[cand], pm.pair_gt[cand], pm.pair_oks[cand]
    if len(c_det):
        dets, first, counts = np.unique(c_det, return_index=True, return_counts=True)
        width = int(counts.max())
        slot = np.arange(len(c_det)) - np.repeat(first, counts)
        row = np.repeat(np.arange(len(dets)), counts)
        cg = np.full((len(dets), width), n_gt, dtype=np.int64)
        co = np.full((len(dets), width), -np.inf)
        cg[row, slot], co[row, slot] = c_gt, c_oks
        matched = np.zeros((n_ranges, n_thr, n_gt + 1), dtype=bool)
        # Detections of one rank lie in different images: they are matched in one step. Each
        # step is split by candidate count, so that a few crowded images don't pad every row.
        ranks = pm.det_rank[dets]
        order = np.lexsort((counts, ranks))
        key = ranks[order] * (width + 1) + counts[order]
        bounds = np.flatnonzero(np.diff(key)) + 1
        for sel in np.split(order, bounds):
            c = counts[sel[0]]
            g, o = cg[sel, :c], co[sel, :c]  # (n, C)
            free = ~(matched[:, :, g] & ~crowd_x[g])  # (A, T, n, C)
            ok = (o >= thr[:, None, None]) & free
            if c > 1:
                pref = ok & ~gt_ig_x[:, None, g]
                ok = np.where(pref.any(-1, keepdims=True), pref, ok)
                val = np.where(ok, o, -np.inf)
                hit = ok & (val == val.max(-1, keepdims=True))
                last = c - 1 - np.argmax(hit[..., ::-1], axis=-1)  # (A, T, n): the later on ties
                chosen = np.where(ok.any(-1), g[np.arange(len(sel)), last], -1)
            else:
                chosen = np.where(ok[..., 0], g[:, 0], -1)
            dt_gt[:, :, dets[sel]] = chosen
            a, t, _ = np.nonzero(chosen >= 0)
            matched[a, t, chosen[chosen >= 0]] = True
    matched_ig = gt_ig_x[np.arange(n_ranges)[:, None, None], np.where(dt_gt >= 0, dt_gt, n_gt)]
    dt_ignore = np.where(dt_gt >= 0, matched_ig, det_out[:, None, :])
    return dt_gt, dt_ignore, gt_ig


def accumulate(
    pm: PartMatch,
    dt_gt: np.ndarray,
    dt_ignore: np.ndarray,
    gt_ignore: np.ndarray,
    labels: Sequence[str],
) -> PartResult:
    """COCO accumulation: precision at 101 recall thresholds and maximal recall per range."""
    n_ranges, n_thr, n_det = dt_gt.shape
    n_rec = len(RECALL_THRESHOLDS)
    precision = -np.ones((n_thr, n_rec, n_ranges))
    recall = -np.ones((n_thr, n_ranges))
    num_gt = (~gt_ignore).sum(1)
    order = np.argsort(-pm.det_score, kind="mergesort")
    tps = ((dt_gt >= 0) & ~dt_ignore)[..., order]
    fps = ((dt_gt < 0) & ~dt_ignore)[..., order]
    tp_sum = np.cumsum(tps, axis=-1, dtype=np.float64)  # counts: exact in float64
    fp_sum = np.cumsum(fps, axis=-1, dtype=np.float64)
    for a in range(n_ranges):
        if num_gt[a] == 0:
            continue
        tp, fp = tp_sum[a], fp_sum[a]
        rc = tp / num_gt[a]
        pr = tp / (fp + tp + _EPS)
        recall[:, a] = rc[:, -1] if n_det else 0
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(n_thr):
            inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            q = np.zeros(n_rec)
            inside = inds < n_det
            q[inside] = pr[t, inds[inside]]
            precision[t, :, a] = q
    return PartResult(pm.part, tuple(labels), precision, recall, num_gt)


def evaluate_ranges(
    pm: PartMatch,
    ranges: Sequence[tuple[str, np.ndarray, np.ndarray]],
) -> PartResult:
    """Evaluate a prepared part over custom ranges ``(label, gt_out (G,), det_out (D,))``."""
    gt_out = np.stack([r[1] for r in ranges]).astype(bool)
    det_out = np.stack([r[2] for r in ranges]).astype(bool)
    dt_gt, dt_ig, gt_ig = match(pm, gt_out, det_out)
    return accumulate(pm, dt_gt, dt_ig, gt_ig, [r[0] for r in ranges])


def area_ranges(pm: PartMatch) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """COCO's area ranges as out-of-range masks for ground truths and detections."""
    return [
        (label, (pm.gt_area < lo) | (pm.gt_area > hi), (pm.det_area < lo) | (pm.det_area > hi))
        for label, lo, hi in AREA_RANGES
    ]


def evaluate_part(
    gt: WholeBodySet,
    results: Predictions,
    part: str,
    sigmas: str | np.ndarray = "official",
    planes: tuple[Planes, Planes] | None = None,
) -> PartResult:
    """The official evaluation of one part (area ranges all / medium / large)."""
    pm = prepare_part(gt, results, part, sigmas, planes=planes)
    return evaluate_ranges(pm, area_ranges(pm))


def evaluate(
    gt: WholeBodySet,
    results: Predictions,
    parts: Sequence[str] = EVAL_PARTS,
    sigmas: str = "official",
) -> dict[str, float]:
    """AP/AR of every part as the official COCO-WholeBody protocol computes them.

    ``sigmas`` is "official" (COCO-WholeBody) or "halpe" (AlphaPose's halpecocotools scale, only
    for comparing with numbers published on it). Returns ``{"<part>/<stat>": value}`` with the
    ten :data:`STATS` per part; -1 marks a number without ground truth (COCO's convention).
    """
    results.validate(gt.images, str(results.path) if results.path else "<predictions>")
    unknown = [p for p in parts if p not in EVAL_PARTS]
    if unknown:
        raise KeyError(f"unknown part(s) {unknown}; expected some of {EVAL_PARTS}")
    planes = (Planes.of(gt.keypoints), Planes.of(results.keypoints))
    out: dict[str, float] = {}
    for part in parts:
        stats = evaluate_part(gt, results, part, sigmas, planes).stats
        out.update({f"{part}/{k}": v for k, v in stats.items()})
    return out


def unlabelled_parts(gt: WholeBodySet) -> list[str]:
    """The parts (body, foot, face, lefthand, righthand) with no labelled point in ``gt``."""
    labelled = gt.keypoints[..., 2] > 0
    return [p for p in EVAL_PARTS[:-1] if not labelled[:, PART_SLICES_WITH_WHOLE[p]].any()]


def scope_note(gt: WholeBodySet, parts: Sequence[str] = EVAL_PARTS) -> str | None:
    """What the 'wholebody' numbers measure when ``gt`` labels only some parts (a plain COCO
    person file labels the body alone, so its whole-body AP is a body AP); None when all are."""
    missing = unlabelled_parts(gt)
    if "wholebody" not in parts or not missing or len(missing) == len(EVAL_PARTS) - 1:
        return None
    kept = [p for p in EVAL_PARTS[:-1] if p not in missing]
    return (
        f"the ground truth labels no {'/'.join(missing)} points: 'wholebody' measures "
        f"{'+'.join(kept)} only (a COCO person file, not COCO-WholeBody?)"
    )


def format_table(metrics: dict[str, float], parts: Sequence[str] | None = None) -> str:
    """A fixed-width table of ``<part>/<stat>`` metrics: one row per part, one column per stat."""
    if parts is None:
        parts = [p for p in EVAL_PARTS if f"{p}/AP" in metrics]
    head = f"{'part':<10}" + "".join(f"{s:>7}" for s in STATS)
    rows = [head, "-" * len(head)]
    for p in parts:
        cells = "".join(f"{metrics[f'{p}/{s}']:>7.3f}" for s in STATS)
        rows.append(f"{p:<10}{cells}")
    return "\n".join(rows)
