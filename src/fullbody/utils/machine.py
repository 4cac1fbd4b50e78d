"""What machine this is: for benchmark figures (they depend on the CPU and its cores) and for
the training precision a machine computes fastest (``trainer.precision=auto``)."""

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


#: ``ONEDNN_MAX_CPU_ISA`` levels without bf16 arithmetic: oneDNN then converts bf16 in software.
_ONEDNN_ISA_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


def cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (Intel AMX tiles or AVX512-BF16), and
    oneDNN and PyTorch's kernels may use it.

    Where it does, oneDNN runs bf16 convolutions about twice as fast as float32 ones; where it
    does not, bf16 is converted in software and is slower than float32. Kernels capped below
    AVX-512 (``ONEDNN_MAX_CPU_ISA=AVX2``, ``ATEN_CPU_CAPABILITY=avx2``: how a CPU without
    AVX-512 is emulated) count as no native bf16.
    """
    import torch  # here, so that the metric's benchmarks that only name the machine stay light

    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa in _ONEDNN_ISA_WITHOUT_BF16:
        return False
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")()
    if not str(capability).upper().startswith("AVX512"):
        return False
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(
    precision: str | int | None, accelerator: str | None = "cpu"
) -> str | int | None:
    """Lightning's ``precision`` for a trainer config; ``"auto"`` becomes the fastest safe one.

    ``auto``: ``bf16-mixed`` (weights and the optimiser in float32, convolutions in bf16) on a
    CPU with native bf16 (:func:`cpu_has_native_bf16`) or a CUDA GPU that supports bf16, else
    ``32-true``. Any other value is Lightning's and passes through unchanged.
    """
    if precision != "auto":
        return precision
    import torch

    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of returning it to the kernel (training).

    By default glibc serves blocks over a few MB straight from the kernel and gives them back
    when freed, so each step's fresh heatmaps, activations and gradients arrive as new pages
    the kernel zeroes a fault at a time (on 2 cores ~8 % of a step; docs/training.md).
    ``mallopt``: blocks up to 32 MiB come from the heap, and up to 1 GiB of free heap is kept.
    Returns whether it applied (False off glibc, where nothing changes).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or not name:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(
            libc.mallopt(m_trim_threshold, 1 << 30)
        )
    except (OSError, AttributeError):  # a C library without mallopt (musl)
        return False


def process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``), e.g. what a time budget of the whole
    command has already spent on imports and data before training; 0 where it is unknown."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
