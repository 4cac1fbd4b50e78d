"""User errors of the entry points: one line on stderr and exit status 2, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class ConfigError(ValueError):
    """A setting of the composed config is wrong or missing; the message names its key."""


class OutputError(OSError):
    """An output file could not be written (full disk, read-only folder); the message names
    the file, and what was computed is not lost silently (it was printed, or is named)."""


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@contextmanager
def user_errors(*types: type[BaseException]) -> Iterator[None]:
    """Exit with status 2 and ``error: <message>`` when one of ``types`` (default
    :class:`ConfigError` and :class:`OutputError`) is raised inside. In a multirun the error is raised on, so that Hydra
    records the job as failed and the sweep goes on to the next job."""
    caught = tuple(types) or (ConfigError, OutputError)
    try:
        yield
    except caught as e:
        if _in_multirun():
            raise
        from fullbody.utils.hydra_callbacks import record_failure

        record_failure(f"{type(e).__name__}: {e}")
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
