"""Run summaries (fullbody.compare) and the Hydra callback that records runs and sweeps:
rows of completed, failed, killed and corrupt runs; the CLI; one folder per run even when two
runs start in the same second."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fullbody.compare import AP_COLUMNS, main, read_run, summarize
from fullbody.keypoints import EVAL_PARTS
from fullbody.utils.hydra_callbacks import claim_folder

ROOT = Path(__file__).resolve().parents[1]


def _run(folder: Path, job: dict | None, metrics: dict | str | None) -> Path:
    folder.mkdir(parents=True)
    if job is not None:
        (folder / "job.json").write_text(json.dumps(job))
    if isinstance(metrics, dict):
        (folder / "metrics.json").write_text(json.dumps(metrics))
    elif isinstance(metrics, str):
        (folder / "metrics.json").write_text(metrics)
    return folder


def _metrics(base: float) -> dict[str, float]:
    return {f"{p}/{s}": base + 0.01 * k for k, p in enumerate(EVAL_PARTS) for s in ("AP", "AR")}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    root.mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    ok = {"overrides": ["+experiment=smoke", "model.head=deconv"], "status": "completed",
          "wall_s": 12.5, "objective": 0.55}  # fmt: skip
    _run(root / "0", ok, _metrics(0.5))
    bad = {"overrides": ["+experiment=smoke", "model.head=bogus"], "status": "failed",
           "wall_s": 1.0, "error": "ValueError: unknown head 'bogus'\nmore lines"}  # fmt: skip
    _run(root / "1", bad, None)
    killed = {"overrides": ["+experiment=smoke", "model.head=duc"], "status": "running"}
    _run(root / "2", killed, None)
    corrupt = _run(root / "10", None, "{not json")  # corrupt metrics, no job.json
    (corrupt / ".hydra").mkdir()
    (corrupt / ".hydra" / "overrides.yaml").write_text("- +experiment=smoke\n- model.lr=1\n")
    return root


def test_rows_say_how_each_run_ended(sweep: Path) -> None:
    ok, failed, killed = (read_run(sweep / j) for j in ("0", "1", "2"))
    assert ok.status == "completed" and ok.wall_s == 12.5 and ok.objective == 0.55
    assert ok.ap["body/AP"] == pytest.approx(0.5) and ok.ap["wholebody/AP"] == pytest.approx(0.55)
    assert (
        failed.status == "failed" and failed.error == "ValueError: unknown head 'bogus' more lines"
    )
    assert all(v is None for v in failed.ap.values())
    assert killed.status == "running"
    corrupt = read_run(sweep / "10")
    assert "metrics.json unreadable" in corrupt.error
    assert corrupt.overrides == ["+experiment=smoke", "model.lr=1"]  # from Hydra's record


def test_summary_files_of_a_sweep(sweep: Path) -> None:
    paths = summarize([sweep], sweep, metric="wholebody", title="t")
    assert sorted(p.name for p in paths) == ["sweep_summary.csv", "sweep_summary.md",
                                             "sweep_summary.png"]  # fmt: skip
    with open(sweep / "sweep_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "1", "2", "10"]  # job-number order
    assert set(AP_COLUMNS) <= set(rows[0]) and len(AP_COLUMNS) == 6
    assert rows[0]["wholebody/AP"] == "0.5500" and rows[0]["status"] == "completed"
    assert rows[1]["status"] == "failed" and rows[1]["wholebody/AP"] == ""
    assert "bogus" in rows[1]["error"] and "model.head=bogus" in rows[1]["overrides"]
    md = (sweep / "sweep_summary.md").read_text()
    assert "Common overrides: `+experiment=smoke`" in md
    assert "| 1 | `model.head=bogus` | failed: ValueError" in md
    assert "**0.550**" in md  # the best of the column in bold
    assert (sweep / "sweep_summary.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_compares_run_folders_from_anywhere(sweep: Path, tmp_path: Path, capsys) -> None:
    other = _run(tmp_path / "day2" / "run", {"overrides": ["model.lr=1e-4"],
                                             "status": "completed"}, _metrics(0.7))  # fmt: skip
    out = tmp_path / "cmp"
    assert main([str(sweep / "0"), str(other), "--out", str(out), "--metric", "body"]) == 0
    with open(out / "sweep_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["0", "run"]
    assert rows[1]["body/AP"] == "0.7000"
    # A sweep folder alone: its jobs, and the summary lands in it.
    assert main([str(sweep)]) == 0 and (sweep / "sweep_summary.csv").is_file()


def test_cli_names_a_missing_folder(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_claim_folder_is_exclusive_under_a_race(tmp_path: Path) -> None:
    base = tmp_path / "runs" / "2026-01-01_00-00-00"
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(claim_folder(base))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and base in got
    assert {p.name for p in got} - {base.name} == {f"{base.name}_{n}" for n in range(2, 9)}


def _hydra(script: str, args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), WANDB_MODE="offline")
    return subprocess.Popen([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_two_runs_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    """The default run folder is named to the second; force one name (a year) for two runs
    started together: each must get its own folder (job.json and log), not share one."""
    stamp = "${now:%Y}"
    args = [f"hydra.run.dir={tmp_path}/runs/{stamp}", "ann_file=/nonexistent.json",
            "results_file=/nonexistent.json"]  # fmt: skip
    procs = [_hydra("eval.py", args, tmp_path) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 2
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2, folders
    assert folders[1].name == f"{folders[0].name}_2"
    for f in folders:
        job = json.loads((f / "job.json").read_text())
        assert job["status"] == "failed" and "nonexistent.json" in job["error"]
        assert (f / ".hydra" / "config.yaml").is_file()


def test_two_sweeps_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    stamp = "${now:%Y}"
    args = ["-m", f"hydra.sweep.dir={tmp_path}/sweeps/{stamp}", "ann_file=/nonexistent.json",
            "results_file=/x.json,/y.json"]  # fmt: skip
    procs = [_hydra("eval.py", args, tmp_path) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=120)
    roots = sorted((tmp_path / "sweeps").iterdir())
    assert [r.name for r in roots] == [roots[0].name, f"{roots[0].name}_2"]
    for root in roots:
        assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["0", "1"]
        with open(root / "sweep_summary.csv") as f:
            rows = list(csv.DictReader(f))
        assert [r["status"] for r in rows] == ["failed", "failed"]
        assert "/nonexistent.json" in rows[0]["error"]


def test_an_explicit_run_folder_is_used_as_given(tmp_path: Path) -> None:
    """A named folder (resume, SLURM job id, DDP ranks) is shared on purpose: never bumped."""
    run = tmp_path / "fixed"
    run.mkdir()
    p = _hydra("eval.py", [f"hydra.run.dir={run}"], tmp_path)
    p.communicate(timeout=120)
    assert p.returncode == 2
    assert (run / "job.json").is_file() and not (tmp_path / "fixed_2").exists()


def test_metrics_older_than_the_job_are_not_read(tmp_path: Path) -> None:
    """A job that failed in a folder an earlier run left its metrics.json in: its row showed
    the earlier run's AP."""
    import time

    job = {"status": "failed", "error": "KeyboardInterrupt",
           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    run = _run(tmp_path / "0", job, _metrics(0.5))
    old = time.time() - 3600
    os.utime(run / "metrics.json", (old, old))
    row = read_run(run)
    assert row.status == "failed" and all(v is None for v in row.ap.values())
    assert "metrics.json is older than the job" in row.error
    os.utime(run / "metrics.json")  # written during the job: read
    assert read_run(run).ap["wholebody/AP"] == pytest.approx(_metrics(0.5)["wholebody/AP"])


def _earlier_sweep(root: Path) -> None:
    (root / "multirun.yaml").parent.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    ok = {"overrides": ["model.head=deconv"], "status": "completed"}
    _run(root / "0", ok, _metrics(0.5))
    (root / "0" / "last.ckpt").write_bytes(b"an earlier run's weights")
    (root / "sweep_summary.csv").write_text("job\n0\n")


def test_a_sweep_into_a_folder_of_an_earlier_sweep_is_refused(tmp_path: Path) -> None:
    """It mixed two runs in one job folder (.hydra of one head, last.ckpt of another)."""
    root = tmp_path / "sweep"
    _earlier_sweep(root)
    args = ["-m", f"hydra.sweep.dir={root}", "ann_file=/nonexistent.json",
            "results_file=/x.json,/y.json"]  # fmt: skip
    proc = _hydra("eval.py", args, tmp_path)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 2, err
    assert len(lines) == 1 and "hydra.sweep.dir" in lines[0] and "+overwrite=true" in lines[0]
    assert (root / "0" / "last.ckpt").is_file() and not (root / "1").exists()


def test_overwrite_replaces_the_jobs_of_an_earlier_sweep(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    _earlier_sweep(root)
    args = ["-m", f"hydra.sweep.dir={root}", "+overwrite=true", "ann_file=/nonexistent.json",
            "results_file=/x.json,/y.json"]  # fmt: skip
    _hydra("eval.py", args, tmp_path).communicate(timeout=120)
    assert not (root / "0" / "last.ckpt").exists() and not (root / "0" / "metrics.json").exists()
    with open(root / "sweep_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all(r["wholebody/AP"] == "" for r in rows)


def test_variants_over_seeds_get_mean_and_spread(tmp_path: Path) -> None:
    """Runs that differ only in their seed are one variant: mean and sample spread per part
    in sweep_summary_variants.csv and atop the Markdown; failed runs are left out."""
    root = tmp_path / "sweep"
    root.mkdir()
    runs = [("0", "exact", 1, 0.40), ("1", "exact", 2, 0.50), ("2", "pseudo", 1, 0.30),
            ("3", "pseudo", 2, 0.34), ("4", "pseudo", 3, None)]  # fmt: skip
    for job, labels, seed, base in runs:
        info = {"overrides": ["+experiment=x", f"+ablation/labels={labels}", f"seed={seed}"],
                "status": "completed" if base is not None else "failed"}  # fmt: skip
        _run(root / job, info, None if base is None else _metrics(base))
    summarize([root], root)
    with open(root / "sweep_summary_variants.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["overrides"], r["runs"], r["jobs"]) for r in rows] == [
        ("+ablation/labels=exact", "2", "0 1"),
        ("+ablation/labels=pseudo", "2", "2 3"),
    ]
    assert float(rows[0]["body/AP"]) == pytest.approx(0.45)
    assert float(rows[0]["body/AP_sd"]) == pytest.approx(0.0707, abs=1e-4)  # sample sd of .4, .5
    assert float(rows[1]["foot/AP"]) == pytest.approx(0.33)
    text = (root / "sweep_summary.md").read_text()
    assert "| `+ablation/labels=exact` | 2 | 0.450 ± 0.071 |" in text
    assert text.index("Per variant") < text.index("Per run")


def test_a_sweep_under_way_names_its_one_variant(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    root.mkdir()
    for job, seed in (("0", 1), ("1", 2)):
        info = {"overrides": ["+ablation/labels=exact", f"seed={seed}"], "status": "completed"}
        _run(root / job, info, _metrics(0.4))
    _run(root / "2", {"overrides": ["+ablation/labels=pseudo", "seed=1"], "status": "running"},
         None)  # fmt: skip
    summarize([root], root)
    assert "| `+ablation/labels=exact` | 2 |" in (root / "sweep_summary.md").read_text()


def test_a_sweep_without_repeats_has_no_variant_table(sweep: Path) -> None:
    summarize([sweep], sweep)
    assert not (sweep / "sweep_summary_variants.csv").exists()
    assert "Per variant" not in (sweep / "sweep_summary.md").read_text()
