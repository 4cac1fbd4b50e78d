"""What machine a benchmark figure was measured on (figures depend on the CPU and its cores)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_name() -> str:
    """CPU model and core count, e.g. ``"AMD EPYC 7B13, 2 cores"``."""
    return f"{cpu_name()}, {os.cpu_count()} cores"
