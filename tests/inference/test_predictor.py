"""The predictor: crop geometry, batching, flip test, decoding, NMS, PyTorch vs ONNX."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.checkpoints import HEATMAP_SIZE, INPUT_SIZE, SPEC
from torch import nn

from fullbody.codecs.spec import TopDownSpec
from fullbody.geometry import affine_matrix, box_to_center_scale, invert_affine, warp
from fullbody.images import ImageNormalizer, ImageReadError, read_image
from fullbody.inference.predictor import (
    OnnxHeatmapModel,
    PosePredictor,
    PoseResult,
    TorchHeatmapModel,
    load_predictor,
)
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.module import PoseModule

from ._models import DotNet


def dot_predictor(**kwargs) -> PosePredictor:
    """A predictor on the dot network; spec fields among ``kwargs`` change the spec."""
    names = {f.name for f in dataclasses.fields(SPEC)}
    spec = dataclasses.replace(SPEC, **{k: kwargs.pop(k) for k in list(kwargs) if k in names})
    return PosePredictor(TorchHeatmapModel(DotNet(), "cpu"), spec, **{"nms": "none", **kwargs})


def dot_image(points, h=240, w=320, size=2) -> np.ndarray:
    """Black RGB image with a bright size x size dot at each (x, y) (its centre at
    (x, y) + (size - 1) / 2 in pixel-centre coordinates)."""
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in points:
        img[y : y + size, x : x + size] = 255
    return img


@pytest.mark.parametrize("flip_test", [False, True])
@pytest.mark.parametrize("dark", [False, True])
def test_points_come_back_in_image_pixels(flip_test, dark):
    # One dot per person box; every box is cropped, the fake network "sees" the dot and the
    # predictor must map it back to the dot's centre, whatever the box's shape and scale.
    # Crops are 64x96 px: the boxes are cropped at 1.2 to 2
    # image px per crop px (dots of 4 px stay visible after the bilinear shrink).
    dots = [(60, 50), (200, 150), (250, 40)]
    boxes = np.array([[40, 25, 40, 50], [150, 100, 100, 110], [232, 14, 36, 48]], float)
    res = dot_predictor(flip_test=flip_test, dark=dark)(dot_image(dots, size=4), boxes)
    assert res.keypoints.shape == (3, NUM_KEYPOINTS, 3)
    order = np.argsort(res.box_index)
    xy = res.keypoints[order, :, :2]
    want = np.array(dots, float) + 1.5
    # A heatmap pixel is 4 to 8 image px here: DARK is sub-pixel, argmax is within a
    # quarter heatmap pixel (and the fake network's centroid within a fraction of a crop px).
    err = np.abs(xy - want[:, None]).max((1, 2))
    tol = [0.1, 0.6, 0.1] if dark else [1.0, 2.5, 1.5]
    assert (err < tol).all(), err
    assert (res.keypoints[..., 2] > 0.9).all()
    np.testing.assert_array_equal(np.sort(res.box_index), [0, 1, 2])


def test_crops_are_the_training_warp_and_normalisation_of_each_box():
    """The crops (written into one batch through one warp buffer) are, bit for bit, each
    box's training crop: ``ImageNormalizer()(warp(image, affine_matrix(...)))``."""
    img = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 50, 120], [-30, 100, 200, 90], [300, 200, 40, 60.5]])
    crops, to_image = dot_predictor().crops(img, boxes)
    h, w = INPUT_SIZE
    centers, scales = box_to_center_scale(boxes, w / h, SPEC.padding)
    for i in range(len(boxes)):
        m = affine_matrix(centers[i], scales[i], 0.0, (h, w))
        np.testing.assert_array_equal(crops[i], ImageNormalizer()(warp(img, m, (h, w))))
        np.testing.assert_array_equal(to_image[i], invert_affine(m))


