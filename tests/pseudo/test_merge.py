import numpy as np
import pytest
from pseudo_data import skeleton

from fullbody.annotations import points_box
from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.merge import fuse, merge_predictions, part_min_conf
from fullbody.pseudo.teachers.base import Prediction

FACE, LH, FOOT = PART_SLICES["face"], PART_SLICES["lefthand"], PART_SLICES["foot"]


def _pred(n=2):
    p = Prediction.empty(n)
    rng = np.random.default_rng(1)
    p.xy[:] = rng.uniform(10, 90, p.xy.shape)
    return p


def test_body_stays_human_and_confident_points_keep_their_confidence():
    body = skeleton(2)
    body_conf = np.full((2, 17), 1.0)
    body_conf[1, 3] = 0.0
    p = _pred()
    p.conf[:, FACE] = 0.8
    p.conf[0, FACE.start] = 0.2  # below min_conf: unlabelled
    kpts, conf, valid, boxes = merge_predictions(body, body_conf, {"face": p}, (100, 100), 0.5)
    np.testing.assert_array_equal(kpts[:, :17], body)
    np.testing.assert_array_equal(conf[:, :17], body_conf)
    assert (kpts[0, FACE.start] == 0).all() and conf[0, FACE.start] == 0
    assert (kpts[:, FACE.start + 1 : FACE.stop, 2] == 2).all() and (
        conf[:, FACE.start + 1 : FACE.stop] == 0.8
    ).all()
    np.testing.assert_array_equal(kpts[1, FACE, :2], np.round(p.xy[1, FACE], 2))
    assert valid.tolist() == [[True, False, True, False, False]] * 2
    np.testing.assert_allclose(boxes[:, 0], points_box(kpts[:, FACE]))
    assert (boxes[:, 1:] == 0).all()


def test_occluded_points_get_v1_and_outside_or_nan_points_are_dropped():
    body = skeleton(2)
    p = _pred()
    p.conf[:, FOOT] = 0.9
    p.occluded[:, FOOT.start + 2] = True
    p.xy[0, FOOT.start] = [150.0, 10.0]  # outside the 100 x 100 image
    p.xy[1, FOOT.start] = [np.nan, 3.0]
    p.conf[1, FOOT.start + 1] = np.nan
    kpts, conf, valid, _ = merge_predictions(body, np.ones((2, 17)), {"foot": p}, (100, 100))
    assert kpts[0, FOOT.start + 2, 2] == 1 and conf[0, FOOT.start + 2] == 0.9
    assert kpts[0, FOOT.start, 2] == 0 and kpts[1, FOOT.start, 2] == 0
    assert kpts[1, FOOT.start + 1, 2] == 0 and conf[1, FOOT.start + 1] == 0
    assert np.isfinite(kpts).all() and np.isfinite(conf).all() and valid[:, 1].all()


def test_parts_without_a_teacher_or_confidence_are_invalid_and_empty():
    p = _pred()
    p.conf[:, LH] = 0.49
    kpts, conf, valid, boxes = merge_predictions(
        skeleton(2), np.ones((2, 17)), {"lefthand": p}, (100, 100)
    )
    assert not valid[:, 1:].any() and (kpts[:, 17:] == 0).all() and (conf[:, 17:] == 0).all()
    assert (boxes == 0).all()


def test_stored_precision():
    p = _pred(1)
    p.xy[0, LH] = 12.345678
    p.conf[0, LH] = 0.987654
    p.conf[0, LH.start] = 1.0
    kpts, conf, _, _ = merge_predictions(
        skeleton(1), np.ones((1, 17)), {"lefthand": p}, (100, 100), 1e-6
    )
    assert (kpts[0, LH.start + 1 : LH.stop, :2] == 12.35).all() and (
        conf[0, LH.start + 1 : LH.stop] == 0.9877
    ).all()
    p.conf[0, LH] = 1e-6  # kept (min_conf 1e-6) but below the stored precision: stays > 0
    _, conf, valid, _ = merge_predictions(
        skeleton(1), np.ones((1, 17)), {"lefthand": p}, (100, 100), 1e-6
    )
    assert (conf[0, LH] == 1e-4).all() and valid[0, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="cannot merge part 'body'"):
        merge_predictions(skeleton(1), np.ones((1, 17)), {"body": _pred(1)}, (100, 100))
    with pytest.raises(ValueError, match="min_conf"):
        merge_predictions(skeleton(1), np.ones((1, 17)), {}, (100, 100), min_conf=0.0)


def test_per_part_thresholds():
    p = _pred(1)
    p.conf[:, FACE] = 0.3
    p.conf[:, LH] = 0.3
    kpts, *_ = merge_predictions(
        skeleton(1), np.ones((1, 17)), {"face": p, "lefthand": p}, (100, 100),
        {"lefthand": 0.2},  # face keeps the default 0.5
    )  # fmt: skip
    assert (kpts[0, LH, 2] == 2).all() and (kpts[0, FACE, 2] == 0).all()
    with pytest.raises(ValueError, match="unknown parts"):
        part_min_conf({"hands": 0.1})
    with pytest.raises(ValueError, match="0, 1"):
        part_min_conf({"face": 1.5})


def test_fusion_takes_the_more_confident_point_or_a_weighted_mean():
    a, b = Prediction.empty(1), Prediction.empty(1)
    a.xy[0, 30], a.conf[0, 30] = (10.0, 10.0), 0.9
    b.xy[0, 30], b.conf[0, 30] = (20.0, 30.0), 0.3
    a.xy[0, 31], a.conf[0, 31] = (10.0, 10.0), 0.2
    b.xy[0, 31], b.conf[0, 31], b.occluded[0, 31] = (20.0, 20.0), 0.6, True
    b.xy[0, 32], b.conf[0, 32] = (np.nan, 5.0), 0.99  # not finite: never chosen
    a.xy[0, 32], a.conf[0, 32] = (7.0, 7.0), 0.4
    m = fuse([a, b], "max")
    np.testing.assert_allclose(m.xy[0, 30:33], [[10, 10], [20, 20], [7, 7]])
    np.testing.assert_allclose(m.conf[0, 30:33], [0.9, 0.6, 0.4])
    assert m.occluded[0, 31] and not m.occluded[0, 30]
    w = fuse([a, b], "mean")
    np.testing.assert_allclose(w.xy[0, 30], (0.9 * np.r_[10, 10] + 0.3 * np.r_[20, 30]) / 1.2)
    np.testing.assert_allclose(w.conf[0, 30], 0.9)
    np.testing.assert_allclose(w.xy[0, 40], a.xy[0, 40])  # nobody predicts it: the first's
    assert fuse([a], "mean") is a
    with pytest.raises(ValueError, match="fusion"):
        fuse([a, b], "vote")
