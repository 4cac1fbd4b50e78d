"""Run time of the hand error-analysis notebook on its built-in default (target: < 3 min on 2
CPU cores), against a reference measured in the same run: a notebook that only starts a kernel
and imports what the analysis imports.

    PYTHONPATH=src python benchmarks/bench_notebook.py [--repeats 1]

The notebook runs cold (a fresh cache folder: the 60 synthetic images are drawn too), in a kernel
of this interpreter, exactly as ``tests/test_notebooks.py`` runs it. Ends with one JSON line:
``{"figure": "hand_notebook_seconds", "value": notebook_s, "reference": kernel_and_imports_s,
"ratio": ..., "value_cpu": ..., "target": 180, ...}`` (wall-clock seconds; ``*_cpu`` fields give the
kernel's CPU seconds, steadier on a shared machine). The analysis is CPU-only: ``--device`` is not
an option.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fullbody.notebooks import execute_notebook  # noqa: E402
from fullbody.utils.machine import machine_name  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "hand_error_analysis.ipynb"
TARGET_S = 180.0
_IMPORTS = """%matplotlib inline
import matplotlib.pyplot as plt
from fullbody.analysis import plots
from fullbody.analysis.report import analyse_part
from fullbody.evaluation import evaluate"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(path: Path, params: dict) -> tuple[float, float]:
    """Wall and CPU seconds (the kernel's, reaped when it shuts down) of one execution."""
    t0, c0 = time.perf_counter(), _children_cpu()
    execute_notebook(path, params, pythonpath=[ROOT / "src"])
    return time.perf_counter() - t0, _children_cpu() - c0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: the notebook on 8 built-in images, galleries of 2")  # fmt: skip
    args = ap.parse_args(argv)
    smoke = {"NUM_IMAGES": 8, "N_WORST": 2} if args.smoke else {}
    with tempfile.TemporaryDirectory() as tmp:
        ref_nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell("", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(_IMPORTS),
            ],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        )
        ref_path = Path(tmp) / "reference.ipynb"
        nbformat.write(ref_nb, ref_path)
        runs, refs = [], []
        for i in range(args.repeats):
            refs.append(_timed(ref_path, {}))
            cache = Path(tmp) / f"cache{i}"  # cold: the synthetic images are drawn each time
            runs.append(_timed(NOTEBOOK, {"CACHE_DIR": str(cache), **smoke}))
            print(f"run {i}: notebook {runs[-1][0]:.1f} s, reference {refs[-1][0]:.1f} s",
                  file=sys.stderr)  # fmt: skip
        refs.append(_timed(ref_path, {}))  # after as well: both see the machine's load
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    ref_wall, ref_cpu = min(r[0] for r in refs), min(r[1] for r in refs)
    line = {
        "figure": "hand_notebook_seconds",
        "value": round(wall, 2),
        "reference": round(ref_wall, 2),
        "ratio": round(wall / ref_wall, 2),
        "value_cpu": round(cpu, 2),
        "reference_cpu": round(ref_cpu, 2),
        "target": TARGET_S,
        "within_target": wall < TARGET_S,
        "smoke": args.smoke,
        "machine": machine_name(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
