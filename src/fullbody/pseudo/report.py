"""How good are pseudo-labels? Score them against human whole-body labels of the same people.

Every pseudo-labelled person becomes one prediction: its points with their teacher confidences
(the human body with confidence 1), ranked per part by the mean confidence of the part's
labelled points; a part with no labelled point counts as not predicted. The project's metric
(:func:`fullbody.evaluation.wholebody.evaluate`, the official COCO-WholeBody protocol) then
gives AP/AR per part, and :func:`coverage` how many human-labelled parts got a label at all.
The metric counts a human-labelled point that no teacher predicts (the small toes) as a miss,
which caps the foot AP; ``metrics_predicted_points`` repeats the evaluation with the human labels
of such points removed (points unlabelled in every pseudo-label of the set although their part
is labelled in some), to judge the teachers on what they do predict. The report also measures
the body-based part proposals against the human part boxes
(:func:`fullbody.pseudo.proposals.proposal_quality`).

The training loss weights points by teacher confidence, so confidence should predict error:
:func:`calibration` bins each part's confidences and gives per bin the mean normalised error
(distance / sqrt(person area), OKS's scale) and the fraction within the OKS tolerance (the
point's OKS term exp(-d^2 / (2 area (2 sigma)^2)) >= 0.5, official sigmas), on the points that
both the pseudo-labels and the humans label; :func:`save_reliability_plot` draws it.
:func:`save_calibration_map` fits the recalibration that training can apply
(``data.train.conf_calibration``): per part, the monotone chance of landing within the tolerance
given the confidence (:mod:`fullbody.data.calibration`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.annotations import PARTS, WholeBodySet
from fullbody.data.calibration import OKS_TOLERANCE, CalibrationMap, fit_against, paired_points
from fullbody.jsonio import AnnotationError, write_figure
from fullbody.keypoints import KEYPOINT_PART, PART_SLICES, PART_SLICES_WITH_WHOLE
from fullbody.pseudo.proposals import proposal_quality, propose

Metric = Callable[[WholeBodySet, Any], dict[str, float]]
#: Confidence bin edges of the calibration: five equal bins over [0, 1] (the last one closed).
CALIBRATION_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def as_predictions(labels: WholeBodySet) -> Any:
    """The pseudo-labels as the metric's predictions (crowd regions left out)."""
    from fullbody.results import Predictions

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


def calibration_bins(
    conf: np.ndarray,
    error: np.ndarray,
    within: np.ndarray,
    edges: Sequence[float] = CALIBRATION_EDGES,
) -> list[dict[str, Any]]:
    """Per confidence bin [lo, hi) (the last one [lo, hi]): count, mean confidence, mean error,
    fraction within tolerance (None where the bin is empty).

    ``conf``, ``error``, ``within``: (P,) per point; confidences outside the edges are refused.
    """
    conf, error = np.asarray(conf, float), np.asarray(error, float)
    within = np.asarray(within, bool)
    e = np.asarray(edges, float)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"calibration edges must increase, got {list(edges)}")
    if conf.size and (conf.min() < e[0] or conf.max() > e[-1]):
        raise ValueError(f"confidences outside [{e[0]}, {e[-1]}]: {conf.min()}..{conf.max()}")
    idx = np.minimum(np.searchsorted(e, conf, side="right") - 1, len(e) - 2)
    rows = []
    for b in range(len(e) - 1):
        m = idx == b
        n = int(m.sum())
        rows.append(
            {
                "lo": float(e[b]),
                "hi": float(e[b + 1]),
                "n": n,
                "conf": float(conf[m].mean()) if n else None,
                "error": float(error[m].mean()) if n else None,
                "within": float(within[m].mean()) if n else None,
            }
        )
    return rows


def calibration_gap(bins: Sequence[Mapping[str, Any]]) -> float | None:
    """Count-weighted mean |mean confidence - fraction within tolerance| over the bins (the
    expected calibration error, reading confidence as the chance to land within tolerance)."""
    full = [b for b in bins if b["n"]]
    total = sum(b["n"] for b in full)
    if not total:
        return None
    return float(sum(b["n"] * abs(b["conf"] - b["within"]) for b in full) / total)


