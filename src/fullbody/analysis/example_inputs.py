"""The analysis notebook's built-in inputs: synthetic scenes, their pseudo-labels (the teacher)
and the predictions of a stand-in distilled student, written as ordinary files.

The stand-in student (:func:`distilled_student`) has, per person and part, either learnt the
teacher's labels — mistakes, displaced and swapped hands included — or the truth, and errs on
top of that like a top-down model (:func:`~fullbody.evaluation.simulate.simulate_predictions`).
So every effect the notebook looks for is present, deterministically, without a trained model.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fullbody.analysis.teacher import align_by_ann_id
from fullbody.annotations import WholeBodySet
from fullbody.data.synthetic import ANNOTATIONS, IMAGES_DIR, PSEUDO_ANNOTATIONS, generate
from fullbody.evaluation.results import Predictions
from fullbody.evaluation.simulate import SimulationConfig, simulate_predictions
from fullbody.keypoints import PART_SLICES

#: Errors of the stand-in student: those of simulate_predictions, somewhat more accurate.
STUDENT_ERRORS = SimulationConfig(noise=(0.03, 0.5))


def distilled_student(
    gt: WholeBodySet,
    teacher: WholeBodySet,
    seed: int = 0,
    copy_rate: float = 0.5,
    swap_rate: float = 0.03,
    config: SimulationConfig = STUDENT_ERRORS,
) -> Predictions:
    """Predictions of a stand-in student distilled from ``teacher`` (see the module docstring).

    For each person and each of foot, face and hands, with probability ``copy_rate`` the
    student's target is the teacher's label (where the teacher has the point), else the truth;
    with probability ``swap_rate`` it also confuses the person's left and right hands.
    """
    for name, rate in (("copy_rate", copy_rate), ("swap_rate", swap_rate)):
        if not 0 <= rate <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {rate}")
    rows = align_by_ann_id(gt, teacher)
    rng = np.random.default_rng([seed, 2024])
    target = gt.keypoints.copy()
    for part in ("foot", "face", "lefthand", "righthand"):
        sl = PART_SLICES[part]
        copy = (rng.random(len(gt)) < copy_rate) & (rows >= 0)
        t = teacher.keypoints[rows[copy], sl]
        has = (t[..., 2] > 0) & (teacher.conf[rows[copy], sl] > 0) & (target[copy, sl, 2] > 0)
        seg = target[copy, sl]
        seg[..., :2] = np.where(has[..., None], t[..., :2], seg[..., :2])
        target[copy, sl] = seg
    lh, rh = PART_SLICES["lefthand"], PART_SLICES["righthand"]
    whole = (target[:, lh, 2] > 0).all(1) & (target[:, rh, 2] > 0).all(1)
    swap = (rng.random(len(gt)) < swap_rate) & whole  # hands with every point labelled
    left = target[swap, lh, :2].copy()
    target[swap, lh, :2] = target[swap, rh, :2]
    target[swap, rh, :2] = left
    return simulate_predictions(dataclasses.replace(gt, keypoints=target), seed, config)


@dataclass(frozen=True)
class DefaultInputs:
    """Paths of the built-in inputs."""

    gt_file: Path
    results_file: Path
    pseudo_file: Path
    image_dir: Path


def default_inputs(
    cache_dir: str | os.PathLike, num_images: int = 60, seed: int = 0, copy_rate: float = 0.5
) -> DefaultInputs:
    """Write (or reuse) the built-in inputs under ``cache_dir`` and return their paths.

    ``cache_dir/synthetic-{num_images}-seed{seed}/`` holds the synthetic images, ground truth and
    pseudo-labels (the generator's cache: reused when complete); the student's results JSON sits
    beside it, rewritten each time (it is cheap and deterministic).
    """
    cache = Path(cache_dir)
    data = cache / f"synthetic-{num_images}-seed{seed}"
    generate(data, num_images, seed, pseudo=True, progress=False)
    gt = WholeBodySet.load(data / ANNOTATIONS)
    teacher = WholeBodySet.load(data / PSEUDO_ANNOTATIONS)
    results = cache / f"student-{num_images}-seed{seed}-copy{copy_rate:g}.json"
    distilled_student(gt, teacher, seed, copy_rate).save(results, overwrite=True)
    return DefaultInputs(data / ANNOTATIONS, results, data / PSEUDO_ANNOTATIONS, data / IMAGES_DIR)
