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


def test_eval_metrics_on_a_full_disk(full_disk, tmp_path, results, sample_ann_file) -> None:
    """The metrics file's folder exists and is writable, but the disk is full: one line naming
    metrics_file, and no temporary file left behind."""
    out = full_disk / "metrics.json"
    done = _entry("eval.py", f"ann_file={sample_ann_file}",
                  f"results_file={results}", f"metrics_file={out}",
                  f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    _one_line(done, f"metrics_file={out}", "No space left on device")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_eval_metrics_file_in_a_read_only_folder(readonly_dir, tmp_path, results, sample_ann_file):
    done = _entry("eval.py", f"ann_file={sample_ann_file}",
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


# ------------------------------------------------------------------ values left unset (???)
def _compose(name: str, overrides: list[str], hydra: bool = False):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=hydra)


def test_distill_without_its_teacher_leaves_the_teacher_unset() -> None:
    """The model group's ``teacher_ckpt: null`` used to win over the experiment's ``???`` (a
    merge keeps an earlier value), so ``+experiment=distill`` trained a plain student."""
    from fullbody.utils.cli import ConfigError, check_complete

    cfg = _compose("train", ["+experiment=distill"])
    with pytest.raises(ConfigError, match=r"^model\.teacher_ckpt: not set"):
        check_complete(cfg)
    check_complete(_compose("train", ["+experiment=distill", "model.teacher_ckpt=t.ckpt"]))
    check_complete(_compose("train", []))


@pytest.mark.parametrize(
    ("name", "overrides", "keys"),
    [("demo", [], ["input"]), ("export", [], ["ckpt_path"]),
     ("pseudo_label", ["+teacher/wholebody=onnx", "ann_file=a.json"],
      ["teacher.wholebody.path", "image_dir", "out_file"]),
     ("hand_crops", ["out_dir=o"], ["ann_file", "image_dir"])],
)  # fmt: skip
def test_every_unset_value_is_named(name: str, overrides: list[str], keys: list[str]) -> None:
    from fullbody.utils.cli import ConfigError, check_complete

    with pytest.raises(ConfigError) as raised:
        check_complete(_compose(name, overrides))
    named = str(raised.value).split(": not set")[0].split(", ")
    assert sorted(named) == sorted(keys), raised.value


@pytest.mark.parametrize(
    ("script", "args", "key"),
    [("train.py", ["+experiment=distill"], "model.teacher_ckpt"),
     ("export.py", [], "ckpt_path"), ("pseudo_label.py", ["ann_file=a.json"], "image_dir")],
)  # fmt: skip
def test_an_unset_value_ends_the_entry_point_in_one_line(script, args, key, tmp_path) -> None:
    done = _entry(script, *args, f"hydra.run.dir={tmp_path / 'run'}")
    _one_line(done, key, "not set")
    assert json.loads((tmp_path / "run" / "job.json").read_text())["status"] == "failed"


# ------------------------------------------------------------------ job.json after a stop
@pytest.mark.parametrize(
    ("stop", "status", "error"),
    [(KeyboardInterrupt(), "failed", "KeyboardInterrupt: interrupted"),
     (SystemExit(1), "failed", "SystemExit: exit status 1"),  # Lightning's exit after Ctrl-C
     (SystemExit(0), "running", None)],
)  # fmt: skip
def test_a_stopped_job_is_not_left_running(stop, status, error, tmp_path: Path) -> None:
    """Hydra's end-of-job callback sees only exceptions: after Ctrl-C job.json said running."""
    import time

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from fullbody.compare import TIME_FORMAT, write_job_file
    from fullbody.utils.cli import user_errors

    cfg = _compose("eval", [], hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    try:
        write_job_file(tmp_path, {"status": "running", "started": time.strftime(TIME_FORMAT)})
        with pytest.raises(type(stop)), user_errors():
            raise stop
    finally:
        HydraConfig.instance().cfg = None
    info = json.loads((tmp_path / "job.json").read_text())
    assert info["status"] == status and info.get("error") == error


# ------------------------------------------------------------------ tracebacks that are one line
@pytest.mark.parametrize(
    ("script", "args", "says"),
    [("demo.py", ["onnx_path={junk}"], "junk.onnx: not a loadable ONNX model"),
     ("demo.py", ["onnx_path={junk}", "ckpt_path={tmp}/x.ckpt"], "both given; give exactly one"),
     ("train.py", ["+experiment=smoke", "model.head=hrnet", "paths.data_dir={tmp}/data"],
      "model.head=hrnet: unknown head")],
)  # fmt: skip
def test_a_bad_model_option_ends_in_one_line(script, args, says, tmp_path: Path) -> None:
    """Each was a traceback through Hydra's "Error in call to target" frame, exit 1."""
    junk = tmp_path / "junk.onnx"
    junk.write_text("<html>404</html>")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"never read")
    args = [a.format(junk=junk, tmp=tmp_path) for a in args]
    if script == "demo.py":
        args.append(f"input={tmp_path / 'in'}")
    done = _entry(script, *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]  # training logs its seed before
    assert last.startswith("error: ") and says in last, last
