"""Per-part AP of several runs side by side: ``sweep_summary.csv``, ``.md`` and ``.png``.

Every run folder of ``train.py`` (``eval.py`` too) holds ``metrics.json`` (the test, else
validation, numbers as ``"<part>/<stat>"``) and ``job.json`` (overrides, status, wall time;
written by :class:`fullbody.utils.hydra_callbacks.RunRecorder` when the job starts and again
when it ends, failed or not). :func:`summarize` reads a set of such folders and writes one row
per run; the Hydra callback calls it at the root of every multirun, and the command line does
the same for any folders (a sweep on SLURM, runs from different days)::

    python -m fullbody.compare outputs/train/multiruns/<time>            # a sweep: its jobs
    python -m fullbody.compare RUN_A RUN_B --out cmp/ --metric wholebody  # any run folders

A failed or killed job is a row that says so (``status`` failed / running, the error), never
a crash of the summary, and a ``metrics.json`` older than its job's start (left by an earlier
run in the same folder) is not read as the job's.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fullbody.jsonio import write_atomic, write_figure, write_json_atomic
from fullbody.keypoints import EVAL_PARTS

JOB_FILE = "job.json"
METRICS_FILE = "metrics.json"
SUMMARY_STEM = "sweep_summary"
#: How ``job.json`` writes the time a job started.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
#: The per-part AP columns of the summary, in :data:`EVAL_PARTS` order.
AP_COLUMNS = tuple(f"{p}/AP" for p in EVAL_PARTS)
COLUMNS = ("job", "overrides", "status", "wall_s", *AP_COLUMNS, "objective", "error", "folder")


@dataclass
class RunRow:
    """One run of a summary: what ran, how it ended, its per-part AP (None where missing)."""

    job: str
    folder: Path
    overrides: list[str] = field(default_factory=list)
    status: str = "unknown"
    wall_s: float | None = None
    ap: dict[str, float | None] = field(default_factory=dict)
    objective: float | None = None
    error: str = ""

    def cells(self) -> dict[str, Any]:
        """The row as CSV cells (empty where unknown)."""
        out: dict[str, Any] = {
            "job": self.job,
            "overrides": " ".join(self.overrides),
            "status": self.status,
            "wall_s": "" if self.wall_s is None else f"{self.wall_s:.1f}",
            "objective": "" if self.objective is None else f"{self.objective:.4f}",
            "error": self.error,
            "folder": str(self.folder),
        }
        for col in AP_COLUMNS:
            v = self.ap.get(col)
            out[col] = "" if v is None else f"{v:.4f}"
        return out


def _read(path: Path) -> tuple[Any, str]:
    """JSON content of ``path`` and "" or (None, why it could not be read)."""
    try:
        return json.loads(path.read_text()), ""
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as e:
        return None, f"{path.name} unreadable: {e}"


def _hydra_overrides(folder: Path) -> list[str]:
    """The task overrides Hydra saved in ``.hydra/overrides.yaml`` (a YAML list of strings)."""
    path = folder / ".hydra" / "overrides.yaml"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [ln[2:].strip().strip("'\"") for ln in lines if ln.startswith("- ")]


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (whitespace runs folded), cut at ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def started_at(info: dict[str, Any]) -> float | None:
    """The Unix time at which the job of ``job.json`` content ``info`` started (to the second),
    or None when it does not say."""
    try:
        return datetime.strptime(str(info["started"]), TIME_FORMAT).timestamp()
    except (KeyError, ValueError):
        return None


def _stale(path: Path, started: float | None) -> bool:
    """Whether ``path`` was last written before its job started (an earlier run's file)."""
    try:
        return started is not None and path.stat().st_mtime < started
    except OSError:
        return False


def read_run(folder: str | os.PathLike, job: str | None = None) -> RunRow:
    """What one run folder says about its run (never raises on missing or corrupt files)."""
    folder = Path(folder)
    row = RunRow(job=job if job is not None else folder.name, folder=folder)
    info, problem = _read(folder / JOB_FILE)
    errors = [problem] if problem else []
    started = started_at(info) if isinstance(info, dict) else None
    if isinstance(info, dict):
        row.overrides = [str(o) for o in info.get("overrides") or []]
        row.status = str(info.get("status", "unknown"))
        wall = info.get("wall_s")
        row.wall_s = float(wall) if isinstance(wall, int | float) else None
        objective = info.get("objective")
        row.objective = float(objective) if isinstance(objective, int | float) else None
        if info.get("error"):
            errors.append(str(info["error"]))
    else:
        row.overrides = _hydra_overrides(folder)
    metrics, problem = _read(folder / METRICS_FILE)
    if problem:
        errors.append(problem)
    stale = metrics is not None and _stale(folder / METRICS_FILE, started)
    if stale:
        metrics = None
        errors.append(f"{METRICS_FILE} is older than the job (an earlier run's), not read")
    if isinstance(metrics, dict):
        for col in AP_COLUMNS:
            v = metrics.get(col)
            ok = isinstance(v, int | float) and math.isfinite(v) and v >= 0  # -1: no labels
            row.ap[col] = float(v) if ok else None
        if row.status == "unknown":
            row.status = "completed"
    elif row.status == "completed" and not stale:
        errors.append(f"no {METRICS_FILE}")
    row.error = "; ".join(_one_line(e) for e in errors if e)
    return row


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like one run (its own job/metrics/Hydra files)."""
    return any((folder / name).exists() for name in (JOB_FILE, METRICS_FILE, ".hydra"))


def find_runs(paths: Sequence[str | os.PathLike]) -> list[tuple[str, Path]]:
    """(job name, folder) of every run in ``paths``: a run folder is itself, a sweep folder
    stands for its job folders (in job-number order). Raises FileNotFoundError naming a path
    that does not exist or holds no run."""
    out: list[tuple[str, Path]] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: not a folder (give run folders or sweep folders)")
        if is_run_folder(p) and not (p / "multirun.yaml").exists():
            out.append((p.name, p))
            continue
        jobs = [c for c in p.iterdir() if c.is_dir() and is_run_folder(c)]
        if not jobs:
            raise FileNotFoundError(f"{p}: no run folder in it ({JOB_FILE} or {METRICS_FILE})")
        jobs.sort(key=lambda c: (not c.name.isdigit(), int(c.name) if c.name.isdigit() else 0,
                                 c.name))  # fmt: skip
        prefix = f"{p.name}/" if len(paths) > 1 else ""
        out += [(f"{prefix}{c.name}", c) for c in jobs]
    return out


def to_csv(rows: Sequence[RunRow]) -> str:
    """The summary as CSV text (header :data:`COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.cells())
    return buf.getvalue()


def _best(rows: Sequence[RunRow], col: str) -> float | None:
    values = [r.ap[col] for r in rows if r.ap.get(col) is not None]
    return max(values) if values else None  # type: ignore[type-var]


def varying_overrides(rows: Sequence[RunRow]) -> tuple[list[str], list[list[str]]]:
    """The overrides every row shares, and per row the ones that tell it from the others."""
    if not rows:
        return [], []
    common = [o for o in rows[0].overrides if all(o in r.overrides for r in rows[1:])]
    return common, [[o for o in r.overrides if o not in common] for r in rows]


def to_markdown(rows: Sequence[RunRow], metric: str = "wholebody") -> str:
    """A Markdown table (AP per part, the best of each column in bold) to paste into docs;
    overrides shared by every run are listed once above it."""
    head = ["job", "overrides", "status", "wall (s)", *EVAL_PARTS]
    common, own = varying_overrides(rows)
    lines = [f"Common overrides: {' '.join(f'`{o}`' for o in common)}", ""] if common else []
    lines += [
        "| " + " | ".join(f"**{h}**" if h == metric else h for h in head) + " |",
        "|" + "---|" * 4 + "---:|" * len(EVAL_PARTS),
    ]
    best = {col: _best(rows, col) for col in AP_COLUMNS}
    for r, mine in zip(rows, own):
        status = r.status if not r.error else f"{r.status}: {r.error}"
        cells = [r.job, " ".join(f"`{o}`" for o in mine) or "(defaults)",
                 status.replace("|", "/"), "" if r.wall_s is None else f"{r.wall_s:.0f}"]  # fmt: skip
        for col in AP_COLUMNS:
            v = r.ap.get(col)
            text = "–" if v is None else f"{v:.3f}"
            cells.append(f"**{text}**" if v is not None and v == best[col] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Override keys that repeat a variant rather than define one (:func:`variants`).
REPEAT_KEYS = ("seed",)


@dataclass
class Variant:
    """The runs of a sweep that differ only in a repeat key (the seed): their AP mean and spread."""

    overrides: list[str]
    jobs: list[str]
    mean: dict[str, float | None]
    spread: dict[str, float | None]  # sample standard deviation (None below 2 runs)


def variants(rows: Sequence[RunRow], repeat_keys: Sequence[str] = REPEAT_KEYS) -> list[Variant]:
    """Group completed runs by their overrides without the repeat keys (``seed=...``), in the
    order each variant first appears: per AP column the mean and the sample standard deviation
    over the runs that have it."""

    def defining(overrides: list[str]) -> tuple[str, ...]:
        return tuple(o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in repeat_keys)

    _, own = varying_overrides(rows)
    done = [(r, mine) for r, mine in zip(rows, own) if r.status == "completed" and r.ap]
    # One variant so far (a sweep under way): name it by all its overrides, not by none.
    single = len({defining(mine) for _, mine in done}) == 1
    groups: dict[tuple[str, ...], list[RunRow]] = {}
    for r, mine in done:
        groups.setdefault(defining(r.overrides if single else mine), []).append(r)
    out = []
    for key, members in groups.items():
        mean: dict[str, float | None] = {}
        spread: dict[str, float | None] = {}
        for col in AP_COLUMNS:
            vals = [m.ap[col] for m in members if m.ap.get(col) is not None]
            mean[col] = sum(vals) / len(vals) if vals else None  # type: ignore[arg-type]
            spread[col] = (
                math.sqrt(sum((v - mean[col]) ** 2 for v in vals) / (len(vals) - 1))  # type: ignore[operator]
                if len(vals) > 1
                else None
            )
        out.append(Variant(list(key), [m.job for m in members], mean, spread))
    return out


def variants_csv(groups: Sequence[Variant]) -> str:
    """:func:`variants` as CSV: overrides, runs, jobs, then ``<part>/AP`` mean and ``_sd``."""
    buf = io.StringIO()
    cols = ["overrides", "runs", "jobs"]
    for col in AP_COLUMNS:
        cols += [col, f"{col}_sd"]
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for g in groups:
        row: dict[str, Any] = {"overrides": " ".join(g.overrides), "runs": len(g.jobs),
                               "jobs": " ".join(g.jobs)}  # fmt: skip
        for col in AP_COLUMNS:
            row[col] = "" if g.mean[col] is None else f"{g.mean[col]:.4f}"
            row[f"{col}_sd"] = "" if g.spread[col] is None else f"{g.spread[col]:.4f}"
        writer.writerow(row)
    return buf.getvalue()


def variants_markdown(groups: Sequence[Variant]) -> str:
    """:func:`variants` as a Markdown table of ``mean ± sd`` per part."""
    lines = [
        "| variant | runs | " + " | ".join(EVAL_PARTS) + " |",
        "|---|---:|" + "---:|" * len(EVAL_PARTS),
    ]
    for g in groups:
        cells = [" ".join(f"`{o}`" for o in g.overrides) or "(defaults)", str(len(g.jobs))]
        for col in AP_COLUMNS:
            m, sd = g.mean[col], g.spread[col]
            cells.append("–" if m is None else f"{m:.3f}" + ("" if sd is None else f" ± {sd:.3f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[RunRow], metric: str = "wholebody", title: str = "") -> Any:
    """Grouped bars: per job, one bar per part (AP); ``metric``'s bars outlined and opaque."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * n + 2), 4.5), dpi=100, layout="constrained")
    width = 0.8 / len(EVAL_PARTS)
    colours = plt.get_cmap("tab10")
    for k, part in enumerate(EVAL_PARTS):
        col = f"{part}/AP"
        xs = [i + (k - (len(EVAL_PARTS) - 1) / 2) * width for i in range(len(rows))]
        ys = [r.ap.get(col) or 0.0 for r in rows]
        chosen = part == metric
        ax.bar(xs, ys, width, color=colours(k), label=f"{part} (optimised)" if chosen else part,
               alpha=1.0 if chosen else 0.55, edgecolor="black" if chosen else "none",
               linewidth=1.5 if chosen else 0)  # fmt: skip
        if chosen:
            for x, y, r in zip(xs, ys, rows):
                if r.ap.get(col) is not None:
                    ax.text(x, y + 0.01, f"{y:.3f}", ha="center", va="bottom", fontsize=7)
    for i, r in enumerate(rows):
        if r.status != "completed" or not r.ap:
            ax.text(i, 0.02, r.status, ha="center", va="bottom", rotation=90, color="red")
    _, own = varying_overrides(rows)
    labels = ["\n".join([r.job, *mine]) for r, mine in zip(rows, own)]
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel("AP")
    ax.set_ylim(0, 1.05)
    ax.set_title(title or "AP per part", fontsize=10)
    fig.legend(fontsize=7, ncols=len(EVAL_PARTS), loc="outside lower center")
    return fig


def write_summary(
    rows: Sequence[RunRow], out_dir: str | os.PathLike, metric: str = "wholebody", title: str = ""
) -> list[Path]:
    """Write ``sweep_summary.csv``, ``.md`` and ``.png`` into ``out_dir`` (each atomically);
    when runs repeat a variant over seeds, also ``sweep_summary_variants.csv`` (mean and
    spread per variant, :func:`variants`), and the Markdown shows both tables."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    markdown = to_markdown(rows, metric)
    groups = variants(rows)
    if any(len(g.jobs) > 1 for g in groups):
        markdown = (
            f"Per variant, mean ± sample standard deviation over its seeds:\n\n"
            f"{variants_markdown(groups)}\nPer run:\n\n{markdown}"
        )
        paths.append(write_atomic(variants_csv(groups), out / f"{SUMMARY_STEM}_variants.csv"))
    for suffix, text in ((".csv", to_csv(rows)), (".md", markdown)):
        paths.append(write_atomic(text, out / f"{SUMMARY_STEM}{suffix}"))
    return [*paths, write_figure(plot(rows, metric, title), out / f"{SUMMARY_STEM}.png")]


def metric_part(optimized_metric: str | None) -> str:
    """The part of an optimised metric name (``val/wholebody/AP`` -> ``wholebody``)."""
    for piece in (optimized_metric or "").split("/"):
        if piece in EVAL_PARTS:
            return piece
    return "wholebody"


def summarize(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    metric: str = "wholebody",
    title: str = "",
) -> list[Path]:
    """Read the runs in ``paths`` (run or sweep folders) and write the summary into ``out_dir``."""
    rows = [read_run(folder, job) for job, folder in find_runs(paths)]
    return write_summary(rows, out_dir, metric, title)


def write_job_file(folder: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write a run's ``job.json`` (status, overrides, wall time, error) atomically."""
    return write_json_atomic(info, Path(folder) / JOB_FILE)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fullbody.compare RUN... [--out DIR] [--metric PART]``."""
    parser = argparse.ArgumentParser(prog="python -m fullbody.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("runs", nargs="+", help="run folders, or sweep folders (all their jobs)")
    parser.add_argument("--out", help="where to write sweep_summary.* (default: the one sweep "
                        "folder given, else the current folder)")  # fmt: skip
    parser.add_argument("--metric", default="wholebody", choices=EVAL_PARTS,
                        help="the part to highlight (default: wholebody)")  # fmt: skip
    args = parser.parse_args(argv)
    out = args.out
    if out is None:
        out = args.runs[0] if len(args.runs) == 1 and not is_run_folder(Path(args.runs[0])) else "."
    try:
        paths = summarize(args.runs, out, args.metric)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write the summary into {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
