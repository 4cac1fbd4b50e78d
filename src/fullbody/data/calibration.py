"""Recalibrated teacher confidences: per part, the chance that a point lands within the OKS
tolerance, as a monotone function of its confidence.

The training loss weighs pseudo-labelled points by their teacher's confidence, read as the
chance that the point is right. Teachers are rarely calibrated that way, so a small map fitted
on points that both the pseudo-labels and humans label (:func:`paired_points`) replaces each
confidence by the observed fraction of points within the OKS tolerance at that confidence:
isotonic regression by pool-adjacent-violators (:func:`isotonic`), one curve per part
(:func:`fit_calibration_map`), applied by piecewise-linear interpolation
(:meth:`CalibrationMap.apply`). The pseudo-label quality report fits and saves one
(:mod:`fullbody.pseudo.report`); ``data.train.conf_calibration`` applies it to training labels,
and the synthetic scenes fit one on a few images whose exact labels are known
(:class:`fullbody.data.datamodule.SyntheticDataModule`).

The map is a JSON file: per part, increasing confidence knots, the non-decreasing
probabilities at them and the point count of the fit. Parts with fewer than
:data:`MIN_POINTS` points are left out (with a warning); applying a map leaves the parts it
lacks unchanged and says so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.errors import UserError
from fullbody.jsonio import read_json, write_json_atomic
from fullbody.keypoints import PART_SLICES, part_sigmas

#: A point is within the OKS tolerance when its OKS term reaches this.
OKS_TOLERANCE = 0.5
#: Fewest points a part's curve is fitted on: at 50 the part's within-tolerance fraction is
#: known to about +-0.07 (one standard error at 0.5); on fewer, a curve that moves every
#: training weight of the part would mostly fit noise, so the part is left out instead.
MIN_POINTS = 50
FORMAT = "fullbody.calibration_map"
VERSION = 1


class CalibrationMapError(UserError, ValueError):
    """A confidence calibration map is missing, malformed or cannot apply; the message names
    the file and the option that gave it."""


class TooFewPointsWarning(UserWarning):
    """A part had too few points to fit its calibration curve, so the map leaves it out."""


def point_errors(
    pred: np.ndarray, gt: np.ndarray, area: np.ndarray, sigmas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised error and OKS term of aligned points.

    ``pred``, ``gt``: (..., K, >=2) positions; ``area``: the ground-truth areas, broadcastable
    to (..., K) (e.g. (N, 1)); ``sigmas``: (K,). Error = distance / sqrt(area); OKS term =
    exp(-d^2 / (2 area (2 sigma)^2)), cocoeval's per-point arithmetic.
    """
    d2 = ((np.asarray(pred, float)[..., :2] - np.asarray(gt, float)[..., :2]) ** 2).sum(-1)
    area = np.maximum(np.asarray(area, float), np.spacing(1))
    return np.sqrt(d2 / area), np.exp(-d2 / (2 * np.asarray(sigmas, float)) ** 2 / area / 2)


