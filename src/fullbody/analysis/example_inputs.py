"""The analysis notebook's built-in inputs: synthetic scenes, their pseudo-labels (the teacher)
and the predictions of a stand-in distilled student, written as ordinary files.

The stand-in student (:func:`distilled_student`) has, per person and part, either learnt the
teacher's labels — mistakes, displaced and swapped hands included — or the truth, and errs on
top of that like a top-down model (:func:`~fullbody.evaluation.simulate.simulate_predictions`).
So every effect the notebook looks for is present, deterministically, without a trained model.

:func:`run_inputs` replaces the stand-in with a real student: a training run's checkpoint
predicts the same kind of scenes (of a seed its training never saw) from their labelled boxes;
:func:`latest_run` finds the newest ``python train.py`` run.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fullbody.analysis.teacher import align_by_ann_id
from fullbody.annotations import WholeBodySet
from fullbody.evaluation.simulate import SimulationConfig, simulate_predictions
from fullbody.inference.predictor import load_predictor
from fullbody.keypoints import PART_SLICES
from fullbody.results import Predictions
from fullbody.synthetic import ANNOTATIONS, IMAGES_DIR, PSEUDO_ANNOTATIONS, generate

#: Scenes of the real-student analysis: a seed no default run trains or validates on.
RUN_SEED = 1000

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


def run_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint of a training run: its best (``epochNNN.ckpt``), else ``last.ckpt``."""
    ckpts = Path(run_dir) / "checkpoints"
    best = sorted(p for p in ckpts.glob("*.ckpt") if p.name != "last.ckpt")
    if best:
        return best[-1]
    if (ckpts / "last.ckpt").is_file():
        return ckpts / "last.ckpt"
    raise FileNotFoundError(f"{ckpts}: no checkpoint (*.ckpt) in this run folder")


def latest_run(runs_dir: str | os.PathLike) -> Path | None:
    """The newest run folder under ``runs_dir`` (``outputs/train/runs``) with a checkpoint."""
    root = Path(runs_dir)
    runs = sorted(root.glob("*/checkpoints/*.ckpt")) if root.is_dir() else []
    return max((p.parents[1] for p in runs), key=lambda d: d.name, default=None)


def run_inputs(
    run_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    num_images: int = 60,
    seed: int = RUN_SEED,
    device: str = "cpu",
) -> DefaultInputs:
    """The analysis inputs of a real student: ``run_dir``'s checkpoint on synthetic scenes.

    The scenes (with their pseudo-labels, the teacher) are generated under
    ``cache_dir/synthetic-{num_images}-seed{seed}/`` as for :func:`default_inputs`; the
    checkpoint predicts every labelled person from its ground-truth box (flip test and DARK as
    the model was trained to decode, no pose NMS) and the results JSON is written beside them.
    """
    ckpt = run_checkpoint(run_dir)
    cache = Path(cache_dir)
    data = cache / f"synthetic-{num_images}-seed{seed}"
    generate(data, num_images, seed, pseudo=True, progress=False)
    gt = WholeBodySet.load(data / ANNOTATIONS)
    predictor = load_predictor(ckpt_path=ckpt, device=device, nms="none")
    parts = []
    for image_id, rows in gt.by_image().items():
        if len(rows):
            result = predictor(gt.image_path(image_id, data / IMAGES_DIR), gt.bboxes[rows])
            parts.append(result.to_predictions(image_id))
    results = cache / f"run-{Path(run_dir).resolve().name}-{ckpt.stem}-{num_images}-seed{seed}.json"
    Predictions.concatenate(parts).save(results, overwrite=True)
    return DefaultInputs(data / ANNOTATIONS, results, data / PSEUDO_ANNOTATIONS, data / IMAGES_DIR)
