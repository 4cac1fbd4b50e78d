"""``python eval.py ann_file=... results_file=...``: table, metrics.json, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fullbody.evaluation.nms import nms_per_image
from fullbody.evaluation.wholebody import evaluate

from ._builders import random_case

ROOT = Path(__file__).resolve().parents[2]


def _eval(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "eval.py"), f"hydra.run.dir={tmp_path / 'run'}", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    gt, preds = random_case()
    gt.save(tmp / "gt.json")
    preds.save(tmp / "results.json", layout="flat")
    return gt, preds, tmp


def test_cli_prints_table_and_writes_metrics(files, tmp_path):
    gt, preds, tmp = files
    out = tmp_path / "m.json"
    done = _eval(
        tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={tmp / 'results.json'}",
        f"metrics_file={out}", "nms=oks", "breakdown=true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == evaluate(gt, nms_per_image(preds, "oks"))
    lines = done.stdout.splitlines()
    assert any(line.startswith("wholebody") for line in lines)
    assert "person size" in done.stdout and "occluded fraction" in done.stdout
    breakdown = json.loads((tmp_path / "breakdown.json").read_text())
    assert set(breakdown["occlusion"]) == {"face", "lefthand", "righthand"}


def test_cli_default_metrics_file_is_in_the_run_folder(files, tmp_path):
    _, _, tmp = files
    done = _eval(tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={tmp / 'results.json'}")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics) == 60 and "wholebody/AP" in metrics


@pytest.mark.slow
def test_cli_reports_bad_files(files, tmp_path):
    _, _, tmp = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 10, "keypoints": [0.0] * 51, "score": 1.0}]))
    done = _eval(tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={bad}")
    assert done.returncode == 2
    assert f"error: {bad}: result #0: field 'keypoints'" in done.stderr
    done = _eval(tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={tmp_path / 'none.json'}")
    assert done.returncode == 2 and "results file not found" in done.stderr
    done = _eval(tmp_path, f"results_file={tmp / 'results.json'}")
    assert done.returncode != 0 and "ann_file" in done.stderr
