"""Matplotlib figures of the part analysis: titled, labelled, sized in pixels.

Every function returns its :class:`~matplotlib.figure.Figure` (``width_px`` x ``height_px`` at
:data:`DPI`), so notebooks show it and scripts save it (``fig.savefig(path)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.figure import Figure

from fullbody.analysis.gallery import GalleryItem
from fullbody.analysis.part_errors import PointErrors, SwapReport, point_groups
from fullbody.analysis.report import PartAnalysis, format_categories, format_groups
from fullbody.analysis.teacher import CATEGORIES, TeacherComparison
from fullbody.evaluation.breakdown import Breakdown, format_breakdown

DPI = 100
#: Readable (singular) names of the analysis parts, for titles and labels.
PART_NOUNS = {
    "lefthand": "left hand",
    "righthand": "right hand",
    "hands": "hand",
    "face": "face",
    "foot": "foot",
    "body": "body",
}
_SERIES = {"lefthand": "left", "righthand": "right", "hands": "both (pooled)"}
_CATEGORY_COLORS = ("#4c9a2a", "#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f")
_GROUP_COLORS = plt.get_cmap("tab10").colors


def figure(width_px: int, height_px: int, ncols: int = 1, nrows: int = 1, **kw):
    """A figure of ``width_px`` x ``height_px`` pixels with a grid of axes (constrained layout)."""
    return plt.subplots(
        nrows, ncols, figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained", **kw
    )


def _title(part: str) -> str:
    return PART_NOUNS.get(part, part)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _px_axis(axis) -> None:
    """Plain pixel numbers (4, 8, 16, ...) on a logarithmic axis."""
    axis.set_major_locator(mticker.LogLocator(base=2))
    axis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    axis.set_minor_formatter(mticker.NullFormatter())


def _size_label(lo: float, hi: float) -> str:
    if lo <= 0:
        return f"< {hi:g}"
    return f"≥ {lo:g}" if np.isinf(hi) else f"{lo:g}–{hi:g}"


def _occlusion_label(lo: float, hi: float) -> str:
    return f"{lo * 100:.0f}–{hi * 100:.0f} %"


def _bucket_bars(
    breakdown: Breakdown,
    labels: Sequence[str],
    title: str,
    xlabel: str,
    stat: str,
    width_px: int,
    height_px: int,
) -> Figure:
    fig, ax = figure(width_px, height_px)
    series = list(breakdown)
    width = 0.8 / len(series)
    x = np.arange(len(labels))
    for i, name in enumerate(series):
        stats = list(breakdown[name].values())
        vals = np.array([s[stat] for s in stats])
        n = [int(s["num_gt"]) for s in stats]
        pos = x + (i - (len(series) - 1) / 2) * width
        ax.bar(pos, np.where(vals >= 0, vals, 0), width, label=_SERIES.get(name, _title(name)))
        for px, v, k in zip(pos, vals, n):
            ax.text(px, max(v, 0) + 0.01, f"n={k}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{stat} (official OKS metric)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(title="hand", loc="upper right", fontsize=8)
    return fig


def _edges(breakdown: Breakdown) -> list[tuple[float, float]]:
    first = next(iter(breakdown.values()))
    out = []
    for label in first:
        lo, _, hi = label.rstrip("+").partition("-")
        out.append((float(lo), float(hi) if hi else np.inf))
    return out


def plot_ap_by_size(
    breakdown: Breakdown, part: str, stat: str = "AP", width_px: int = 800, height_px: int = 400
) -> Figure:
    """Bars of ``stat`` per part-box-side bucket (from :func:`ap_by_size`); n = ground truths."""
    labels = [_size_label(lo, hi) for lo, hi in _edges(breakdown)]
    return _bucket_bars(
        breakdown,
        labels,
        f"{_cap(_title(part))} {stat} by {_title(part)} size",
        f"{_title(part)} box side (px, longer side of the labelled points' extent)",
        stat,
        width_px,
        height_px,
    )


def plot_ap_by_occlusion(
    breakdown: Breakdown, part: str, stat: str = "AP", width_px: int = 800, height_px: int = 400
) -> Figure:
    """Bars of ``stat`` per occlusion bucket (from :func:`ap_by_occlusion`)."""
    labels = [_occlusion_label(lo, hi) for lo, hi in _edges(breakdown)]
    return _bucket_bars(
        breakdown,
        labels,
        f"{_cap(_title(part))} {stat} by occlusion",
        "share of the part's points unlabelled or marked invisible",
        stat,
        width_px,
        height_px,
    )


def _group_of(part: str, k: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    groups = point_groups(part)
    of = np.zeros(k, np.int64)
    for i, idx in enumerate(groups.values()):
        of[idx] = i
    return groups, of


def plot_point_errors(errors: PointErrors, width_px: int = 1100, height_px: int = 420) -> Figure:
    """Box plot of each keypoint's normalised error (5-95 % whiskers), coloured by group."""
    fig, ax = figure(width_px, height_px)
    k = len(errors.names)
    groups, of = _group_of(errors.part, k)
    data = [errors.error[errors.labelled[:, j], j] for j in range(k)]
    box = ax.boxplot(
        [d if d.size else [np.nan] for d in data],
        whis=(5, 95),
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "black"},
    )
    for j, patch in enumerate(box["boxes"]):
        patch.set_facecolor(_GROUP_COLORS[of[j] % 10])
    many = k > 30
    ax.set_xticks(
        np.arange(1, k + 1), [str(j) if many else n for j, n in enumerate(errors.names)],
        rotation=90, fontsize=6 if many else 8,
    )  # fmt: skip
    handles = [plt.Rectangle((0, 0), 1, 1, color=_GROUP_COLORS[i % 10]) for i in range(len(groups))]
    ax.legend(handles, list(groups), fontsize=8, loc="upper left")
    ax.set_xlabel(f"{_title(errors.part)} keypoint" + (" (index within the part)" if many else ""))
    ax.set_ylabel(f"error / {_title(errors.part)} box side")
    ax.set_title(
        f"{_cap(_title(errors.part))}: error per keypoint on {len(errors)} matched instances "
        "(boxes: quartiles, whiskers: 5th-95th percentile)"
    )
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_pck_by_group(
    errors: PointErrors, max_threshold: float = 0.5, width_px: int = 560, height_px: int = 400
) -> Figure:
    """PCK curves per point group: share of points within a threshold (in part box sides)."""
    fig, ax = figure(width_px, height_px)
    thr = np.linspace(0, max_threshold, 101)
    for i, (name, idx) in enumerate(point_groups(errors.part).items()):
        e = np.sort(errors.error[:, idx][errors.labelled[:, idx]])
        if e.size:
            pck = np.searchsorted(e, thr, side="right") / e.size
            ax.plot(thr, pck, color=_GROUP_COLORS[i % 10], label=f"{name} ({e.size} points)")
    ax.set_xlim(0, max_threshold)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"threshold (error / {_title(errors.part)} box side)")
    ax.set_ylabel("share of points within the threshold (PCK)")
    ax.set_title(f"{_cap(_title(errors.part))}: PCK by point group")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_error_vs_size(
    errors: PointErrors,
    edges: Sequence[float] | None = None,
    width_px: int = 560,
    height_px: int = 400,
) -> Figure:
    """Each instance's mean normalised error against its box side (px), log-log, with the
    size buckets and the median error per bucket."""
    fig, ax = figure(width_px, height_px)
    size, err = errors.size, np.maximum(errors.instance_error, 1e-4)
    ax.scatter(size, err, s=10, alpha=0.5, label="instance")
    if edges is not None:
        e = np.asarray(edges, float)
        for x in e[(e > 0) & np.isfinite(e)]:
            ax.axvline(x, color="grey", ls="--", lw=0.8)
        which = np.searchsorted(e, size, side="right") - 1
        med = [(np.sqrt(max(e[b], size.min()) * min(e[b + 1], size.max())), np.median(err[which == b]))
               for b in range(len(e) - 1) if (which == b).any()]  # fmt: skip
        if med:
            ax.plot(*zip(*med), "o-", color="black", label="median per bucket")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _px_axis(ax.xaxis)
    ax.set_xlabel(f"{_title(errors.part)} box side (px)")
    ax.set_ylabel(f"mean error / {_title(errors.part)} box side")
    ax.set_title(f"{_cap(_title(errors.part))}: error against size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_swaps(swaps: SwapReport, width_px: int = 520, height_px: int = 460) -> Figure:
    """Each checked predicted hand: OKS against its own side (x) and the other side (y)."""
    fig, ax = figure(width_px, height_px)
    ok = ~swaps.swapped
    ax.scatter(swaps.oks_same[ok], swaps.oks_other[ok], s=10, alpha=0.5, label="not swapped")
    ax.scatter(swaps.oks_same[~ok], swaps.oks_other[~ok], s=30, color="#d62728", marker="x",
               label="swapped")  # fmt: skip
    x = np.linspace(0, 1, 2)
    ax.plot(x, x, color="grey", lw=0.8)
    ax.plot(x, x + swaps.margin, color="grey", lw=0.8, ls="--", label=f"+{swaps.margin:g} margin")
    ax.axhline(swaps.min_oks, color="grey", lw=0.8, ls=":", label=f"OKS {swaps.min_oks:g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("OKS against the ground-truth hand of the same side")
    ax.set_ylabel("OKS against the other hand")
    ax.set_title(
        f"Left/right swaps: {int(swaps.swapped.sum())} of {len(swaps)} hands "
        f"({len(swaps.people_swapped())} people with both)"
    )
    ax.legend(fontsize=8, loc="center right")
    return fig


def plot_teacher_student(
    cmp: TeacherComparison, width_px: int = 1100, height_px: int = 440
) -> Figure:
    """Left: teacher error against student error per point, coloured by category; right: the
    share of each category per point group."""
    fig, (ax, bx) = figure(width_px, height_px, ncols=2, width_ratios=(1, 1.3))
    ok = cmp.compared
    floor = 1e-3
    for k, name in enumerate(CATEGORIES):
        sel = ok & (cmp.category == k)
        ax.scatter(np.maximum(cmp.teacher_error[sel], floor), np.maximum(cmp.student_error[sel], floor),
                   s=4, alpha=0.5, color=_CATEGORY_COLORS[k], label=f"{name} ({sel.sum()})")  # fmt: skip
    ax.axvline(cmp.tol, color="grey", lw=0.8, ls="--")
    ax.axhline(cmp.tol, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    unit = f"{_title(cmp.part)} box side"
    ax.set_xlabel(f"teacher error / {unit}")
    ax.set_ylabel(f"student error / {unit}")
    ax.set_title(f"Per point (dashed: tolerance {cmp.tol:g})")
    ax.legend(fontsize=7, markerscale=3, loc="upper left")
    frac = cmp.fractions_by_group()
    names = list(frac)
    left = np.zeros(len(names))
    for k, cat in enumerate(CATEGORIES):
        v = np.nan_to_num(np.array([frac[g][cat] for g in names]))
        bx.barh(names, v, left=left, color=_CATEGORY_COLORS[k], label=cat)
        left += v
    bx.invert_yaxis()
    bx.set_xlim(0, 1)
    bx.set_xlabel("share of compared points")
    bx.set_ylabel("point group")
    bx.set_title("Categories per point group")
    bx.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{_cap(_title(cmp.part))}: teacher (pseudo-labels) against student")
    return fig


def plot_gallery(
    items: Sequence[GalleryItem], per_row: int = 3, title: str = "", panel_px: int = 180
) -> Figure:
    """Pairs of crops (ground truth | prediction), ``per_row`` pairs a row."""
    if not items:
        raise ValueError("plot_gallery needs at least one item")
    rows = -(-len(items) // per_row)
    fig, axes = figure(2 * per_row * panel_px, rows * (panel_px + 48) + 40, ncols=2 * per_row,
                       nrows=rows, squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    for i, it in enumerate(items):
        a, b = axes[i // per_row, 2 * (i % per_row)], axes[i // per_row, 2 * (i % per_row) + 1]
        a.imshow(it.ground_truth)
        b.imshow(it.prediction)
        a.set_title(f"ground truth\nimage {it.image_id}, {_title(it.side)}, {it.size:.0f} px",
                    fontsize=8)  # fmt: skip
        b.set_title(f"prediction\nerror {it.error:.2f}, OKS {it.oks:.2f}", fontsize=8)
    fig.suptitle(title or "Worst instances: ground truth (left) and prediction (right)")
    return fig


def show_analysis(analysis: PartAnalysis) -> list[Figure]:
    """Print the tables of one part's analysis and draw every figure (returned in order)."""
    a = analysis
    name = _title(a.part)
    print(format_breakdown(a.by_size, f"{name} AP by box side (px)"))
    print()
    print(format_breakdown(a.by_occlusion, f"{name} AP by occlusion"))
    print()
    print(format_groups(a.groups, f"{name} error"))
    print(f"({len(a.errors)} matched instances; {a.errors.unpredicted} not predicted, "
          f"{a.errors.too_small} below 1 px left out)")  # fmt: skip
    figs = [
        plot_ap_by_size(a.by_size, a.part),
        plot_ap_by_occlusion(a.by_occlusion, a.part),
        plot_point_errors(a.errors),
        plot_pck_by_group(a.errors),
        plot_error_vs_size(a.errors, a.size_edges),
    ]
    if a.swaps is not None:
        figs.append(plot_swaps(a.swaps))
    if a.teacher is not None:
        print()
        print(format_categories(a.teacher))
        figs.append(plot_teacher_student(a.teacher))
    if a.gallery:
        figs.append(plot_gallery(a.gallery, title=f"Worst {name}: ground truth | prediction"))
    return figs