def test_batch_size_does_not_change_results():
    dots = [(40 + 30 * i, 30 + 20 * (i % 3)) for i in range(7)]
    boxes = np.array([[x - 15, y - 25, 30, 50] for x, y in dots], float)
    img = dot_image(dots)
    a = dot_predictor(batch_size=1)(img, boxes)
    b = dot_predictor(batch_size=32)(img, boxes)
    c = dot_predictor(batch_size=3)(img, boxes)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-4)
    np.testing.assert_allclose(a.keypoints, c.keypoints, atol=1e-4)


def test_person_score_is_box_score_times_confident_keypoint_mean():
    res = dot_predictor()(dot_image([(60, 50)]), np.array([[30, 20, 60, 80]]), np.array([0.7]))
    conf = res.keypoints[0, :, 2]
    assert res.scores[0] == pytest.approx(0.7 * conf[conf > 0.2].mean(), rel=1e-5)
    assert res.box_scores[0] == 0.7


def test_nms_removes_or_merges_duplicate_people():
    img = dot_image([(100, 100), (250, 60)])
    boxes = np.array([[70, 60, 60, 80], [71, 61, 60, 80], [220, 20, 60, 80]], float)
    scores = np.array([0.9, 0.8, 0.7])
    none = dot_predictor(nms="none")(img, boxes, scores)
    oks = dot_predictor(nms="oks")(img, boxes, scores)
    para = dot_predictor(nms="parametric")(img, boxes, scores)
    assert len(none) == 3 and none.box_index.tolist() == [0, 1, 2]
    assert sorted(oks.box_index.tolist()) == [0, 2]
    assert len(para) == 2 and sorted(para.box_index.tolist()) == [0, 2]
    with pytest.raises(ValueError, match="unknown pose NMS method"):
        dot_predictor(nms="soft")


def test_degenerate_boxes_are_skipped_and_bad_input_refused():
    img = dot_image([(60, 50)])
    pred = dot_predictor()
    res = pred(img, np.array([[30, 20, 60, 80], [5, 5, 0, 10], [5, 5, 10, 0.5]]))
    assert res.box_index.tolist() == [0]
    empty = pred(img, np.zeros((0, 4)))
    assert empty.keypoints.shape == (0, NUM_KEYPOINTS, 3) and len(empty) == 0
    with pytest.raises(ValueError, match="finite"):
        pred(img, np.array([[np.nan, 0, 10, 10]]))
    with pytest.raises(ValueError, match="2 boxes but 1 box scores"):
        pred(img, np.ones((2, 4)), np.ones(1))
    with pytest.raises(ValueError, match="uint8 RGB"):
        pred(img.astype(np.float32), np.ones((1, 4)))


def test_read_image_names_the_bad_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg: cannot decode"):
        read_image(bad)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="nothere.jpg"):
        read_image(tmp_path / "nothere.jpg")


def test_predictor_agrees_with_the_lightning_module(tiny_ckpt):
    # Same crops, same network: the predictor's flip test + decoding must be the module's
    # evaluation path exactly (a peaky fake network makes arg-max ties impossible).
    module = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu").eval()
    module.net = DotNet()
    module._forward = module.net
    pred = PosePredictor(TorchHeatmapModel(module.net, "cpu"), module.spec, nms="none")
    dots = [(60, 50), (200, 150)]
    boxes = np.array([[30, 20, 60, 80], [150, 100, 120, 110]], float)
    img = dot_image(dots)
    res = pred(img, boxes, np.array([0.9, 0.6]))
    crops, to_image = pred.crops(img, boxes)
    batch = {
        "image": torch.from_numpy(crops),
        "crop_to_image": torch.from_numpy(to_image),
        "box_score": torch.tensor([0.9, 0.6]),
        "image_id": torch.tensor([1, 1]),
        "person_id": torch.tensor([0, 1]),
        "bbox": torch.from_numpy(boxes).float(),
    }
    with torch.inference_mode():
        out = module.predict_step(batch, 0)["preds"]
    np.testing.assert_allclose(res.keypoints, out["keypoints"].double().numpy(), atol=1e-4)
    np.testing.assert_allclose(res.scores, out["score"].double().numpy(), atol=1e-6)


