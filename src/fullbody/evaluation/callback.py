"""Lightning callback: exact whole-body AP/AR at the end of every validation and test epoch.

The LightningModule's ``validation_step`` / ``test_step`` returns ``{"preds": {...}}`` with
``image_id`` (B,), ``person_id`` (B,) unique per sample, ``keypoints`` (B, 133, 3) in image
pixels with confidences, ``score`` (B,) and ``bbox`` (B, 4) xywh. The callback collects them per
batch, gathers them from every rank at epoch end (``DistributedSampler`` pads the last batches
with repeated samples: duplicates are dropped by ``person_id``, and rows are put in
``person_id`` order so that 1 and N processes see the same results file), optionally applies
pose NMS per image, evaluates ONCE on rank 0 against ``trainer.datamodule.val_annotations``
(``test_annotations`` for test), broadcasts the numbers and logs them as ``val/<part>/<stat>``
(``test/...``) on every rank, so every logger (W&B, CSV, ...) receives them.

With ``history_file`` set, every validation also appends one JSON line ``{"epoch", "step",
"wall_min", "metrics"}`` to it (``wall_min``: minutes since this process started fitting), the
learning curve that :mod:`fullbody.analysis.curve` draws. The rows travel in the checkpoint: a run
resumed with ``ckpt_path=`` starts its history file with them (minutes go on from the last), so
its learning curve is the whole run's.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.distributed as dist

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.nms import NMSMethod, check_nms_method
from fullbody.evaluation.run import run_evaluation
from fullbody.evaluation.wholebody import format_table
from fullbody.jsonio import write_atomic
from fullbody.keypoints import EVAL_PARTS, NUM_KEYPOINTS
from fullbody.results import Predictions

_FIELDS = ("image_id", "person_id", "keypoints", "score", "bbox")
_GT_ATTR = {"val": "val_annotations", "test": "test_annotations"}
_FILES = {"val": "metrics.json", "test": "test_metrics.json"}
# Our numbers are broadcast from rank 0, identical on every rank: syncing them again would be
# 60 useless all-reduces, so Lightning's advice to pass sync_dist=True is silenced for them.
_SYNC_ADVICE = (
    r"It is recommended to use `self\.log\('(val|test)/("
    + "|".join(map(re.escape, EVAL_PARTS))
    + r")/.*sync_dist=True"
)


def gather_predictions(chunks: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate batches (of every rank), drop repeated ``person_id``s, order by ``person_id``."""
    if not chunks:
        return {
            "image_id": np.zeros(0, np.int64),
            "person_id": np.zeros(0, np.int64),
            "keypoints": np.zeros((0, NUM_KEYPOINTS, 3)),
            "score": np.zeros(0),
            "bbox": np.zeros((0, 4)),
        }
    cat = {k: np.concatenate([c[k] for c in chunks]) for k in _FIELDS}
    _, first = np.unique(cat["person_id"], return_index=True)  # sorted by person_id
    return {k: v[first] for k, v in cat.items()}


