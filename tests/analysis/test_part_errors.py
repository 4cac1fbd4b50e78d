"""Part analysis: size and occlusion buckets, matching, normalised errors, swaps."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.poses import as_prediction, predictions

from fullbody.analysis.part_errors import (
    aligned_oks,
    ap_by_occlusion,
    ap_by_size,
    detect_swaps,
    group_summary,
    local_names,
    pair_people,
    point_errors,
    point_groups,
    pool_hands,
    sides,
    worst_instances,
)
from fullbody.evaluation.wholebody import evaluate_part, prepare_part
from fullbody.keypoints import PART_SLICES

from ._cases import FACE, LH, RH, ground_truth, person


def _swap_hands(kp: np.ndarray) -> np.ndarray:
    out = kp.copy()
    out[LH], out[RH] = kp[RH], kp[LH]
    return out


def test_parts_names_and_groups():
    assert sides("hands") == ("lefthand", "righthand") and sides("face") == ("face",)
    with pytest.raises(KeyError, match="unknown analysis part 'hand'"):
        sides("hand")
    names = local_names("hands")
    assert names[:2] == ("hand_root", "thumb1") and names[-1] == "pinky_finger4"
    assert local_names("righthand") == names
    g = point_groups("hands")
    assert names[0] == "hand_root" and list(g["wrist"]) == [0]
    assert [names[i] for i in g["fingertips"]] == [
        "thumb4", "forefinger4", "middle_finger4", "ring_finger4", "pinky_finger4",
    ]  # fmt: skip
    assert len(g["knuckles"]) == 15 and not any(names[i].endswith("4") for i in g["knuckles"])
    for part, k in (("hands", 21), ("face", 68), ("foot", 6), ("body", 17)):
        idx = np.concatenate(list(point_groups(part).values()))
        assert sorted(idx) == list(range(k)), part  # the groups partition the part
    assert [list(v) for v in point_groups("foot").values()] == [[0, 3], [1, 4], [2, 5]]


def _sized_scene():
    """Left hands of box side 10, 20, 40 and 80 px; right hands 12, 24, 48, 96 px."""
    sides_px = [(10, 12), (20, 24), (40, 48), (80, 96)]
    people = [(1, person(250 * i, 100, 200, l, r)) for i, (l, r) in enumerate(sides_px)]
    return ground_truth(people)


def test_size_buckets_hold_the_right_hands_and_perfect_predictions_score_one():
    gt = _sized_scene()
    preds = predictions([(1, as_prediction(gt.keypoints[i]), 0.9) for i in range(len(gt))])
    bd = ap_by_size(gt, preds, "hands")
    assert list(bd) == ["lefthand", "righthand", "hands"]
    assert list(bd["lefthand"]) == ["0-16", "16-32", "32-64", "64+"]
    for label in ("lefthand", "righthand"):
        assert [s["num_gt"] for s in bd[label].values()] == [1, 1, 1, 1]
    assert [s["num_gt"] for s in bd["hands"].values()] == [2, 2, 2, 2]
    assert np.allclose([s["AP"] for b in bd.values() for s in b.values()], 1.0)
    face = ap_by_size(gt, preds, "face", edges=(0, 32, 64))
    assert list(face) == ["face"] and [s["num_gt"] for s in face["face"].values()] == [0, 4]


def test_pooled_hands_forgive_swapped_sides():
    gt = _sized_scene()
    preds = predictions(
        [(1, as_prediction(_swap_hands(gt.keypoints[i])), 0.9) for i in range(len(gt))]
    )
    bd = ap_by_size(gt, preds, "hands", edges=(0, np.inf))
    assert bd["lefthand"]["0+"]["AP"] == 0.0 and bd["righthand"]["0+"]["AP"] == 0.0
    assert bd["hands"]["0+"]["AP"] == pytest.approx(1.0)
    # pooling keeps the per-side selection: one set of hands per prediction and side
    pg, pp = pool_hands(gt, preds)
    assert len(pg) == 2 * len(gt) and len(pp) == 2 * len(preds)
    np.testing.assert_array_equal(pg.keypoints[len(gt) :, LH], gt.keypoints[:, RH])


def test_pooled_single_side_equals_that_side_when_the_other_is_unlabelled():
    gt = _sized_scene()
    gt.keypoints[:, RH, 2] = 0
    rng = np.random.default_rng(0)
    rows = []
    for i in range(len(gt)):
        kp = as_prediction(gt.keypoints[i])
        kp[LH, :2] += rng.normal(0, 2, (21, 2))
        kp[RH] = 0  # no right hand predicted: the pool holds left hands only
        rows.append((1, kp, 0.5 + 0.1 * i))
    preds = predictions(rows)
    bd = ap_by_size(gt, preds, "hands", edges=(0, np.inf))
    assert bd["hands"]["0+"]["AP"] == evaluate_part(gt, preds, "lefthand").ap()


def test_occlusion_buckets():
    gt = ground_truth([(1, person(250 * i, 100)) for i in range(3)])
    gt.keypoints[1, LH.start : LH.start + 8, 2] = 1  # 8/21 invisible
    gt.keypoints[2, LH.start : LH.start + 18, 2] = 0  # 18/21 unlabelled
    preds = predictions([(1, as_prediction(gt.keypoints[i]), 0.9) for i in range(3)])
    bd = ap_by_occlusion(gt, preds, "lefthand")
    assert [s["num_gt"] for s in bd["lefthand"].values()] == [1, 1, 0, 1]


def test_pair_people_follows_the_official_matching():
    a, b = person(0, 0), person(400, 0)
    gt = ground_truth([(1, a), (1, b), (2, person(0, 0))], iscrowd=np.array([0, 0, 1]))
    far = person(700, 600)
    preds = predictions(
        [
            (1, as_prediction(b), 0.4),
            (1, as_prediction(a), 0.9),
            (1, as_prediction(a), 0.8),  # duplicate: unmatched
            (1, as_prediction(far), 0.7),  # false positive
            (2, as_prediction(person(0, 0)), 0.9),  # matches a crowd: ignored, no pair
        ]
    )
    pairs = pair_people(gt, preds)
    assert list(pairs.gt_rows) == [0, 1] and list(pairs.pred_rows) == [1, 0]
    np.testing.assert_allclose(pairs.oks, 1.0)
    with pytest.raises(ValueError, match="thresholds"):
        pair_people(gt, preds, iou=0.52)


def test_errors_are_normalised_by_the_hand_box_side():
    kp = person(0, 0, 200, left=20, right=40)
    kp[LH.start + 5, 2] = 0  # one unlabelled left-hand point
    gt = ground_truth([(1, kp), (1, person(400, 0))])
    p0 = as_prediction(kp)
    p0[LH, 0] += 2.0  # 2 px = 0.1 left-hand sides
    p0[RH, 1] -= 2.0  # 2 px = 0.05 right-hand sides
    p1 = as_prediction(gt.keypoints[1])
    p1[LH, 2] = 0  # this left hand is not predicted: the metric drops it
    preds = predictions([(1, p0, 0.9), (1, p1, 0.8)])
    e = point_errors(gt, preds, "hands")
    assert list(e.side) == ["lefthand", "righthand", "righthand"]
    assert list(e.gt_row) == [0, 0, 1] and e.unpredicted == 1 and e.too_small == 0
    np.testing.assert_allclose(e.size, [20, 40, 20])
    assert np.isnan(e.error[0, 5]) and np.isnan(e.error_px[0, 5]) and not e.labelled[0, 5]
    lab = e.labelled[0]
    np.testing.assert_allclose(e.error_px[0, lab], 2.0)
    np.testing.assert_allclose(e.error[0, lab], 0.1)
    np.testing.assert_allclose(e.error[1], 0.05)
    np.testing.assert_allclose(e.error[2], 0.0)
    np.testing.assert_allclose(e.instance_error, [0.1, 0.05, 0.0])
    assert not e.occluded.any()
    face = point_errors(gt, preds, "face")
    assert len(face) == 2 and np.allclose(face.size, 40) and np.allclose(face.error, 0)


def test_instance_oks_is_the_metrics_oks():
    gt = ground_truth([(1, person(0, 0))])
    kp = as_prediction(gt.keypoints[0])
    kp[LH, :2] += np.random.default_rng(1).normal(0, 3, (21, 2))
    preds = predictions([(1, kp, 0.9)])
    e = point_errors(gt, preds, "lefthand")
    pm = prepare_part(gt, preds, "lefthand")
    np.testing.assert_allclose(e.oks, pm.pair_oks, rtol=1e-12)
    assert np.isnan(aligned_oks(kp[None, LH], np.zeros((1, 21, 3)), np.ones(1), np.ones(21)))[0]


def test_fingertip_and_knuckle_summary():
    gt = ground_truth([(1, person(0, 0, left=20))])
    kp = as_prediction(gt.keypoints[0])
    tips = LH.start + point_groups("hands")["fingertips"]
    kp[tips, 0] += 4.0  # fingertips 0.2 hand sides off, the rest exact
    e = point_errors(gt, predictions([(1, kp, 0.9)]), "lefthand")
    s = group_summary(e)
    assert s["fingertips"]["points"] == 5 and s["knuckles"]["points"] == 15
    assert s["fingertips"]["median"] == pytest.approx(0.2)
    assert s["fingertips"]["PCK@0.1"] == 0.0 and s["fingertips"]["PCK@0.2"] == 1.0
    assert s["knuckles"]["mean"] == 0.0 and s["knuckles"]["PCK@0.1"] == 1.0
    assert s["all"]["points"] == 21 and s["all"]["PCK@0.1"] == pytest.approx(16 / 21)


def test_a_swapped_hand_is_flagged():
    people = [person(0, 0), person(300, 0), person(600, 0), person(0, 500)]
    gt = ground_truth([(1, p) for p in people])
    gt.keypoints[3, RH, 2] = 0  # only one labelled hand: not checked
    p_swapped = as_prediction(_swap_hands(gt.keypoints[0]))
    p_one = as_prediction(gt.keypoints[1])
    p_one[LH] = p_one[RH]  # left hand predicted on the right hand, right hand right
    p_one[LH, 2] = 1
    p_ok = as_prediction(gt.keypoints[2])
    p_ok[RH, 2] = 0  # right hand not predicted: only the left one is checked
    preds = predictions(
        [(1, p_swapped, 0.9), (1, p_one, 0.8), (1, p_ok, 0.7), (1, as_prediction(people[3]), 0.6)]
    )
    s = detect_swaps(gt, preds)
    checked = {(int(g), side): bool(w) for g, side, w in zip(s.gt_row, s.side, s.swapped)}
    assert checked == {
        (0, "lefthand"): True, (0, "righthand"): True,
        (1, "lefthand"): True, (1, "righthand"): False,
        (2, "lefthand"): False,
    }  # fmt: skip
    assert list(s.people_swapped()) == [0] and s.rate == pytest.approx(3 / 5)
    assert np.allclose(s.oks_other[s.swapped], 1.0)
    far = detect_swaps(gt, preds, min_oks=1.01)  # the other hand must really be matched
    assert not far.swapped.any()


def test_worst_instances():
    people = [person(300 * i, 0, left=20) for i in range(4)]
    gt = ground_truth([(1, p) for p in people])
    rows = []
    for i, shift in enumerate([1.0, 6.0, 3.0, 9.0]):
        kp = as_prediction(people[i])
        kp[LH, 0] += shift
        rows.append((1, kp, 0.9 - 0.1 * i))
    e = point_errors(gt, predictions(rows), "lefthand")
    assert list(worst_instances(e, 2)) == [3, 1]
    assert list(worst_instances(e, 10, among=np.array([1, 0, 1, 0], bool))) == [2, 0]
    gt.keypoints[3, LH.start + 2 :, 2] = 0  # 2 labelled points left
    e = point_errors(gt, predictions(rows), "lefthand")
    assert list(worst_instances(e, 2, min_points=3)) == [1, 2]


def test_face_and_single_hand_parts():
    gt = ground_truth([(1, person(0, 0))])
    kp = as_prediction(gt.keypoints[0])
    kp[FACE, 0] += 4.0  # 0.1 face sides
    e = point_errors(gt, predictions([(1, kp, 0.9)]), "face")
    assert e.names[0] == "face-0" and np.allclose(e.error, 0.1)
    assert list(point_errors(gt, predictions([(1, kp, 0.9)]), "righthand").side) == ["righthand"]
    assert PART_SLICES["face"] == FACE
