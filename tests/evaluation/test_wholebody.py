"""The official COCO-WholeBody metric: golden xtcocotools values, pycocotools, crafted rules."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.poses import as_prediction, ground_truth, pose, predictions, random_case

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.simulate import SimulationConfig, fingerprint, synthetic_case
from fullbody.evaluation.wholebody import (
    STATS,
    body_extent_area,
    evaluate,
    evaluate_part,
    format_table,
)
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import EVAL_PARTS, PART_SLICES, PART_SLICES_WITH_WHOLE, part_sigmas
from fullbody.results import Predictions

GOLDEN = Path(__file__).parent / "golden"
TOL = 1e-9


def _assert_all_close(ours: dict, ref: dict) -> None:
    assert set(ours) == set(ref) and len(ref) == 60
    bad = {k: (ours[k], ref[k]) for k in ref if abs(ours[k] - ref[k]) > TOL}
    assert not bad, f"differences from xtcocotools: {bad}"


# ------------------------------------------------------------------ golden values
@pytest.mark.needs_sample
@pytest.mark.parametrize("sigmas", ["official", "halpe"])
def test_sample_matches_xtcocotools(sample_ann_file, sigmas):
    golden = json.loads((GOLDEN / "sample_golden.json").read_text())
    gt = WholeBodySet.load(sample_ann_file)
    preds = Predictions.load(GOLDEN / golden["predictions"], images=gt.images)
    preds.bboxes = None  # the reference drops them, as mmpose's results carry none
    _assert_all_close(evaluate(gt, preds, sigmas=sigmas), golden[sigmas])


@pytest.mark.slow
def test_synthetic_5000_matches_xtcocotools():
    golden = json.loads((GOLDEN / "synthetic_golden.json").read_text())
    config = SimulationConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in golden["simulation"].items()}
    )
    gt, preds = synthetic_case(
        golden["num_images"], golden["gt_seed"], golden["pred_seed"], config, golden["crowd_rate"]
    )
    assert (len(gt.images), len(gt), len(preds)) == (
        golden["num_images"], golden["num_people"], golden["num_predictions"],
    )  # fmt: skip
    assert fingerprint(gt, preds) == golden["fingerprint"], (
        "the synthetic inputs changed (label generator or simulation): regenerate the golden "
        f"values with `{golden['regenerate']}`"
    )
    preds.bboxes = None  # the reference drops them, as mmpose's results carry none
    _assert_all_close(evaluate(gt, preds), golden["stats"])


def _pycocotools_part(gt: WholeBodySet, preds: Predictions, part: str) -> list[float]:
    """pycocotools fed one part as if it were the body (the recipe in REFERENCE.md)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sl = PART_SLICES_WITH_WHOLE[part]
    anns = [
        {
            "id": i + 1,
            "image_id": int(gt.image_ids[i]),
            "category_id": 1,
            "keypoints": gt.keypoints[i, sl].ravel().tolist(),
            "num_keypoints": int((gt.keypoints[i, sl, 2] > 0).sum()),
            "area": float(gt.areas[i]),
            "bbox": gt.bboxes[i].tolist(),
            "iscrowd": int(gt.iscrowd[i]),
        }
        for i in range(len(gt))
    ]
    coco = COCO()
    coco.dataset = {
        "images": [{"id": i} for i in gt.images],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": anns,
    }
    keep = np.flatnonzero((preds.keypoints[:, sl, 2] > 0).any(1))
    score = preds.score_for(part)
    dets = [
        {
            "image_id": int(preds.image_ids[j]),
            "category_id": 1,
            "keypoints": preds.keypoints[j, sl].ravel().tolist(),
            "score": float(score[j]),
            **({} if preds.bboxes is None else {"bbox": preds.bboxes[j].tolist()}),
        }
        for j in keep
    ]
    area = body_extent_area(preds.keypoints[keep, :, 0], preds.keypoints[keep, :, 1])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        res = coco.loadRes(dets)  # with boxes, loadRes takes each area from its box itself
        for ann, a in zip(res.dataset["annotations"], area):
            if preds.bboxes is None:  # else: the body points' extent, as for the split layout
                ann["area"] = float(a)
        ev = COCOeval(coco, res, "keypoints")
        ev.params.kpt_oks_sigmas = part_sigmas(part)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return list(ev.stats)


