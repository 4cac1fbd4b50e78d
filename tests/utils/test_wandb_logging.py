"""W&B with the real ``wandb`` library, offline: where a run goes (W&B's conventions, no prompt,
no hang), the best per-part AP in the summary, the per-part AP chart, a resumed run continued,
a sweep's comparison table. The runs' own files (``wandb/offline-run-*/run-*.wandb``) are read
back record by record."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
import wandb
import yaml

from fullbody.errors import ConfigError
from fullbody.keypoints import EVAL_PARTS
from fullbody.utils import wandb_logging
from fullbody.utils.wandb_logging import AP_KEYS, CHECKPOINT_KEY, WandbLogger, choose_mode

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- reading W&B's files
def read_records(path: Path) -> list[Any]:
    """The protobuf records of a W&B run file: W&B's header (``:W&B``, 0xBEE1, version 0), then
    LevelDB-log blocks of 32 KiB whose records (CRC-32, length, type) may span blocks."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), path
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        crc, size, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if kind == 0:  # the zero padding at the end of a block
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + size]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"{path}: bad CRC at {pos}"
        pos += 7 + size
        pending = chunk if kind in (1, 2) else pending + chunk  # full, first / middle, last
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


class OfflineRun:
    """What one offline run directory holds: run id, metric definitions, summary, history."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (file,) = folder.glob("run-*.wandb")
        records = read_records(file)
        kinds = [r.WhichOneof("record_type") for r in records]
        self.run_id = next(r.run.run_id for r, k in zip(records, kinds) if k == "run")
        self.metrics = [r.metric for r, k in zip(records, kinds) if k == "metric"]
        self.summary: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.config: dict[str, Any] = {}
        for record, kind in zip(records, kinds):
            if kind == "summary":
                for item in record.summary.update:
                    key = "/".join(item.nested_key) if item.nested_key else item.key
                    self.summary[key] = json.loads(item.value_json)
            elif kind == "history":
                row = {}
                for item in record.history.item:
                    key = "/".join(item.nested_key) if item.nested_key else item.key
                    row[key] = json.loads(item.value_json)
                self.history.append(row)
            elif kind in ("config", "run"):  # the config given to wandb.init is in the run's
                updates = record.config.update if kind == "config" else record.run.config.update
                for item in updates:
                    key = "/".join(item.nested_key) if item.nested_key else item.key
                    self.config[key] = json.loads(item.value_json)

    def rows_with(self, key: str) -> list[dict[str, Any]]:
        return [row for row in self.history if any(k.startswith(key) for k in row)]

    def table(self, key: str) -> dict[str, Any]:
        """The last logged W&B table ``key`` (its JSON file in the run's files)."""
        (row,) = self.rows_with(key)[-1:]
        return json.loads((self.folder / "files" / row[f"{key}/path"]).read_text())


def offline_runs(run_folder: Path) -> list[OfflineRun]:
    return [OfflineRun(p) for p in sorted((run_folder / "wandb").glob("offline-run-*"))]


def train_py(args: list[str], env: dict[str, str] | None = None, timeout: float = 600):
    """``python train.py ARGS`` (W&B offline unless ``env`` says otherwise)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=full,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


# ---------------------------------------------------------------------- where a run goes
@pytest.mark.parametrize(
    ("offline", "env", "logged_in", "mode"),
    [
        (True, "online", True, "offline"),  # offline in the config: offline
        (False, None, True, "online"),  # online in the config: online ...
        (False, None, False, "offline"),  # ... with credentials, else offline, no prompt
        (False, "offline", True, "offline"),  # the machine's switch (no network) wins
        (None, "offline", True, "offline"),  # WANDB_MODE when the config leaves it open
        (None, "dryrun", True, "offline"),
        (None, "disabled", True, "disabled"),
        (None, "online", True, "online"),
        (None, "online", False, "offline"),
        (None, None, True, "online"),  # then the login
        (None, None, False, "offline"),
    ],
)
def test_mode_follows_wandbs_conventions(
    offline: bool | None, env: str | None, logged_in: bool, mode: str, monkeypatch
) -> None:
    if env is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", env)
    monkeypatch.setattr(wandb_logging, "logged_in", lambda: logged_in)
    assert choose_mode(offline)[0] == mode


def test_an_unknown_wandb_mode_is_refused_by_name(monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "onlien")
    with pytest.raises(ConfigError, match="WANDB_MODE=onlien"):
        choose_mode(None)


def test_login_is_read_from_the_environment_without_a_prompt(tmp_path: Path) -> None:
    """No credentials anywhere (no key, empty home and netrc, no terminal): not logged in,
    and no prompt; with WANDB_API_KEY: logged in. No network either way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "netrc"), PYTHONPATH=str(ROOT / "src"),
               WANDB_CONFIG_DIR=str(tmp_path / "config"))  # fmt: skip
    code = ("import os; from fullbody.utils.wandb_logging import logged_in; a = logged_in(); "
            "os.environ['WANDB_API_KEY'] = 'a' * 40; print(a, logged_in())")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["False", "True"], done.stdout + done.stderr


