"""The ONNX teacher path, with small models the tests export themselves."""

import numpy as np
import pytest
import torch
from pseudo_data import skeleton
from torch import nn

from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.proposals import REGION_PARTS, propose
from fullbody.pseudo.teachers.base import People, TeacherError
from fullbody.pseudo.teachers.onnx_model import OnnxTopDown

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class BrightnessHeatmaps(nn.Module):
    """K identical heatmaps: the input's brightness pooled by 4 (peak = the brightest blob)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        return nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4).repeat(1, self.k, 1, 1)


class BrightnessCentroid(nn.Module):
    """(B, K, 3): the brightness-weighted centroid of the input (input px) and score 1."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        p = x.mean(1) ** 4
        h, w = p.shape[1:]
        ys = torch.arange(h, dtype=x.dtype).view(1, h, 1)
        xs = torch.arange(w, dtype=x.dtype).view(1, 1, w)
        total = p.sum((1, 2))
        cx, cy = (p * xs).sum((1, 2)) / total, (p * ys).sum((1, 2)) / total
        one = torch.ones_like(cx)
        return torch.stack([cx, cy, one], -1).unsqueeze(1).repeat(1, self.k, 1)


def export(model: nn.Module, path, size, dynamic: bool):
    x = torch.zeros(1, 3, *size)
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    torch.onnx.export(model, x, str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes=axes, dynamo=False)  # fmt: skip
    return path


def blob_image(points, h=240, w=320, sigma=4.0):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w))
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat((255 * np.clip(img, 0, 1)).astype(np.uint8)[..., None], 3, axis=2)


def test_wholebody_heatmap_model_on_person_boxes(tmp_path):
    path = export(BrightnessHeatmaps(133), tmp_path / "wb.onnx", (64, 48), dynamic=True)
    teacher = OnnxTopDown(path, mean=[0, 0, 0], std=[1, 1, 1])
    assert teacher.dynamic_batch and teacher.input_hw == (64, 48)
    body = np.concatenate([skeleton(1, 1.0, (20, 40)), skeleton(1, 1.0, (170, 40))])
    bboxes = np.array([[40.0, 50, 40, 130], [190, 50, 40, 130]])
    blobs = [(61.0, 95.0), (203.0, 150.0)]
    pred = teacher.predict(blob_image(blobs), People(body, bboxes, propose(body)))
    # person box 40 x 130 -> 52 x 169 crop of 48 x 64 px: ~3.5 image px per input px
    for i, blob in enumerate(blobs):
        err = np.linalg.norm(pred.xy[i] - np.array(blob), axis=1)
        assert err.max() < 1.5 * 4 * 3.6, err.max()
        assert (pred.conf[i] > 0.3).all() and (pred.conf[i] <= 1).all()


def test_rotated_hand_regions_with_a_keypoint_model_and_fixed_batch(tmp_path):
    path = export(BrightnessCentroid(21), tmp_path / "hand.onnx", (64, 64), dynamic=False)
    teacher = OnnxTopDown(path, parts=["lefthand", "righthand"], keypoints="hand",
                          region="hands", output="keypoints", box_scale=1.5,
                          mean=[0, 0, 0], std=[1, 1, 1])  # fmt: skip
    body = skeleton(1, 1.5, (60, 0))
    body[0, 7, :2] = body[0, 9, :2] + [-20.0, 10.0]  # a sideways left forearm: a rotated crop
    regions = propose(body)
    blobs = []
    for part in ("lefthand", "righthand"):
        box = regions.boxes[0, REGION_PARTS.index(part)]
        blobs.append(box[:2] + box[2:] / 2 + [3.0, -2.0])
    pred = teacher.predict(blob_image(blobs, sigma=2.0), People(body, np.zeros((1, 4)), regions))
    for part, blob in zip(("lefthand", "righthand"), blobs):
        np.testing.assert_allclose(pred.xy[0, PART_SLICES[part]], np.tile(blob, (21, 1)), atol=0.5)
        assert (pred.conf[0, PART_SLICES[part]] == 1).all()
    assert (pred.conf[0, :91] == 0).all()


def test_bad_models_and_options(tmp_path):
    with pytest.raises(TeacherError, match="not found"):
        OnnxTopDown(tmp_path / "none.onnx")
    path = export(BrightnessHeatmaps(17), tmp_path / "body.onnx", (64, 48), dynamic=True)
    with pytest.raises(ValueError, match="region"):
        OnnxTopDown(path, region="elbow")
    with pytest.raises(ValueError, match="21-point"):
        OnnxTopDown(path, region="hands", keypoints="face")
    with pytest.raises(ValueError, match="indices"):
        OnnxTopDown(path, keypoints=[0, 200])
    teacher = OnnxTopDown(path)  # claims 133 outputs, the model gives 17
    body = skeleton(1, 1.0, (20, 40))
    with pytest.raises(TeacherError, match="gives 17 points, expected 133"):
        teacher.predict(
            blob_image([(60, 90)]), People(body, np.array([[40.0, 50, 40, 130]]), propose(body))
        )


def test_a_fixed_input_size_that_disagrees_with_the_config_is_refused_up_front(tmp_path):
    """It failed inside onnxruntime on every crop, in every worker."""
    path = export(BrightnessHeatmaps(17), tmp_path / "body.onnx", (64, 48), dynamic=True)
    with pytest.raises(
        TeacherError, match=r"input_size=\[256, 192\], but the model takes fixed 64x48"
    ):
        OnnxTopDown(path, keypoints="body", input_size=[256, 192])
    assert OnnxTopDown(path, keypoints="body", input_size=[64, 48]).input_hw == (64, 48)


class _TwoOutputs(nn.Module):
    def forward(self, x):
        return x[:, :1], x.mean((2, 3))


def test_onnx_teacher_outputs_are_chosen_by_name(tmp_path):
    """An extra output was ignored or taken by position."""
    x = torch.zeros(1, 3, 64, 48)
    path = tmp_path / "two.onnx"
    torch.onnx.export(_TwoOutputs(), x, str(path), input_names=["input"],
                      output_names=["out0", "out1"], dynamo=False)  # fmt: skip
    with pytest.raises(TeacherError, match=r"outputs \['out0', 'out1'\]: none is named 'heatmaps'"):
        OnnxTopDown(path, keypoints="body")
    with pytest.raises(TeacherError, match="needs outputs named simcc_x and simcc_y"):
        OnnxTopDown(path, keypoints="body", output="simcc")