@pytest.mark.needs_sample
@pytest.mark.parametrize("boxes", [True, False])
def test_sample_matches_pycocotools(sample_ann_file, boxes):
    """A results file with ``bbox`` (the sample's, our demo's) is scored as loadRes scores it:
    each detection's area from its box (APM/APL/ARM/ARL differed), else from its body points."""
    golden = json.loads((GOLDEN / "sample_golden.json").read_text())
    gt = WholeBodySet.load(sample_ann_file)
    preds = Predictions.load(GOLDEN / golden["predictions"])
    assert preds.bboxes is not None
    if not boxes:
        preds.bboxes = None
    ours = evaluate(gt, preds)
    for part in EVAL_PARTS:
        ref = _pycocotools_part(gt, preds, part)
        assert [ours[f"{part}/{s}"] for s in STATS] == pytest.approx(ref, abs=TOL), part


@pytest.mark.parametrize("seed", range(4))
def test_random_scenes_match_pycocotools(seed):
    gt, preds = random_case(num_images=25, seed=seed, odd=False)
    gt.areas[:3] = 0.0  # degenerate areas behave as in cocoeval too
    ours = evaluate(gt, preds)
    for part in EVAL_PARTS:
        ref = _pycocotools_part(gt, preds, part)
        assert [ours[f"{part}/{s}"] for s in STATS] == pytest.approx(ref, abs=TOL), part


# ------------------------------------------------------------------ crafted rules
def _two_images():
    a, b, c = pose(100, 100, 150), pose(400, 100, 120), pose(100, 500, 60)
    return ground_truth([(1, a), (1, b), (2, c)], images=[1, 2, 3]), [a, b, c]


def test_perfect_predictions_score_one():
    gt, (a, b, c) = _two_images()
    preds = predictions(
        [(1, as_prediction(a), 0.9), (1, as_prediction(b), 0.8), (2, as_prediction(c), 0.7)]
    )
    m = evaluate(gt, preds)
    for part in EVAL_PARTS:
        assert m[f"{part}/AP"] == pytest.approx(1.0) and m[f"{part}/AR"] == pytest.approx(1.0)
    # person areas 150², 120², 60²: one medium, two large
    assert m["body/APM"] == pytest.approx(1.0) and m["body/APL"] == pytest.approx(1.0)


def test_part_without_confidence_is_dropped_for_that_part_only():
    gt, (a, b, c) = _two_images()
    good = [(1, as_prediction(a), 0.5), (1, as_prediction(b), 0.5), (2, as_prediction(c), 0.5)]
    stray = as_prediction(pose(1500, 1500, 100))
    stray[PART_SLICES["face"], 2] = 0  # no face confidence: not a face detection
    m = evaluate(gt, predictions([*good, (1, stray, 0.9)]))
    assert m["face/AP"] == pytest.approx(1.0)
    assert m["body/AP"] < 0.9 and m["lefthand/AP"] < 0.9


def test_part_scores_rank_their_part_and_fall_back_to_score():
    a = pose(100, 100, 150)
    gt = ground_truth([(1, a)])
    rows = [(1, as_prediction(a), 0.4), (1, as_prediction(pose(900, 900, 150)), 0.9)]
    no_part = evaluate(gt, predictions(rows))
    # the false positive ranks first: precision 1/2 at full recall
    assert no_part["face/AP"] == pytest.approx(0.5, abs=0.01)
    face_first = evaluate(gt, predictions(rows, {"face": [0.95, 0.1]}))
    assert face_first["face/AP"] == pytest.approx(1.0)
    assert face_first["body/AP"] == no_part["body/AP"]  # the body always ranks by `score`
    # NaN marks a record without the part score: it ranks by `score` (0.9 > 0.8)
    mixed = evaluate(gt, predictions(rows, {"face": [0.8, np.nan]}))
    assert mixed["face/AP"] == pytest.approx(no_part["face/AP"])


