"""The whole analysis of one part in one call, and its tables as text.

:func:`load_inputs` reads the files (validated, errors name file and field);
:func:`analyse_part` computes everything the notebook shows for a part;
:func:`fullbody.analysis.plots.show_analysis` draws it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fullbody.analysis.gallery import GalleryItem, gallery_items
from fullbody.analysis.part_errors import (
    SIZE_EDGES,
    PersonPairs,
    PointErrors,
    SwapReport,
    ap_by_occlusion,
    ap_by_size,
    detect_swaps,
    group_summary,
    pair_people,
    point_errors,
    worst_instances,
)
from fullbody.analysis.teacher import CATEGORIES, TeacherComparison, compare_teacher
from fullbody.annotations import WholeBodySet
from fullbody.evaluation.breakdown import OCCLUSION_EDGES, Breakdown
from fullbody.images import image_folder
from fullbody.results import Predictions


@dataclass
class Inputs:
    """Ground truth, predictions and (optionally) the teacher's pseudo-labels."""

    gt: WholeBodySet
    preds: Predictions
    teacher: WholeBodySet | None = None
    image_dir: Path | None = None


def load_inputs(
    gt_file: str | os.PathLike,
    results_file: str | os.PathLike,
    pseudo_file: str | os.PathLike | None = None,
    image_dir: str | os.PathLike | None = None,
) -> Inputs:
    """Read and validate the files; ``image_dir`` must exist when given."""
    gt = WholeBodySet.load(gt_file)
    preds = Predictions.load(results_file, images=gt.images)
    teacher = WholeBodySet.load(pseudo_file) if pseudo_file is not None else None
    if image_dir is not None:
        image_folder(image_dir)
    return Inputs(gt, preds, teacher, Path(image_dir) if image_dir is not None else None)


@dataclass
class PartAnalysis:
    """Everything the notebook shows for one part."""

    part: str
    by_size: Breakdown
    by_occlusion: Breakdown
    errors: PointErrors
    groups: dict[str, dict[str, float]]
    size_edges: tuple[float, ...]
    swaps: SwapReport | None = None  # hands only
    teacher: TeacherComparison | None = None  # with pseudo-labels only
    worst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gallery: list[GalleryItem] = field(default_factory=list)  # with images only


def analyse_part(
    inputs: Inputs,
    part: str,
    pairs: PersonPairs | None = None,
    size_edges: Sequence[float] = SIZE_EDGES,
    occlusion_edges: Sequence[float] = OCCLUSION_EDGES,
    tol: float = 0.1,
    n_worst: int = 9,
) -> PartAnalysis:
    """AP by size and occlusion, per-point errors, swaps (hands), teacher comparison (when a
    teacher is given) and the worst instances' gallery (when an image folder is given)."""
    gt, preds = inputs.gt, inputs.preds
    pairs = pair_people(gt, preds) if pairs is None else pairs
    errors = point_errors(gt, preds, part, pairs)
    worst = worst_instances(errors, n_worst)
    return PartAnalysis(
        part=part,
        by_size=ap_by_size(gt, preds, part, size_edges),
        by_occlusion=ap_by_occlusion(gt, preds, part, occlusion_edges),
        errors=errors,
        groups=group_summary(errors),
        size_edges=tuple(size_edges),
        swaps=detect_swaps(gt, preds, pairs)
        if part in ("hands", "lefthand", "righthand")
        else None,
        teacher=None
        if inputs.teacher is None
        else compare_teacher(errors, gt, inputs.teacher, tol),
        worst=worst,
        gallery=[]
        if inputs.image_dir is None
        else gallery_items(errors, worst, gt, inputs.image_dir),
    )


def format_groups(summary: dict[str, dict[str, float]], title: str = "points") -> str:
    """The :func:`group_summary` table: one row per point group."""
    cols = ("points", "median", "mean", "PCK@0.1", "PCK@0.2")
    head = f"{title:<12}" + "".join(f"{c:>9}" for c in cols)
    rows = [head, "-" * len(head)]
    for name, st in summary.items():
        rows.append(
            f"{name:<12}{int(st['points']):>9d}" + "".join(f"{st[c]:>9.3f}" for c in cols[1:])
        )
    return "\n".join(rows)


def format_categories(cmp: TeacherComparison) -> str:
    """Teacher-versus-student category shares per point group."""
    frac = cmp.fractions_by_group()
    head = f"{'group':<12}" + "".join(f"{c:>24}" for c in CATEGORIES)
    rows = [head, "-" * len(head)]
    for name, st in frac.items():
        rows.append(f"{name:<12}" + "".join(f"{st[c]:>24.3f}" for c in CATEGORIES))
    return "\n".join(rows)