class WholeBodyEvaluator(pl.Callback):
    """Collect predictions, evaluate the official COCO-WholeBody metric once, log it everywhere.

    Args:
        parts: parts to evaluate (default all six).
        sigmas: "official" or "halpe".
        nms: pose NMS applied per image before evaluating: "none", "oks" or "parametric".
        oks_threshold: OKS-NMS threshold.
        metrics_dir: folder to write ``metrics.json`` (validation) / ``test_metrics.json`` into,
            keys ``"<part>/<stat>"``; ``None`` writes nothing.
        breakdowns: also compute AP by size and occlusion (kept in ``self.breakdowns`` and
            written as ``breakdown.json`` / ``test_breakdown.json`` next to the metrics).
        print_table: print the per-part table on rank 0 after each evaluation.
        history_file: JSON-lines file that every validation appends its metrics to, with the
            epoch, the optimiser step and the wall-clock minutes since fitting began.
    """

    def __init__(
        self,
        parts: Sequence[str] = EVAL_PARTS,
        sigmas: str = "official",
        nms: NMSMethod = "none",
        oks_threshold: float = 0.9,
        metrics_dir: str | os.PathLike | None = None,
        breakdowns: bool = False,
        print_table: bool = False,
        history_file: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.parts = tuple(parts)
        self.sigmas = sigmas
        self.nms = check_nms_method(nms)
        self.oks_threshold = oks_threshold
        self.metrics_dir = Path(metrics_dir) if metrics_dir is not None else None
        self.want_breakdowns = breakdowns
        self.print_table = print_table
        self.history_file = Path(history_file) if history_file is not None else None
        self._fit_start: float | None = None
        self._history: list[dict[str, Any]] = []  # the rows of history_file (rank 0)
        self._minutes_before = 0.0  # of the run this one resumes
        self.metrics: dict[str, float] = {}
        self.breakdowns: dict[str, Any] = {}
        self.num_evaluated = 0  # unique predictions of the last evaluation (before NMS)
        self._chunks: dict[str, list[dict[str, np.ndarray]]] = {"val": [], "test": []}

    # ------------------------------------------------------------------ collection
    def _collect(self, stage: str, outputs: Any) -> None:
        if not isinstance(outputs, Mapping) or "preds" not in outputs:
            raise KeyError(
                f"WholeBodyEvaluator: {stage} step must return {{'preds': {{...}}}} "
                f"with fields {_FIELDS}, got {type(outputs).__name__}"
            )
        preds = outputs["preds"]
        missing = [k for k in _FIELDS if k not in preds]
        if missing:
            raise KeyError(f"WholeBodyEvaluator: {stage} step 'preds' lacks {missing}")
        chunk = {k: _numpy(preds[k]) for k in _FIELDS}
        chunk["image_id"] = chunk["image_id"].astype(np.int64).reshape(-1)
        chunk["person_id"] = chunk["person_id"].astype(np.int64).reshape(-1)
        chunk["keypoints"] = chunk["keypoints"].astype(np.float64).reshape(-1, NUM_KEYPOINTS, 3)
        chunk["score"] = chunk["score"].astype(np.float64).reshape(-1)
        chunk["bbox"] = chunk["bbox"].astype(np.float64).reshape(-1, 4)
        self._chunks[stage].append(chunk)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.monotonic()
        if self._history and self.history_file is not None and trainer.is_global_zero:
            # Resumed: the history up to the checkpoint, without rows of validations after it.
            text = "".join(json.dumps(row) + "\n" for row in self._history)
            write_atomic(text, self.history_file)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self._history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._history = list(state_dict.get("history", []))
        self._minutes_before = float(self._history[-1]["wall_min"]) if self._history else 0.0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._chunks["val"] = []

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._chunks["test"] = []

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking:
            self._collect("val", outputs)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._collect("test", outputs)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._finish(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish(trainer, pl_module, "test")

    # ------------------------------------------------------------------ evaluation
    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        local = self._chunks[stage]
        self._chunks[stage] = []
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, local)
            chunks = [c for rank_chunks in everyone for c in rank_chunks]
        else:
            chunks = local
        result: dict[str, Any] | None = None
        if trainer.is_global_zero:
            result = self._evaluate(trainer, gather_predictions(chunks), stage)
        result = trainer.strategy.broadcast(result, src=0)
        self.metrics = result["metrics"]
        self.breakdowns = result["breakdowns"]
        self.num_evaluated = result["num_evaluated"]
        warnings.filterwarnings("ignore", message=_SYNC_ADVICE)
        for key, value in self.metrics.items():
            pl_module.log(f"{stage}/{key}", float(value), sync_dist=False)

    def _evaluate(self, trainer: pl.Trainer, arrays: dict[str, np.ndarray], stage: str) -> dict:
        gt = getattr(trainer.datamodule, _GT_ATTR[stage], None) if trainer.datamodule else None
        if not isinstance(gt, WholeBodySet):
            raise AttributeError(
                f"WholeBodyEvaluator needs trainer.datamodule.{_GT_ATTR[stage]} "
                f"(a WholeBodySet), got {type(gt).__name__}"
            )
        num = len(arrays["image_id"])
        preds = Predictions(
            image_ids=arrays["image_id"],
            keypoints=arrays["keypoints"],
            scores=arrays["score"],
            bboxes=arrays["bbox"],
        )
        prefix = "" if stage == "val" else "test_"
        run = run_evaluation(
            gt, preds, parts=self.parts, sigmas=self.sigmas, nms=self.nms,
            oks_threshold=self.oks_threshold, breakdowns=self.want_breakdowns,
            metrics_file=None if self.metrics_dir is None else self.metrics_dir / _FILES[stage],
            breakdown_file=None if self.metrics_dir is None
            else self.metrics_dir / f"{prefix}breakdown.json",
        )  # fmt: skip
        metrics, breakdowns = run.metrics, run.breakdowns
        if stage == "val" and self.history_file is not None:
            self._append_history(trainer, metrics)
        if self.print_table:
            print(f"\n{stage} (epoch {trainer.current_epoch}, {len(run.predictions)} predictions)")
            print(format_table(metrics, self.parts))
        return {"metrics": metrics, "breakdowns": breakdowns, "num_evaluated": num}

    def _append_history(self, trainer: pl.Trainer, metrics: Mapping[str, float]) -> None:
        assert self.history_file is not None
        start = self._fit_start if self._fit_start is not None else time.monotonic()
        row = {
            "epoch": int(trainer.current_epoch),
            "step": int(trainer.global_step),
            "wall_min": self._minutes_before + (time.monotonic() - start) / 60.0,
            "metrics": {k: float(v) for k, v in metrics.items()},
        }
        self._history.append(row)
        self.history_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.history_file, "a") as f:
            f.write(json.dumps(row) + "\n")


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
