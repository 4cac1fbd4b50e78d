"""Whole-body evaluation speed as a user sees it: ``python eval.py`` vs xtcocotools, start to exit.

    PYTHONPATH=src python benchmarks/bench_eval.py [--images 5000] [--repeats 3] [--smoke]

Builds the 5,000-image synthetic set of the golden tests (``generate_labels`` + simulated
predictions) as two JSON files, then times whole processes, both sides alike: ours is
``python eval.py ann_file=GT results_file=RESULTS`` (interpreter start, imports, Hydra, JSON
reading and validation, all six parts, the table, ``metrics.json``), the reference is
``xtcocotools_reference.py`` in its throw-away numpy<2 venv (``reference_venv.py``: interpreter
start, imports, ``COCO(GT)``, ``json.load`` of the results, ``loadRes`` and six ``COCOeval``
evaluate/accumulate/summarize). Each side runs ``--repeats`` times, interleaved; the figures
are the best wall-clock and CPU seconds (user + system of the child process). Every one of the
60 numbers must agree within 1e-9, or the benchmark fails (exit 1). Ends with one JSON line:
``{"figure": "wholebody_eval_process_seconds", "value": ours_s, "reference": xtcocotools_s,
"ratio": ..., "value_cpu": ..., "ratio_cpu": ...}`` (CPU ratios are steadier on a shared
machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_golden import SYNTHETIC  # noqa: E402
from reference_venv import REFERENCE_SCRIPT, reference_python  # noqa: E402

from fullbody.evaluation.simulate import synthetic_case  # noqa: E402
from fullbody.jsonio import write_json_atomic  # noqa: E402
from fullbody.utils.machine import machine_name  # noqa: E402

TOLERANCE = 1e-9


def timed_process(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds (the child's user + system) of one process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=SYNTHETIC["num_images"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: 100 images, one repeat, the reference venv only if built")  # fmt: skip
    args = ap.parse_args(argv)
    if args.smoke:
        args.images, args.repeats = 100, 1

    gt, preds = synthetic_case(**{**SYNTHETIC, "num_images": args.images})
    preds.bboxes = None  # results as mmpose writes them: the reference drops any bbox too
    print(f"{len(gt.images)} images, {len(gt)} people, {len(preds)} predictions", file=sys.stderr)
    line: dict = {"figure": "wholebody_eval_process_seconds", "images": len(gt.images)}
    line.update(people=len(gt), predictions=len(preds), repeats=args.repeats)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    python = reference_python(create=not args.smoke)
    ours, refs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        gt_file, res_file = Path(tmp) / "gt.json", Path(tmp) / "results.json"
        gt.save(gt_file)
        write_json_atomic(preds.to_json("split"), res_file)
        metrics_file = Path(tmp) / "metrics.json"
        eval_cmd = [
            sys.executable, str(ROOT / "eval.py"), f"ann_file={gt_file}",
            f"results_file={res_file}", f"metrics_file={metrics_file}",
            f"hydra.run.dir={tmp}/run", "hydra.output_subdir=null",
        ]  # fmt: skip
        ref_cmd = [str(python), str(REFERENCE_SCRIPT), str(gt_file), str(res_file)]
        reference_stats = None
        for _ in range(args.repeats):  # interleaved: both sides see the same load
            ours.append(timed_process(eval_cmd, env)[:2])
            if python is not None:
                wall, cpu, out = timed_process(ref_cmd)
                refs.append((wall, cpu))
                reference_stats = json.loads(out.strip().splitlines()[-1])["stats"]
        metrics = json.loads(metrics_file.read_text())
    wall, cpu = min(r[0] for r in ours), min(r[1] for r in ours)
    line.update(value=round(wall, 3), value_cpu=round(cpu, 3))
    failed = False
    if reference_stats is None:
        print("xtcocotools reference unavailable: no speed ratio (see above)", file=sys.stderr)
        line.update(reference=None, ratio=None, skipped_reference="no xtcocotools venv")
    else:
        ref_wall, ref_cpu = min(r[0] for r in refs), min(r[1] for r in refs)
        diffs = {k: abs(metrics[k] - v) for k, v in reference_stats.items()}
        worst = max(diffs, key=diffs.get)
        line.update(
            reference=round(ref_wall, 3),
            reference_cpu=round(ref_cpu, 3),
            ratio=round(ref_wall / wall, 2),
            ratio_cpu=round(ref_cpu / cpu, 2),
            numbers_compared=len(diffs),
            max_abs_difference=diffs[worst],
        )
        if diffs[worst] > TOLERANCE or len(diffs) != 60:
            failed = True
            print(f"FAIL: {worst} differs from xtcocotools by {diffs[worst]}", file=sys.stderr)
    line["machine"] = machine_name()
    line["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(line))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
