"""The Hydra callback of every entry point (``conf/hydra/default.yaml``): run folders and sweeps.

:class:`RunRecorder`

* gives every run its own folder: a time-stamped ``hydra.run.dir``/``hydra.sweep.dir`` (one
  with ``${now:...}`` in it) is created exclusively, and when another run started in the same
  second already took it, ``_2``, ``_3``, ... is appended. A folder named explicitly (on the
  command line, or by SLURM job id in ``trainer=slurm``, where every rank and a requeued job
  must share it) is used as it is — except a sweep folder that holds the jobs of an earlier
  sweep: refused, or with ``overwrite=true`` emptied of them first, so that no job folder mixes
  two runs' files;
* writes ``job.json`` into each job's folder when it starts (status ``running``) and again when
  it ends (``completed`` or ``failed`` with the error; overrides, wall time, objective, and what
  the job added, such as its time budget's ``max_steps``), so that a summary can tell a failed
  or killed job from a finished one;
* at the end of every job of a multirun and of the multirun itself, writes
  ``sweep_summary.csv/.md/.png`` at the sweep root (:mod:`fullbody.compare`), and once at the
  end, for a sweep that logs to W&B, the same table as one W&B run beside them
  (:func:`fullbody.utils.wandb_logging.log_sweep_summary`).

Extra DDP ranks (``LOCAL_RANK``/``SLURM_PROCID`` > 0) record nothing: rank 0 speaks for the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from fullbody.compare import TIME_FORMAT

log = logging.getLogger(__name__)

#: Environment variables that hold a process's rank; any > 0 is not the job's main process.
_RANK_ENV = ("LOCAL_RANK", "RANK", "SLURM_PROCID")


def is_main_rank() -> bool:
    """Whether this process is rank 0 of its job (or not distributed at all)."""
    for key in _RANK_ENV:
        value = os.environ.get(key, "0")
        if value.isdigit() and int(value) > 0:
            return False
    return True


def claim_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` exclusively; if it exists, the first free ``path_2``, ``path_3``, ...

    Exclusive creation (``mkdir`` without ``exist_ok``) makes two processes that race for the
    same name end in different folders.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}_{n}")


def _is_timestamped(config: DictConfig, key: str) -> bool:
    """Whether ``hydra.<key>`` is (still) a ``${now:...}`` pattern, i.e. meant to be fresh."""
    section, name = key.split(".")
    raw = OmegaConf.to_container(config.hydra[section], resolve=False).get(name)
    return isinstance(raw, str) and "${now:" in raw


def prepare_folder(config: DictConfig, key: str) -> Path:
    """The folder of ``hydra.<key>`` (run.dir or sweep.dir), created and known writable: a
    time-stamped one is claimed (:func:`claim_folder`). A folder that cannot be created or
    written (read-only file system, full disk) ends the program with one line and status 2,
    before Hydra writes anything."""
    path = Path(str(OmegaConf.select(config, f"hydra.{key}")))
    try:
        if _is_timestamped(config, key):
            folder = claim_folder(path)
        else:
            folder = path
            folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_bytes(b"0")
        probe.unlink()
    except OSError as e:
        print(f"error: {path}: cannot write the run folder (hydra.{key}, under paths.log_dir): "
              f"{e.strerror or e}", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    return folder


def clear_earlier_sweep(folder: Path, overwrite: bool, option: str = "overwrite=true") -> None:
    """Refuse an explicitly named sweep folder that holds an earlier sweep's job folders (one
    line, exit status 2), or with ``overwrite`` remove those folders and the earlier summary,
    so that every job of this sweep starts in an empty folder. ``option`` is how the user
    passes ``overwrite`` to this command."""
    from fullbody.compare import SUMMARY_STEM, is_run_folder

    earlier = sorted(c for c in folder.iterdir() if c.is_dir() and is_run_folder(c))
    if not earlier:
        return
    names = ", ".join(c.name for c in earlier[:5]) + (", ..." if len(earlier) > 5 else "")
    if not overwrite:
        print(f"error: {folder} (hydra.sweep.dir): holds the jobs of an earlier sweep "
              f"({names}); name a new folder, or pass {option} to replace them",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    log.warning("%s: removing the jobs of an earlier sweep (%s): overwrite=true", folder, names)
    for job in earlier:
        shutil.rmtree(job)
    for old in folder.glob(f"{SUMMARY_STEM}.*"):
        old.unlink()


def record_failure(message: str) -> None:
    """Mark the current Hydra job's ``job.json`` failed with ``message``: for a job that ends in
    ``sys.exit`` (a user error, exit status 2), which Hydra's ``on_job_end`` never sees."""
    from hydra.core.hydra_config import HydraConfig

    from fullbody.compare import JOB_FILE, started_at, write_job_file

    if not (HydraConfig.initialized() and is_main_rank()):
        return
    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        info = json.loads((out / JOB_FILE).read_text())
        started = started_at(info)
        wall = round(time.time() - started, 3) if started is not None else None
        info.update(status="failed", error=message, wall_s=wall)
        write_job_file(out, info)
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.debug("job.json of %s not updated: %s", out, e)


