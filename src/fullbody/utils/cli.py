"""User errors of the entry points: one line on stderr and exit status 2, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf import Container, DictConfig, ListConfig

from fullbody.errors import ConfigError, OutputError, UserError

__all__ = [
    "ConfigError",
    "OutputError",
    "UserError",
    "check_complete",
    "missing_keys",
    "user_errors",
]


def missing_keys(cfg: Container, prefix: str = "") -> list[str]:
    """The dotted keys of ``cfg`` whose value is still ``???``, without resolving any
    interpolation (unlike ``OmegaConf.missing_keys``, which fails on ``${hydra:...}`` outside a
    job)."""
    found: list[str] = []
    keys = range(len(cfg)) if isinstance(cfg, ListConfig) else list(cfg.keys())
    for key in keys:
        node = cfg._get_node(key)
        name = f"{prefix}[{key}]" if isinstance(cfg, ListConfig) else f"{prefix}.{key}"
        if node is None:
            continue
        if node._is_missing():
            found.append(name.lstrip("."))
        elif isinstance(node, DictConfig | ListConfig) and not (
            node._is_interpolation() or node._is_none()
        ):
            found += missing_keys(node, name)
    return found


def check_complete(cfg: Container) -> None:
    """Refuse a composed config that still holds ``???`` (a value the user must give), naming
    every such key: OmegaConf only fails when a missing value is read, and a merge keeps an
    earlier value over a later ``???``, so a forgotten option could otherwise pass unseen."""
    keys = missing_keys(cfg)
    if keys:
        given = " ".join(f"{k}=..." for k in keys)
        raise ConfigError(f"{', '.join(keys)}: not set (??? in the config); give {given}")


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _cause(error: Exception) -> BaseException:
    """The error itself, or what Hydra's ``instantiate`` wrapped (e.g. a missing checkpoint)."""
    from hydra.errors import InstantiationException

    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        return error.__cause__
    return error


@contextmanager
def user_errors(cfg: Container | None = None) -> Iterator[None]:
    """Exit with status 2 and ``error: <message>`` when a :class:`UserError` is raised inside,
    or wrapped by Hydra's ``instantiate``. In a multirun the error is raised on, so that Hydra
    records the job as failed and the sweep goes on to the next job. ``cfg``: the job's
    composed config, first checked for values left unset (:func:`check_complete`). A job
    stopped by Ctrl-C or a non-zero ``sys.exit`` inside is recorded failed in ``job.json`` too
    (Hydra's end-of-job callback sees only exceptions), and the stop goes on."""
    try:
        if cfg is not None:
            check_complete(cfg)
        yield
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C, or Lightning's exit after it
        code = stop.code if isinstance(stop, SystemExit) else None
        if isinstance(stop, KeyboardInterrupt) or code not in (None, 0):
            from fullbody.utils.hydra_callbacks import record_failure

            what = "interrupted" if code is None else f"exit status {code}"
            record_failure(f"{type(stop).__name__}: {what}")
        raise
    except Exception as raised:
        e = _cause(raised)
        if not isinstance(e, UserError) or _in_multirun():
            raise
        from fullbody.utils.hydra_callbacks import record_failure

        record_failure(f"{type(e).__name__}: {e}")
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