def calibration(
    labels: WholeBodySet, human: WholeBodySet, edges: Sequence[float] = CALIBRATION_EDGES
) -> dict[str, dict[str, Any]]:
    """Per part: the confidence bins (:func:`calibration_bins`) of the points labelled both in
    ``labels`` and in ``human`` (people matched by annotation id, crowd regions left out), the
    point count and :func:`calibration_gap`. The body is left out when it is the human label."""
    out = {}
    for part, (conf, err, term) in paired_points(labels, human).items():
        bins = calibration_bins(conf, err, term >= OKS_TOLERANCE, edges)
        out[part] = {"n": int(conf.size), "gap": calibration_gap(bins), "bins": bins}
    return out


def calibration_map_path(report: str | os.PathLike) -> Path:
    """Where the calibration map of a report ``<stem>.report.json`` goes:
    ``<stem>.calibration_map.json`` beside it."""
    report = Path(report)
    stem = report.name.removesuffix(".json").removesuffix(".report")
    return report.with_name(stem + ".calibration_map.json")


def save_calibration_map(
    labels: WholeBodySet, human: WholeBodySet, path: str | os.PathLike
) -> CalibrationMap:
    """Fit the confidence recalibration of ``labels`` against ``human``
    (:func:`fullbody.data.calibration.fit_against`) and write it atomically to ``path``."""
    fitted = fit_against(labels, human, source=str(path))
    fitted.save(path)
    return fitted


def format_calibration(table: Mapping[str, Mapping[str, Any]]) -> str:
    """The calibration as a Markdown table: one row per non-empty bin of each part."""
    lines = [
        "| part | confidence | points | mean conf | mean error | within OKS tol. |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for part, t in table.items():
        for b in t["bins"]:
            if b["n"]:
                lines.append(
                    f"| {part} | {b['lo']:.1f}-{b['hi']:.1f} | {b['n']} | {b['conf']:.3f} "
                    f"| {b['error']:.3f} | {b['within']:.2f} |"
                )
    return "\n".join(lines)


def save_reliability_plot(table: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Reliability plot of :func:`calibration`'s table, written atomically as a PNG: per part,
    the fraction within tolerance (left) and the mean normalised error (right) against the
    mean confidence of each bin, markers sized by point count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_in, ax_err) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100, layout="constrained")
    ax_in.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="calibrated")
    for k, (part, t) in enumerate(table.items()):
        full = [b for b in t["bins"] if b["n"]]
        if not full:
            continue
        x = [b["conf"] for b in full]
        size = [20 + 200 * b["n"] / t["n"] for b in full]
        colour = plt.get_cmap("tab10")(k)
        ax_in.plot(x, [b["within"] for b in full], c=colour, lw=1)
        ax_in.scatter(x, [b["within"] for b in full], s=size, color=colour, label=part)
        ax_err.plot(x, [b["error"] for b in full], c=colour, lw=1)
        ax_err.scatter(x, [b["error"] for b in full], s=size, color=colour, label=part)
    ax_in.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel="mean teacher confidence (bin)",
              ylabel="fraction within OKS tolerance", title="Reliability")  # fmt: skip
    ax_err.set(xlim=(0, 1.02), xlabel="mean teacher confidence (bin)",
               ylabel="mean error / sqrt(area)", title="Error by confidence")  # fmt: skip
    ax_err.set_ylim(bottom=0)
    ax_in.legend(fontsize=8)
    return write_figure(fig, path)


def quality_report(
    labels: WholeBodySet, human: WholeBodySet, metric: Metric | None = None
) -> dict[str, Any]:
    """AP/AR per part (``"<part>/<stat>"``) of ``labels`` against ``human``, coverage, the
    quality of the body-based proposals and the confidence calibration per part."""
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
        "calibration": calibration(labels, human),
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
    labels, human = WholeBodySet.load(args.pseudo), WholeBodySet.load(args.human)
    table = quality_report(labels, human)
    out = args.out or args.pseudo.with_name(args.pseudo.stem + ".report.json")
    write_json_atomic(table, out)
    plot = save_reliability_plot(
        table["calibration"], out.with_name(out.name.removesuffix(".json") + ".calibration.png")
    )
    cmap = calibration_map_path(out)
    save_calibration_map(labels, human, cmap)
    print(format_table(table["metrics"]))
    print(json.dumps(table["coverage"]))
    print(format_calibration(table["calibration"]))
    print(f"report: {out}, reliability plot: {plot}, calibration map: {cmap}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
