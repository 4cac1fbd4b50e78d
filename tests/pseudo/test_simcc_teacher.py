"""Whole-body SimCC teachers (RTMW / DWPose layout) on a tiny SimCC ONNX the test exports, and
fetching published files into the cache -- without the network."""

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from pseudo_data import skeleton
from torch import nn

from fullbody.pseudo.proposals import propose
from fullbody.pseudo.teachers.base import People, TeacherError
from fullbody.pseudo.teachers.fetch import RECORD_SUFFIX, cached_name, fetch_model, file_sha256
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
        OnnxTopDown(path, url="https://example.invalid/m.onnx")


def test_fetch_uses_the_cache_and_checks_the_configured_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a cached file never touches the network
    url = "https://huggingface.co/yzd-v/DWPose/resolve/main/dw-ll_ucoco_384.onnx"
    cached = export_simcc(tmp_path / cached_name(url))
    assert fetch_model(url, file_sha256(cached), tmp_path) == cached
    with pytest.raises(TeacherError, match="does not match the expected 00ff"):
        fetch_model(url, "00ff", tmp_path)
    teacher = OnnxTopDown(url=url, sha256=None, cache_dir=tmp_path, output="simcc")
    assert teacher.path == cached
    record = cached.with_name(cached.name + RECORD_SUFFIX)
    assert record.read_text().strip() == file_sha256(cached)  # recorded on first use
    cached.write_bytes(cached.read_bytes() + b"x")
    with pytest.raises(TeacherError, match=RECORD_SUFFIX):
        fetch_model(url, None, tmp_path)


def test_fetch_extracts_the_onnx_from_a_zip_and_offline_or_unreachable_says_where_to_put_it(
    tmp_path, monkeypatch
):
    for var in ("HF_HUB_OFFLINE", "FULLBODY_OFFLINE"):  # the suite runs offline (conftest)
        monkeypatch.delenv(var, raising=False)
    model = export_simcc(tmp_path / "end2end.onnx")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(model, "rtmw-x_sdk/end2end.onnx")
        z.writestr("rtmw-x_sdk/pipeline.json", "{}")
    archive = tmp_path / "served" / "rtmw-x_simcc-test.zip"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    cache = tmp_path / "cache"
    got = fetch_model(archive.as_uri(), file_sha256(model), cache)  # file:// : no network
    assert got == cache / "rtmw-x_simcc-test.onnx" and got.read_bytes() == model.read_bytes()
    assert [p.name for p in cache.iterdir()] == [got.name]  # no partial files left
    url = "http://127.0.0.1:9/dw-ll_ucoco_384.onnx"  # discard port: refused at once
    with pytest.raises(TeacherError, match=r"could not fetch http://127.0.0.1:9/.*place it at"):
        fetch_model(url, None, cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TeacherError, match=r"offline; download .* place it at .*dw-ll_ucoco"):
        fetch_model(url, None, cache)


def test_offline_wholebody_config_exits_2_with_the_url(dataset, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {"HF_HUB_OFFLINE": "1", "FULLBODY_TEACHER_DIR": str(tmp_path / "empty"),
           "PYTHONPATH": str(root / "src")}  # fmt: skip
    cmd = [sys.executable, str(root / "pseudo_label.py"), f"ann_file={dataset}",
           f"image_dir={dataset.parent / 'images'}", f"out_file={tmp_path / 'o.json'}",
           "~teacher/hand", "~teacher/face", "~teacher/foot", "+teacher/wholebody=dwpose",
           "workers=0", f"hydra.run.dir={tmp_path / 'h'}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "huggingface.co/yzd-v/DWPose/resolve/main/dw-ll_ucoco_384.onnx" in done.stderr
    assert "Traceback" not in done.stderr
