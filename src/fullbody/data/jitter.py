"""Training-box jitter: PGPG (learned from a detector's errors), DPG and uniform fallbacks.

A top-down model is tested on detector boxes but trained on ground-truth boxes. RMPE's
pose-guided proposals generator (PGPG) closes that gap: it measures how a detector's boxes
deviate from the ground truth, separately for each "atomic pose" (a k-means cluster of
normalised poses), and draws training boxes from those deviations.

:func:`fit_jitter` matches detections to ground-truth boxes per image (greedy by score, IoU >=
0.5 as COCO evaluation matches), expresses each matched detection as four offsets relative to
its ground-truth box — centre shift ``dx / w``, ``dy / h`` and log size ratios
``log(w_det / w_gt)``, ``log(h_det / h_gt)`` — clusters the ground-truth poses (body points
relative to the box centre, divided by the box's longer side) and fits a Gaussian mixture to
the offsets of each cluster (and one to all of them). :class:`LearnedJitter` loads such a fit
from a small JSON file and, for a training person, draws offsets from the mixture of the
cluster nearest to that person's pose.

Refit on your own detector's output (the ``bbox`` results it writes on COCO train or val)::

    python -m fullbody.data.jitter fit --annotations person_keypoints.json \\
        --detections detections.json --out my_jitter.json --clusters 8

and point ``data.train.jitter.path`` at the output. :class:`UniformJitter` (independent uniform
centre shift and size scaling) and :class:`DPGJitter` (AlphaPose's published per-edge Gaussians)
are the fallbacks that need no detector.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.data.detections import PersonDetections, box_iou
from fullbody.jsonio import write_json_atomic

FORMAT = "fullbody-pgpg-jitter"
VERSION = 1
#: The four offsets of a detection relative to its matched ground-truth box.
OFFSET_NAMES = ("dx/w", "dy/h", "log(w_det/w_gt)", "log(h_det/h_gt)")
#: Number of body points a pose needs to be clustered (and to be assigned a cluster).
MIN_POSE_POINTS = 6
#: Matches a cluster needs for its own mixture; smaller clusters use the global one.
MIN_CLUSTER_MATCHES = 10
DEFAULT_ASSET = "jitter_coco_sample.json"


# ----------------------------------------------------------------------- box offsets
def box_offsets(gt: np.ndarray, det: np.ndarray) -> np.ndarray:
    """Offsets (..., 4) of xywh boxes ``det`` relative to ``gt``: dx/w, dy/h, log w, log h ratios."""
    gt, det = np.asarray(gt, np.float64), np.asarray(det, np.float64)
    gw, gh = gt[..., 2], gt[..., 3]
    dcx = (det[..., 0] + det[..., 2] / 2) - (gt[..., 0] + gw / 2)
    dcy = (det[..., 1] + det[..., 3] / 2) - (gt[..., 1] + gh / 2)
    return np.stack(
        [dcx / gw, dcy / gh, np.log(det[..., 2] / gw), np.log(det[..., 3] / gh)], axis=-1
    )


def apply_offsets(box: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The xywh box(es) that :func:`box_offsets` maps to ``offsets`` from ``box``."""
    box, offsets = np.asarray(box, np.float64), np.asarray(offsets, np.float64)
    w, h = box[..., 2], box[..., 3]
    cx = box[..., 0] + w / 2 + offsets[..., 0] * w
    cy = box[..., 1] + h / 2 + offsets[..., 1] * h
    nw, nh = w * np.exp(offsets[..., 2]), h * np.exp(offsets[..., 3])
    return np.stack([cx - nw / 2, cy - nh / 2, nw, nh], axis=-1)


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


