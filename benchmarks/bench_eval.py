"""Whole-body evaluation speed: our metric vs xtcocotools, all six parts, same data, same run.

    PYTHONPATH=src python benchmarks/bench_eval.py [--images 5000] [--repeats 3]

Builds the 5,000-image synthetic set of the golden tests (``generate_labels`` + simulated
predictions), checks that both implementations give the same 60 numbers (within 1e-9), times
xtcocotools (in its throw-away numpy<2 venv, ``reference_venv.py``: ``loadRes`` + six
``COCOeval`` evaluate/accumulate/summarize, JSON parsing excluded) and ours (``evaluate`` on the
loaded arrays, validation included; best of ``--repeats`` runs before and as many after the
reference, so that both see the machine's load), and ends with one JSON line:
``{"figure": "wholebody_eval_speedup", "value": ours_s, "reference": xtcocotools_s, "ratio": ...}``
(wall-clock seconds; ``*_cpu`` fields give CPU seconds, steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_golden import SYNTHETIC  # noqa: E402
from reference_venv import reference_python, run_reference  # noqa: E402

from fullbody.annotations import WholeBodySet  # noqa: E402
from fullbody.evaluation.results import Predictions  # noqa: E402
from fullbody.evaluation.simulate import synthetic_case  # noqa: E402
from fullbody.evaluation.wholebody import evaluate  # noqa: E402
from fullbody.jsonio import write_json_atomic  # noqa: E402
from fullbody.utils.machine import machine_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=SYNTHETIC["num_images"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    gt, preds = synthetic_case(**{**SYNTHETIC, "num_images": args.images})
    print(f"{len(gt.images)} images, {len(gt)} people, {len(preds)} predictions", file=sys.stderr)
    line: dict = {"figure": "wholebody_eval_speedup", "images": len(gt.images)}
    line.update(people=len(gt), predictions=len(preds), machine=machine_name())

    def ours() -> tuple[float, float, dict]:
        """Wall and CPU seconds of one evaluation of all six parts, and its numbers."""
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = evaluate(gt, preds)
        return time.perf_counter() - t0, time.process_time() - c0, metrics

    with tempfile.TemporaryDirectory() as tmp:
        gt_file, res_file = Path(tmp) / "gt.json", Path(tmp) / "results.json"
        gt.save(gt_file)
        write_json_atomic(preds.to_json("split"), res_file)
        runs = [ours() for _ in range(args.repeats)]
        t0 = time.perf_counter()
        loaded_gt = WholeBodySet.load(gt_file)
        evaluate(loaded_gt, Predictions.load(res_file, images=loaded_gt.images))
        with_loading = time.perf_counter() - t0

        if reference_python() is None:
            print("xtcocotools reference unavailable: no speed ratio (see above)", file=sys.stderr)
            ref = None
        else:
            ref = run_reference(gt_file, res_file)
        runs += [ours() for _ in range(args.repeats)]  # before and after: same conditions
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    line.update(value=round(wall, 3), value_cpu=round(cpu, 3))
    line.update(value_with_loading=round(with_loading, 3))
    if ref is None:
        line.update(reference=None, ratio=None)
    else:
        metrics = runs[0][2]
        diff = max(abs(metrics[k] - v) for k, v in ref["stats"].items())
        line.update(
            reference=round(ref["seconds"], 3),
            reference_cpu=round(ref["cpu_seconds"], 3),
            reference_with_loading=round(ref["seconds"] + ref["load_seconds"], 3),
            ratio=round(ref["seconds"] / wall, 2),
            ratio_cpu=round(ref["cpu_seconds"] / cpu, 2),
            max_abs_difference=diff,
        )
        if diff > 1e-9:
            print(f"WARNING: results differ from xtcocotools by {diff}", file=sys.stderr)
    line["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
