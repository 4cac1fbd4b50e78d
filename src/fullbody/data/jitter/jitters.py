"""The jitters the dataset calls: PGPG (:class:`LearnedJitter`), AlphaPose's :class:`DPGJitter`
and :class:`UniformJitter`, with the box offsets and the Gaussian mixtures PGPG draws from.

Fitting (matching detections, EM, k-means over poses) lives in :mod:`.fit`; nothing here needs it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.errors import InputNotFoundError

FORMAT = "fullbody-pgpg-jitter"
VERSION = 1
#: The four offsets of a detection relative to its matched ground-truth box.
OFFSET_NAMES = ("dx/w", "dy/h", "log(w_det/w_gt)", "log(h_det/h_gt)")
#: Number of body points a pose needs to be clustered (and to be assigned a cluster).
MIN_POSE_POINTS = 6
#: The example fit shipped with the package (the shared sample's 14 boxes: a demonstration).
EXAMPLE_ASSET = "jitter_coco_sample.json"


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


# ----------------------------------------------------------------------- jitter models
class LearnedJitter:
    """PGPG box jitter: offsets drawn from the detector-error mixture of the person's atomic pose.

    ``path``: a file written by :func:`.fit.fit_jitter` / ``python -m fullbody.data.jitter fit``;
    ``None`` loads the example shipped with the package, fitted on the COCO-WholeBody sample's
    14 matched person detections (one cluster, one Gaussian: a demonstration of the format,
    not a model of your detector). ``scale`` multiplies the spread of the draws around their mean (1 =
    as learned; 0 = always the mean offset).
    """

    def __init__(self, path: str | os.PathLike | None = None, scale: float = 1.0) -> None:
        if path is None:
            ref = resources.files("fullbody") / "assets" / EXAMPLE_ASSET
            data = json.loads(ref.read_text())
            self.path: Path | None = Path(str(ref))
        else:
            self.path = Path(path)
            if not self.path.is_file():
                raise InputNotFoundError(f"{self.path}: jitter file not found")
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
