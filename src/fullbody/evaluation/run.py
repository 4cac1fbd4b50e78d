"""One evaluation pass, as ``eval.py`` and the training callback run it: pose NMS per image,
the official metric per part, optional size/occlusion breakdowns, metrics files written.

Plain arrays in, numbers and files out: no torch, no Lightning, no Hydra.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.breakdown import OCCLUSION_PARTS, occlusion_breakdown, size_breakdown
from fullbody.evaluation.nms import NMSMethod, nms_per_image
from fullbody.evaluation.wholebody import evaluate
from fullbody.jsonio import write_json_atomic
from fullbody.keypoints import EVAL_PARTS
from fullbody.results import Predictions
from fullbody.utils.cli import OutputError


@dataclass
class EvaluationRun:
    """What one pass produced: the predictions scored (after NMS), ``"<part>/<stat>"``
    numbers, breakdowns (``{}`` unless asked for) and the files written."""

    predictions: Predictions
    metrics: dict[str, float]
    breakdowns: dict[str, Any] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)


def run_evaluation(
    gt: WholeBodySet,
    preds: Predictions,
    *,
    parts: Sequence[str] = EVAL_PARTS,
    sigmas: str = "official",
    nms: NMSMethod = "none",
    oks_threshold: float = 0.9,
    breakdowns: bool = False,
    metrics_file: str | os.PathLike | None = None,
    breakdown_file: str | os.PathLike | None = None,
    notes: Sequence[str] = (),
) -> EvaluationRun:
    """NMS (``"none"``, ``"oks"`` or ``"parametric"``) -> metric -> breakdowns -> files.

    ``metrics_file`` receives the metrics JSON (with ``notes`` under ``"notes"`` when given)
    and ``breakdown_file`` (default ``breakdown.json`` beside it) the breakdowns, each written
    atomically by :func:`write_evaluation`; ``None`` writes nothing.
    """
    parts = tuple(parts)
    preds = nms_per_image(preds, nms, oks_threshold=oks_threshold)
    metrics = evaluate(gt, preds, parts, sigmas)
    extra: dict[str, Any] = {}
    if breakdowns:
        extra = {
            "size": size_breakdown(gt, preds, parts, sigmas=sigmas),
            "occlusion": occlusion_breakdown(
                gt, preds, [p for p in OCCLUSION_PARTS if p in parts], sigmas=sigmas
            ),
        }
    run = EvaluationRun(preds, metrics, extra)
    if metrics_file is not None:
        write_evaluation(run, metrics_file, breakdown_file, notes)
    return run


def write_evaluation(
    run: EvaluationRun,
    metrics_file: str | os.PathLike,
    breakdown_file: str | os.PathLike | None = None,
    notes: Sequence[str] = (),
) -> list[Path]:
    """Write ``run``'s metrics (plus ``notes``) and breakdowns atomically; record the paths in
    ``run.written``. A full disk or a lost folder raises :class:`OutputError` naming
    ``metrics_file`` in one line (``eval.py`` exits 2 on it)."""
    metrics: dict[str, Any] = dict(run.metrics)
    if notes:
        metrics["notes"] = list(notes)
    files: list[tuple[Any, str | os.PathLike]] = [(metrics, metrics_file)]
    if run.breakdowns:
        files.append(
            (run.breakdowns, breakdown_file or Path(metrics_file).with_name("breakdown.json"))
        )
    for obj, path in files:
        try:
            run.written.append(write_json_atomic(obj, path))
        except OSError as e:
            raise OutputError(f"metrics_file={path}: cannot write: {e.strerror or e}") from None
    return run.written
