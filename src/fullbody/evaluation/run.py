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
from fullbody.evaluation.nms import nms_per_image
from fullbody.evaluation.results import Predictions
from fullbody.evaluation.wholebody import evaluate
from fullbody.jsonio import write_json_atomic
from fullbody.keypoints import EVAL_PARTS


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
    nms: str = "none",
    oks_threshold: float = 0.9,
    breakdowns: bool = False,
    metrics_file: str | os.PathLike | None = None,
    breakdown_file: str | os.PathLike | None = None,
) -> EvaluationRun:
    """NMS (``"none"``, ``"oks"`` or ``"parametric"``) -> metric -> breakdowns -> files.

    ``metrics_file`` receives the metrics JSON and ``breakdown_file`` (default
    ``breakdown.json`` beside it) the breakdowns, each written atomically; ``None`` writes
    nothing.
    """
    parts = tuple(parts)
    preds = nms_per_image(preds, nms, oks_threshold=oks_threshold)  # type: ignore[arg-type]
    metrics = evaluate(gt, preds, parts, sigmas)
    extra: dict[str, Any] = {}
    if breakdowns:
        extra = {
            "size": size_breakdown(gt, preds, parts, sigmas=sigmas),
            "occlusion": occlusion_breakdown(
                gt, preds, [p for p in OCCLUSION_PARTS if p in parts], sigmas=sigmas
            ),
        }
    written: list[Path] = []
    if metrics_file is not None:
        written.append(write_json_atomic(metrics, metrics_file))
        if extra:
            target = breakdown_file or Path(metrics_file).with_name("breakdown.json")
            written.append(write_json_atomic(extra, target))
    return EvaluationRun(preds, metrics, extra, written)
