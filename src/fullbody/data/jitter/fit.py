"""Fitting PGPG: match detections to labels, cluster poses, fit a mixture per cluster; the CLI.

``python -m fullbody.data.jitter fit`` (see :func:`main`) runs :func:`fit_jitter` on a label
file and a detector's results and writes the JSON :class:`~.jitters.LearnedJitter` reads. A fit
on too few matched boxes to estimate a mixture (or a mixture per atomic pose) warns with the
counts (:class:`TooLittleDataWarning`); the CLI prints those warnings.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.data.detections import PersonDetections, box_iou
from fullbody.data.jitter.jitters import (
    FORMAT,
    MIN_POSE_POINTS,
    OFFSET_NAMES,
    VERSION,
    GaussianMixture,
    LearnedJitter,
    _logsumexp,
    _masked_sqdist,
    box_offsets,
    pose_descriptor,
)
from fullbody.errors import UserError
from fullbody.jsonio import write_json_atomic

#: Matches a cluster needs for its own mixture; smaller clusters use the global one.
MIN_CLUSTER_MATCHES = 10
#: Matched boxes per Gaussian below which a fit warns: a full-covariance Gaussian over the four
#: offsets has 14 parameters, and ~100 samples pin its spread down to about 10 %.
MIN_MATCHES_PER_COMPONENT = 100


class TooLittleDataWarning(UserWarning):
    """A PGPG fit on fewer matched boxes than its clusters and mixtures need to mean much."""


# ----------------------------------------------------------------------- matching
def match_detections(
    gt: WholeBodySet, detections: PersonDetections, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching per image: detections by falling score take the free
    non-crowd ground-truth box of highest IoU if it reaches ``iou_threshold``.

    Returns matched ground-truth rows and detection rows (equal lengths).
    """
    gt_rows, det_rows = [], []
    usable = ~gt.iscrowd & (gt.bboxes[:, 2] > 0) & (gt.bboxes[:, 3] > 0)
    for image_id in np.unique(detections.image_ids):
        g = np.flatnonzero((gt.image_ids == image_id) & usable)
        d = np.flatnonzero(detections.image_ids == image_id)
        if not len(g) or not len(d):
            continue
        d = d[np.argsort(-detections.scores[d], kind="stable")]
        iou = box_iou(detections.boxes[d], gt.bboxes[g])
        free = np.ones(len(g), bool)
        for i in range(len(d)):
            cand = np.where(free, iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= iou_threshold:
                free[j] = False
                gt_rows.append(g[j])
                det_rows.append(d[i])
    return np.asarray(gt_rows, np.int64), np.asarray(det_rows, np.int64)


# ----------------------------------------------------------------------- mixtures
def fit_mixture(
    x: np.ndarray,
    components: int,
    rng: np.random.Generator,
    *,
    max_iter: int = 300,
    tol: float = 1e-7,
    reg: float = 1e-5,
) -> GaussianMixture:
    """A :class:`GaussianMixture` fitted to ``x`` by maximum likelihood by EM (k-means++ start); ``reg`` is added to every variance.

    The number of components is capped so that each has at least D + 1 points on average.
    """
    x = np.asarray(x, np.float64)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"need at least 2 samples to fit a mixture, got {n}")
    m = max(1, min(components, n // (d + 1)))
    eye = np.eye(d) * reg
    cov0 = np.cov(x, rowvar=False).reshape(d, d) + eye
    means = x[_kmeanspp(x, m, rng)]
    gm = GaussianMixture(np.full(m, 1.0 / m), means, np.repeat(cov0[None], m, 0))
    prev = -np.inf
    for _ in range(max_iter):
        logp = gm._component_log_prob(x)
        ll = _logsumexp(logp, axis=1)
        resp = np.exp(logp - ll[:, None])  # (n, M)
        nk = resp.sum(0) + 1e-12
        means = (resp.T @ x) / nk[:, None]
        covs = np.empty((m, d, d))
        for k in range(m):
            diff = x - means[k]
            covs[k] = (resp[:, k, None] * diff).T @ diff / nk[k] + eye
        gm = GaussianMixture(nk / nk.sum(), means, covs)
        total = ll.mean()
        if total - prev < tol:
            break
        prev = total
    return gm


def _kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` k-means++ seeds among the rows of ``x``."""
    idx = [int(rng.integers(len(x)))]
    d2 = ((x - x[idx[0]]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1 / len(x))
        idx.append(int(rng.choice(len(x), p=p)))
        d2 = np.minimum(d2, ((x - x[idx[-1]]) ** 2).sum(1))
    return np.asarray(idx)


# ----------------------------------------------------------------------- atomic poses
def kmeans_poses(
    desc: np.ndarray, mask: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 100
) -> np.ndarray:
    """k-means on poses with missing points (distances over labelled points only).

    Returns (k', 17, 2) centres, k' = min(k, N), ordered by falling cluster size.
    """
    n = len(desc)
    k = min(k, n)
    fill = (desc * mask[..., None]).sum(0) / np.maximum(mask.sum(0), 1)[:, None]
    full = np.where(mask[..., None], desc, fill)
    # k-means++ seeding with the masked distance.
    centres = [full[int(rng.integers(n))]]
    for _ in range(1, k):
        d2 = _masked_sqdist(desc, mask, np.stack(centres)).min(1)
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1 / n)
        centres.append(full[int(rng.choice(n, p=p))])
    centres = np.stack(centres)
    labels = np.full(n, -1)
    for _ in range(max_iter):
        new = _masked_sqdist(desc, mask, centres).argmin(1)
        if (new == labels).all():
            break
        labels = new
        for c in range(k):
            sel = labels == c
            w = mask[sel][..., None].astype(np.float64)
            cnt = w.sum(0)
            centres[c] = np.where(cnt > 0, (desc[sel] * w).sum(0) / np.maximum(cnt, 1), centres[c])
    sizes = np.bincount(labels, minlength=k)
    return centres[np.argsort(-sizes, kind="stable")]


# ----------------------------------------------------------------------- fitting
def fit_jitter(
    gt: WholeBodySet,
    detections: PersonDetections,
    *,
    iou_threshold: float = 0.5,
    min_score: float = 0.0,
    clusters: int = 1,
    components: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the PGPG model (the JSON object :class:`LearnedJitter` reads).

    ``clusters``: atomic poses (k-means over matched people with at least
    :data:`MIN_POSE_POINTS` labelled body points); ``components``: Gaussians per mixture.
    Warns (:class:`TooLittleDataWarning`, with the counts) when there are fewer than
    :data:`MIN_MATCHES_PER_COMPONENT` matched boxes per Gaussian overall or, with more than one
    cluster, in some cluster.
    """
    if clusters < 1 or components < 1:
        raise ValueError("clusters and components must be >= 1")
    rng = np.random.default_rng(seed)
    dets = detections.above(min_score)
    g, d = match_detections(gt, dets, iou_threshold)
    src = str(detections.path or "<detections>")
    if len(g) < 2:
        raise ValueError(
            f"{src}: only {len(g)} detection(s) match a ground-truth box at IoU >= "
            f"{iou_threshold}: nothing to learn from (do the image ids agree?)"
        )
    off = box_offsets(gt.bboxes[g], dets.boxes[d])
    global_gm = fit_mixture(off, components, rng)
    mean, sd = off.mean(0), off.std(0)
    desc, mask = pose_descriptor(gt.keypoints[g], gt.bboxes[g])
    posed = mask.sum(1) >= MIN_POSE_POINTS
    centres = np.zeros((0, 17, 2))
    mixtures: list[dict[str, Any] | None] = []
    sizes: list[int] = []
    if posed.sum() >= 1:
        centres = kmeans_poses(desc[posed], mask[posed], clusters, rng)
        labels = _masked_sqdist(desc[posed], mask[posed], centres).argmin(1)
        for c in range(len(centres)):
            x = off[posed][labels == c]
            sizes.append(len(x))
            fit = len(x) >= MIN_CLUSTER_MATCHES and len(centres) > 1
            mixtures.append(fit_mixture(x, components, rng).to_json() if fit else None)
    for problem in _data_problems(len(g), int(posed.sum()), sizes, clusters, components):
        warnings.warn(f"{src}: {problem}", TooLittleDataWarning, stacklevel=2)
    return {
        "format": FORMAT,
        "version": VERSION,
        "offsets": list(OFFSET_NAMES),
        "iou_threshold": iou_threshold,
        "min_score": min_score,
        "num_ground_truth": int((~gt.iscrowd).sum()),
        "num_detections": len(dets),
        "num_matched": len(g),
        "sources": {
            "annotations": Path(gt.path).name if gt.path else None,
            "detections": Path(detections.path).name if detections.path else None,
        },
        "offset_mean": mean.tolist(),
        "offset_std": sd.tolist(),
        # Draws are clipped to 4 standard deviations of the matched offsets.
        "clip": {"low": (mean - 4 * sd).tolist(), "high": (mean + 4 * sd).tolist()},
        "global": global_gm.to_json(),
        "clusters": {
            "pose": "17 body points: (xy - box centre) / max(box w, h)",
            "min_pose_points": MIN_POSE_POINTS,
            "centres": centres.tolist(),
            "sizes": sizes,
            "mixtures": mixtures,
        },
    }


def _data_problems(
    matched: int, posed: int, sizes: list[int], clusters: int, components: int
) -> list[str]:
    """Why a fit on these counts says little (empty when the data suffice)."""
    need = MIN_MATCHES_PER_COMPONENT * components
    problems = []
    if matched < need:
        problems.append(
            f"only {matched} matched boxes for a {components}-Gaussian mixture; a fit that means "
            f"something wants >= {need} ({MIN_MATCHES_PER_COMPONENT} per Gaussian). Fit on "
            "your detector's boxes over a few thousand people, or train with the DPG jitter "
            "(the default)"
        )
    if clusters > 1:
        short = [n for n in sizes if n < need]
        if short or len(sizes) < clusters:
            problems.append(
                f"{clusters} atomic poses asked for, {posed} matched people with >= "
                f"{MIN_POSE_POINTS} labelled body points, cluster sizes {sizes}: "
                f"{len(short) + clusters - len(sizes)} of {clusters} clusters have fewer than "
                f"{need} matches (under {MIN_CLUSTER_MATCHES} they use the global mixture)"
            )
    return problems


def _summary(model: dict[str, Any]) -> str:
    cl = model["clusters"]
    lines = [
        f"matched {model['num_matched']} of {model['num_ground_truth']} ground-truth people "
        f"with {model['num_detections']} detections (IoU >= {model['iou_threshold']})",
        "offset  " + "  ".join(f"{n:>16}" for n in OFFSET_NAMES),
        "mean    " + "  ".join(f"{v:16.4f}" for v in model["offset_mean"]),
        "std     " + "  ".join(f"{v:16.4f}" for v in model["offset_std"]),
        f"atomic poses: {len(cl['centres'])} (sizes {cl['sizes']}; "
        f"{sum(m is not None for m in cl['mixtures'])} with their own mixture)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``fit``: learn a PGPG jitter file; ``show``: summarise one."""
    parser = argparse.ArgumentParser(
        prog="python -m fullbody.data.jitter", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="learn detector box errors from detections + labels")
    f.add_argument("--annotations", required=True, help="COCO(-WholeBody) keypoint labels")
    f.add_argument("--detections", required=True, help="COCO results file of person boxes")
    f.add_argument("--out", required=True, help="output JSON file")
    f.add_argument("--iou", type=float, default=0.5, help="match IoU threshold (0.5)")
    f.add_argument("--min-score", type=float, default=0.0, help="ignore weaker detections")
    f.add_argument("--clusters", type=int, default=1, help="atomic poses (k-means clusters)")
    f.add_argument("--components", type=int, default=1, help="Gaussians per mixture")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    s = sub.add_parser("show", help="summarise a jitter file (default: the shipped one)")
    s.add_argument("path", nargs="?", default=None)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (UserError, FileNotFoundError, ValueError) as e:  # bad files or options: one line
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "show":
        print(_summary(LearnedJitter(args.path).model))
        return 0
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"error: {out} exists (pass --force to overwrite)", file=sys.stderr)
        return 2
    gt = WholeBodySet.load(args.annotations)
    dets = PersonDetections.load(args.detections, images=gt.images)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TooLittleDataWarning)
        model = fit_jitter(
            gt,
            dets,
            iou_threshold=args.iou,
            min_score=args.min_score,
            clusters=args.clusters,
            components=args.components,
            seed=args.seed,
        )
    for w in caught:
        if issubclass(w.category, TooLittleDataWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    write_json_atomic(model, out)
    print(_summary(model))
    print(f"wrote {out}")
    return 0
