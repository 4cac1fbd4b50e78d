"""Fixtures of the inference tests: a tiny checkpoint and its ONNX export, a fake YOLO ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.checkpoints import save_checkpoint, tiny_module

from fullbody.models.module import PoseModule

from ._models import export_box_finder


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread per test process: the networks here are tiny, and with pytest-xdist
    workers on a small machine more threads only contend (measured 4x slower with 2 threads on
    2 busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(tiny_module(), tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_ckpt, tmp_path_factory) -> Path:
    from fullbody.inference.export import export_onnx

    module = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu")
    return export_onnx(module.net, tmp_path_factory.mktemp("onnx") / "tiny.onnx", module.spec)


@pytest.fixture(scope="session")
def box_finder_onnx(tmp_path_factory) -> Path:
    return export_box_finder(tmp_path_factory.mktemp("det") / "boxfinder.onnx")
