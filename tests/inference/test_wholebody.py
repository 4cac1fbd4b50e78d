"""The one-call API on tiny files in the published layouts (RTMW SimCC, YOLOX end-to-end),
resolved by their published names from a pre-filled model cache: no network."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from fullbody.errors import ConfigError, ImageLayoutError, UserError
from fullbody.inference.published import DETECTORS, POSE_MODELS
from fullbody.utils.fetch import FetchError

from ._published import export_simcc_model, fill_cache, rectangle, sdk_zip

pytestmark = [
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
CENTRE = (129.5, 114.5)  # of rectangle()'s 60 x 150 box at (100, 40): pixel centres


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return fill_cache(tmp_path_factory.mktemp("models"))


@pytest.fixture
def models(cache, monkeypatch) -> Path:
    monkeypatch.setenv("FULLBODY_MODEL_DIR", str(cache))
    return cache


def test_three_lines_give_every_point_in_image_pixels(models):
    from fullbody import Wholebody

    keypoints, scores = Wholebody(device="cpu")(cv2.cvtColor(rectangle(), cv2.COLOR_RGB2BGR))
    assert keypoints.shape == (1, 133, 2) and scores.shape == (1, 133)
    assert np.abs(keypoints[0] - CENTRE).max() < 1.0
    assert (scores > 0.9).all()


def test_predict_gives_the_pose_result_and_boxes_per_call_skip_the_detector(models):
    from fullbody import Wholebody

    wb = Wholebody(detector=None, device="cpu", color="rgb")
    with pytest.raises(ConfigError, match="pass the person boxes"):
        wb.predict(rectangle())
    result = wb.predict(rectangle(), boxes=[[95, 35, 70, 160]])
    assert len(result) == 1 and result.keypoints.shape == (1, 133, 3)
    np.testing.assert_allclose(result.boxes, [[95, 35, 70, 160]])
    assert np.abs(result.keypoints[0, :, :2] - CENTRE).max() < 1.0
    keypoints, _ = wb(rectangle(), boxes=np.zeros((0, 4)))
    assert keypoints.shape == (0, 133, 2)


def test_the_colour_order_is_honoured(cache, monkeypatch, tmp_path):
    """A red rectangle that only the red channel shows: found when the order is stated right,
    missed when an RGB array is passed as BGR."""
    from fullbody import Wholebody

    red = fill_cache(tmp_path / "red", pose=(), channel=2)  # YOLOX input is BGR: 2 = red
    for f in cache.iterdir():
        if f.name.startswith("rtmw"):
            (red / f.name).write_bytes(f.read_bytes())
    monkeypatch.setenv("FULLBODY_MODEL_DIR", str(red))
    rgb = rectangle(rgb=(255, 0, 0))
    assert len(Wholebody(device="cpu", color="rgb").predict(rgb)) == 1
    assert len(Wholebody(device="cpu").predict(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))) == 1
    assert len(Wholebody(device="cpu").predict(rgb)) == 0  # RGB passed as BGR: no red
    with pytest.raises(ConfigError, match="color='hsv'"):
        Wholebody(device="cpu", color="hsv")


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((40, 30, 3), np.float32), "uint8"),
        (np.zeros((40, 30), np.uint8), "grey"),
        (np.zeros((3, 40, 30), np.uint8), "channels first"),
        (np.zeros((40, 30, 4), np.uint8), "alpha"),
        ([[0, 1], [2, 3]], "NumPy array"),
    ],
)
def test_images_of_the_wrong_layout_or_dtype_are_refused(models, image, match):
    from fullbody import Wholebody

    wb = Wholebody(device="cpu")
    with pytest.raises(ImageLayoutError, match=match) as e:
        wb(image)
    assert isinstance(e.value, UserError)


def test_a_file_path_is_read_as_its_pixels(models, tmp_path):
    from fullbody import Wholebody

    path = tmp_path / "people.png"
    cv2.imwrite(str(path), cv2.cvtColor(rectangle(), cv2.COLOR_RGB2BGR))
    keypoints, _ = Wholebody(device="cpu")(path)
    assert np.abs(keypoints[0] - CENTRE).max() < 1.0


def test_model_can_be_a_checkpoint_or_an_exported_onnx_and_detector_a_file(
    tiny_ckpt, tiny_onnx, cache
):
    from fullbody import Wholebody

    detector = next(f for f in cache.iterdir() if f.name.startswith("yolox_m") and
                    f.suffix == ".onnx")  # fmt: skip
    for model in (tiny_ckpt, tiny_onnx, str(tiny_onnx)):
        keypoints, scores = Wholebody(model, detector, device="cpu")(rectangle())
        assert keypoints.shape == (1, 133, 2) and scores.shape == (1, 133)


def test_unknown_names_and_missing_files_are_one_line_user_errors(models, tmp_path):
    from fullbody import Wholebody

    with pytest.raises(ConfigError, match=r"'rtmw-z'.*published: rtmw-x-384x288"):
        Wholebody("rtmw-z")
    with pytest.raises(ConfigError, match="no such file"):
        Wholebody(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match=r"'yolo'.*published.*yolox-m-humanart"):
        Wholebody(detector="yolo")
    with pytest.raises(ConfigError, match="no such file"):
        Wholebody(detector="mine.onnx")
    with pytest.raises(ConfigError, match=r"\['score_threshold'\] apply to a published name"):
        Wholebody(detector=None, detector_settings={"score_threshold": 0.5})


def test_a_published_name_is_fetched_once_unpacked_and_checked(tmp_path, monkeypatch):
    """The registry entry's zip (as OpenMMLab publishes it) from a file:// URL: unpacked, its
    input size checked, the checksum recorded; a wrong size or input size is refused."""
    model = export_simcc_model(tmp_path / "end2end.onnx", (64, 48))
    archive = sdk_zip(model, tmp_path / "rtmw-test.zip")
    entry = replace(POSE_MODELS["rtmw-l-384x288"], url=archive.as_uri(), input_size=(64, 48),
                    size=None, sha256=None)  # fmt: skip
    monkeypatch.delenv("HF_HUB_OFFLINE")
    got = entry.fetch(tmp_path / "cache")
    assert got.name == "rtmw-test.onnx" and got.read_bytes() == model.read_bytes()
    assert (tmp_path / "cache" / "rtmw-test.onnx.sha256").is_file()
    for bad, match in ((dict(size=7), "expected 7"), (dict(input_size=(384, 288)), "384, 288")):
        with pytest.raises(FetchError, match=match):
            replace(entry, **bad).fetch(tmp_path / f"cache{len(match)}")


def test_the_registry_is_complete_and_points_at_the_published_files():
    for table in (POSE_MODELS, DETECTORS):
        for name, m in table.items():
            assert m.name == name and m.url.startswith("https://") and m.licence
            assert (m.member == "end2end.onnx") == m.url.endswith(".zip")
    assert {m.layout for m in POSE_MODELS.values()} == {"simcc"}
    assert DETECTORS["yolox-tiny-humanart"].input_size == (416, 416)


def test_import_fullbody_loads_neither_torch_nor_onnxruntime():
    code = ("import sys, fullbody; heavy = {'torch', 'onnxruntime', 'cv2'} & set(sys.modules); "
            "assert not heavy, heavy; assert fullbody.Wholebody.__name__ == 'Wholebody'")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": "src"})  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_simcc_outputs_are_taken_by_name_not_by_position(tmp_path):
    """A file storing ``simcc_y`` before ``simcc_x`` still decodes right (by position, the
    non-square input's vectors would not even fit)."""
    import torch

    from fullbody import Wholebody

    from ._models import DotNet

    class YThenX(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = DotNet((64, 48), (16, 12), simcc=True)

        def forward(self, x):
            sx, sy = self.net(x)
            return sy, sx

    path = tmp_path / "y_then_x.onnx"
    torch.onnx.export(YThenX().eval(), (torch.zeros(1, 3, 64, 48),), str(path), dynamo=False,
                      input_names=["input"], output_names=["simcc_y", "simcc_x"])  # fmt: skip
    wholebody = Wholebody(path, None, device="cpu", color="rgb")
    keypoints, _ = wholebody(rectangle(), [[95, 35, 70, 160]])
    assert np.abs(keypoints[0] - CENTRE).max() < 1.5  # a crop pixel is ~3.3 image pixels