def paired_points(
    labels: WholeBodySet, human: WholeBodySet
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per part: (confidence, normalised error, OKS term) of every point labelled both in
    ``labels`` and in ``human`` (people matched by annotation id, crowd regions left out).
    The body is left out when ``labels`` copied it from ``human`` (nothing to judge)."""
    row = {int(a): i for i, a in enumerate(labels.ann_ids)}
    keep = np.flatnonzero(~human.iscrowd.astype(bool))
    missing = [int(a) for a in human.ann_ids[keep] if int(a) not in row]
    if missing:
        raise ValueError(f"annotation {missing[0]} of the reference labels has no pseudo-label")
    lab_rows = np.array([row[int(a)] for a in human.ann_ids[keep]], dtype=np.int64)
    pred, gt = labels.keypoints[lab_rows], human.keypoints[keep]
    conf, area = labels.conf[lab_rows], human.areas[keep][:, None]
    out = {}
    for part, sl in PART_SLICES.items():
        both = (pred[:, sl, 2] > 0) & (gt[:, sl, 2] > 0)
        p, g = pred[:, sl][both], gt[:, sl][both]
        if part == "body" and np.array_equal(p[:, :2], g[:, :2]):
            continue
        sig = np.broadcast_to(part_sigmas(part), both.shape)[both]
        err, term = point_errors(p, g, np.broadcast_to(area, both.shape)[both], sig)
        out[part] = (conf[:, sl][both], err, term)
    return out


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing least-squares fit of ``y`` on ``x`` (pool-adjacent-violators).

    Returns (knots, values): strictly increasing ``x`` knots (the first and last ``x`` of
    each pooled block) and the fitted value at them; between knots the fit is read by linear
    interpolation, which is exact within a block (the value is constant there). Equal ``x``
    are pooled first, so the fit is a function of ``x``.
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.size != y.size or not x.size:
        raise ValueError(f"isotonic needs as many x as y, at least one: {x.size}, {y.size}")
    ux, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    # Pooled blocks as parallel stacks: total weight, weighted mean, first index into ux.
    weight: list[float] = []
    value: list[float] = []
    first: list[int] = []
    for i, (w, v) in enumerate(zip(counts.tolist(), means.tolist())):
        weight.append(w)
        value.append(v)
        first.append(i)
        while len(value) > 1 and value[-2] >= value[-1]:
            w1, v1 = weight.pop(), value.pop()
            first.pop()
            total = weight[-1] + w1
            value[-1] = (weight[-1] * value[-1] + w1 * v1) / total
            weight[-1] = total
    ends = [*first[1:], len(ux)]
    idx = sorted({i for a, b in zip(first, ends) for i in (a, b - 1)})
    fitted = np.repeat(value, np.diff([*first, len(ux)]))
    return ux[idx], fitted[idx]


@dataclass(frozen=True)
class PartCurve:
    """One part's calibration: increasing confidence knots, probabilities, points fitted."""

    conf: np.ndarray
    prob: np.ndarray
    n: int


@dataclass(frozen=True)
class CalibrationMap:
    """Per part, confidence -> chance of landing within the OKS tolerance."""

    parts: Mapping[str, PartCurve]
    path: Path | None = None

    def apply(self, conf: np.ndarray) -> np.ndarray:
        """Recalibrated (..., 133) confidences: each part's through its curve (linear between
        knots, constant beyond the ends); parts the map lacks are kept and named in one
        warning."""
        out = np.array(conf, dtype=np.float64, copy=True)
        for part, curve in self.parts.items():
            sl = PART_SLICES[part]
            out[..., sl] = np.interp(out[..., sl], curve.conf, curve.prob)
        lacking = [p for p in PART_SLICES if p not in self.parts]
        if lacking:
            warnings.warn(
                f"{self.path or 'calibration map'}: no curve for {', '.join(lacking)}; "
                "their confidences are used as they are",
                TooFewPointsWarning,
                stacklevel=2,
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "target": f"P(OKS term >= {OKS_TOLERANCE} | confidence), isotonic",
            "parts": {
                p: {"conf": c.conf.tolist(), "prob": c.prob.tolist(), "n": c.n}
                for p, c in self.parts.items()
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the map atomically as JSON."""
        return write_json_atomic(self.to_json(), path)


def fit_calibration_map(
    points: Mapping[str, tuple[np.ndarray, np.ndarray]],
    min_points: int = MIN_POINTS,
    source: str = "calibration",
) -> CalibrationMap:
    """Fit a curve per part from (confidence, within-tolerance indicator) arrays; parts with
    fewer than ``min_points`` points are left out with a :class:`TooFewPointsWarning`."""
    parts = {}
    for part, (conf, within) in points.items():
        n = int(np.size(conf))
        if n < min_points:
            warnings.warn(
                f"{source}: {part} has {n} points labelled in both sets, fewer than "
                f"{min_points}: left out of the calibration map",
                TooFewPointsWarning,
                stacklevel=2,
            )
            continue
        knots, prob = isotonic(conf, np.asarray(within, float))
        parts[part] = PartCurve(knots, prob, n)
    return CalibrationMap(parts)


def fit_against(
    labels: WholeBodySet,
    reference: WholeBodySet,
    min_points: int = MIN_POINTS,
    source: str = "calibration",
) -> CalibrationMap:
    """The map of ``labels``' confidences against the OKS tolerance of ``reference`` (human or
    exact labels of the same people): the indicator OKS term >= :data:`OKS_TOLERANCE`.
    ``source`` names the map in the warnings (e.g. the file it goes to)."""
    pairs = paired_points(labels, reference)
    points = {p: (c, term >= OKS_TOLERANCE) for p, (c, _, term) in pairs.items()}
    return fit_calibration_map(points, min_points, source)


def read_calibration_map(path: str | os.PathLike, option: str) -> CalibrationMap:
    """Read and check a map file; any problem is a :class:`CalibrationMapError` naming the
    file and ``option``."""
    path = Path(os.path.expanduser(str(path)))

    def bad(problem: str) -> CalibrationMapError:
        return CalibrationMapError(f"{option}: {path}: {problem}")

    if not path.is_file():
        raise bad("no such file (write one with pseudo_label.py report=true)")
    try:
        data = read_json(path, "calibration map")
    except UserError as e:
        raise bad(f"not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f"not a calibration map (format is not {FORMAT!r})")
    if data.get("version") != VERSION:
        raise bad(f"version {data.get('version')!r}, this code reads version {VERSION}")
    parts = data.get("parts")
    if not isinstance(parts, dict) or not parts:
        raise bad("'parts' holds no curve (every part had too few points to fit)")
    curves = {}
    for part, c in parts.items():
        if part not in PART_SLICES:
            raise bad(f"unknown part {part!r}; expected some of {list(PART_SLICES)}")
        try:
            conf = np.asarray(c["conf"], dtype=np.float64)
            prob = np.asarray(c["prob"], dtype=np.float64)
            n = int(c["n"])
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"parts.{part}: needs numeric 'conf', 'prob' lists and 'n' ({e})") from None
        if conf.ndim != 1 or conf.shape != prob.shape or not conf.size:
            raise bad(f"parts.{part}: 'conf' and 'prob' must be lists of one length >= 1")
        if not (np.isfinite(conf).all() and np.isfinite(prob).all()):
            raise bad(f"parts.{part}: non-finite values")
        if np.any(np.diff(conf) <= 0) or np.any(np.diff(prob) < 0):
            raise bad(f"parts.{part}: 'conf' must increase and 'prob' must not decrease")
        if prob.min() < 0 or prob.max() > 1:
            raise bad(f"parts.{part}: 'prob' outside [0, 1]")
        curves[part] = PartCurve(conf, prob, n)
    return CalibrationMap(curves, path)