@pytest.mark.needs_sample
def test_checkpoint_and_onnx_predictors_agree_on_the_sample(tiny_ckpt, tiny_onnx, sample_dir):
    img = read_image(sample_dir / "images" / "000000000785.jpg")
    boxes = np.array([[281, 45, 219, 347], [10, 10, 100, 200]], float)
    torch_pred = load_predictor(ckpt_path=tiny_ckpt, device="cpu", nms="none")
    onnx_pred = load_predictor(onnx_path=tiny_onnx, device="cpu", nms="none")
    assert onnx_pred.input_size == torch_pred.input_size == INPUT_SIZE
    assert onnx_pred.spec == torch_pred.spec and onnx_pred.spec.flip_test and onnx_pred.spec.dark
    crops, _ = torch_pred.crops(img, boxes)
    diff = (torch_pred.outputs(crops) - onnx_pred.outputs(crops)).abs().max().item()
    assert diff < 1e-4
    a, b = torch_pred(img, boxes), onnx_pred(img, boxes)
    np.testing.assert_allclose(a.keypoints[..., 2], b.keypoints[..., 2], atol=1e-4)
    assert isinstance(onnx_pred.model, OnnxHeatmapModel)


def test_load_predictor_needs_exactly_one_model(tiny_ckpt, tiny_onnx, tmp_path):
    from fullbody.errors import ConfigError

    with pytest.raises(ConfigError, match="neither given; give exactly one"):
        load_predictor()
    with pytest.raises(ConfigError, match="both given; give exactly one"):
        load_predictor(ckpt_path=tiny_ckpt, onnx_path=tiny_onnx)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_predictor(ckpt_path=tmp_path / "missing.ckpt")
    p = load_predictor(ckpt_path=tiny_ckpt, device="cpu", flip_test=False, batch_size=4,
                       nms="parametric", nms_params={"gamma": 2.0})  # fmt: skip
    assert not p.spec.flip_test and p.batch_size == 4 and p.nms_params.gamma == 2.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_and_cpu_agree():
    img = dot_image([(60, 50), (200, 150)])
    boxes = np.array([[30, 20, 60, 80], [150, 100, 120, 110]], float)
    cpu = dot_predictor()(img, boxes)
    gpu = PosePredictor(TorchHeatmapModel(DotNet(), "cuda"), SPEC, nms="none")
    np.testing.assert_allclose(gpu(img, boxes).keypoints, cpu.keypoints, atol=1e-3)


def test_a_model_with_other_heatmap_sizes_is_refused(tiny_ckpt):
    net = PoseModule.load_from_checkpoint(tiny_ckpt, map_location="cpu").net
    # 64 x 48 crops: 48 is not a multiple of the backbone's stride, the heatmaps come out 16x16.
    pred = PosePredictor(TorchHeatmapModel(net, "cpu"), TopDownSpec.standard((64, 48), "heatmap"))
    with pytest.raises(ValueError, match=r"expected \(\d+, 133, 16, 12\)"):
        pred(dot_image([(60, 50)]), np.array([[40, 25, 40, 50]]))


