"""The learning curve of a run: AP per part against wall-clock minutes.

Reads the ``val_history.jsonl`` that :class:`fullbody.evaluation.callback.WholeBodyEvaluator`
appends at every validation (``history_file``) and draws one line per part.
``python -m fullbody.analysis.curve <run folder> -o docs/img/learning_curve.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from fullbody.analysis.plots import figure
from fullbody.jsonio import write_atomic
from fullbody.keypoints import EVAL_PARTS

HISTORY_FILE = "val_history.jsonl"


def read_history(path: str | Path) -> list[dict]:
    """Rows of a run's validation history (a run folder or the JSON-lines file itself)."""
    file = Path(path)
    if file.is_dir():
        file = file / HISTORY_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no validation history (run trained before it existed?)")
    rows = []
    for n, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            float(row["wall_min"]), dict(row["metrics"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{file}:{n}: not a validation history row ({e})") from None
        rows.append(row)
    return rows


def plot_learning_curve(
    rows: Sequence[dict],
    parts: Sequence[str] = EVAL_PARTS,
    title: str = "",
    width_px: int = 760,
    height_px: int = 420,
) -> Figure:
    """AP of each part (one line each) against the wall-clock minutes of the validations."""
    fig, ax = figure(width_px, height_px)
    x = [float(r["wall_min"]) for r in rows]
    for part in parts:
        y = [float(r["metrics"].get(f"{part}/AP", float("nan"))) for r in rows]
        ax.plot(x, y, marker="o", lw=2.2 if part == "wholebody" else 1.3, label=part)
    ax.set_xlabel("wall-clock minutes of training")
    ax.set_ylabel("AP (held-out validation scenes)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: draw a run's learning curve into a PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder (or its val_history.jsonl)")
    parser.add_argument("-o", "--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        rows = read_history(args.run)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fig = plot_learning_curve(rows, title=args.title)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    out = write_atomic(png.getvalue(), args.out)
    print(f"{out}: {len(rows)} validations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
