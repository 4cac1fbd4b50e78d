"""The learning curve of a run: AP per part against wall-clock minutes and optimiser steps.

Reads the ``val_history.jsonl`` that :class:`fullbody.evaluation.callback.WholeBodyEvaluator`
appends at every validation (``history_file``) and draws one line per part.
:class:`LearningCurve` (a default callback of ``train.py``) redraws ``learning_curve.png`` in the
run folder after every validation and logs it to W&B; for any run folder:
``python -m fullbody.analysis.curve <run folder> -o docs/img/learning_curve.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from matplotlib.figure import Figure

from fullbody.analysis.plots import figure
from fullbody.jsonio import write_figure
from fullbody.keypoints import EVAL_PARTS
from fullbody.utils.wandb_logging import log_learning_curve

HISTORY_FILE = "val_history.jsonl"
CURVE_FILE = "learning_curve.png"

log = logging.getLogger(__name__)


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
    width_px: int = 1100,
    height_px: int = 420,
) -> Figure:
    """AP of each part (one line each) against the wall-clock minutes of the validations (left)
    and against the optimiser step (right)."""
    fig, axes = figure(width_px, height_px, ncols=2, sharey=True)
    for ax, key, label in ((axes[0], "wall_min", "wall-clock minutes of training"),
                           (axes[1], "step", "optimiser step")):  # fmt: skip
        x = [float(r[key]) for r in rows]
        for part in parts:
            y = [float(r["metrics"].get(f"{part}/AP", float("nan"))) for r in rows]
            ax.plot(x, y, marker="o", lw=2.2 if part == "wholebody" else 1.3, label=part)
        ax.set_xlabel(label)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("AP (held-out validation scenes)")
    axes[0].legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def write_learning_curve(rows: Sequence[dict], out: str | Path, title: str = "") -> Path:
    """Draw :func:`plot_learning_curve` of ``rows`` into the PNG ``out`` (atomically)."""
    return write_figure(plot_learning_curve(rows, title=title), out)


class LearningCurve(L.Callback):
    """After every validation, redraw ``learning_curve.png`` from the validation history and
    log it to W&B, with the six per-part AP lines against the step as one chart
    (:func:`fullbody.utils.wandb_logging.log_learning_curve`). The history is the
    ``history_file`` of the run's :class:`~fullbody.evaluation.callback.WholeBodyEvaluator`;
    without one, nothing is drawn (a warning says so once).

    Args:
        out_file: the PNG (``<run folder>/learning_curve.png`` in the default callbacks).
    """

    def __init__(self, out_file: str | Path) -> None:
        self.out_file = Path(out_file)
        self._warned = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        history = self._history_file(trainer)
        if history is None or not history.is_file():
            if not self._warned:
                log.warning("no %s: the learning curve needs the evaluation callback with its "
                            "history_file (callbacks.evaluation.history_file)", CURVE_FILE)  # fmt: skip
                self._warned = True
            return
        rows = read_history(history)
        if rows:
            png = write_learning_curve(rows, self.out_file)
            log_learning_curve(trainer.loggers, rows, png)

    @staticmethod
    def _history_file(trainer: L.Trainer) -> Path | None:
        from fullbody.evaluation.callback import WholeBodyEvaluator

        for cb in trainer.callbacks:
            if isinstance(cb, WholeBodyEvaluator) and cb.history_file is not None:
                return cb.history_file
        return None


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
    out = write_learning_curve(rows, args.out, args.title)
    print(f"{out}: {len(rows)} validations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