def _added_by_job(out: Path) -> dict[str, Any]:
    """What the job itself added to its ``job.json`` while it ran (e.g. the number of steps its
    time budget chose, :mod:`fullbody.models.budget`), kept when the record is rewritten."""
    from fullbody.compare import JOB_FILE

    try:
        info = json.loads((out / JOB_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


class RunRecorder(Callback):
    """Unique run folders, ``job.json`` per job, ``sweep_summary.*`` per multirun."""

    def __init__(self, summary: bool = True) -> None:
        self.summary = summary
        self._started: dict[str, tuple[float, str]] = {}

    # ------------------------------------------------------------- folders
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_main_rank():
            folder = prepare_folder(config, "run.dir")
            with read_write(config.hydra.run):
                config.hydra.run.dir = str(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_main_rank():
            return
        fresh = _is_timestamped(config, "sweep.dir")
        folder = prepare_folder(config, "sweep.dir")
        if not fresh:
            option = "overwrite=true" if "overwrite" in config else "+overwrite=true"
            clear_earlier_sweep(folder, bool(config.get("overwrite")), option)
        if fresh:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.sweep.dir = str(folder)
                # Jobs compose their config again from these overrides: they must see it.
                config.hydra.overrides.hydra.append(f"hydra.sweep.dir='{folder}'")

    # ------------------------------------------------------------- jobs
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_main_rank():
            return
        out = Path(config.hydra.runtime.output_dir)
        self._started[str(out)] = (time.time(), time.strftime(TIME_FORMAT))
        self._write_job(out, config, {"status": "running", "started": self._started[str(out)][1]})

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not is_main_rank():
            return
        out = Path(config.hydra.runtime.output_dir)
        t0, started = self._started.pop(str(out), (None, None))
        info: dict[str, Any] = {
            "status": "completed" if job_return.status == JobStatus.COMPLETED else "failed",
            "started": started,
            "wall_s": round(time.time() - t0, 3) if t0 is not None else None,
        }
        if job_return.status == JobStatus.COMPLETED:
            value = job_return.return_value
            if isinstance(value, int | float):
                info["objective"] = float(value)
        else:
            err = job_return._return_value
            info["error"] = f"{type(err).__name__}: {err}"
        self._write_job(out, config, {**_added_by_job(out), **info})
        if config.hydra.mode == RunMode.MULTIRUN:
            # Also after every job: a sweep that stops on a failed job still leaves its summary.
            self._summarize(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if is_main_rank():
            self._summarize(config)
            if self.summary:
                from fullbody.utils.wandb_logging import log_sweep_summary

                try:
                    log_sweep_summary(config, Path(str(config.hydra.sweep.dir)))
                except (OSError, ValueError) as e:  # the files above hold the summary
                    log.warning("no W&B sweep summary: %s", e)

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _write_job(out: Path, config: DictConfig, info: dict[str, Any]) -> None:
        from fullbody.compare import write_job_file

        record = {
            "task": str(config.get("task_name", config.hydra.job.name)),
            "overrides": list(config.hydra.overrides.task),
            "job_num": config.hydra.job.get("num"),
            **info,
        }
        try:
            write_job_file(out, record)
        except OSError as e:  # the job itself reports an unwritable folder better
            log.warning("could not write %s/job.json: %s", out, e)

    def _summarize(self, config: DictConfig) -> None:
        if not self.summary:
            return
        from fullbody.compare import metric_part, summarize

        root = Path(str(config.hydra.sweep.dir))
        metric = config.get("optimized_metric")
        title = f"{root.name}: AP per part" + (f" (optimised: {metric})" if metric else "")
        try:
            paths = summarize([root], root, metric_part(metric), title)
        except (OSError, ValueError) as e:
            log.warning("no sweep summary in %s: %s", root, e)
            return
        log.info("sweep summary: %s", ", ".join(str(p) for p in paths))
