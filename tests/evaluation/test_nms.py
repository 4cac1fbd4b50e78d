"""Pose NMS on crafted cases: OKS-NMS and parametric pose NMS (body and whole-body variants)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.poses import as_prediction, pose

from fullbody.evaluation.nms import (
    BODY_PARAMS,
    WHOLEBODY_PARAMS,
    PoseNMSParams,
    nms_per_image,
    oks_matrix,
    oks_nms,
    parametric_pose_nms,
    pose_boxes,
    pose_similarity,
)
from fullbody.results import Predictions

T1 = np.tanh(1.0) ** 2


def _body(x: float, y: float, size: float = 200.0, conf: float = 1.0) -> np.ndarray:
    return as_prediction(pose(x, y, size), conf)[:17]


# ------------------------------------------------------------------ OKS-NMS
def test_oks_matrix_is_symmetric_with_unit_diagonal():
    kp = np.stack(
        [as_prediction(pose(0, 0)), as_prediction(pose(3, 0)), as_prediction(pose(900, 0))]
    )
    areas = np.array([1e4, 1e4, 1e4])
    m = oks_matrix(kp, areas)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
    assert 0.0 < m[0, 1] < 1.0 and m[0, 2] == 0.0
    kp[1, :50, 2] = 0  # only points confident in both poses count
    assert oks_matrix(kp, areas, conf_thr=0.5)[0, 1] != m[0, 1]
    kp[1, :, 2] = 0
    assert oks_matrix(kp, areas, conf_thr=0.5)[0, 1] == 0.0


def test_oks_nms_suppresses_duplicates_by_score():
    a = as_prediction(pose(100, 100, 200))
    kp = np.stack([a, as_prediction(pose(100.5, 100, 200)), as_prediction(pose(600, 100, 200))])
    assert oks_nms(kp, np.array([0.9, 0.8, 0.7])).tolist() == [0, 2]
    assert oks_nms(kp, np.array([0.8, 0.9, 0.7])).tolist() == [1, 2]
    assert oks_nms(kp, np.array([0.9, 0.8, 0.7]), threshold=1.0).tolist() == [0, 1, 2]
    # threshold 0: any overlap suppresses (500 px apart still overlap a little) ...
    assert oks_nms(kp, np.array([0.5, 0.5, 0.5]), threshold=0.0).tolist() == [0]
    kp[2, :, 0] += 2500  # ... but OKS underflows to 0 this far away
    assert oks_nms(kp, np.array([0.5, 0.5, 0.5]), threshold=0.0).tolist() == [0, 2]
    assert oks_nms(np.zeros((0, 133, 3)), np.zeros(0)).tolist() == []
    with pytest.raises(ValueError, match="no default sigmas"):
        oks_nms(np.zeros((2, 20, 3)), np.zeros(2))


def test_pose_boxes_use_confident_points():
    kp = as_prediction(pose(0, 0, 100))
    kp[0] = [500, 500, 0.0]  # an unconfident outlier does not stretch the box
    box = pose_boxes(kp[None])[0]
    assert box[0] >= 0 and box[0] + box[2] <= 100
    kp[:, 2] = 0  # without confident points, all points count
    assert pose_boxes(kp[None])[0, 2] > 400


# ------------------------------------------------------------------ parametric pose NMS
def test_published_defaults():
    assert (BODY_PARAMS.delta1, BODY_PARAMS.mu, BODY_PARAMS.delta2, BODY_PARAMS.gamma) == (
        1.0, 1.7, 2.65, 22.48,
    )  # fmt: skip
    assert (BODY_PARAMS.score_thr, BODY_PARAMS.match_thr, BODY_PARAMS.alpha) == (0.3, 5, 0.1)
    w = WHOLEBODY_PARAMS
    assert (w.delta1, w.mu, w.delta2, w.gamma, w.score_thr, w.match_thr, w.alpha) == (
        1.0, 1.65, 8.0, 3.6, 0.01, 3, 0.15,
    )  # fmt: skip
    groups = {g.name: g for g in w.groups}
    assert groups["face"].scale == 1.9 and groups["face"].indices == slice(23, 91)
    h = groups["hands"]
    assert (h.scale, h.dist_weight, h.score_weight, h.indices) == (0.55, 1.5, 0.1, slice(91, 133))
    assert groups["body"].indices == slice(0, 23)


def test_similarity_soft_matches_within_the_box_scaled_radius():
    a = _body(0, 0)
    kp = np.stack([a, a + [5.0, 0, 0]])
    spatial = 1.7 * 17 * np.exp(-5 / 2.65)
    sim, matches = pose_similarity(kp, np.array([10.0, 10.0]))  # r = 10 >= 5: soft match
    assert sim[0, 1] == pytest.approx(17 * T1 + spatial)
    assert matches[0, 1] == 17  # within min(r, 7)
    sim, matches = pose_similarity(kp, np.array([4.0, 4.0]))  # r = 4 < 5: no soft match
    assert sim[0, 1] == pytest.approx(spatial) and matches[0, 1] == 0
    assert sim[0, 0] == pytest.approx(17 * T1 + 1.7 * 17)


def test_wholebody_similarity_averages_groups_of_confident_points():
    a = as_prediction(pose(0, 0, 200))
    kp = np.stack([a, a.copy()])
    sim, _ = pose_similarity(kp, np.array([30.0, 30.0]), WHOLEBODY_PARAMS)
    assert sim[0, 1] == pytest.approx((1 + 1 + 0.1) * T1 + 1.65 * (1 + 1 + 1.5))
    kp[1, :, 2] = 0.005  # below kpt_thr 0.01: nothing counts
    sim, matches = pose_similarity(kp, np.array([30.0, 30.0]), WHOLEBODY_PARAMS)
    assert sim[0, 1] == 0.0 and matches[0, 1] == 0
    with pytest.raises(ValueError, match="133-point"):
        pose_similarity(kp[:, :17], np.array([30.0, 30.0]), WHOLEBODY_PARAMS)


def test_duplicates_merge_by_confidence_and_rescore():
    a = _body(100, 100)
    b = _body(103, 100)  # 3 px away: within min(r, 7) = 7 at every point
    b[:, 2] = 0.5
    far = _body(600, 100)
    far[:, 2] = 0.8
    kp = np.stack([a, b, far])
    boxes = np.array([[100, 100, 200, 200]] * 3, float)
    res = parametric_pose_nms(kp, boxes, np.array([0.9, 0.8, 0.7]))
    assert res.keep.tolist() == [0, 2]
    assert [c.tolist() for c in res.clusters] == [[0, 1], [2]]
    merged_x = (1.0 * a[:, 0] + 0.5 * b[:, 0]) / 1.5
    assert np.allclose(res.keypoints[0, :, 0], merged_x)
    assert np.allclose(res.keypoints[0, :, 2], (1.0 + 0.25) / 1.5)  # Σc² / Σc
    c = (1.0 + 0.25) / 1.5
    assert res.scores[0] == pytest.approx(c + 1.25 * c + 0.9)
    assert np.allclose(res.keypoints[1], far) and res.scores[1] == pytest.approx(0.8 + 1.0 + 0.7)


def test_match_count_removes_poses_sharing_enough_points():
    a = _body(100, 100)
    b = a.copy()
    b[5:, :2] += 400  # 5 points shared, 12 far away: similarity stays below gamma
    boxes = np.array([[100, 100, 200, 200]] * 2, float)
    sim, matches = pose_similarity(np.stack([a, b]), np.array([20.0, 20.0]))
    assert sim[0, 1] < BODY_PARAMS.gamma and matches[0, 1] == 5
    assert parametric_pose_nms(np.stack([a, b]), boxes, np.ones(2)).keep.tolist() == [0]
    b[4, :2] += 400  # 4 shared points: both stay
    assert parametric_pose_nms(np.stack([a, b]), boxes, np.ones(2)).keep.tolist() == [0, 1]


def test_similarity_alone_removes_near_duplicates():
    params = PoseNMSParams(match_thr=1000)  # the similarity rule only
    a = _body(100, 100)
    boxes = np.array([[100, 100, 200, 200]] * 2, float)
    close = np.stack([a, a + [0.5, 0, 0]])
    apart = np.stack([a, a + [30.0, 0, 0]])
    assert parametric_pose_nms(close, boxes, np.ones(2), params).keep.tolist() == [0]
    assert parametric_pose_nms(apart, boxes, np.ones(2), params).keep.tolist() == [0, 1]


def test_unconfident_poses_are_dropped_and_order_follows_mean_confidence():
    weak = _body(100, 100, conf=0.2)  # best point 0.2 < score_thr 0.3
    strong = _body(600, 100, conf=0.9)
    boxes = np.array([[0, 0, 200, 200]] * 2, float)
    res = parametric_pose_nms(np.stack([weak, strong]), boxes, np.ones(2))
    assert res.keep.tolist() == [1]
    empty = parametric_pose_nms(np.zeros((0, 17, 3)), np.zeros((0, 4)), np.zeros(0))
    assert len(empty.keep) == 0 and empty.keypoints.shape == (0, 17, 3)


# ------------------------------------------------------------------ per image
def _preds() -> Predictions:
    a, c = as_prediction(pose(100, 100, 200)), as_prediction(pose(700, 100, 200))
    rows = [(1, a), (2, a), (1, as_prediction(pose(100.5, 100, 200), 0.8)), (1, c)]
    return Predictions(
        image_ids=np.array([i for i, _ in rows]),
        keypoints=np.stack([k for _, k in rows]),
        scores=np.array([0.9, 0.9, 0.8, 0.7]),
        part_scores={"face": np.array([0.1, 0.2, 0.3, 0.4])},
    )


def test_nms_per_image():
    p = _preds()
    assert nms_per_image(p, "none") is p
    kept = nms_per_image(p, "oks")
    assert kept.image_ids.tolist() == [1, 2, 1] and kept.scores.tolist() == [0.9, 0.9, 0.7]
    assert kept.part_scores["face"].tolist() == [0.1, 0.2, 0.4]
    merged = nms_per_image(p, "parametric")
    assert merged.image_ids.tolist() == [1, 1, 2] and merged.part_scores == {}
    assert merged.scores[0] > 2.0 and merged.bboxes.shape == (3, 4)
    with pytest.raises(ValueError, match="unknown pose NMS method"):
        nms_per_image(p, "soft")
