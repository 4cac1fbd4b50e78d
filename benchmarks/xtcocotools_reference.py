"""The reference: COCO-WholeBody AP/AR from xtcocotools, driven the way mmpose drives it.

Runs in a throw-away virtualenv with ``numpy<2`` and ``xtcocotools`` (see
``benchmarks/reference_venv.py``), never in the project's environment:

    /tmp/xtvenv/bin/python benchmarks/xtcocotools_reference.py GT.json RESULTS.json [--sigmas halpe]

It mirrors mmpose's ``CocoWholeBodyMetric._do_python_keypoint_eval``: ``COCO(GT)``, one
``loadRes`` of the results, then one ``COCOeval`` per part with iouType ``keypoints_<part>`` (body,
foot, face, lefthand, righthand, wholebody), that part's sigmas and ``use_area=True``. The results
must be in the split layout (``keypoints`` = 17 body points plus ``foot_kpts``, ...); ``bbox``
fields are dropped first, as mmpose never writes them (``loadRes`` would otherwise take the
detection area from them). Prints one JSON object on stdout: ``{"stats": {"<part>/<stat>": v},
"seconds": evaluation wall time, "cpu_seconds": its CPU time, "load_seconds": JSON loading}``; xtcocotools' own chatter goes
to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from xtcocotools.coco import COCO
from xtcocotools.cocoeval import COCOeval

from fullbody.keypoints import EVAL_PARTS, part_sigmas

STATS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gt")
    ap.add_argument("results")
    ap.add_argument("--sigmas", choices=("official", "halpe"), default="official")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    out: dict[str, float] = {}
    with contextlib.redirect_stdout(sys.stderr):
        t0 = time.perf_counter()
        coco = COCO(args.gt)
        with open(args.results) as f:
            results = json.load(f)
        for r in results:
            r.pop("bbox", None)
        t1 = time.perf_counter()
        c1 = time.process_time()
        coco_det = coco.loadRes(results)
        for part in EVAL_PARTS:
            ev = COCOeval(
                coco,
                coco_det,
                f"keypoints_{part}",
                part_sigmas(part, args.sigmas),
                use_area=True,
            )
            ev.params.useSegm = None
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out.update({f"{part}/{s}": float(v) for s, v in zip(STATS, ev.stats)})
        t2, c2 = time.perf_counter(), time.process_time()
    print(
        json.dumps(
            {"stats": out, "seconds": t2 - t1, "cpu_seconds": c2 - c1, "load_seconds": t1 - t0}
        )
    )


if __name__ == "__main__":
    main()