def test_crowd_and_unlabelled_ground_truths_are_ignored_not_missed():
    a, b = pose(100, 100, 150), pose(500, 100, 150)
    b_no_hand = b.copy()
    b_no_hand[PART_SLICES["lefthand"], 2] = 0
    crowd = pose(900, 100, 150)
    gt = ground_truth([(1, a), (1, b_no_hand), (1, crowd)], iscrowd=[False, False, True])
    rows = [
        (1, as_prediction(a), 0.9),
        (1, as_prediction(b), 0.8),  # its left hand matches an ignored (unlabelled) hand
        (1, as_prediction(crowd), 0.95),  # matches the crowd region: ignored
    ]
    m = evaluate(gt, predictions(rows))
    for part in EVAL_PARTS:
        assert m[f"{part}/AP"] == pytest.approx(1.0), part
    # far from every box, the same left hand is a false positive
    far = as_prediction(b)
    far[PART_SLICES["lefthand"], :2] += 900
    m = evaluate(gt, predictions([rows[0], (1, far, 0.99), rows[2]]))
    assert m["lefthand/AP"] < 0.9 and m["body/AP"] == pytest.approx(1.0)


def test_a_crowd_region_absorbs_any_number_of_detections():
    """A crowd ground truth stays matchable after a match (pycocotools): every detection on it
    is ignored, none becomes a false positive."""
    a, crowd = pose(100, 100, 150), pose(900, 100, 150)
    gt = ground_truth([(1, a), (1, crowd)], iscrowd=[False, True])
    on_crowd = [(1, as_prediction(crowd), score) for score in (0.97, 0.96, 0.95)]
    preds = predictions([*on_crowd, (1, as_prediction(a), 0.5)])
    m = evaluate(gt, preds)
    for part in EVAL_PARTS:
        assert m[f"{part}/AP"] == pytest.approx(1.0), part
        ref = _pycocotools_part(gt, preds, part)
        assert [m[f"{part}/{s}"] for s in STATS] == pytest.approx(ref, abs=TOL), part


def test_equal_oks_goes_to_the_later_ground_truth():
    """A detection at equal OKS to two ground truths takes the later one (pycocotools' loop
    keeps the last best), which decides what the next detection can still match: here the
    second detection, 1 px off, only reaches OKS >= 0.5 against the first ground truth (whose
    area is large), so AP is 1 with the later-wins rule and lower with earlier-wins."""
    p = pose(100, 100, 150)
    gt = ground_truth([(1, p), (1, p.copy())], areas=[1e6, 10.0])
    preds = predictions([(1, as_prediction(p), 0.9), (1, as_prediction(p, shift=1.0), 0.8)])
    m = evaluate(gt, preds)
    for part in EVAL_PARTS:
        assert m[f"{part}/AP"] == pytest.approx(1.0), part
        ref = _pycocotools_part(gt, preds, part)
        assert [m[f"{part}/{s}"] for s in STATS] == pytest.approx(ref, abs=TOL), part


def test_at_most_20_detections_per_image():
    a = pose(100, 100, 150)
    gt = ground_truth([(1, a)])
    fps = [(1, as_prediction(pose(1000 + 20 * i, 1000, 100)), 0.9) for i in range(20)]
    m = evaluate(gt, predictions([*fps, (1, as_prediction(a), 0.5)]))
    assert m["body/AR"] == 0.0  # the true positive is the 21st
    m = evaluate(gt, predictions([*fps[:19], (1, as_prediction(a), 0.5)]))
    assert m["body/AR"] == pytest.approx(1.0)


