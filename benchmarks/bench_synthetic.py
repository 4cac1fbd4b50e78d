"""Synthetic data speed: images per second on one core, JPEG writing included.

Generates ``--images`` scenes (default 200) into a temporary folder with one worker process and
OpenCV/torch pinned to one thread, and compares the rate with the required 50 images/s/core.
The figure is images per CPU-second of the (single-threaded) process, i.e. per core: on a shared
machine the wall-clock rate also counts time spent waiting for a core, and is reported beside
it. Also times :func:`generate_labels` (labels without drawing). The last line printed is the
JSON figure.

    PYTHONPATH=src python benchmarks/bench_synthetic.py [--images 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2

from fullbody.synthetic import generate, generate_labels
from fullbody.utils.machine import machine_name

REQUIRED_IMAGES_PER_S = 50.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--smoke", action="store_true", help="seconds: 8 images, one run")
    args = ap.parse_args(argv)
    if args.smoke:
        args.images, args.repeats = 8, 1
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    wall, cpu = [], []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            generate(tmp, args.images, seed=r, progress=False)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    c0 = time.process_time()
    labels = generate_labels(args.images, seed=0)
    label_s = time.process_time() - c0

    value = args.images / min(cpu)
    print(f"generate: {args.images} images, best of {args.repeats}: {min(cpu):.2f} s CPU "
          f"({min(wall):.2f} s wall) -> {value:.1f} images/s on one core")  # fmt: skip
    print(f"generate_labels: {args.images} images ({len(labels)} people) in {label_s:.2f} s CPU "
          f"-> {args.images / label_s:.0f} images/s")  # fmt: skip
    print(json.dumps({
        "figure": "synthetic_images_per_s_per_core",
        "value": round(value, 1),
        "reference": REQUIRED_IMAGES_PER_S,
        "ratio": round(value / REQUIRED_IMAGES_PER_S, 2),
        "images": args.images,
        "wall_images_per_s": round(args.images / min(wall), 1),
        "label_images_per_s": round(args.images / label_s, 1),
        "machine": machine_name(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
