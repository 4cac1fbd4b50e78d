"""``python eval.py ann_file=... results_file=...``: table, metrics.json, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.poses import random_case

from fullbody.evaluation.nms import nms_per_image
from fullbody.evaluation.wholebody import evaluate

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
        f"metrics_file={out}", "evaluation.nms=oks", "evaluation.breakdowns=true",
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


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("evaluation.parts=[body,hands]", "evaluation.parts="),
        ("evaluation.sigmas=coco", "evaluation.sigmas=coco"),
        ("evaluation.nms=greedy", "evaluation.nms=greedy"),
        ("evaluation.oks_threshold=-0.5", "evaluation.oks_threshold=-0.5"),
        ("metrics_file=/proc/no/such/m.json", "metrics_file="),
        # mixed modes: the files were silently ignored and the checkpoint scored on other data
        ("ckpt_path=/runs/last.ckpt", "ckpt_path=/runs/last.ckpt and ann_file="),
    ],
)
def test_cli_refuses_a_bad_option_in_one_line(files, tmp_path, option, named):
    """Unknown parts/sigmas/nms, a negative OKS threshold (accepted before) or a metrics file
    that cannot be written: exit 2, one line naming the option, no traceback, no evaluation."""
    _, _, tmp = files
    done = _eval(tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={tmp / 'results.json'}",
                 option)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert "wholebody" not in done.stdout


def test_cli_says_when_wholebody_is_body_only(files, tmp_path):
    """Ground truth from a plain COCO person file (body points only): 'wholebody' is a body AP,
    and the log and metrics.json say so (they used to print it as a whole-body AP)."""
    _, _, tmp = files
    data = json.loads((tmp / "gt.json").read_text())
    for ann in data["annotations"]:
        for key in [k for k in ann if k.startswith(("foot", "face", "lefthand", "righthand"))]:
            del ann[key]
    person = tmp_path / "person_keypoints.json"
    person.write_text(json.dumps(data))
    done = _eval(tmp_path, f"ann_file={person}", f"results_file={tmp / 'results.json'}")
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "'wholebody' measures body only" in said
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["notes"] == [next(ln for ln in said.splitlines() if "measures" in ln)
                                .split(" - ", 1)[1]]  # fmt: skip
    assert "body only" in (tmp_path / "run" / "eval.log").read_text()
    # Whole-body ground truth: no note.
    done = _eval(tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={tmp / 'results.json'}")
    assert "notes" not in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_cli_scores_an_empty_results_file(files, tmp_path):
    """What demo.py writes for images without people ([]) evaluates (every AP 0) instead of
    being rejected."""
    _, _, tmp = files
    empty = tmp_path / "results.json"
    empty.write_text("[]")
    done = _eval(tmp_path, f"ann_file={tmp / 'gt.json'}", f"results_file={empty}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no predictions" in done.stdout + done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["wholebody/AP"] == 0.0 and metrics["body/AR"] == 0.0