def test_ties_keep_file_order_within_and_image_order_across_images():
    a = pose(100, 100, 150)
    fp = as_prediction(pose(900, 900, 150))
    gt = ground_truth([(1, a)], images=[1, 2, 3])
    tp_first = evaluate(gt, predictions([(1, as_prediction(a), 0.5), (1, fp, 0.5)]))
    fp_first = evaluate(gt, predictions([(1, fp, 0.5), (1, as_prediction(a), 0.5)]))
    assert tp_first["body/AP"] == pytest.approx(1.0)
    assert fp_first["body/AP"] == pytest.approx(0.5, abs=0.01)
    # across images, image-id order decides, whatever the file order
    before = evaluate(gt, predictions([(1, as_prediction(a), 0.5), (2, fp, 0.5)]))
    gt0 = ground_truth([(2, a)], images=[1, 2])
    after = evaluate(gt0, predictions([(2, as_prediction(a), 0.5), (1, fp, 0.5)]))
    assert before["body/AP"] == pytest.approx(1.0)
    assert after["body/AP"] == pytest.approx(0.5, abs=0.01)


def test_detection_area_is_the_body_extent():
    a = pose(100, 100, 150)  # large person
    gt = ground_truth([(1, a)], areas=[150.0**2])
    tiny_body = as_prediction(pose(900, 900, 150))
    tiny_body[:17, :2] = [900, 900]  # all 17 body points on one spot: area 0
    tiny_body[:17, 0] += np.arange(17) * 0.1
    m = evaluate(gt, predictions([(1, tiny_body, 0.9), (1, as_prediction(a), 0.5)]))
    # unmatched and outside the large range: ignored there, a false positive in "all"
    assert m["wholebody/APL"] == pytest.approx(1.0)
    assert m["wholebody/AP"] == pytest.approx(0.5, abs=0.01)


def test_area_ranges_follow_the_ground_truth_area():
    a = pose(100, 100, 150)
    gt = ground_truth([(1, a)], areas=[50.0**2])  # labelled as medium, whatever its extent
    m = evaluate(gt, predictions([(1, as_prediction(a), 0.9)]))
    assert m["body/APM"] == pytest.approx(1.0) and m["body/APL"] == -1.0
    assert m["body/ARL"] == -1.0


def test_no_ground_truth_gives_minus_one():
    gt = ground_truth([], images=[1])
    m = evaluate(gt, predictions([(1, as_prediction(pose(0, 0)), 0.9)]))
    assert set(m.values()) == {-1.0}


def test_no_predictions_give_zero():
    gt, _ = _two_images()
    m = evaluate(gt, predictions([]))
    assert m["body/AP"] == 0.0 and m["wholebody/AR"] == 0.0


def test_oks_falls_with_error_and_halpe_sigmas_differ():
    a = pose(100, 100, 150)
    gt = ground_truth([(1, a)])
    near = evaluate(gt, predictions([(1, as_prediction(a, shift=1.0), 0.9)]))
    far = evaluate(gt, predictions([(1, as_prediction(a, shift=4.0), 0.9)]))
    assert far["face/AP"] < near["face/AP"] <= 1.0
    halpe = evaluate(gt, predictions([(1, as_prediction(a, shift=1.0), 0.9)]), sigmas="halpe")
    assert halpe["body/AP"] == near["body/AP"] and halpe["face/AP"] != near["face/AP"]


def test_unknown_image_and_part_are_errors():
    gt, (a, _, _) = _two_images()
    with pytest.raises(AnnotationError, match="image_id.*unknown image id 99"):
        evaluate(gt, predictions([(99, as_prediction(a), 0.9)]))
    with pytest.raises(KeyError, match="unknown part"):
        evaluate(gt, predictions([(1, as_prediction(a), 0.9)]), parts=["hands"])


def test_part_result_and_table():
    gt, (a, _, c) = _two_images()
    preds = predictions([(1, as_prediction(a, shift=2), 0.9), (2, as_prediction(c), 0.7)])
    res = evaluate_part(gt, preds, "body")
    assert res.precision.shape == (10, 101, 3) and res.recall.shape == (10, 3)
    assert res.num_gt.tolist() == [3, 1, 2]
    m = evaluate(gt, preds, parts=["body", "face"])
    assert {k.split("/")[0] for k in m} == {"body", "face"}
    table = format_table(m)
    assert table.splitlines()[0].split() == ["part", *STATS]
    assert table.splitlines()[2].startswith("body")
