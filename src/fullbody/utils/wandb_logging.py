"""Weights & Biases for ``train.py``: W&B's own conventions, per-part AP at a glance, resumed runs
continued, one comparison per sweep.

* :class:`WandbLogger` is Lightning's logger with W&B's conventions for where a run goes
  (:func:`choose_mode`): online when the user is logged in, offline when not, ``WANDB_MODE``
  honoured, ``logger.wandb.offline`` honoured when set. It never prompts; an online start that
  cannot reach the server gives up after ``init_timeout`` seconds, says so in one line and logs
  offline (``wandb sync`` uploads it later). The run's summary keeps the best ``val/<part>/AP``.
* :class:`RunIdInCheckpoint` writes the W&B run id into every checkpoint; ``ckpt_path=`` then
  resumes that run (:func:`resumed_run_id`): one id, one continuous history.
* :func:`log_learning_curve` puts the six per-part AP lines against the step on the run page.
* :func:`log_sweep_summary` logs a sweep's per-part AP per job (with its overrides) as one W&B
  table, once, at the end of the multirun, beside ``sweep_summary.*``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from omegaconf import DictConfig, open_dict

from fullbody.errors import ConfigError
from fullbody.keypoints import EVAL_PARTS

log = logging.getLogger(__name__)

#: The key of the W&B run id in a checkpoint of ``train.py``.
CHECKPOINT_KEY = "wandb_run_id"
#: The validation AP of each part; the run summary keeps the best (max) of each.
AP_KEYS = tuple(f"val/{p}/AP" for p in EVAL_PARTS)
#: Where Lightning's WandbLogger puts the optimiser step (the x axis of every chart).
STEP_KEY = "trainer/global_step"
DEFAULT_INIT_TIMEOUT = 60.0

T = TypeVar("T")


def logged_in() -> bool:
    """Whether W&B has credentials (``WANDB_API_KEY``, ``~/.netrc``, a settings file), asked the
    way W&B documents for it: without prompting and without the network."""
    import wandb

    return bool(wandb.login(prompt=False, verify=False))


def choose_mode(offline: bool | None) -> tuple[str, str]:
    """The W&B mode of a run (``online``, ``offline`` or ``disabled``) and why.

    ``offline=True`` (``logger.wandb.offline``) is offline; ``WANDB_MODE=offline|disabled`` is
    that mode (the process-wide switch of a machine without network; it wins over
    ``offline=False``, with a warning); ``offline=False`` or ``WANDB_MODE=online`` is online, and
    with neither set the user's login decides. Online without credentials would prompt (or fail
    without a terminal): that is offline, with a warning."""
    if offline is True:
        return "offline", "logger.wandb.offline=true"
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("offline", "dryrun", "disabled"):
        mode = "disabled" if env == "disabled" else "offline"
        if offline is False:
            log.warning("W&B: WANDB_MODE=%s wins over logger.wandb.offline=false: %s", env, mode)
        return mode, f"WANDB_MODE={env}"
    if env and env not in ("online", "run"):
        raise ConfigError(f"WANDB_MODE={env}: W&B knows online, offline and disabled")
    if offline is None and not env:
        if logged_in():
            return "online", "logged in to W&B"
        return "offline", "not logged in to W&B (wandb login to go online)"
    why = "logger.wandb.offline=false" if offline is False else f"WANDB_MODE={env}"
    if not logged_in():
        log.warning("W&B: %s asks for online logging, but there are no W&B credentials "
                    "(wandb login, or WANDB_API_KEY): logging offline", why)  # fmt: skip
        return "offline", f"{why} without credentials"
    return "online", why


def start_run(init: Callable[[str], T], offline: bool | None, timeout: float, where: str) -> T:
    """``init(mode)`` in the mode :func:`choose_mode` picks; an online start that fails (no
    network, the server does not answer within ``timeout`` seconds, the key is refused) is
    one warning line and ``init("offline")``: training never waits on W&B for longer."""
    import wandb

    mode, why = choose_mode(offline)
    log.info("W&B: %s (%s)", mode, why)
    if mode != "online":
        return init(mode)
    try:
        return init("online")
    except wandb.errors.CommError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        server = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
        log.warning("W&B: no answer from %s (init_timeout %g s: %s); logging offline into %s, "
                    "upload it later: wandb sync %s/offline-run-*", server, timeout, first,
                    where, where)  # fmt: skip
        return init("offline")


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, started by :func:`start_run`, its summary keeping the best AP.

    Args:
        offline: ``None`` (default): W&B's conventions (:func:`choose_mode`); ``True``: offline;
            ``False``: online (unless WANDB_MODE says offline or disabled).
        init_timeout: seconds an online start may wait for the server before going offline.
        **kwargs: the arguments of Lightning's ``WandbLogger`` (and of ``wandb.init``).
    """

    def __init__(
        self,
        *args: Any,
        offline: bool | None = None,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        if offline is True and kwargs.get("log_model"):
            raise ConfigError(
                "logger.wandb.log_model uploads checkpoints: it needs an online "
                "run, not logger.wandb.offline=true"
            )
        # Lightning's own offline flag sets WANDB_MODE for the whole process: the mode goes to
        # wandb.init instead, chosen when the run starts (on rank 0 only).
        super().__init__(*args, offline=False, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # W&B warns about the setting, even unset
            del self._wandb_init["anonymous"]
        self._mode_setting = offline
        self._init_timeout = float(init_timeout)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The W&B run, started on first use (:func:`start_run`)."""
        if self._experiment is None:
            where = str(Path(self._save_dir or ".") / "wandb")
            run = start_run(self._start, self._mode_setting, self._init_timeout, where)
            for key in AP_KEYS:
                run.define_metric(key, summary="max", step_metric=STEP_KEY)
        return self._experiment

    def _start(self, mode: str) -> Any:
        import wandb

        self._experiment = None
        self._wandb_init.update(mode=mode, settings=wandb.Settings(init_timeout=self._init_timeout))
        return super().experiment


class RunIdInCheckpoint(L.Callback):
    """Writes the W&B run id of ``logger`` into every checkpoint (``wandb_run_id``), so that
    ``ckpt_path=`` continues that run (``train.py`` adds it when it logs to W&B)."""

    def __init__(self, logger: LightningWandbLogger) -> None:
        self.logger = logger

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        run_id = getattr(self.logger.experiment, "id", None)
        if isinstance(run_id, str) and run_id:
            checkpoint[CHECKPOINT_KEY] = run_id


def checkpoint_callbacks(loggers: Sequence[Logger]) -> list[L.Callback]:
    """One :class:`RunIdInCheckpoint` per W&B logger of ``loggers``."""
    return [RunIdInCheckpoint(lg) for lg in loggers if isinstance(lg, LightningWandbLogger)]


def resumed_run_id(logger_cfg: DictConfig | None, checkpoint: Mapping[str, Any]) -> None:
    """Set ``logger.wandb.id`` to the run id saved in ``checkpoint`` (unless an id is given):
    the resumed training logs into the same W&B run (``resume="allow"``)."""
    run_id = checkpoint.get(CHECKPOINT_KEY)
    wandb_cfg = (logger_cfg or {}).get("wandb")
    if not isinstance(run_id, str) or not isinstance(wandb_cfg, DictConfig):
        return
    if wandb_cfg.get("id"):
        log.info("W&B: logging to run %s (logger.wandb.id), not %s of the checkpoint",
                 wandb_cfg.id, run_id)  # fmt: skip
        return
    with open_dict(wandb_cfg):
        wandb_cfg.id = run_id
    log.info("W&B: continuing run %s of the checkpoint", run_id)


def sweep_group_name(task_name: str, sweep_dir: str | os.PathLike) -> str:
    """The W&B group of a multirun's runs: ``<task>-<sweep folder name>``."""
    return f"{task_name}-{Path(sweep_dir).name}"


def log_learning_curve(loggers: Sequence[Logger], rows: Sequence[Mapping], png: Path) -> None:
    """On each W&B run of ``loggers``: the six per-part validation AP lines against the step
    (``val/AP_per_part_curve``, one chart) and the learning-curve picture ``png``
    (``val/learning_curve``). ``rows``: the validation history
    (:func:`fullbody.analysis.curve.read_history`)."""
    runs = [lg for lg in loggers if isinstance(lg, LightningWandbLogger)]
    if not runs or not rows:
        return
    import wandb

    steps = [int(r["step"]) for r in rows]
    parts = [p for p in EVAL_PARTS if any(f"{p}/AP" in r["metrics"] for r in rows)]
    ys = [[float(r["metrics"].get(f"{p}/AP", float("nan"))) for r in rows] for p in parts]
    for logger in runs:
        chart = wandb.plot.line_series(xs=steps, ys=ys, keys=list(parts),
                                       title="validation AP per part", xname="step")  # fmt: skip
        logger.experiment.log({"val/AP_per_part_curve": chart,
                               "val/learning_curve": wandb.Image(str(png)),
                               STEP_KEY: steps[-1]})  # fmt: skip


def log_sweep_summary(config: DictConfig, sweep_dir: Path) -> None:
    """One W&B run (job type ``sweep_summary``, in the sweep's group, saved under
    ``<sweep_dir>/wandb``) holding ``sweep/AP_per_part``: a table of the sweep's jobs with
    their overrides, status, per-part AP and objective, and the ``sweep_summary.png`` chart.

    Only for a sweep that logs to W&B (``logger.wandb``)."""
    wandb_cfg = (config.get("logger") or {}).get("wandb")
    if not isinstance(wandb_cfg, DictConfig):
        return
    import wandb

    from fullbody.compare import AP_COLUMNS, SUMMARY_STEM, find_runs, read_run, varying_overrides

    rows = [read_run(folder, job) for job, folder in find_runs([sweep_dir])]
    common, own = varying_overrides(rows)
    columns = ["job", "overrides", "status", *AP_COLUMNS, "objective", "wall_s"]
    data = [[r.job, " ".join(mine), r.status, *(r.ap.get(c) for c in AP_COLUMNS), r.objective,
             r.wall_s] for r, mine in zip(rows, own)]  # fmt: skip
    group = sweep_group_name(str(config.get("task_name", "train")), sweep_dir)
    metric = config.get("optimized_metric")
    timeout = float(wandb_cfg.get("init_timeout", DEFAULT_INIT_TIMEOUT))

    def init(mode: str) -> Any:
        return wandb.init(
            project=wandb_cfg.get("project"), entity=wandb_cfg.get("entity"), group=group,
            name=f"{group}-summary", job_type="sweep_summary", dir=str(sweep_dir),
            tags=list(wandb_cfg.get("tags") or []), mode=mode,
            config={"sweep_dir": str(sweep_dir), "common_overrides": common,
                    "optimized_metric": metric},
            settings=wandb.Settings(init_timeout=timeout),
        )  # fmt: skip

    run = start_run(init, wandb_cfg.get("offline"), timeout, str(sweep_dir / "wandb"))
    payload: dict[str, Any] = {"sweep/AP_per_part": wandb.Table(columns=columns, data=data)}
    png = sweep_dir / f"{SUMMARY_STEM}.png"
    if png.is_file():
        payload["sweep/summary"] = wandb.Image(str(png))
    run.log(payload)
    scored = [r for r in rows if r.objective is not None]
    if scored:
        best = max(scored, key=lambda r: r.objective)
        run.summary.update({"best/job": best.job, "best/objective": best.objective})
    run.finish()