def test_onnx_inference_does_not_import_lightning():
    """The predictor (ONNX path) and the codecs need no Lightning: person scoring and decoding
    live in fullbody.codecs, not in the LightningModule's file."""
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys, fullbody.inference.predictor, fullbody.codecs; "
        "sys.exit('lightning' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_image_files_are_read_as_stored_and_truncated_ones_refused(tmp_path, bad_jpegs):
    # A dot near the top: an EXIF turn (Orientation=3) would move it to the bottom.
    img = dot_image([(100, 40)], size=6)
    turned = bad_jpegs.exif_rotated(tmp_path / "turned.jpg", img)
    pred = dot_predictor()
    boxes = np.array([[60.0, 10, 120, 160]])
    from_file = pred(turned, boxes)
    from_pixels = pred(bad_jpegs.decoded_as_stored(turned), boxes)
    np.testing.assert_array_equal(from_file.keypoints, from_pixels.keypoints)
    with pytest.raises(ImageReadError, match=r"cut\.jpg: cannot decode"):
        pred(bad_jpegs.truncated(tmp_path / "cut.jpg", img), boxes)


def test_pose_result_to_predictions_keeps_rows_in_order() -> None:
    rng = np.random.default_rng(0)
    result = PoseResult(
        rng.random((2, NUM_KEYPOINTS, 3)),
        np.array([0.9, 0.4]),
        rng.random((2, 4)),
        np.array([0.8, 0.7]),
        np.array([1, 0]),
    )
    preds = result.to_predictions(7)
    assert preds.image_ids.tolist() == [7, 7]
    np.testing.assert_array_equal(preds.keypoints, result.keypoints)
    np.testing.assert_array_equal(preds.scores, result.scores)
    np.testing.assert_array_equal(preds.bboxes, result.boxes)
    assert len(PoseResult.empty().to_predictions(3)) == 0


class _MapsAndFeatures(nn.Module):
    """Heatmaps plus a second output (an embedding, say): two outputs, yet no SimCC head."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = nn.functional.avg_pool2d(x.mean(1, keepdim=True), 4)
        return maps.expand(-1, NUM_KEYPOINTS, -1, -1).contiguous(), x.mean((2, 3))


def _two_output_onnx(path: Path, names: list[str], **meta: str) -> Path:
    import onnx

    torch.onnx.export(_MapsAndFeatures(), (torch.zeros(1, 3, *INPUT_SIZE),), str(path),
                      dynamo=False, input_names=["image"], output_names=names,
                      dynamic_axes={n: {0: "batch"} for n in ("image", *names)})  # fmt: skip
    model = onnx.load(str(path))
    for key, value in {"input_size": "96,64", "heatmap_size": "24,16", **meta}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_onnx_outputs_are_chosen_by_name_and_checked_against_the_metadata(tmp_path):
    """A second output turned a heatmap model into "SimCC" (outputs were taken by position)."""
    from fullbody.utils.onnx_session import OnnxModelError

    pred = PosePredictor.from_onnx(_two_output_onnx(tmp_path / "a.onnx", ["heatmaps", "emb"]))
    assert pred.spec.kind == "heatmap" and pred.model.output_names == ["heatmaps"]
    crops, _ = pred.crops(dot_image([(60, 50)]), np.array([[40, 25, 40, 50]]))
    assert tuple(pred.outputs(crops).shape) == (1, NUM_KEYPOINTS, *HEATMAP_SIZE)
    with pytest.raises(OnnxModelError, match=r"b\.onnx: outputs \['out0', 'out1'\]: none is named"):
        PosePredictor.from_onnx(_two_output_onnx(tmp_path / "b.onnx", ["out0", "out1"]))
    said_simcc = _two_output_onnx(tmp_path / "c.onnx", ["heatmaps", "emb"], head="simcc")
    with pytest.raises(OnnxModelError, match=r"metadata says head=simcc, but its outputs"):
        PosePredictor.from_onnx(said_simcc)
    other = _two_output_onnx(tmp_path / "d.onnx", ["heatmaps", "emb"], heatmap_size="48,32")
    with pytest.raises(OnnxModelError, match=r"gives 24x16 maps, its spec says heatmap_size"):
        PosePredictor.from_onnx(other)


def test_a_junk_onnx_file_is_one_user_error(tmp_path):
    from fullbody.errors import UserError

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"junk\.onnx: not a loadable ONNX model"):
        load_predictor(onnx_path=junk)
