"""Teacher versus student: where a distilled student beats its teacher or copies its mistakes.

The teacher is a pseudo-label file of the evaluated people (same annotation ids as the ground
truth, as the pseudo-labelling pipeline writes them); the student, predictions matched to the
ground truth (:class:`~fullbody.analysis.part_errors.PointErrors`). Per labelled point, with
errors in units of the ground-truth part's box side and a tolerance ``tol``:

=========================  ==============================================================
both good                  teacher and student within ``tol`` of the truth
student beats teacher      teacher off by more than ``tol``, student within it
teacher beats student      teacher within ``tol``, student off
copies teacher mistake     both off, the student within ``tol`` of the teacher's point
both bad                   both off, on their own
=========================  ==============================================================

Points the teacher did not label (v = 0 or confidence 0) are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fullbody.analysis.part_errors import PointErrors, point_groups
from fullbody.annotations import WholeBodySet
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import PART_SLICES

CATEGORIES = (
    "both good",
    "student beats teacher",
    "teacher beats student",
    "copies teacher mistake",
    "both bad",
)


def align_by_ann_id(gt: WholeBodySet, other: WholeBodySet) -> np.ndarray:
    """For each ground-truth row, the row of ``other`` with the same annotation id, or -1.

    Raises :class:`AnnotationError` when no id is shared, or when a shared id sits on another
    image (the files do not describe the same people).
    """
    src = str(other.path) if other.path else "<teacher>"
    if len(gt) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(other.ann_ids, kind="stable")
    ids = other.ann_ids[order]
    if len(ids) > 1 and (np.diff(ids) == 0).any():
        dup = ids[1:][np.diff(ids) == 0][0]
        raise AnnotationError(src, f"annotation {dup}", "id", "duplicate annotation id")
    pos = np.searchsorted(ids, gt.ann_ids).clip(0, max(len(ids) - 1, 0))
    hit = ids[pos] == gt.ann_ids if len(ids) else np.zeros(len(gt), bool)
    if not hit.any():
        raise AnnotationError(
            src, "top level", "annotations", "no annotation id in common with the ground truth"
        )
    rows = np.where(hit, order[pos], -1)
    wrong = hit & (other.image_ids[np.maximum(rows, 0)] != gt.image_ids)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise AnnotationError(
            src,
            f"annotation {gt.ann_ids[i]}",
            "image_id",
            f"{other.image_ids[rows[i]]} here, {gt.image_ids[i]} in the ground truth",
        )
    return rows


@dataclass
class TeacherComparison:
    """Per labelled point of each analysed instance (rows of the student's
    :class:`PointErrors`): teacher error, student error, their distance, and the category."""

    part: str
    names: tuple[str, ...]
    tol: float
    teacher: np.ndarray  # (R, K, 3) teacher points (x, y, confidence)
    teacher_error: np.ndarray  # (R, K) normalised; NaN where not compared
    student_error: np.ndarray  # (R, K)
    student_to_teacher: np.ndarray  # (R, K)
    category: np.ndarray  # (R, K) index into CATEGORIES; -1 where not compared

    @property
    def compared(self) -> np.ndarray:
        return self.category >= 0

    def counts(self, idx: np.ndarray | None = None) -> dict[str, int]:
        """Points per category (over the local points ``idx``, default all)."""
        c = self.category if idx is None else self.category[:, idx]
        return {name: int((c == k).sum()) for k, name in enumerate(CATEGORIES)}

    def fractions_by_group(
        self, groups: dict[str, np.ndarray] | None = None
    ) -> dict[str, dict[str, float]]:
        """Share of each category per point group (fingertips, knuckles, ...), and overall."""
        groups = point_groups(self.part) if groups is None else groups
        out = {}
        for name, idx in {**groups, "all": np.arange(len(self.names))}.items():
            counts = self.counts(idx)
            total = sum(counts.values())
            out[name] = {k: v / total if total else float("nan") for k, v in counts.items()}
        return out


def compare_teacher(
    errors: PointErrors, gt: WholeBodySet, teacher: WholeBodySet, tol: float = 0.1
) -> TeacherComparison:
    """Classify each point of the student's matched instances against the teacher's label."""
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    rows = align_by_ann_id(gt, teacher)[errors.gt_row]
    k = len(errors.names)
    t = np.zeros((len(errors), k, 3))
    t_ok = np.zeros((len(errors), k), bool)
    for side in np.unique(errors.side):
        sel = (errors.side == side) & (rows >= 0)
        sl = PART_SLICES[side]
        t[sel] = teacher.keypoints[rows[sel], sl]
        t[sel, :, 2] = np.where(t[sel, :, 2] > 0, teacher.conf[rows[sel], sl], 0.0)
        t_ok[sel] = t[sel, :, 2] > 0
    ok = t_ok & errors.labelled
    size = errors.size[:, None]
    te = np.where(
        ok, np.hypot(*(t[..., :2] - errors.gt[..., :2]).transpose(2, 0, 1)) / size, np.nan
    )
    se = np.where(ok, errors.error, np.nan)
    st = np.where(
        ok, np.hypot(*(t[..., :2] - errors.pred[..., :2]).transpose(2, 0, 1)) / size, np.nan
    )
    t_good, s_good, near = te <= tol, se <= tol, st <= tol
    cat = np.select(
        [t_good & s_good, ~t_good & s_good, t_good & ~s_good, near],
        [0, 1, 2, 3],
        default=4,
    )
    cat = np.where(ok, cat, -1).astype(np.int8)
    return TeacherComparison(errors.part, errors.names, tol, t, te, se, st, cat)
