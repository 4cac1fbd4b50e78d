"""The notebook's built-in inputs: the stand-in student and the cached files."""

from __future__ import annotations

import numpy as np
import pytest

from fullbody.analysis.example_inputs import default_inputs, distilled_student
from fullbody.analysis.part_errors import pair_people
from fullbody.analysis.report import load_inputs
from fullbody.evaluation.simulate import SimulationConfig
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import PART_SLICES
from fullbody.synthetic import generate_labels, perturb_labels

EXACT = SimulationConfig(
    miss_rate=0, noise=(0, 0), point_drop=0, part_drop=0, body_drop=0, all_drop=0,
    duplicate_rate=0, false_positives=0, crowded_rate=0, decimals=6,
)  # fmt: skip
LH, RH = PART_SLICES["lefthand"], PART_SLICES["righthand"]


def _student(copy_rate, swap_rate=0.0):
    gt = generate_labels(6, seed=1)
    teacher = perturb_labels(gt, seed=1)
    preds = distilled_student(gt, teacher, 0, copy_rate, swap_rate, config=EXACT)
    pairs = pair_people(gt, preds)
    assert len(pairs) == (~gt.iscrowd & (gt.keypoints[:, :17, 2] > 0).any(1)).sum()
    return gt, teacher, preds.keypoints[pairs.pred_rows], pairs.gt_rows


def test_the_student_learns_the_truth_or_the_teacher():
    gt, teacher, pred, rows = _student(copy_rate=0.0)
    lab = gt.keypoints[rows, :, 2] > 0
    np.testing.assert_allclose(pred[..., :2][lab], gt.keypoints[rows, :, :2][lab], atol=1e-6)
    gt, teacher, pred, rows = _student(copy_rate=1.0)
    has = (teacher.conf[rows] > 0) & (gt.keypoints[rows, :, 2] > 0)
    has[:, :17] = False  # the body is always the truth
    assert has.sum() > 100
    np.testing.assert_allclose(pred[..., :2][has], teacher.keypoints[rows, :, :2][has], atol=1e-6)


def test_the_student_swaps_hands():
    gt, _, pred, rows = _student(copy_rate=0.0, swap_rate=1.0)
    whole = (gt.keypoints[rows][:, LH, 2] > 0).all(1) & (gt.keypoints[rows][:, RH, 2] > 0).all(1)
    assert whole.sum() >= 2
    g = gt.keypoints[rows]
    np.testing.assert_allclose(pred[whole][:, LH, :2], g[whole][:, RH, :2], atol=1e-6)
    with pytest.raises(ValueError, match="swap_rate"):
        distilled_student(gt, gt, swap_rate=2.0)


def test_default_inputs_write_loadable_files_and_reuse_them(tmp_path):
    d = default_inputs(tmp_path, num_images=3, seed=5)
    for f in (d.gt_file, d.results_file, d.pseudo_file):
        assert f.is_file() and f.is_relative_to(tmp_path)
    assert len(list(d.image_dir.glob("*.jpg"))) == 3
    inputs = load_inputs(d.gt_file, d.results_file, d.pseudo_file, d.image_dir)
    assert len(inputs.preds) and inputs.teacher is not None and inputs.teacher.has_conf
    stamp = d.gt_file.stat().st_mtime_ns
    again = default_inputs(tmp_path, num_images=3, seed=5)
    assert again == d and d.gt_file.stat().st_mtime_ns == stamp  # the cached set is reused
    with pytest.raises(FileNotFoundError, match="nowhere: image folder not found"):
        load_inputs(d.gt_file, d.results_file, image_dir=tmp_path / "nowhere")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 999, "score": 1, "keypoints": []}]')
    with pytest.raises(AnnotationError, match="bad.json: result #0: field 'image_id'"):
        load_inputs(d.gt_file, bad)
