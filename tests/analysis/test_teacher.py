"""Teacher versus student: pairing pseudo-labels with ground truth, classifying points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers.poses import as_prediction, predictions

from fullbody.analysis.part_errors import point_errors
from fullbody.analysis.teacher import CATEGORIES, align_by_ann_id, compare_teacher
from fullbody.jsonio import AnnotationError

from ._cases import LH, ground_truth, person


def _teacher_of(gt, keypoints, conf=None):
    conf = (keypoints[..., 2] > 0).astype(float) if conf is None else conf
    return dataclasses.replace(gt, keypoints=keypoints, conf=conf, has_conf=True)


def test_align_by_ann_id():
    gt = ground_truth([(1, person(0, 0)), (1, person(300, 0)), (2, person(0, 0))])
    t = gt.subset([2, 0])  # other order, one person missing
    assert list(align_by_ann_id(gt, t)) == [1, -1, 0]
    bad = gt.subset([0])
    bad.ann_ids = np.array([99])
    with pytest.raises(AnnotationError, match="no annotation id in common"):
        align_by_ann_id(gt, bad)
    moved = gt.subset([0, 1])
    moved.image_ids = np.array([1, 2])
    with pytest.raises(AnnotationError, match=r"annotation 2: field 'image_id': 2 here, 1 in"):
        align_by_ann_id(gt, moved)
    dup = gt.subset([0, 0])
    with pytest.raises(AnnotationError, match="duplicate annotation id"):
        align_by_ann_id(gt, dup)


def test_each_category_is_recognised():
    """A 20 px left hand (tolerance 0.1 = 2 px); points 0-5 built one per case."""
    kp = person(0, 0, left=20)
    gt = ground_truth([(1, kp)])
    h = LH.start
    teacher = gt.keypoints.copy()
    student = as_prediction(kp)
    # 0: both good (1 px off each)
    teacher[0, h + 0, 0] += 1.0
    student[h + 0, 1] += 1.0
    # 1: student beats teacher (teacher 10 px off, student exact)
    teacher[0, h + 1, 0] += 10.0
    # 2: teacher beats student (teacher exact, student 6 px off)
    student[h + 2, 0] += 6.0
    # 3: copies the teacher's mistake (teacher 10 px off, student 1 px from the teacher)
    teacher[0, h + 3, 0] += 10.0
    student[h + 3, :2] = teacher[0, h + 3, :2] + (0.0, 1.0)
    # 4: both bad, on their own (teacher 10 px right, student 10 px left)
    teacher[0, h + 4, 0] += 10.0
    student[h + 4, 0] -= 10.0
    # 5: the teacher has no label (confidence 0): not compared
    conf = (teacher[..., 2] > 0).astype(float)
    conf[0, h + 5] = 0.0
    errors = point_errors(gt, predictions([(1, student, 0.9)]), "lefthand")
    cmp = compare_teacher(errors, gt, _teacher_of(gt, teacher, conf), tol=0.1)
    assert list(cmp.category[0, :6]) == [0, 1, 2, 3, 4, -1]
    assert (cmp.category[0, 6:] == 0).all()  # the rest: exact teacher and student
    np.testing.assert_allclose(cmp.teacher_error[0, [1, 3, 4]], 0.5)
    np.testing.assert_allclose(cmp.student_to_teacher[0, 3], 0.05)
    assert np.isnan(cmp.teacher_error[0, 5]) and not cmp.compared[0, 5]
    counts = cmp.counts()
    assert counts == {CATEGORIES[0]: 16, CATEGORIES[1]: 1, CATEGORIES[2]: 1, CATEGORIES[3]: 1,
                      CATEGORIES[4]: 1}  # fmt: skip
    frac = cmp.fractions_by_group()
    for group in frac.values():
        assert sum(group.values()) == pytest.approx(1.0)
    assert frac["wrist"]["both good"] == 1.0  # point 0 is the hand root
    # a looser tolerance makes the 6 px student point good
    assert compare_teacher(errors, gt, _teacher_of(gt, teacher, conf), tol=0.35).category[0, 2] == 0
    with pytest.raises(ValueError, match="tol"):
        compare_teacher(errors, gt, _teacher_of(gt, teacher), tol=0)


def test_people_without_teacher_labels_are_not_compared():
    gt = ground_truth([(1, person(0, 0)), (1, person(300, 0))])
    teacher = _teacher_of(gt.subset([1]), gt.keypoints[[1]].copy())
    preds = predictions([(1, as_prediction(gt.keypoints[i]), 0.9) for i in range(2)])
    cmp = compare_teacher(point_errors(gt, preds, "hands"), gt, teacher)
    per_instance = cmp.compared.any(1)
    assert list(per_instance) == [False, True, False, True]  # rows: left 0, 1, right 0, 1
