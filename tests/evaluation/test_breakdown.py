"""AP/AR by instance size and by occlusion."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.poses import as_prediction, ground_truth, pose, predictions

from fullbody.evaluation.breakdown import (
    format_breakdown,
    occlusion_breakdown,
    occlusion_fraction,
    part_box_side,
    size_breakdown,
)
from fullbody.evaluation.wholebody import evaluate, evaluate_part
from fullbody.keypoints import PART_SLICES

LH = PART_SLICES["lefthand"]


def _scene():
    """Four people of different sizes; two left hands partly unlabelled."""
    people = [pose(0, 0, 40), pose(200, 0, 80), pose(400, 0, 120), pose(700, 0, 300)]
    people[1][LH.start : LH.start + 8, 2] = 0  # 8/21 unlabelled
    people[3][LH.start : LH.start + 18, 2] = 0  # 18/21 unlabelled
    gt = ground_truth([(1, p) for p in people])
    rows = [
        (1, as_prediction(p, shift=s), 0.9 - 0.1 * i)
        for i, (p, s) in enumerate(zip(people, [0, 1, 2, 0.5]))
    ]
    rows.append((1, as_prediction(pose(1500, 1500, 90)), 0.95))  # background false positive
    return gt, predictions(rows)


def test_single_bucket_equals_the_whole_evaluation():
    gt, preds = _scene()
    m = evaluate(gt, preds)
    for part in ("body", "lefthand", "wholebody"):
        for by in ("person", "part", "part_side"):
            (st,) = size_breakdown(gt, preds, [part], edges=(0, np.inf), by=by)[part].values()
            assert st["AP"] == m[f"{part}/AP"] and st["AR"] == m[f"{part}/AR"]
    (st,) = occlusion_breakdown(gt, preds, ["lefthand"], edges=(0, 1))["lefthand"].values()
    assert st["AP"] == m["lefthand/AP"] and st["AP50"] == m["lefthand/AP50"]


def test_buckets_partition_the_ground_truth():
    gt, preds = _scene()
    sizes = size_breakdown(gt, preds, ["body"])["body"]
    assert list(sizes) == ["0-32", "32-64", "64-96", "96-128", "128+"]
    assert [s["num_gt"] for s in sizes.values()] == [0, 1, 1, 1, 1]
    assert sizes["0-32"]["AP"] == -1.0
    total = evaluate_part(gt, preds, "lefthand").num_gt[0]
    occl = occlusion_breakdown(gt, preds, ["lefthand"])["lefthand"]
    assert sum(s["num_gt"] for s in occl.values()) == total == 4
    assert [s["num_gt"] for s in occl.values()] == [2, 1, 0, 1]


def test_perfect_predictions_score_one_in_every_bucket():
    gt, _ = _scene()
    people = [gt.keypoints[i] for i in range(len(gt))]
    preds = predictions([(1, as_prediction(p), 0.5) for p in people])
    for kind in (size_breakdown(gt, preds), occlusion_breakdown(gt, preds)):
        for part, buckets in kind.items():
            aps = [s["AP"] for s in buckets.values() if s["num_gt"]]
            assert aps and np.allclose(aps, 1.0), part
            assert all(s["AP"] == -1.0 for s in buckets.values() if not s["num_gt"])


def test_unmatched_detections_count_where_they_overlap():
    hand_a, hand_b = pose(0, 0, 100), pose(400, 0, 100)
    hand_b[LH.start : LH.start + 12, 2] = 0  # occluded hand
    gt = ground_truth([(1, hand_a), (1, hand_b)])
    rows = [
        (1, as_prediction(hand_a), 0.5),
        (
            1,
            as_prediction(hand_a, shift=1.5),
            0.9,
        ),  # a duplicate of a: false positive in a's bucket
        (1, as_prediction(hand_b), 0.6),
    ]
    occl = occlusion_breakdown(gt, predictions(rows), ["lefthand"], edges=(0, 0.5, 1))["lefthand"]
    assert occl["0.00-0.50"]["AP"] < 1.0 and occl["0.50-1.00"]["AP"] == pytest.approx(1.0)
    rows.append((1, as_prediction(pose(1500, 1500, 100)), 0.99))  # overlaps nobody: counts in both
    occl = occlusion_breakdown(gt, predictions(rows), ["lefthand"], edges=(0, 0.5, 1))["lefthand"]
    assert occl["0.50-1.00"]["AP"] < 1.0


def test_occlusion_counts_invisible_points_only_where_labels_use_v2():
    a, b = pose(0, 0, v=1.0), pose(200, 0, v=1.0)  # every labelled point v = 1 (like faces)
    b[LH.start : LH.start + 7, 2] = 0
    gt = ground_truth([(1, a), (1, b)])
    assert occlusion_fraction(gt, "lefthand").tolist() == pytest.approx([0, 1 / 3])
    a[LH.start, 2] = 2  # the set now distinguishes visible (2) from occluded (1)
    gt = ground_truth([(1, a), (1, b)])
    assert occlusion_fraction(gt, "lefthand").tolist() == pytest.approx([20 / 21, 1.0])


def test_format_and_bad_options():
    gt, preds = _scene()
    text = format_breakdown(size_breakdown(gt, preds, ["face"]), "size")
    lines = text.splitlines()
    assert lines[0].split() == ["size", "AP", "AP50", "AP75", "AR", "num_gt"] and len(lines) == 7
    with pytest.raises(ValueError, match="by must be"):
        size_breakdown(gt, preds, by="box")


def test_part_side_buckets_by_the_longer_side_of_the_labelled_extent():
    thin = pose(0, 0, 100)
    thin[LH, 1] = 50.0 + np.linspace(0, 3, 21)  # a straight hand: 3 px tall
    thin[LH, 0] = np.linspace(10, 50, 21)  # and 40 px wide
    square = pose(300, 0, 100)
    square[LH, :2] = np.array([300.0, 0.0]) + np.random.default_rng(0).uniform(0, 20, (21, 2))
    square[LH.start, :2], square[LH.start + 1, :2] = (300, 0), (320, 20)  # 20 x 20 px
    square[LH.start + 2 :, 2] = 0  # only the two corners labelled
    gt = ground_truth([(1, thin), (1, square)])
    np.testing.assert_allclose(part_box_side(gt.keypoints, "lefthand"), [40, 20])
    preds = predictions([(1, as_prediction(k), 0.5) for k in (thin, square)])
    edges = (0, 16, 32, np.inf)
    side = size_breakdown(gt, preds, ["lefthand"], edges, by="part_side")["lefthand"]
    area = size_breakdown(gt, preds, ["lefthand"], edges, by="part")["lefthand"]
    assert [s["num_gt"] for s in side.values()] == [0, 1, 1]
    assert [s["num_gt"] for s in area.values()] == [1, 1, 0]  # sqrt(40 x 3) = 11 px
    unlabelled = pose(0, 0)
    unlabelled[LH, 2] = 0
    assert np.isnan(part_box_side(unlabelled[None], "lefthand")[0])
