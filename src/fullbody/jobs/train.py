"""The ``train.py`` command: instantiate everything from the Hydra config, fit, test, report.

:func:`train` is one Hydra job (one job of a sweep) on a composed config, callable from tests
and notebooks: it returns the metrics. :func:`run` is what the script runs: the same under
:func:`fullbody.utils.ddp.distributed_job`, returning the value of ``cfg.optimized_metric``,
which a sweeper such as Optuna optimises.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from fullbody.errors import ConfigError, OutputError
from fullbody.evaluation.wholebody import STATS
from fullbody.jsonio import write_json_atomic
from fullbody.keypoints import EVAL_PARTS
from fullbody.models.checkpoint import AtomicCheckpointIO, check_weights_fit, read_checkpoint
from fullbody.utils.ddp import distributed_job
from fullbody.utils.machine import keep_freed_memory, resolve_precision
from fullbody.utils.wandb_logging import checkpoint_callbacks, resumed_run_id, sweep_group_name

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a config group (callbacks, loggers)."""
    if not group:
        return []
    return [instantiate(c) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c]


def stage_metrics(metrics: dict[str, Any], stage: str) -> dict[str, float]:
    """``<stage>/<part>/<stat>`` entries as ``{"<part>/<stat>": value}`` (the metrics.json keys)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == stage and parts[1] in EVAL_PARTS:
            out[f"{parts[1]}/{parts[2]}"] = float(value)
    return out


def _log_config(loggers: list[Logger], cfg: DictConfig, model: L.LightningModule) -> None:
    """Send the composed config (and the parameter count) to every logger."""
    params = sum(p.numel() for p in model.parameters())
    hparams = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(hparams, dict)
    hparams["model/params"] = params
    for logger in loggers:
        logger.log_hyperparams(hparams)


def final_table(metrics: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The stage ("test", else "val") and its ``{"<part>/<stat>": value}`` table."""
    for stage in ("test", "val"):
        table = stage_metrics(metrics, stage)
        if table:
            return stage, table
    return "val", {}


def log_part_chart(loggers: list[Logger], metrics: dict[str, Any]) -> None:
    """The final per-part AP on each W&B run page, as a table and a bar chart (no panels to
    configure): ``<stage>/AP_per_part`` and ``<stage>/AP_per_part_chart``."""
    stage, table = final_table(metrics)
    rows = [[p, table[f"{p}/AP"]] for p in EVAL_PARTS if f"{p}/AP" in table]
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not rows or not wandb_loggers:
        return
    import wandb

    for logger in wandb_loggers:
        t = wandb.Table(columns=["part", "AP"], data=rows)
        chart = wandb.plot.bar(t, "part", "AP", title=f"{stage} AP per part")
        logger.experiment.log({f"{stage}/AP_per_part": t, f"{stage}/AP_per_part_chart": chart})


def sweep_group(task_name: str) -> str | None:
    """The W&B group of a multirun's jobs: ``<task>-<sweep folder name>`` (None outside one),
    so that the project page shows a sweep's runs together."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return sweep_group_name(task_name, HydraConfig.get().sweep.dir)


def check_optimized_metric(name: str | None) -> None:
    """Refuse an ``optimized_metric`` that no run logs (ConfigError) before anything trains: a
    sweeper would get nothing back from every trial."""
    if not name:
        return
    pieces = name.split("/")
    known = len(pieces) == 3 and pieces[0] in ("val", "test") and pieces[1] in EVAL_PARTS
    if not (known and pieces[2] in STATS):
        raise ConfigError(
            f"optimized_metric={name}: not a metric of train.py; give val/<part>/<stat> (or "
            f"test/...), part one of {', '.join(EVAL_PARTS)}, stat one of {', '.join(STATS)}"
        )


def _finish(loggers: list[Logger]) -> None:
    """Close W&B runs so that the next job of a sweep starts its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def check_run_length(trainer_cfg: DictConfig, budget_minutes: float | None = None) -> None:
    """Refuse a run without an end: ``max_epochs=-1`` (Lightning: no limit), no ``max_steps``
    and no time budget (:mod:`fullbody.models.budget`) would train forever (ConfigError)."""
    epochs, steps = trainer_cfg.get("max_epochs"), trainer_cfg.get("max_steps")
    if epochs is not None and epochs < 0 and (steps is None or steps < 0) and not budget_minutes:
        raise ConfigError(
            f"trainer.max_epochs={epochs} trains without end: also set trainer.max_steps=N "
            "(the learning-rate schedule is then sized from it), give trainer.max_epochs=N or "
            "a time budget (callbacks.budget.minutes)"
        )


