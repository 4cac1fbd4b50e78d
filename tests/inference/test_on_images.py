"""A pose model over a COCO file's images (what ``eval.py pose_model=...`` scores): a tiny
model in RTMW's published layout on a picture whose one person's 133 labels all sit where the
model puts them must score body AP 1 (and whole-body AP near it), with ground-truth boxes and
with a detection file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.run import run_evaluation
from fullbody.inference.detectors import DetectionFileDetector
from fullbody.inference.on_images import predict_annotated_images
from fullbody.inference.wholebody import load_pose_model
from fullbody.keypoints import NUM_KEYPOINTS

from ._published import export_simcc_model, rectangle

pytestmark = [
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
BOX = (100, 40, 60, 150)
CENTRE = (129.5, 114.5)


def coco_set(root: Path) -> Path:
    """Two images: one person (every point at the rectangle's centre) and an empty one."""
    (root / "images").mkdir(parents=True)
    for name, img in (("1.png", rectangle(box=BOX)), ("2.png", np.zeros((240, 320, 3), np.uint8))):
        cv2.imwrite(str(root / "images" / name), img)
    images = [{"id": i, "file_name": f"{i}.png", "width": 320, "height": 240} for i in (1, 2)]
    kp = np.zeros((1, NUM_KEYPOINTS, 3))
    kp[..., :2], kp[..., 2] = CENTRE, 2
    gt = WholeBodySet.from_arrays(images, np.array([1]), kp, np.array([BOX], float))
    return gt.save(root / "gt.json")


def test_a_model_on_the_images_of_a_coco_file_scores_what_it_predicts(tmp_path):
    gt_file = coco_set(tmp_path)
    gt = WholeBodySet.load(gt_file)
    model = export_simcc_model(tmp_path / "rtmw-like.onnx", (64, 48))
    predictor = load_pose_model(model, device="cpu")
    preds = predict_annotated_images(predictor, gt, tmp_path / "images", progress=False)
    assert preds.image_ids.tolist() == [1]  # ground-truth boxes: the one person
    assert np.abs(preds.keypoints[0, :, :2] - CENTRE).max() < 1.0
    run = run_evaluation(gt, preds, parts=("body", "wholebody"))
    # Within a pixel: exact for the body's sigmas; the face's tiny sigmas still see a pixel at
    # this person size (OKS ~0.9), so whole-body AP sits just below 1.
    assert run.metrics["body/AP"] == pytest.approx(1.0)
    assert run.metrics["wholebody/AP"] >= 0.85
    wholebody_gt_boxes = run.metrics["wholebody/AP"]
    dets = [{"image_id": 1, "category_id": 1, "bbox": [95, 35, 70, 160], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [10, 10, 30, 60], "score": 0.2}]  # fmt: skip
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    detector = DetectionFileDetector(tmp_path / "dets.json")
    preds = predict_annotated_images(predictor, gt, tmp_path / "images", detector, False)
    assert sorted(preds.image_ids.tolist()) == [1, 2]
    run = run_evaluation(gt, preds, parts=("wholebody",))
    assert run.metrics["wholebody/AP"] == pytest.approx(wholebody_gt_boxes, abs=0.05)


@pytest.mark.slow
def test_eval_command_line_scores_a_published_name_and_refuses_mixed_modes(tmp_path):
    """``eval.py pose_model=rtmw-x-384x288 ann_file=... image_dir=...``: the published name
    (a stand-in in its layout, from the model cache) scored by this project's evaluator; a
    results file or checkpoint beside it is refused in one line, never ignored."""
    import os
    import subprocess
    import sys

    from fullbody.inference.published import POSE_MODELS
    from fullbody.utils.fetch import cached_name

    root = Path(__file__).resolve().parents[2]
    gt_file = coco_set(tmp_path / "data")
    cache = tmp_path / "models"
    cache.mkdir()
    rtmw = POSE_MODELS["rtmw-x-384x288"]
    export_simcc_model(cache / cached_name(rtmw.url), rtmw.input_size)
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "FULLBODY_MODEL_DIR": str(cache)}
    base = [sys.executable, "eval.py", "pose_model=rtmw-x-384x288", f"ann_file={gt_file}",
            f"image_dir={tmp_path / 'data' / 'images'}", "device=cpu"]  # fmt: skip
    done = subprocess.run([*base, f"hydra.run.dir={tmp_path / 'run'}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["body/AP"] == pytest.approx(1.0) and metrics["wholebody/AP"] >= 0.85
    assert (tmp_path / "run" / "results.json").is_file()
    for extra in (f"results_file={tmp_path / 'r.json'}", "ckpt_path=last.ckpt"):
        mixed = subprocess.run([*base, extra, f"hydra.run.dir={tmp_path / 'run2'}"], cwd=root,
                               env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        lines = mixed.stderr.strip().splitlines()
        assert mixed.returncode == 2 and len(lines) == 1 and "pose_model" in lines[0], lines
