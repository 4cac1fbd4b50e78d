"""Pseudo-labelling one image: which teacher labels which part, the image's people, the merge.

:func:`label_image` is the unit of work of the sharded job (:mod:`fullbody.pseudo.runner`):
given one decoded image and its people (:class:`ImageTask`), it proposes part boxes from the
body keypoints (or takes the human ones), runs each distinct teacher once and merges their
points with the human body (:func:`fullbody.pseudo.merge.merge_predictions`).
:func:`read_task_image` decodes the image exactly as training does
(:func:`fullbody.images.read_image`: EXIF orientation ignored, truncated files refused, size
checked against the record).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.errors import ConfigError
from fullbody.images import read_image
from fullbody.pseudo.merge import fuse, merge_predictions
from fullbody.pseudo.proposals import propose, with_human_boxes
from fullbody.pseudo.teachers.base import (
    TEACHER_PARTS,
    People,
    Prediction,
    Teacher,
)

PART_BOX_MODES = ("proposals", "gt")
#: Teacher slots: part teachers win over the whole-body one for the parts they label.
WHOLEBODY_SLOT = "wholebody"


def build_teachers(specs: Mapping[str, Any]) -> dict[str, Teacher]:
    """Teacher objects from ``slot -> config`` (a ``_target_`` mapping, a teacher, or None)."""
    from hydra.utils import instantiate

    out = {}
    for slot, spec in specs.items():
        if spec is None:
            continue
        try:
            teacher = instantiate(spec) if isinstance(spec, Mapping) else spec
        except Exception as e:  # Hydra wraps the teacher's own error: surface that one
            if isinstance(e.__cause__, Exception):
                raise e.__cause__ from None
            raise
        if not isinstance(teacher, Teacher):
            raise TypeError(f"teacher '{slot}': {type(teacher).__name__} has no parts/predict")
        out[slot] = teacher
    return out


def assign_parts(
    teachers: Mapping[str, Teacher], fused: Sequence[str] = ()
) -> dict[str, Teacher | tuple[Teacher, ...]]:
    """Which teacher labels each part: the part teacher that names it, else the whole-body one;
    for the ``fused`` parts that both label, the pair (part teacher, whole-body teacher), whose
    predictions :func:`label_image` fuses per point.

    Two part teachers claiming one part is an error (the choice would be silent), and so is
    fusion that would fuse nothing (no whole-body teacher, or none of the ``fused`` parts
    labelled by both a part teacher and it): the option would be ignored.
    """
    by_part: dict[str, Teacher] = {}
    owner: dict[str, str] = {}
    for slot, teacher in teachers.items():
        if slot == WHOLEBODY_SLOT:
            continue
        for part in teacher.parts:
            if part in by_part:
                raise ConfigError(
                    f"part '{part}' is claimed by teachers '{owner[part]}' and '{slot}'"
                )
            by_part[part], owner[part] = teacher, slot
    bad = sorted(set(fused) - set(TEACHER_PARTS))
    if bad:
        raise ConfigError(f"fusion_parts names unknown parts {bad}; parts are {TEACHER_PARTS}")
    whole = teachers.get(WHOLEBODY_SLOT)
    out: dict[str, Teacher | tuple[Teacher, ...]] = dict(by_part)
    if whole is not None:
        for part in whole.parts:
            if part not in by_part:
                out[part] = whole
            elif part in fused:
                out[part] = (by_part[part], whole)
    if fused and not any(isinstance(t, tuple) for t in out.values()):
        why = (
            "there is no whole-body teacher (add +teacher/wholebody=...)"
            if whole is None
            else f"no part of fusion_parts={list(fused)} is labelled by both a part teacher "
            "and the whole-body teacher"
        )
        raise ConfigError(f"fusion fuses a part teacher with the whole-body one, but {why}; or "
                          "set fusion=null")  # fmt: skip
    return {p: out[p] for p in TEACHER_PARTS if p in out}


@dataclass
class ImageTask:
    """One image and its people: everything a worker needs, nothing more."""

    image: dict[str, Any]  # the COCO image record
    ann_ids: np.ndarray  # (m,)
    body: np.ndarray  # (m, 17, 3)
    body_conf: np.ndarray  # (m, 17)
    bboxes: np.ndarray  # (m, 4)
    part_boxes: np.ndarray  # (m, 3, 4) human boxes (zeros when absent)
    iscrowd: np.ndarray  # (m,)


def task_image_path(image_dir: str | os.PathLike, task: ImageTask) -> Path:
    """The file of a task's image."""
    return Path(image_dir) / str(task.image["file_name"])


def read_task_image(
    image_dir: str | os.PathLike, task: ImageTask, source: str | os.PathLike | None = None
) -> np.ndarray:
    """The RGB image of a task, read as training reads it; errors name the file (and ``source``,
    the annotation file, when the size disagrees with the record)."""
    return read_image(task_image_path(image_dir, task), record=task.image, source=source)


def label_image(
    image: np.ndarray,
    task: ImageTask,
    teachers: Mapping[str, Teacher | Sequence[Teacher]],
    part_boxes: str = "proposals",
    min_conf: float | Mapping[str, float] = 0.5,
    fusion: str = "max",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-labels of one image's people: keypoints, conf, valid, part boxes (merge order).

    ``teachers`` maps parts to a teacher or several (:func:`assign_parts`), whose predictions
    are fused per point (:func:`fullbody.pseudo.merge.fuse`, ``fusion`` mode); each distinct
    teacher runs once on the image's non-crowd people. Crowd regions keep their body and
    nothing else.
    """
    people_rows = np.flatnonzero(~task.iscrowd.astype(bool))
    regions = propose(task.body[people_rows])
    if part_boxes == "gt":
        regions = with_human_boxes(regions, task.part_boxes[people_rows])
    people = People(task.body[people_rows], task.bboxes[people_rows], regions)
    sources = {p: tuple(t) if isinstance(t, Sequence) else (t,) for p, t in teachers.items()}
    by_teacher: dict[int, Prediction] = {}
    for teacher in {id(t): t for ts in sources.values() for t in ts}.values():
        if not len(people_rows):
            break
        pred = teacher.predict(image, people)
        full = Prediction.empty(len(task.ann_ids))
        full.xy[people_rows], full.conf[people_rows] = pred.xy, pred.conf
        full.occluded[people_rows] = pred.occluded
        by_teacher[id(teacher)] = full
    predictions = {
        part: fuse([by_teacher[id(t)] for t in ts], fusion)
        for part, ts in sources.items()
        if by_teacher
    }
    size = (float(task.image["width"]), float(task.image["height"]))
    return merge_predictions(task.body, task.body_conf, predictions, size, min_conf)
