"""The Lightning callback: one exact evaluation per epoch, logged on every rank; DDP == 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from helpers.configs import compose_config
from helpers.poses import random_case

from fullbody.evaluation.callback import WholeBodyEvaluator, gather_predictions
from fullbody.evaluation.nms import nms_per_image
from fullbody.evaluation.wholebody import STATS, evaluate
from fullbody.keypoints import EVAL_PARTS

from .ddp_case import DummyData, DummyModule, as_float32_predictions

ROOT = Path(__file__).resolve().parents[2]


def _trainer(callback: WholeBodyEvaluator, tmp_path: Path) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )


@pytest.fixture(scope="module")
def case():
    return random_case()


def test_validation_logs_the_exact_metric(case, tmp_path):
    gt, preds = case
    callback = WholeBodyEvaluator(metrics_dir=tmp_path)
    trainer = _trainer(callback, tmp_path)
    trainer.validate(DummyModule(preds), datamodule=DummyData(gt, len(preds)), verbose=False)
    expected = evaluate(gt, as_float32_predictions(preds))
    assert callback.metrics == expected and callback.num_evaluated == len(preds)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert set(logged) == {f"val/{p}/{s}" for p in EVAL_PARTS for s in STATS}
    assert logged["val/wholebody/AP"] == pytest.approx(expected["wholebody/AP"], abs=1e-6)
    assert json.loads((tmp_path / "metrics.json").read_text()) == expected


def test_test_stage_nms_and_breakdowns(case, tmp_path):
    gt, preds = case
    callback = WholeBodyEvaluator(
        parts=["body", "lefthand"], nms="oks", metrics_dir=tmp_path, breakdowns=True
    )
    trainer = _trainer(callback, tmp_path)
    trainer.test(DummyModule(preds), datamodule=DummyData(gt, len(preds)), verbose=False)
    f32 = as_float32_predictions(preds)
    expected = evaluate(gt, nms_per_image(f32, "oks"), parts=["body", "lefthand"])
    assert callback.metrics == expected
    assert "test/lefthand/AP" in trainer.callback_metrics
    assert json.loads((tmp_path / "test_metrics.json").read_text()) == expected
    written = json.loads((tmp_path / "test_breakdown.json").read_text())
    assert set(written) == {"size", "occlusion"} and set(written["occlusion"]) == {"lefthand"}


def test_sanity_check_batches_are_not_collected():
    callback = WholeBodyEvaluator()
    out = {"preds": {}}
    callback.on_validation_batch_end(SimpleNamespace(sanity_checking=True), None, out, None, 0)
    assert callback._chunks["val"] == []


def test_bad_outputs_and_missing_ground_truth(case, tmp_path):
    callback = WholeBodyEvaluator()
    live = SimpleNamespace(sanity_checking=False)
    with pytest.raises(KeyError, match="must return"):
        callback.on_validation_batch_end(live, None, {"loss": 1.0}, None, 0)
    with pytest.raises(KeyError, match=r"lacks \['person_id', 'bbox'\]"):
        preds = {"image_id": 1, "keypoints": 0, "score": 0}
        callback.on_validation_batch_end(live, None, {"preds": preds}, None, 0)
    with pytest.raises(ValueError, match="unknown pose NMS method"):
        WholeBodyEvaluator(nms="soft")

    gt, preds = case
    data = DummyData(gt, len(preds))
    data.val_annotations = None
    trainer = _trainer(WholeBodyEvaluator(), tmp_path)
    with pytest.raises(AttributeError, match="datamodule.val_annotations"):
        trainer.validate(DummyModule(preds), datamodule=data, verbose=False)


def test_gather_drops_repeats_and_orders_by_person():
    def chunk(pids):
        n = len(pids)
        return {
            "image_id": np.ones(n, np.int64),
            "person_id": np.array(pids, np.int64),
            "keypoints": np.array(pids, float)[:, None, None] * np.ones((n, 133, 3)),
            "score": np.array(pids, float),
            "bbox": np.zeros((n, 4)),
        }

    merged = gather_predictions([chunk([0, 2, 4]), chunk([1, 3, 0])])  # rank 1 repeats 0
    assert merged["person_id"].tolist() == [0, 1, 2, 3, 4]
    assert merged["score"].tolist() == [0, 1, 2, 3, 4]
    assert len(gather_predictions([])["person_id"]) == 0
    assert torch.is_tensor(torch.as_tensor(merged["keypoints"]))


def _run(devices: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(Path(__file__).with_name("ddp_case.py")), "--devices", str(devices)]
    done = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_ddp_processes_give_what_one_gives(case, tmp_path):
    two = _run(2, tmp_path / "two.json")  # strategy="ddp", gloo, as train.py would run it
    gt, preds = case
    callback = WholeBodyEvaluator()
    trainer = _trainer(callback, tmp_path)
    trainer.validate(DummyModule(preds), datamodule=DummyData(gt, len(preds)), verbose=False)
    one = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert two["world_size"] == 2 and two["num_predictions"] == len(preds)
    assert len(preds) % 2 == 1  # the sampler repeated one sample ...
    assert two["num_evaluated"] == callback.num_evaluated == len(preds)  # ... and it was dropped
    assert two["callback"] == callback.metrics
    assert two["written"] == callback.metrics
    assert two["logged"] == one and len(one) == 60


def test_callback_config_instantiates(tmp_path):
    from hydra.utils import instantiate

    overrides = [
        "+callbacks=evaluation",
        "+callbacks.evaluation.metrics_dir=${paths.output_dir}",
        "ann_file=a",
        "results_file=b",
    ]
    cfg = compose_config("eval", overrides, output_dir=tmp_path)
    callback = instantiate(cfg.callbacks.evaluation)
    assert isinstance(callback, WholeBodyEvaluator)
    assert callback.metrics_dir == tmp_path and callback.parts == EVAL_PARTS


def test_each_validation_appends_a_history_row_and_testing_does_not(case, tmp_path):
    gt, preds = case
    history = tmp_path / "val_history.jsonl"
    callback = WholeBodyEvaluator(history_file=history)
    trainer = _trainer(callback, tmp_path)
    module, data = DummyModule(preds), DummyData(gt, len(preds))
    trainer.validate(module, datamodule=data, verbose=False)
    trainer.validate(module, datamodule=data, verbose=False)
    trainer.test(module, datamodule=data, verbose=False)
    rows = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["metrics"] == pytest.approx(callback.metrics)
    assert set(rows[0]) == {"epoch", "step", "wall_min", "metrics"} and rows[0]["wall_min"] >= 0


def test_the_history_travels_in_the_checkpoint_and_a_resumed_run_goes_on_from_it(case, tmp_path):
    """A resumed run's history file starts with the rows up to the checkpoint (not the rows of
    validations after it), and its minutes go on from the last of them."""
    gt, preds = case
    first = WholeBodyEvaluator(history_file=tmp_path / "first.jsonl")
    trainer = _trainer(first, tmp_path)
    module, data = DummyModule(preds), DummyData(gt, len(preds))
    trainer.validate(module, datamodule=data, verbose=False)
    state = first.state_dict()
    trainer.validate(module, datamodule=data, verbose=False)  # after the checkpoint: dropped
    (saved,) = state["history"]
    saved["wall_min"] = 5.0  # as if the first run had validated after five minutes

    resumed = WholeBodyEvaluator(history_file=tmp_path / "second.jsonl")
    resumed.load_state_dict(state)
    trainer = _trainer(resumed, tmp_path)
    resumed.on_fit_start(trainer, module)
    assert [json.loads(ln) for ln in (tmp_path / "second.jsonl").read_text().splitlines()] == [
        saved
    ]
    trainer.validate(module, datamodule=data, verbose=False)
    rows = [json.loads(ln) for ln in (tmp_path / "second.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[0] == saved and 5.0 <= rows[1]["wall_min"] < 6.0
    assert resumed.state_dict()["history"] == rows
