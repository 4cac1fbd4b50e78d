"""User errors of the entry points: one line on stderr and exit status 2, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from fullbody.errors import ConfigError, OutputError, UserError

__all__ = ["ConfigError", "OutputError", "UserError", "user_errors"]


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
def user_errors() -> Iterator[None]:
    """Exit with status 2 and ``error: <message>`` when a :class:`UserError` is raised inside,
    or wrapped by Hydra's ``instantiate``. In a multirun the error is raised on, so that Hydra
    records the job as failed and the sweep goes on to the next job."""
    try:
        yield
    except Exception as raised:
        e = _cause(raised)
        if not isinstance(e, UserError) or _in_multirun():
            raise
        from fullbody.utils.hydra_callbacks import record_failure

        record_failure(f"{type(e).__name__}: {e}")
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