# ----------------------------------------------------------------------- Gaussian mixture
@dataclass
class GaussianMixture:
    """A full-covariance Gaussian mixture (weights (M,), means (M, D), covariances (M, D, D))."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @cached_property
    def cholesky(self) -> np.ndarray:
        """Lower Cholesky factors of the covariances, (M, D, D)."""
        return np.linalg.cholesky(self.covariances)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws, shape (n, D)."""
        z = rng.standard_normal((n, self.means.shape[1]))
        if len(self.weights) == 1:
            return self.means[0] + z @ self.cholesky[0].T
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[comp] + np.einsum("nij,nj->ni", self.cholesky[comp], z)

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """Log density of each row of (n, D) ``x``."""
        return _logsumexp(self._component_log_prob(x), axis=1)

    def _component_log_prob(self, x: np.ndarray) -> np.ndarray:
        d = x.shape[1]
        chol = self.cholesky
        out = np.empty((len(x), len(self.weights)))
        for m in range(len(self.weights)):
            diff = np.linalg.solve(chol[m], (x - self.means[m]).T)  # (D, n)
            logdet = 2 * np.log(np.diag(chol[m])).sum()
            out[:, m] = (
                math.log(self.weights[m])
                - 0.5 * (diff**2).sum(0)
                - 0.5 * (logdet + d * math.log(2 * math.pi))
            )
        return out

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        components: int,
        rng: np.random.Generator,
        *,
        max_iter: int = 300,
        tol: float = 1e-7,
        reg: float = 1e-5,
    ) -> GaussianMixture:
        """Maximum-likelihood fit by EM (k-means++ start); ``reg`` is added to every variance.

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
        gm = cls(np.full(m, 1.0 / m), means, np.repeat(cov0[None], m, 0))
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
            gm = cls(nk / nk.sum(), means, covs)
            total = ll.mean()
            if total - prev < tol:
                break
            prev = total
        return gm

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GaussianMixture:
        gm = cls(
            np.asarray(d["weights"], np.float64),
            np.asarray(d["means"], np.float64),
            np.asarray(d["covariances"], np.float64),
        )
        m = len(gm.weights)
        if gm.means.shape != (m, 4) or gm.covariances.shape != (m, 4, 4):
            raise ValueError("mixture arrays must have shapes (M,), (M, 4), (M, 4, 4)")
        if not np.isclose(gm.weights.sum(), 1.0) or (gm.weights < 0).any():
            raise ValueError("mixture weights must be non-negative and sum to 1")
        np.linalg.cholesky(gm.covariances)  # raises if not positive definite
        return gm


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


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
def pose_descriptor(keypoints: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised body poses: (N, 17, 2) points relative to the box centre over the box's
    longer side, and the (N, 17) mask of labelled points. Accepts (133, 3) + (4,) too."""
    kp = np.asarray(keypoints, np.float64).reshape(-1, keypoints.shape[-2], 3)[:, :17]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    side = np.maximum(boxes[:, 2:].max(1), 1e-6)
    desc = (kp[..., :2] - centre[:, None]) / side[:, None, None]
    return desc, kp[..., 2] > 0


def _masked_sqdist(desc: np.ndarray, mask: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Mean squared distance over labelled points, (N, 17, 2) x (K, 17, 2) -> (N, K)."""
    d = ((desc[:, None] - centres[None]) ** 2).sum(-1)  # (N, K, 17)
    m = mask[:, None].astype(np.float64)
    return (d * m).sum(-1) / np.maximum(m.sum(-1), 1)


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


# ----------------------------------------------------------------------- jitter models
class LearnedJitter:
    """PGPG box jitter: offsets drawn from the detector-error mixture of the person's atomic pose.

    ``path``: a file written by :func:`fit_jitter` / ``python -m fullbody.data.jitter fit``;
    ``None`` loads the default shipped with the package (fitted on the COCO-WholeBody sample's
    person detections). ``scale`` multiplies the spread of the draws around their mean (1 =
    as learned; 0 = always the mean offset).
    """

    def __init__(self, path: str | os.PathLike | None = None, scale: float = 1.0) -> None:
        if path is None:
            ref = resources.files("fullbody") / "assets" / DEFAULT_ASSET
            data = json.loads(ref.read_text())
            self.path: Path | None = Path(str(ref))
        else:
            self.path = Path(path)
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.path}: jitter file not found")
            data = json.loads(self.path.read_text())
        self._init(data, scale, str(self.path))

    @classmethod
    def from_model(cls, model: dict[str, Any], scale: float = 1.0) -> LearnedJitter:
        """A jitter from a fitted model object (what :func:`fit_jitter` returns)."""
        self = cls.__new__(cls)
        self.path = None
        self._init(model, scale, "<model>")
        return self

    def _init(self, data: dict[str, Any], scale: float, src: str) -> None:
        self.model = data
        self.scale = float(scale)
        self._parse(data, src)

    def _parse(self, data: dict[str, Any], src: str) -> None:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"{src}: not a {FORMAT} v{VERSION} file")
        try:
            self.global_mixture = GaussianMixture.from_json(data["global"])
            cl = data["clusters"]
            self.centres = np.asarray(cl["centres"], np.float64).reshape(-1, 17, 2)
            self.mixtures = [
                None if m is None else GaussianMixture.from_json(m) for m in cl["mixtures"]
            ]
            self.low = np.asarray(data["clip"]["low"], np.float64).reshape(4)
            self.high = np.asarray(data["clip"]["high"], np.float64).reshape(4)
        except (KeyError, ValueError, np.linalg.LinAlgError) as e:
            raise ValueError(f"{src}: malformed jitter model: {e}") from e
        if len(self.mixtures) != len(self.centres):
            raise ValueError(f"{src}: {len(self.centres)} cluster centres but "
                             f"{len(self.mixtures)} mixtures")  # fmt: skip

    @property
    def num_clusters(self) -> int:
        return len(self.centres)

    def cluster_of(self, keypoints: np.ndarray, box: np.ndarray) -> int | None:
        """Atomic pose (cluster index) of a person, ``None`` without enough labelled body points."""
        desc, mask = pose_descriptor(keypoints, box)
        if mask.sum() < MIN_POSE_POINTS or not self.num_clusters:
            return None
        return int(_masked_sqdist(desc, mask, self.centres).argmin(1)[0])

    def mixture(self, cluster: int | None) -> GaussianMixture:
        """The mixture of a cluster (the global one for ``None`` or small clusters)."""
        if cluster is None or self.mixtures[cluster] is None:
            return self.global_mixture
        return self.mixtures[cluster]

    def sample_offsets(
        self, rng: np.random.Generator, n: int, cluster: int | None = None
    ) -> np.ndarray:
        """``n`` offset draws (n, 4) from a cluster's mixture, clipped to the fitted range."""
        gm = self.mixture(cluster)
        x = gm.sample(rng, n)
        if self.scale != 1.0:
            mean = gm.weights @ gm.means
            x = mean + self.scale * (x - mean)
        return np.clip(x, self.low, self.high)

    def __call__(
        self, box: np.ndarray, rng: np.random.Generator, keypoints: np.ndarray | None = None
    ) -> np.ndarray:
        """A jittered copy of the xywh ``box`` of a person with (133, 3) ``keypoints``."""
        # Poses only matter when some cluster has a mixture of its own.
        posed = keypoints is not None and any(m is not None for m in self.mixtures)
        cluster = self.cluster_of(keypoints, box) if posed else None
        return apply_offsets(box, self.sample_offsets(rng, 1, cluster)[0])

    def __repr__(self) -> str:
        return f"LearnedJitter(path={str(self.path)!r}, clusters={self.num_clusters})"


class UniformJitter:
    """Uniform box jitter: centre shifted by U(-shift, shift) box sizes per axis, each side
    scaled by U(scale). No detector needed (the usual fallback in top-down training)."""

    def __init__(self, shift: float = 0.1, scale: Sequence[float] = (0.85, 1.15)) -> None:
        if shift < 0 or len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"bad uniform jitter: shift={shift}, scale={tuple(scale)}")
        self.shift, self.scale = float(shift), (float(scale[0]), float(scale[1]))

    def __call__(
        self, box: np.ndarray, rng: np.random.Generator, keypoints: np.ndarray | None = None
    ) -> np.ndarray:
        off = np.concatenate(
            [rng.uniform(-self.shift, self.shift, 2), np.log(rng.uniform(*self.scale, 2))]
        )
        return apply_offsets(box, off)

    def __repr__(self) -> str:
        return f"UniformJitter(shift={self.shift}, scale={self.scale})"