def trainer_plugins(trainer_cfg: DictConfig) -> list[Any]:
    """The trainer config's ``plugins`` (e.g. SLURM's environment), plus the atomic checkpoint
    writer (:class:`AtomicCheckpointIO`): a full disk never leaves a truncated checkpoint."""
    plugins = instantiate(trainer_cfg.get("plugins") or [], _convert_="all")
    return [*plugins, AtomicCheckpointIO()]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the student and test it on held-out data; return all metrics (``<stage>/...``)."""
    start = time.perf_counter()
    keep_freed_memory()
    check_optimized_metric(cfg.get("optimized_metric"))
    resumed = None
    if cfg.get("ckpt_path"):
        # One clear error for a bad file; the W&B run of the checkpoint goes on.
        resumed = read_checkpoint(cfg.ckpt_path, "ckpt_path", trainer_state=True)
        resumed_run_id(cfg.get("logger"), resumed)
    if cfg.get("train", True):
        check_run_length(cfg.trainer, OmegaConf.select(cfg, "callbacks.budget.minutes"))
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.get("matmul_precision", "high"))
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    model: L.LightningModule = instantiate(cfg.model, _convert_="all")
    if resumed is not None:  # a checkpoint of another architecture: one error, not a key wall
        source = f"{Path(cfg.ckpt_path).expanduser()} (ckpt_path)"
        check_weights_fit(model, resumed["state_dict"], source, "the config's model.* builds")
        del resumed
    callbacks = instantiate_group(cfg.get("callbacks"))
    group = sweep_group(cfg.task_name)
    if group and "wandb" in (cfg.get("logger") or {}):
        cfg.logger.wandb.group = group
    loggers = instantiate_group(cfg.get("logger"))
    callbacks += checkpoint_callbacks(loggers)
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        precision=precision,
        plugins=trainer_plugins(cfg.trainer),
    )
    if loggers:
        _log_config(loggers, cfg, model)
    metrics: dict[str, float] = {}
    try:
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if cfg.get("test", True):
            ckpt = None
            if cfg.get("train", True):
                best = getattr(trainer.checkpoint_callback, "best_model_path", "")
                ckpt = best if best and cfg.get("test_best", True) else None
            else:
                ckpt = cfg.get("ckpt_path")
            trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        if trainer.is_global_zero:
            log_part_chart(loggers, metrics)
    finally:
        _finish(loggers)
    elapsed = time.perf_counter() - start
    if trainer.is_global_zero:
        report(metrics, Path(cfg.paths.output_dir), elapsed)
    return metrics


def report(metrics: dict[str, float], out_dir: Path, elapsed: float) -> None:
    """Print the per-part table of the test (else validation) metrics; write metrics.json."""
    from fullbody.evaluation.wholebody import format_table

    stage, table = final_table(metrics)
    if not table:
        log.warning("no per-part metrics were logged (is the evaluation callback configured?)")
        return
    print(f"\n{stage} set, per part (run took {elapsed:.0f} s):")
    print(format_table(table))
    try:
        path = write_json_atomic(table, out_dir / "metrics.json")
    except OSError as e:  # a full disk at the end of a run: the table above keeps the numbers
        raise OutputError(
            f"{out_dir / 'metrics.json'}: cannot write ({e.strerror or e}); the table above "
            "holds the run's numbers"
        ) from None
    print(f"metrics written to {path}")


def run(cfg: DictConfig) -> float | None:
    """What ``train.py`` runs: :func:`train` as one (possibly distributed) job; returns
    ``cfg.optimized_metric`` for hyper-parameter sweepers (None when it is not set)."""
    with distributed_job():
        metrics = train(cfg)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None
