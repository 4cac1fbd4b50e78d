"""ONNX export: parity with PyTorch, dynamic batch, metadata the predictor reads, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from helpers.checkpoints import HEATMAP_SIZE, INPUT_SIZE, SPEC, tiny_module

from fullbody.codecs.spec import TopDownSpec
from fullbody.inference.export import export_onnx, onnx_parity, random_crops
from fullbody.inference.predictor import PosePredictor
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.module import PoseModule

from ._models import strip_metadata

ROOT = Path(__file__).resolve().parents[2]


def test_onnxruntime_agrees_with_pytorch_at_any_batch_size(tiny_ckpt, tiny_onnx):
    net = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu").net
    crops = random_crops(5, INPUT_SIZE)
    report = onnx_parity(net, tiny_onnx, crops, batch_sizes=(1, 2, 5))
    assert report["max_output"] > 0.1  # a meaningful comparison
    assert report["max_abs_diff"] < 1e-4 and report["crops"] == 5
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    out = session.run(None, {"image": crops[:3]})[0]
    assert out.shape == (3, NUM_KEYPOINTS, *HEATMAP_SIZE)


def test_parity_check_detects_a_different_network(tiny_onnx):
    other = tiny_module().net
    for p in other.parameters():
        p.data.add_(0.05)
    report = onnx_parity(other, tiny_onnx, random_crops(2, INPUT_SIZE))
    assert report["max_abs_diff"] > 1e-3


def test_metadata_sets_up_the_predictor(tiny_onnx):
    pred = PosePredictor.from_onnx(tiny_onnx, flip_test=False)
    assert pred.input_size == INPUT_SIZE and pred.codec.heatmap_size == HEATMAP_SIZE
    assert pred.spec == dataclasses.replace(SPEC, flip_test=False)  # the override, else the file's


def test_an_onnx_file_is_cropped_with_the_padding_of_its_metadata(tiny_ckpt, tmp_path):
    """The box padding travels in the file: a model trained at 1.5 is cropped at 1.5."""
    net = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu").net
    path = export_onnx(net, tmp_path / "wide.onnx", dataclasses.replace(SPEC, padding=1.5))
    pred = PosePredictor.from_onnx(path)
    assert pred.spec.padding == 1.5
    box = np.array([[100.0, 50.0, 64.0, 96.0]])  # already the crop's 2:3 aspect
    _, to_image = pred.crops(np.zeros((300, 300, 3), np.uint8), box)
    corners = to_image[0] @ np.array([[-0.5, -0.5, 1.0], [63.5, 95.5, 1.0]]).T
    # The crop's outer edges are the box's, 1.5 times as large around its centre.
    np.testing.assert_allclose(corners.T, [[84.0, 26.0], [180.0, 170.0]], atol=1e-9)


def test_export_refuses_to_overwrite(tiny_ckpt, tmp_path):
    net = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu").net
    path = export_onnx(net, tmp_path / "m.onnx", SPEC)
    with pytest.raises(FileExistsError, match="m.onnx: exists"):
        export_onnx(net, path, SPEC)
    export_onnx(net, path, SPEC, {"backbone": "x", "flip_pairs": [1, 2]}, overwrite=True)
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert meta == {"backbone": "x", "flip_pairs": "1,2", **SPEC.to_metadata()}
    assert not list(tmp_path.glob(".*tmp"))


def test_a_full_disk_at_export_leaves_the_previous_model_and_no_temporary(
    tiny_ckpt, tmp_path, monkeypatch
):
    """A failed write left ``.m.onnx.tmp`` behind and a traceback."""
    import errno

    from fullbody import jsonio
    from fullbody.errors import OutputError

    net = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu").net
    path = export_onnx(net, tmp_path / "m.onnx", SPEC)
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jsonio.os, "fsync", full)
    with pytest.raises(OutputError, match=r"m\.onnx: cannot write the ONNX model \(No space"):
        export_onnx(net, path, SPEC, {"backbone": "x"}, overwrite=True)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]


def test_a_second_export_keeps_the_first_ones_report(tiny_ckpt, tmp_path):
    """Both reports were export_report.json: the second export replaced the first's."""
    from omegaconf import OmegaConf

    from fullbody.jobs import export

    reports = []
    for name in ("a", "b"):
        cfg = OmegaConf.create({"ckpt_path": str(tiny_ckpt), "out_file": str(tmp_path / f"{name}.onnx"),
                                "overwrite": False, "opset": 17,
                                "check": {"crops": 2, "batch_sizes": [2], "tolerance": 1e-3,
                                          "seed": 0}})  # fmt: skip
        export.run(cfg)
        reports.append(json.loads((tmp_path / f"{name}.export_report.json").read_text()))
    assert [r["onnx"] for r in reports] == [str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx")]


@pytest.mark.slow
def test_export_command_line_reports_parity(tiny_ckpt, tmp_path):
    out = tmp_path / "tiny.onnx"
    cmd = [sys.executable, "export.py", f"ckpt_path={tiny_ckpt}", f"out_file={out}",
           "check.crops=4", "check.batch_sizes=[1,4]", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OK" in done.stdout
    report = json.loads((tmp_path / "tiny.export_report.json").read_text())
    assert report["max_abs_diff"] < 1e-4 and report["batch_sizes"] == [1, 4]
    assert report["max_output"] > 0.1 and np.isfinite(report["mean_abs_diff"])
    meta = ort.InferenceSession(str(out)).get_modelmeta().custom_metadata_map
    assert (
        TopDownSpec.from_metadata(meta, str(out), 1) == SPEC and meta["backbone"] == "test_resnet"
    )


@pytest.mark.slow
def test_a_model_that_fails_the_check_is_not_left_in_place(tiny_ckpt, tmp_path):
    """A failed parity check used to leave the model at out_file (and a rerun then refused
    because it existed): now nothing is left there, the report says why, a rerun can go on."""
    out = tmp_path / "tiny.onnx"
    cmd = [sys.executable, "export.py", f"ckpt_path={tiny_ckpt}", f"out_file={out}",
           "check.crops=2", "check.batch_sizes=[2]", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*cmd, "check.tolerance=-1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1 and "ABOVE TOLERANCE" in done.stdout
    assert not out.exists() and not list(tmp_path.glob(".tiny.onnx*"))
    assert json.loads((tmp_path / "tiny.export_report.json").read_text())["onnx"] is None
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file()


@pytest.mark.parametrize("stride", [2, 4])
def test_a_heatmap_file_without_metadata_takes_its_heatmap_size_from_the_output(tmp_path, stride):
    """A heatmap file written by other tools (no metadata): the input size from its input and
    the heatmap size from its output (stride 2: the fpn head on the stem), so it decodes as the
    checkpoint it came from."""
    from helpers.checkpoints import save_checkpoint

    from .test_predictor import dot_image

    hm = (INPUT_SIZE[0] // stride, INPUT_SIZE[1] // stride)
    module = tiny_module(head="fpn", spec=TopDownSpec.standard(INPUT_SIZE, stride=stride)).eval()
    path = strip_metadata(export_onnx(module.net, tmp_path / "plain.onnx", module.spec))
    onnx = PosePredictor.from_onnx(path, nms="none", flip_test=False)
    ckpt = PosePredictor.from_checkpoint(
        save_checkpoint(module, tmp_path / "m.ckpt"), "cpu", nms="none", flip_test=False
    )
    assert onnx.spec == dataclasses.replace(module.spec, flip_test=False)  # derived as trained
    assert onnx.codec.heatmap_size == hm
    img, boxes = dot_image([(100, 80)], size=4), np.array([[60.0, 40, 80, 90]])
    a, b = onnx(img, boxes), ckpt(img, boxes)
    # A random network's flat maps: float noise may flip an argmax tie or two.
    same = np.abs(a.keypoints - b.keypoints).max(-1) < 1e-2
    assert same.mean() > 0.95, same.mean()