class DPGJitter:
    """AlphaPose's published box jitter ("DPG"): with probability ``crop_prob`` a random
    sub-box covering U(crop_range) of each side, otherwise independent Gaussian offsets of
    each edge relative to the box size (x_min, y_min, x_max, y_max means and deviations)."""

    def __init__(
        self,
        crop_prob: float = 0.15,
        crop_range: Sequence[float] = (0.85, 1.0),
        edge_mean: Sequence[float] = (-0.0142, 0.0043, 0.0154, -0.0013),
        edge_std: Sequence[float] = (0.1158, 0.0680, 0.1337, 0.0711),
    ) -> None:
        self.crop_prob = float(crop_prob)
        self.crop_range = (float(crop_range[0]), float(crop_range[1]))
        self.edge_mean = np.asarray(edge_mean, np.float64).reshape(4)
        self.edge_std = np.asarray(edge_std, np.float64).reshape(4)

    def __call__(
        self, box: np.ndarray, rng: np.random.Generator, keypoints: np.ndarray | None = None
    ) -> np.ndarray:
        x, y, w, h = np.asarray(box, np.float64)
        if rng.random() < self.crop_prob:
            fw, fh = rng.uniform(*self.crop_range, 2)
            nw, nh = w * fw, h * fh
            return np.array([x + rng.uniform(0, w - nw), y + rng.uniform(0, h - nh), nw, nh])
        d = rng.normal(self.edge_mean, self.edge_std) * np.array([w, h, w, h])
        x1, y1, x2, y2 = x + d[0], y + d[1], x + w + d[2], y + h + d[3]
        # Keep at least a tenth of each side so that the box never inverts.
        x2, y2 = max(x2, x1 + 0.1 * w), max(y2, y1 + 0.1 * h)
        return np.array([x1, y1, x2 - x1, y2 - y1])

    def __repr__(self) -> str:
        return f"DPGJitter(crop_prob={self.crop_prob})"


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
    global_gm = GaussianMixture.fit(off, components, rng)
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
            mixtures.append(GaussianMixture.fit(x, components, rng).to_json() if fit else None)
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

    if args.command == "show":
        print(_summary(LearnedJitter(args.path).model))
        return 0
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"error: {out} exists (pass --force to overwrite)", file=sys.stderr)
        return 2
    gt = WholeBodySet.load(args.annotations)
    dets = PersonDetections.load(args.detections, images=gt.images)
    model = fit_jitter(
        gt,
        dets,
        iou_threshold=args.iou,
        min_score=args.min_score,
        clusters=args.clusters,
        components=args.components,
        seed=args.seed,
    )
    write_json_atomic(model, out)
    print(_summary(model))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