def test_uploading_checkpoints_offline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log_model"):
        WandbLogger(save_dir=str(tmp_path), offline=True, log_model=True)


def test_a_resumed_run_takes_the_checkpoints_run_id_unless_one_is_given() -> None:
    from omegaconf import OmegaConf

    from fullbody.utils.wandb_logging import resumed_run_id

    cfg = OmegaConf.create({"wandb": {"id": None}, "csv": {}})
    resumed_run_id(cfg, {"state_dict": {}})  # a checkpoint from before W&B ids: a new run
    assert cfg.wandb.id is None
    resumed_run_id(cfg, {CHECKPOINT_KEY: "abc123"})
    assert cfg.wandb.id == "abc123"
    resumed_run_id(cfg, {CHECKPOINT_KEY: "other"})  # logger.wandb.id given: it stays
    assert cfg.wandb.id == "abc123"
    resumed_run_id(OmegaConf.create({"csv": {}}), {CHECKPOINT_KEY: "abc123"})  # no W&B: nothing


# ---------------------------------------------------------------------- the run page
def test_the_summary_keeps_the_best_ap_of_each_part(tmp_path: Path) -> None:
    logger = WandbLogger(save_dir=str(tmp_path), project="test", offline=True)
    for step, ap in ((10, 0.2), (20, 0.5), (30, 0.3)):
        logger.log_metrics({key: ap for key in AP_KEYS} | {"val/loss": ap}, step=step)
    logger.experiment.finish()
    wandb.teardown()  # W&B's service writes the run file out when it stops
    (run,) = offline_runs(tmp_path)
    defined = {m.name: m for m in run.metrics if m.name}
    for key in AP_KEYS:
        assert defined[key].summary.max and defined[key].step_metric == "trainer/global_step"
        assert run.summary[key] == {"max": 0.5}  # the best, not the last (0.3)
    assert run.summary["val/loss"] == 0.3  # everything else: the last


