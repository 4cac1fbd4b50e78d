"""SimCC models through the predictor and the ONNX export: the same codec decodes PyTorch
modules, this project's exported files and files in RTMPose's published two-output layout."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from helpers.checkpoints import INPUT_SIZE, SIMCC_SPEC, save_checkpoint, tiny_module
from torch import nn

from fullbody.inference.export import export_onnx, onnx_parity, random_crops
from fullbody.inference.predictor import PosePredictor, TorchHeatmapModel
from fullbody.keypoints import NUM_KEYPOINTS

from ._models import DotNet, strip_metadata
from .test_predictor import dot_image

DOTS = [(60, 50), (200, 150), (250, 40)]
BOXES = np.array([[40, 25, 40, 50], [150, 100, 100, 110], [232, 14, 36, 48]], float)


def _dot_errors(pred: PosePredictor) -> np.ndarray:
    res = pred(dot_image(DOTS, size=4), BOXES)
    xy = res.keypoints[np.argsort(res.box_index), :, :2]
    return np.abs(xy - (np.array(DOTS, float) + 1.5)[:, None]).max((1, 2))


@pytest.mark.parametrize("flip_test", [False, True])
def test_simcc_points_come_back_in_image_pixels(flip_test):
    """The fake network's SimCC labels at the dot decode to the dot's image position through
    the crop affine, with and without the flip test (crops are 1.2 to 2 image px a crop px)."""
    model = TorchHeatmapModel(DotNet(simcc=True), "cpu")
    pred = PosePredictor(model, replace(SIMCC_SPEC, flip_test=flip_test), nms="none")
    err = _dot_errors(pred)
    assert (err < [0.1, 0.6, 0.1]).all(), err


def _simcc_module():
    module = tiny_module(head="simcc", head_channels=32, final_kernel=3)
    for m in module.net.head.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)  # outputs of order 1, a meaningful parity
    return module


def test_simcc_export_has_rtmpose_outputs_and_parity(tmp_path):
    module = _simcc_module()
    path = export_onnx(module.net, tmp_path / "simcc.onnx", module.spec)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["simcc_x", "simcc_y"]
    crops = random_crops(3, INPUT_SIZE)
    x, y = session.run(None, {"image": crops})
    h, w = INPUT_SIZE
    assert x.shape == (3, NUM_KEYPOINTS, 2 * w) and y.shape == (3, NUM_KEYPOINTS, 2 * h)
    report = onnx_parity(module.net, path, crops, batch_sizes=(1, 3))
    assert report["max_output"] > 0.1 and report["max_abs_diff"] < 1e-4
    # The predictor reads the spec from the metadata and decodes as the checkpoint's does.
    onnx_pred = PosePredictor.from_onnx(path, nms="none")
    ckpt_pred = PosePredictor.from_checkpoint(
        save_checkpoint(module, tmp_path / "simcc.ckpt"), "cpu", nms="none"
    )
    assert onnx_pred.spec == ckpt_pred.spec == SIMCC_SPEC
    img = dot_image(DOTS, size=4)
    a, b = onnx_pred(img, BOXES), ckpt_pred(img, BOXES)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)


def test_a_file_in_rtmpose_layout_needs_no_metadata(tmp_path):
    """Two outputs and no metadata (as RTMPose's published files): the predictor takes SimCC,
    the input size from the input and the split ratio from the output lengths."""
    net = DotNet(simcc=True)
    path = strip_metadata(export_onnx(net, tmp_path / "rtm.onnx", SIMCC_SPEC))
    pred = PosePredictor.from_onnx(path, nms="none")
    assert pred.spec.kind == "simcc" and pred.input_size == INPUT_SIZE
    assert pred.codec.split_ratio == 2.0
    assert (_dot_errors(pred) < [0.1, 0.6, 0.1]).all()


def test_module_and_predictor_share_the_simcc_decoding():
    module = _simcc_module().eval()
    pred = PosePredictor(TorchHeatmapModel(module.net, "cpu"), module.spec, nms="none")
    img = dot_image(DOTS, size=4)
    res = pred(img, BOXES[:2], np.array([0.9, 0.6]))
    crops, to_image = pred.crops(img, BOXES[:2])
    batch = {
        "image": torch.from_numpy(crops),
        "crop_to_image": torch.from_numpy(to_image),
        "box_score": torch.tensor([0.9, 0.6]),
        "image_id": torch.tensor([1, 1]),
        "person_id": torch.tensor([0, 1]),
        "bbox": torch.from_numpy(BOXES[:2]).float(),
    }
    with torch.inference_mode():
        out = module.predict_step(batch, 0)["preds"]
    np.testing.assert_allclose(res.keypoints, out["keypoints"].double().numpy(), atol=1e-3)
    np.testing.assert_allclose(res.scores, out["score"].double().numpy(), atol=1e-5)


def test_a_simcc_model_of_another_ratio_is_refused():
    spec = replace(SIMCC_SPEC, split_ratio=3.0)
    pred = PosePredictor(TorchHeatmapModel(DotNet(simcc=True), "cpu"), spec)
    with pytest.raises(ValueError, match=r"split_ratio 3.0 do not match"):
        pred(dot_image(DOTS, size=4), BOXES)
