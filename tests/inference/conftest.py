"""Fixtures of the inference tests: a tiny checkpoint and its ONNX export, a fake YOLO ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest

from fullbody.models.module import PoseModule

from ._models import HEATMAP_SIZE, INPUT_SIZE, export_box_finder, save_checkpoint, tiny_module


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(tiny_module(), tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_ckpt, tmp_path_factory) -> Path:
    from fullbody.inference.export import export_onnx

    module = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu")
    meta = {
        "input_size": INPUT_SIZE,
        "heatmap_size": HEATMAP_SIZE,
        "flip_test": True,
        "dark": True,
        "score_threshold": 0.2,
    }
    return export_onnx(module.net, tmp_path_factory.mktemp("onnx") / "tiny.onnx", INPUT_SIZE, meta)


@pytest.fixture(scope="session")
def box_finder_onnx(tmp_path_factory) -> Path:
    return export_box_finder(tmp_path_factory.mktemp("det") / "boxfinder.onnx")
