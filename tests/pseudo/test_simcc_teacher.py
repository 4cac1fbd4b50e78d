"""Whole-body SimCC teachers (RTMW / DWPose layout) on a tiny SimCC ONNX the test exports, by
path and by published name from the model cache -- without the network (fetching itself:
tests/utils/test_fetch.py)."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pseudo_data import skeleton
from torch import nn

from fullbody.errors import UserError
from fullbody.pseudo.proposals import propose
from fullbody.pseudo.teachers.base import People, TeacherError
from fullbody.pseudo.teachers.onnx_model import OnnxTopDown

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
H, W, R = 32, 24, 2.0


class BrightnessSimCC(nn.Module):
    """SimCC vectors of the input's brightness profile: simcc_x (B, K, W*r) from the column
    means, simcc_y (B, K, H*r) from the row means, each bin i = input px i / r (r = 2: each
    pixel repeated twice); 133 identical points at the brightest row/column."""

    def forward(self, x):
        g = x.mean(1)  # (B, H, W)
        col = g.mean(1).repeat_interleave(2, dim=-1)  # (B, W*2)
        row = g.mean(2).repeat_interleave(2, dim=-1)
        col, row = col / col.amax(-1, keepdim=True), row / row.amax(-1, keepdim=True)
        return col[:, None].repeat(1, 133, 1), row[:, None].repeat(1, 133, 1)


def export_simcc(path, dynamic=True):
    x = torch.zeros(1, 3, H, W)
    names = ["simcc_x", "simcc_y"]
    axes = {n: {0: "batch"} for n in ["input", *names]} if dynamic else None
    torch.onnx.export(BrightnessSimCC(), x, str(path), input_names=["input"], output_names=names,
                      dynamic_axes=axes, dynamo=False)  # fmt: skip
    return path


def blob_image(points, h=240, w=320, sigma=5.0):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w))
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat((255 * np.clip(img, 0, 1)).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("dynamic", [True, False])
def test_simcc_model_points_land_on_the_blob_in_image_pixels(tmp_path, dynamic):
    path = export_simcc(tmp_path / "simcc.onnx", dynamic)
    teacher = OnnxTopDown(path, output="simcc", mean=[0, 0, 0], std=[1, 1, 1])
    assert teacher.input_hw == (H, W)
    body = np.concatenate([skeleton(1, 1.0, (20, 40)), skeleton(1, 1.0, (170, 40))])
    bboxes = np.array([[40.0, 50, 60, 80], [190, 50, 60, 80]])
    blobs = [(75.0, 85.0), (215.0, 110.0)]
    pred = teacher.predict(blob_image(blobs), People(body, bboxes, propose(body)))
    # box 60 x 80 (already 3:4) x 1.25 -> 75 x 100 image px on 24 x 32: ~3.1 px per input px
    for i, blob in enumerate(blobs):
        err = np.linalg.norm(pred.xy[i] - np.array(blob), axis=1)
        assert err.max() < 1.5 * 3.2, err.max()
        assert np.allclose(pred.conf[i], 1.0)


def test_simcc_outputs_that_do_not_fit_the_input_are_refused(tmp_path):
    path = export_simcc(tmp_path / "simcc.onnx")
    teacher = OnnxTopDown(path, output="simcc", split_ratio=3.0)
    body = skeleton(1, 1.0, (20, 40))
    with pytest.raises(TeacherError, match="do not fit input 32x24 with split_ratio 3.0"):
        teacher.predict(blob_image([(60, 90)]), People(body, np.array([[40.0, 50, 40, 80]]),
                                                       propose(body)))  # fmt: skip
    with pytest.raises(ValueError, match="output"):
        OnnxTopDown(path, output="logits")
    with pytest.raises(ValueError, match="exactly one of path"):
        OnnxTopDown(path, model="rtmw-x-384x288")


def test_a_published_name_runs_as_a_teacher_from_the_model_cache(tmp_path, monkeypatch):
    """``model: rtmw-x-384x288`` (what conf/teacher/wholebody/rtmw.yaml says) resolves through
    the registry: the cached file, its input size, SimCC output and split ratio."""
    from fullbody.inference.published import POSE_MODELS
    from fullbody.utils.fetch import cached_name, record_path

    monkeypatch.setenv("FULLBODY_MODEL_DIR", str(tmp_path))
    published = POSE_MODELS["rtmw-x-384x288"]
    cached = tmp_path / cached_name(published.url)
    export_simcc(cached, dynamic=False)  # a 32 x 24 stand-in: the registry says 384 x 288
    with pytest.raises(UserError, match="384, 288"):
        OnnxTopDown(model="rtmw-x-384x288")
    assert not record_path(cached).exists()  # a file that does not fit is never pinned
    cached.unlink()
    monkeypatch.setitem(POSE_MODELS, published.name, replace(published, input_size=(H, W)))
    export_simcc(cached, dynamic=False)
    teacher = OnnxTopDown(model="rtmw-x-384x288", mean=[0, 0, 0], std=[1, 1, 1])
    assert (teacher.path, teacher.output, teacher.input_hw) == (cached, "simcc", (H, W))
    body = skeleton(1, 1.0, (20, 40))
    pred = teacher.predict(blob_image([(75.0, 85.0)]),
                           People(body, np.array([[40.0, 50, 60, 80]]), propose(body)))  # fmt: skip
    assert np.linalg.norm(pred.xy[0] - [75.0, 85.0], axis=1).max() < 1.5 * 3.2


def test_offline_wholebody_config_exits_2_with_the_url(dataset, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {"HF_HUB_OFFLINE": "1", "FULLBODY_MODEL_DIR": str(tmp_path / "empty"),
           "PYTHONPATH": str(root / "src")}  # fmt: skip
    cmd = [sys.executable, str(root / "pseudo_label.py"), f"ann_file={dataset}",
           f"image_dir={dataset.parent / 'images'}", f"out_file={tmp_path / 'o.json'}",
           "~teacher/hand", "~teacher/face", "~teacher/foot", "+teacher/wholebody=dwpose",
           "workers=0", f"hydra.run.dir={tmp_path / 'h'}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "huggingface.co/yzd-v/DWPose/resolve/main/dw-ll_ucoco_384.onnx" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_pseudo_label_cli_runs_the_published_rtmw_name_from_the_model_cache(dataset, tmp_path):
    """``+teacher/wholebody=rtmw`` with a tiny stand-in in RTMW's published layout (384 x 288,
    simcc_x/simcc_y, batch 1) under its cache name: the run labels every part with it."""
    import json

    from inference._published import export_simcc_model  # tests/ is on sys.path (conftest)

    from fullbody.inference.published import POSE_MODELS
    from fullbody.utils.fetch import cached_name

    cache = tmp_path / "models"
    cache.mkdir()
    rtmw = POSE_MODELS["rtmw-x-384x288"]
    export_simcc_model(cache / cached_name(rtmw.url), rtmw.input_size)
    out = tmp_path / "o.json"
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, str(root / "pseudo_label.py"), f"ann_file={dataset}",
           f"image_dir={dataset.parent / 'images'}", f"out_file={out}", "~teacher/hand",
           "~teacher/face", "~teacher/foot", "+teacher/wholebody=rtmw", "workers=2",
           "progress=false", f"hydra.run.dir={tmp_path / 'h'}"]  # fmt: skip
    env = {**os.environ, "FULLBODY_MODEL_DIR": str(cache), "PYTHONPATH": str(root / "src")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    anns = json.loads(out.read_text())["annotations"]
    assert anns and all(sum(a["face_kpts"][2::3]) > 0 for a in anns)
