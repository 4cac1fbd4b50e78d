"""Every benchmark runs: each ``benchmarks/bench_*.py --smoke`` as its own process, last line JSON.

A benchmark whose inputs are absent (the shared sample, the teacher models, the packaged
detector) says so in its JSON line (``skipped``) and the test skips with that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_listed():
    names = {p.stem for p in BENCHMARKS}
    assert {"bench_data", "bench_eval", "bench_train", "bench_infer", "bench_gpu"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_smoke_run_ends_with_one_json_line(script: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines, f"{script.name} printed nothing"
    line = json.loads(lines[-1])
    assert isinstance(line, dict) and "figure" in line, lines[-1]
    if line.get("skipped"):
        pytest.skip(f"{script.name}: {line['skipped']}")
    assert line["value"] is not None and line["value"] > 0


@pytest.mark.slow
def test_bench_infer_runs_without_rtmlib_and_says_so(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": "",
           "RTMLIB_VENV": str(tmp_path / "no_venv")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_infer.py"), "--smoke"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["rtmlib_skipped"].startswith("no rtmlib venv")
    assert line["reference"] is None and line["ratio_rtmlib"] is None
    assert line["ratio_network"] > 0 and line["value"] > 0 and line["cpu"]
    assert not (tmp_path / "no_venv").exists()  # a smoke run builds no venv
