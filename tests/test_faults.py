"""A hostile but honest user: a full disk and a read-only output folder under every entry point.

Real file systems where the test may mount them (a small tmpfs, read-only or filled up; needs
root), else the same failure injected with monkeypatch. Each case ends in one line naming the
folder or file and exit status 2, never a traceback wall or a silently lost result.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_GT = ROOT.parent / "shared" / "data" / "coco_wholebody_sample" / "annotations"


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system (chmod is no test as root, who may write anyway)."""
    path = tmp_path / "ro"
    if not _mount(path, "ro,size=64k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB file system filled to the last byte."""
    path = tmp_path / "full"
    if not _mount(path, "size=64k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def _entry(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), WANDB_MODE="offline")
    cmd = [sys.executable, str(ROOT / script), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _one_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text("[]")
    return path


@pytest.mark.parametrize(
    ("script", "args"),
    [("train.py", []), ("eval.py", []), ("demo.py", ["input=x.jpg"]),
     ("export.py", ["ckpt_path=x.ckpt"])],
)  # fmt: skip
def test_a_read_only_output_folder_is_one_line(script: str, args, readonly_dir: Path) -> None:
    """Hydra's run folder cannot be created: it was a traceback from Hydra's mkdir."""
    done = _entry(script, f"paths.log_dir={readonly_dir}", *args)
    _one_line(done, str(readonly_dir), "Read-only file system", "paths.log_dir")


def test_a_full_disk_at_the_run_folder_is_one_line(full_disk: Path, tmp_path: Path) -> None:
    done = _entry("train.py", "+experiment=smoke", f"paths.log_dir={full_disk}",
                  f"paths.data_dir={tmp_path / 'data'}")  # fmt: skip
    _one_line(done, str(full_disk), "No space left on device")
    done = _entry("train.py", "-m", "+experiment=smoke", "model.head=duc,deconv",
                  f"paths.log_dir={full_disk}")  # fmt: skip
    _one_line(done, "hydra.sweep.dir", "No space left on device")


def test_eval_metrics_on_a_full_disk(full_disk: Path, tmp_path: Path, results: Path) -> None:
    """The metrics file's folder exists and is writable, but the disk is full: one line naming
    metrics_file, and no temporary file left behind."""
    out = full_disk / "metrics.json"
    done = _entry("eval.py", f"ann_file={SAMPLE_GT / 'coco_wholebody_sample.json'}",
                  f"results_file={results}", f"metrics_file={out}",
                  f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    _one_line(done, f"metrics_file={out}", "No space left on device")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_eval_metrics_file_in_a_read_only_folder(readonly_dir: Path, tmp_path, results) -> None:
    done = _entry("eval.py", f"ann_file={SAMPLE_GT / 'coco_wholebody_sample.json'}",
                  f"results_file={results}", f"metrics_file={readonly_dir / 'm.json'}",
                  f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    _one_line(done, "metrics_file=", "not writable")


def test_demo_out_dir_read_only_is_refused_before_drawing(readonly_dir: Path, tmp_path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"not drawn")
    done = _entry("demo.py", f"input={tmp_path / 'in'}", "ckpt_path=/no/such.ckpt",
                  f"out_dir={readonly_dir / 'out'}", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    _one_line(done, str(readonly_dir / "out"), "out_dir")


def test_metrics_on_a_full_disk_at_the_end_of_training(tmp_path: Path, monkeypatch, capsys):
    """Works without root: the disk fills up during a run; the metrics are printed, and the
    error names metrics.json (it was an OSError traceback after the whole run)."""
    from fullbody.jobs import train as train_job
    from fullbody.utils.cli import OutputError

    def full(obj, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    from fullbody.evaluation.wholebody import STATS

    monkeypatch.setattr(train_job, "write_json_atomic", full)
    metrics = {f"test/{p}/{s}": 0.5 for p in ("body", "wholebody") for s in STATS}
    with pytest.raises(OutputError, match=r"metrics\.json: cannot write \(No space left"):
        train_job.report(metrics, tmp_path, 1.0)
    assert "0.500" in capsys.readouterr().out  # the numbers are on the screen


def test_a_corrupt_job_file_does_not_break_a_summary(tmp_path: Path) -> None:
    from fullbody.compare import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "job.json").write_bytes(b"\xff\xfe garbage")
    (run / "metrics.json").write_text(json.dumps({"wholebody/AP": 0.5}))
    assert main([str(run), "--out", str(tmp_path)]) == 0
    row = (tmp_path / "sweep_summary.csv").read_text().splitlines()[1]
    assert "job.json unreadable" in row and "0.5000" in row
