"""Lightning DDP under Hydra, multirun included: the one place that makes them cooperate.

Lightning's ``ddp`` strategy starts ranks 1..N-1 by re-running the script with the original
``sys.argv`` plus ``hydra.run.dir=<run dir>``. Under ``-m`` those arguments still hold ``-m``
and the comma sweeps, so every rank would start the whole sweep again (and with the wrong
output folder). :func:`distributed_job` wraps one Hydra job so that

* extra ranks re-run *this job only*: the script, the config-path/name flags, the job's own
  overrides (``HydraConfig.overrides.task``), the user's non-sweep ``hydra.*`` overrides, and
  ``hydra.run.dir=<this job's output dir>``, without ``-m``;
* at the end of the job the process group is destroyed and the environment variables the
  launcher set (``MASTER_PORT`` ...) are restored, so the next job of a sweep starts cleanly.

SLURM multi-node runs do not go through this path: ``srun`` starts every rank itself and
Lightning's ``SLURMEnvironment`` reads the ranks from the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch.distributed as dist

#: Environment variables Lightning's launcher sets in the main process.
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "WORLD_SIZE", "LOCAL_RANK")
#: Hydra's own flags that take a value and must reach every rank.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
#: ``hydra.*`` overrides that describe the sweep rather than the job: not passed to ranks.
_SWEEP_KEYS = (
    "hydra.mode",
    "hydra.run.",
    "hydra.sweep.",
    "hydra.sweeper",
    "hydra/sweeper",
    "hydra.launcher",
    "hydra/launcher",
    "hydra.job.name",
    "hydra.output_subdir",
)


def config_flags(argv: Sequence[str]) -> list[str]:
    """The ``--config-path/--config-name/--config-dir`` flags (with values) found in ``argv``."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in _CONFIG_FLAGS:
            out += [arg, next(it, "")]
        elif arg.startswith(tuple(f + "=" for f in _CONFIG_FLAGS)):
            out.append(arg)
    return out


def _strip_plus(override: str) -> str:
    return override.lstrip("~+")


def rank_command(
    script: Sequence[str],
    argv: Sequence[str],
    task_overrides: Sequence[str],
    hydra_overrides: Sequence[str],
    output_dir: str,
    local_rank: int,
) -> list[str]:
    """The command line that runs rank ``local_rank`` of the current Hydra job (pure)."""
    keep_hydra = [o for o in hydra_overrides if not _strip_plus(o).startswith(_SWEEP_KEYS)]
    return [
        *script,
        *config_flags(argv),
        *task_overrides,
        *keep_hydra,
        f'hydra.run.dir="{output_dir}"',
        f"hydra.job.name=ddp_rank_{local_rank}",
        "hydra.output_subdir=null",
    ]


def hydra_subprocess_cmd(local_rank: int) -> tuple[list[str], str]:
    """Replacement for Lightning's ``_hydra_subprocess_cmd``: this job's command, no sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    if __main__.__spec__ is None:
        script = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        script = [sys.executable, "-m", __main__.__spec__.name]
    hc = HydraConfig.get()
    cmd = rank_command(
        script,
        sys.argv[1:],
        list(hc.overrides.task),
        list(hc.overrides.hydra),
        hc.runtime.output_dir,
        local_rank,
    )
    return cmd, get_original_cwd()


def patch_lightning_launcher() -> None:
    """Make Lightning's subprocess DDP launcher start ranks with :func:`hydra_subprocess_cmd`."""
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as pl_launcher

    fabric_launcher._hydra_subprocess_cmd = hydra_subprocess_cmd
    pl_launcher._hydra_subprocess_cmd = hydra_subprocess_cmd


def teardown_distributed() -> None:
    """Destroy the default process group, if any (so a later job can create its own)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_job() -> Iterator[None]:
    """Run one Hydra job with DDP-safe rank launching and a clean distributed teardown."""
    saved = {k: os.environ.get(k) for k in _LAUNCH_ENV}
    patch_lightning_launcher()
    try:
        yield
    finally:
        teardown_distributed()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
