"""How good are pseudo-labels? Score them against human whole-body labels of the same people.

Every pseudo-labelled person becomes one prediction: its points with their teacher confidences
(the human body with confidence 1), ranked per part by the mean confidence of the part's
labelled points; a part with no labelled point counts as not predicted. The project's metric
(:func:`fullbody.evaluation.wholebody.evaluate`, the official COCO-WholeBody protocol) then
gives AP/AR per part, and :func:`coverage` how many human-labelled parts got a label at all.
The metric counts a human-labelled point that no teacher predicts (the small toes) as a miss,
which caps the foot AP; ``metrics_predicted_points`` repeats the evaluation with the human labels
of such points removed (points unlabelled in every pseudo-label of the set although their part
is labelled in some), to judge the teachers on what they do predict. The report also measures the body-based part proposals against the human
part boxes (:func:`fullbody.pseudo.proposals.proposal_quality`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fullbody.annotations import PARTS, WholeBodySet
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import KEYPOINT_PART, PART_SLICES, PART_SLICES_WITH_WHOLE
from fullbody.pseudo.proposals import proposal_quality, propose

Metric = Callable[[WholeBodySet, Any], dict[str, float]]


def as_predictions(labels: WholeBodySet) -> Any:
    """The pseudo-labels as the metric's predictions (crowd regions left out)."""
    from fullbody.evaluation.results import Predictions

    rows = np.flatnonzero(~labels.iscrowd)
    kpts = labels.keypoints[rows].copy()
    lab = kpts[..., 2] > 0
    conf = np.where(lab, labels.conf[rows], 0.0)
    kpts[..., 2] = conf
    part_scores = {}
    for part, sl in PART_SLICES_WITH_WHOLE.items():
        if part == "body":
            continue
        n = lab[:, sl].sum(1)
        part_scores[part] = np.where(n > 0, conf[:, sl].sum(1) / np.maximum(n, 1), np.nan)
    return Predictions(
        image_ids=labels.image_ids[rows],
        keypoints=kpts,
        scores=np.ones(len(rows)),
        part_scores=part_scores,
        bboxes=labels.bboxes[rows],
    )


def coverage(labels: WholeBodySet, human: WholeBodySet) -> dict[str, dict[str, int]]:
    """Per part: human-valid parts, how many of them got a pseudo-label, and pseudo-labels on
    parts the humans marked invalid (people matched by annotation id)."""
    row = {int(a): i for i, a in enumerate(human.ann_ids)}
    idx = np.array([row[int(a)] for a in labels.ann_ids])
    h, p = human.valid[idx], labels.valid
    return {
        part: {
            "human": int(h[:, j].sum()),
            "labelled": int((h[:, j] & p[:, j]).sum()),
            "extra": int((~h[:, j] & p[:, j]).sum()),
        }
        for j, part in enumerate(PARTS)
    }


def quality_report(
    labels: WholeBodySet, human: WholeBodySet, metric: Metric | None = None
) -> dict[str, Any]:
    """AP/AR per part (``"<part>/<stat>"``) of ``labels`` against ``human``, coverage, and the
    quality of the body-based proposals."""
    if not human.valid[:, 1:].any():
        raise AnnotationError(
            human.path, "all annotations", "foot/face/hand keypoints",
            "the quality report needs human whole-body labels, and this file has none",
        )  # fmt: skip
    if set(labels.ann_ids.tolist()) != set(human.ann_ids.tolist()):
        raise ValueError("pseudo-labels and human labels must hold the same annotation ids")
    if metric is None:
        from fullbody.evaluation.wholebody import evaluate as metric
    preds = as_predictions(labels)
    row = {int(a): i for i, a in enumerate(labels.ann_ids)}
    order = np.array([row[int(a)] for a in human.ann_ids])
    # Points never labelled although their part is labelled somewhere: what no teacher predicts.
    part_labelled = {p: labels.valid[:, j].any() for j, p in enumerate(PARTS)}
    in_labelled_part = np.array([part_labelled[str(p)] for p in KEYPOINT_PART])
    never = ~(labels.keypoints[order, :, 2] > 0).any(0) & in_labelled_part
    covered = human.subset(np.arange(len(human)))
    covered.keypoints[:, never] = 0.0
    return {
        "metrics": metric(human, preds),
        "metrics_predicted_points": metric(covered, preds),
        "never_predicted": np.flatnonzero(never).tolist(),
        "coverage": coverage(labels, human),
        "proposals": proposal_quality(propose(human.keypoints[:, PART_SLICES["body"]]), human),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m fullbody.pseudo.report PSEUDO.json HUMAN.json [--out REPORT.json]``."""
    import argparse
    import json
    from pathlib import Path

    from fullbody.evaluation.wholebody import format_table
    from fullbody.jsonio import write_json_atomic

    ap = argparse.ArgumentParser(description="Score pseudo-labels against human labels.")
    ap.add_argument("pseudo", type=Path, help="pseudo-label JSON (pseudo_label.py output)")
    ap.add_argument("human", type=Path, help="COCO-WholeBody JSON with human labels")
    ap.add_argument("--out", type=Path, default=None, help="default: <pseudo stem>.report.json")
    args = ap.parse_args(argv)
    table = quality_report(WholeBodySet.load(args.pseudo), WholeBodySet.load(args.human))
    out = args.out or args.pseudo.with_name(args.pseudo.stem + ".report.json")
    write_json_atomic(table, out)
    print(format_table(table["metrics"]))
    print(json.dumps(table["coverage"]))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
