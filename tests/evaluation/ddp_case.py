"""A tiny validation run for the evaluation callback, in one process or several (DDP on CPU).

The "model" returns perturbed ground truth as its predictions, so the metric is known exactly:

    PYTHONPATH=src python tests/evaluation/ddp_case.py --devices 2 --out metrics.json

writes (rank 0) the callback's metrics, the values Lightning logged and the number of
predictions evaluated. ``tests/evaluation/test_callback.py`` runs it with 1 and 2 processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.callback import WholeBodyEvaluator
from fullbody.results import Predictions

if not __package__:  # run as a script (every DDP rank): the tests' builders are importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.poses import random_case


class DummyModule(pl.LightningModule):
    """Returns row ``i`` of fixed predictions for sample ``i`` (person_id = i)."""

    def __init__(self, preds: Predictions) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.preds = preds

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> dict:
        rows = batch.cpu().numpy()
        p = self.preds
        boxes = p.bboxes if p.bboxes is not None else np.zeros((len(p), 4))
        return {
            "preds": {
                "image_id": torch.from_numpy(p.image_ids[rows]),
                "person_id": batch,
                "keypoints": torch.from_numpy(p.keypoints[rows]).float(),
                "score": torch.from_numpy(p.scores[rows]),
                "bbox": torch.from_numpy(boxes[rows]).float(),
            }
        }

    test_step = validation_step


class DummyData(pl.LightningDataModule):
    def __init__(self, gt: WholeBodySet, num_preds: int, batch_size: int = 5) -> None:
        super().__init__()
        self.val_annotations = gt
        self.test_annotations = gt
        self.num_preds = num_preds
        self.batch_size = batch_size

    def val_dataloader(self) -> DataLoader:
        return DataLoader(torch.arange(self.num_preds), batch_size=self.batch_size)

    test_dataloader = val_dataloader


def as_float32_predictions(preds: Predictions) -> Predictions:
    """What the callback sees after the float32 round trip of the dummy module's tensors."""
    return Predictions(
        preds.image_ids,
        preds.keypoints.astype(np.float32).astype(np.float64),
        preds.scores,
        bboxes=None if preds.bboxes is None else preds.bboxes.astype(np.float32).astype(np.float64),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    gt, preds = random_case()
    with tempfile.TemporaryDirectory() as tmp:
        callback = WholeBodyEvaluator(metrics_dir=tmp)
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=args.devices,
            strategy="ddp" if args.devices > 1 else "auto",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp,
            callbacks=[callback],
        )
        trainer.validate(DummyModule(preds), datamodule=DummyData(gt, len(preds)), verbose=False)
        if trainer.is_global_zero:
            written = json.loads((Path(tmp) / "metrics.json").read_text())
            logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
            out = {"callback": callback.metrics, "logged": logged, "written": written}
            out["world_size"] = trainer.world_size
            out["num_predictions"] = len(preds)
            out["num_evaluated"] = callback.num_evaluated
            args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