@pytest.mark.slow
def test_offline_run_has_the_chart_the_curve_and_resumes_as_one_run(tmp_path: Path) -> None:
    """A smoke run logged to W&B offline, then resumed from its last.ckpt for one more epoch:
    the same W&B run id, steps going on; the per-part AP chart (six lines against the step),
    the learning curve in the run folder and on W&B; the final table and prediction images."""
    common = ["+experiment=smoke", "logger=wandb", f"paths.data_dir={tmp_path / 'data'}"]
    first, second = tmp_path / "first", tmp_path / "second"
    done = train_py([*common, f"hydra.run.dir={first}"])
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = first / "checkpoints" / "last.ckpt"
    (run,) = offline_runs(first)
    assert torch.load(ckpt, weights_only=True)[CHECKPOINT_KEY] == run.run_id

    # The chart: a line series of the six parts' validation AP against the step.
    panel = run.config["_wandb/visualize/val/AP_per_part_curve"]
    assert panel["panel_config"]["panelDefId"] == "wandb/lineseries/v0"
    table = run.table("val/AP_per_part_curve_table")
    assert sorted({row[1] for row in table["data"]}) == sorted(EVAL_PARTS)
    history = [json.loads(ln) for ln in (first / "val_history.jsonl").read_text().splitlines()]
    assert {row[0] for row in table["data"]} == {h["step"] for h in history}
    # The learning curve, in the run folder and on the run page; what was there before stays.
    assert (first / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    for key in ("val/learning_curve", "val/predictions", "test/AP_per_part"):
        assert run.rows_with(key), key
    assert all(run.summary[key] == {"max": history[-1]["metrics"][key[4:]]} for key in AP_KEYS)

    done = train_py([*common, f"hydra.run.dir={second}", f"ckpt_path={ckpt}",
                     "trainer.max_epochs=2"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"continuing run {run.run_id}" in done.stdout + done.stderr
    (resumed,) = offline_runs(second)
    assert resumed.run_id == run.run_id
    steps = [row["trainer/global_step"] for row in run.history if "trainer/global_step" in row]
    later = [row["trainer/global_step"] for row in resumed.history if "trainer/global_step" in row]
    assert min(later) > max(steps) - 1 and max(later) > max(steps)
    # The whole run's validation history: the first epoch's row, then the second's.
    rows = [json.loads(ln) for ln in (second / "val_history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and rows[0] == history[0]
    assert rows[1]["wall_min"] > rows[0]["wall_min"]
    assert len(resumed.table("val/AP_per_part_curve_table")["data"]) == 2 * len(EVAL_PARTS)
    assert (
        torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)[CHECKPOINT_KEY]
        == run.run_id
    )


@pytest.mark.slow
def test_online_without_a_server_waits_init_timeout_then_logs_offline(tmp_path: Path) -> None:
    """WANDB_MODE=online, a key, and a server that does not answer (a closed local port): the
    run starts offline after the bounded wait, says so in one line, and finishes."""
    out = tmp_path / "run"
    env = {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9",
           "WANDB_API_KEY": "a" * 40, "HOME": str(tmp_path)}  # fmt: skip
    t0 = time.monotonic()
    done = train_py(["+experiment=smoke", "logger=wandb", "logger.wandb.init_timeout=3",
                     f"hydra.run.dir={out}", f"paths.data_dir={tmp_path / 'data'}"],
                    env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    said = [ln for ln in (done.stdout + done.stderr).splitlines() if "no answer from" in ln]
    assert len(said) == 1 and "http://127.0.0.1:9" in said[0] and "logging offline" in said[0]
    assert f"wandb sync {out / 'wandb'}/offline-run-*" in said[0]
    (run,) = offline_runs(out)
    assert run.rows_with("val/wholebody/AP") and (out / "metrics.json").is_file()
    assert time.monotonic() - t0 < 240


# ---------------------------------------------------------------------- sweeps
@pytest.mark.slow
def test_optuna_sweep_optimises_a_parts_ap_and_logs_one_comparison(tmp_path: Path) -> None:
    """Two Optuna trials of the smoke experiment maximising the left hand's AP: each job
    returns its val/lefthand/AP, and the sweep ends with one W&B table of its jobs."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    done = train_py(["-m", "+experiment=smoke", "logger=wandb", "hparams_search=optuna",
                     "optimized_metric=val/lefthand/AP", "hydra.sweeper.n_trials=2",
                     f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}"])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    objectives = []
    for job in ("0", "1"):
        cfg = yaml.safe_load((sweep / job / ".hydra" / "config.yaml").read_text())
        assert cfg["optimized_metric"] == "val/lefthand/AP"  # what the job returned
        info = json.loads((sweep / job / "job.json").read_text())
        last = json.loads((sweep / job / "val_history.jsonl").read_text().splitlines()[-1])
        assert info["objective"] == pytest.approx(last["metrics"]["lefthand/AP"])
        objectives.append(info["objective"])
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(objectives))

    (summary,) = offline_runs(sweep)
    table = summary.table("sweep/AP_per_part")
    assert table["columns"][:3] == ["job", "overrides", "status"]
    assert "lefthand/AP" in table["columns"] and "objective" in table["columns"]
    assert [row[0] for row in table["data"]] == ["0", "1"]
    col = table["columns"].index("objective")
    assert [row[col] for row in table["data"]] == pytest.approx(objectives)
    assert all("model.lr=" in row[1] for row in table["data"])  # each job's own overrides
    assert summary.rows_with("sweep/summary")  # the sweep_summary.png chart
    assert summary.config["optimized_metric"] == "val/lefthand/AP"
