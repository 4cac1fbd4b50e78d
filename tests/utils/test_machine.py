"""The machine: its name for figures, and the precision ``trainer.precision=auto`` picks."""

from __future__ import annotations

import pytest
import torch

from fullbody.utils import machine


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (False, False, "32-true")],
)
def test_auto_is_bf16_only_where_the_cpu_has_it(monkeypatch, amx, avx512_bf16, expected) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert machine.resolve_precision("auto", "cpu") == expected
    assert machine.resolve_precision("auto", "auto") == expected  # no GPU: the CPU decides


@pytest.mark.parametrize(
    ("isa", "capability", "expected"),
    [("", "AVX512", True), ("AVX2", "AVX512", False), ("avx512_core", "AVX512", False),
     ("AVX512_CORE_BF16", "AVX512", True), ("", "AVX2", False)],
)  # fmt: skip
def test_kernels_capped_below_avx512_bf16_are_no_native_bf16(
    monkeypatch, isa, capability, expected
) -> None:
    """ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 emulates a CPU without AVX-512 on one
    that has it: ``auto`` must then pick float32, as it would there."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert machine.cpu_has_native_bf16() is expected


def test_auto_without_the_cpu_checks_is_float32(monkeypatch) -> None:
    """A PyTorch without the (private) CPU feature checks trains in float32, never emulated bf16."""
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert not machine.cpu_has_native_bf16()
    assert machine.resolve_precision("auto", "cpu") == "32-true"


def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported, expected in [(True, "bf16-mixed"), (False, "32-true")]:
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert machine.resolve_precision("auto", "gpu") == expected


@pytest.mark.parametrize("value", ["32-true", "bf16-mixed", "16-mixed", 32, None])
def test_other_values_are_lightnings_and_pass_through(value) -> None:
    assert machine.resolve_precision(value, "cpu") == value


def test_machine_name_has_the_core_count() -> None:
    assert machine.machine_name().endswith(" cores") and machine.cpu_name()


def test_keep_freed_memory_applies_on_glibc_and_is_harmless_twice() -> None:
    import platform

    applied = machine.keep_freed_memory()
    assert machine.keep_freed_memory() == applied
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert applied
    torch.ones(8 << 20).sum()  # large blocks are still served
