"""The reference: rtmlib's ``RTMPose`` on a SimCC ONNX file, people per CPU second on one core.

Runs in the rtmlib virtualenv (see ``benchmarks/reference_venv.py``), never in the project's
environment:

    /tmp/rtmlibvenv/bin/python benchmarks/rtmlib_reference.py MODEL.onnx JOBS.json \\
        --input-size 192,256 [--people 256] [--repeats 1]

``JOBS.json`` is ``{"images": [path, ...], "boxes": [[[x, y, w, h], ...], ...]}``: the
images, read once with ``cv2.imread`` (BGR, as rtmlib's users read them), and each image's
person boxes, given to ``RTMPose(image, bboxes)`` as rtmlib wants them (x1, y1, x2, y2). rtmlib
0.0.16's own path then runs per person: ``bbox_xyxy2cs`` (x1.25), ``top_down_affine``,
``(img - mean) / std``, one ``session.run`` per crop, ``get_simcc_maximum``. The only change
to rtmlib: its onnxruntime session, made with onnxruntime's default thread count (every core),
is remade from the same file with one intra-op thread, as the project's side runs; with
``OMP_NUM_THREADS=1`` and ``cv2.setNumThreads(1)`` the process computes on one core. A timed
repeat runs over the images until ``--people`` people are done, after one warm-up pass. Prints
one JSON object on stdout: ``{"people_per_s": [per repeat, per CPU second], "people": people
per pass over the images}``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from rtmlib import RTMPose


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("jobs")
    ap.add_argument("--input-size", required=True, help="W,H as rtmlib's model_input_size")
    ap.add_argument("--people", type=int, default=256, help="people per timed repeat")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    w, h = (int(v) for v in args.input_size.split(","))
    with contextlib.redirect_stdout(sys.stderr):  # rtmlib prints what it loaded
        pose = RTMPose(args.model, model_input_size=(w, h), backend="onnxruntime", device="cpu")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    pose.session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])

    jobs = json.loads(Path(args.jobs).read_text())
    work = []
    for path, boxes in zip(jobs["images"], jobs["boxes"]):
        image = cv2.imread(path)
        if image is None:
            raise SystemExit(f"error: {path}: cv2.imread cannot read it")
        xywh = np.asarray(boxes, np.float64).reshape(-1, 4)
        work.append((image, np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)))
    per_pass = sum(len(b) for _, b in work)

    def one_pass() -> int:
        done = 0
        for image, boxes in work:
            keypoints, _ = pose(image, boxes)
            done += len(keypoints)
        return done

    if one_pass() != per_pass:  # warm-up, and the check that every box gave one pose
        raise SystemExit(f"error: rtmlib returned other than {per_pass} poses a pass")
    rates = []
    for _ in range(args.repeats):
        done, t0 = 0, time.process_time()
        while done < args.people:
            done += one_pass()
        rates.append(done / (time.process_time() - t0))
    print(json.dumps({
        "people_per_s": rates, "people": per_pass, "rtmlib": importlib.metadata.version("rtmlib"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
