"""Inference speed per CPU core: people/s of our top-down predictor against rtmlib's ``RTMPose``
and against the network alone, on the same SimCC ONNX file, images and boxes.

    PYTHONPATH=src python benchmarks/bench_infer.py [--people 256] [--repeats 5] [--smoke]

* model: a 256x192 SimCC network of this project (the default student of
  ``conf/model/default.yaml`` with ``model.head=simcc``; random weights, which speed does not
  depend on), written by ``fullbody.inference.export.export_onnx``; both sides load this file.
* images and boxes: the shared COCO-WholeBody sample's images with the boxes of its detection
  file (score >= 0.3), or, without the sample, generated 640x480 images with 8 random boxes
  each. Images are decoded before timing (both sides); nobody detects.
* ours: the one-call API, ``Wholebody(model=FILE, detector=None, threads=1, flip_test=False,
  nms="none")(image, boxes)`` (rtmlib has neither flip test nor NMS), on the BGR image as cv2
  reads it: to RGB, crop and normalise every person, one network call for the image's people,
  SimCC sub-bin decoding, back to image pixels, keypoint and person scores.
* rtmlib: rtmlib 0.0.16's ``RTMPose`` in its own venv (``benchmarks/rtmlib_reference.py``,
  ``benchmarks/reference_venv.py``; built on first use, ``--no-rtmlib`` skips it): one crop
  per network call, arg-max decoding, on the BGR image as its users read it; its onnxruntime
  session remade with one intra-op thread.
* network: the same onnxruntime session as ours on our crops, no pre- or post-processing,
  both in our batches (one call per image) and one crop per call: the limit.

Every figure is people per second of the process's CPU time, one thread (``OMP_NUM_THREADS=1``,
OpenCV and PyTorch 1 thread, onnxruntime intra-op 1): per-core throughput, little affected by
other processes competing for the cores. Repeats are interleaved so that load changes hit every
side alike; the medians are reported. The last line is one JSON object: ``ratio_rtmlib`` (ours
/ rtmlib) and ``ratio_network`` (ours / the faster of the two network-alone figures).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# One thread everywhere, before numpy, PyTorch or onnxruntime start their thread pools; the
# rtmlib process inherits it.
os.environ["OMP_NUM_THREADS"] = "1"

import cv2
import numpy as np
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_venv import RTMLIB_SCRIPT, rtmlib_python

from fullbody.codecs.spec import TopDownSpec
from fullbody.images import read_image
from fullbody.inference.export import export_onnx
from fullbody.inference.wholebody import Wholebody
from fullbody.models.network import PoseNet
from fullbody.utils.machine import cpu_name
from fullbody.utils.sample import SAMPLE_ANNOTATIONS, sample_available, sample_dir

ROOT = Path(__file__).resolve().parents[1]
Job = tuple[Path, np.ndarray]  # an image file and its (n, 4) xywh person boxes


def simcc_onnx(path: Path, input_size: tuple[int, int]) -> Path:
    """The default student with the SimCC head (random weights), exported to ``path``."""
    cfg = OmegaConf.load(ROOT / "conf" / "model" / "default.yaml")
    block = {**OmegaConf.to_container(cfg.spec), "input_size": input_size, "kind": "simcc"}
    spec = TopDownSpec.from_dict(block)
    torch.manual_seed(0)
    net = PoseNet(
        backbone=cfg.backbone,
        head="simcc",
        head_channels=cfg.head_channels,
        final_kernel=cfg.final_kernel,
        backbone_kwargs=OmegaConf.to_container(cfg.backbone_kwargs),
        input_size=spec.input_size,
        split_ratio=spec.split_ratio,
    )
    return export_onnx(net, path, spec, metadata={"head": "simcc"})


def sample_jobs(limit: int | None) -> list[Job]:
    """The sample's images with their detection-file boxes (score >= 0.3), those with any."""
    folder = sample_dir()
    images = json.loads((folder / SAMPLE_ANNOTATIONS).read_text())["images"]
    dets = json.loads((folder / "annotations" / "person_detections.json").read_text())
    jobs = []
    for record in images:
        boxes = [d["bbox"] for d in dets if d["image_id"] == record["id"] and d["score"] >= 0.3]
        if boxes:
            jobs.append((folder / "images" / record["file_name"], np.array(boxes, np.float64)))
    return jobs[:limit]


def generated_jobs(folder: Path, n: int) -> list[Job]:
    """``n`` smooth random 640x480 PNG images, 8 random boxes each (seeded)."""
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(n):
        noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        path = folder / f"image_{i}.png"
        cv2.imwrite(str(path), cv2.GaussianBlur(noise, (0, 0), 3))
        xy = rng.uniform((0, 0), (560, 320), (8, 2))
        wh = rng.uniform((20, 60), (160, 320), (8, 2))
        jobs.append((path, np.concatenate([xy, wh], 1)))
    return jobs


def timed(one_pass: Callable[[], int], people: int) -> float:
    """People per CPU second of passes over the images until ``people`` are done."""
    done, t0 = 0, time.process_time()
    while done < people:
        done += one_pass()
    return done / (time.process_time() - t0)


def run_rtmlib(
    python: Path, model: Path, jobs_file: Path, input_size: tuple[int, int], people: int
) -> float:
    """rtmlib's people per CPU second in its venv (one repeat, after its own warm-up)."""
    h, w = input_size
    cmd = [str(python), str(RTMLIB_SCRIPT), str(model), str(jobs_file),
           "--input-size", f"{w},{h}", "--people", str(people)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"rtmlib reference failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["people_per_s"][0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=256, help="people per timed repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32, help="our people per network call")
    ap.add_argument("--generated", action="store_true", help="generated images, not the sample")
    ap.add_argument("--no-rtmlib", action="store_true", help="skip rtmlib")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: 128x96 input, one image, one pass, one repeat; the rtmlib "
                         "venv only if already built")  # fmt: skip
    args = ap.parse_args(argv)
    input_size = (128, 96) if args.smoke else (256, 192)
    if args.smoke:
        args.people, args.repeats = 1, 1
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rtmlib = None if args.no_rtmlib else rtmlib_python(create=not args.smoke)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = simcc_onnx(tmp / "simcc.onnx", input_size)
        use_sample = sample_available() and not args.generated
        jobs = sample_jobs(1 if args.smoke else None) if use_sample else []
        if not jobs:
            use_sample = False
            jobs = generated_jobs(tmp, 1 if args.smoke else 4)
        jobs_file = tmp / "jobs.json"
        jobs_file.write_text(json.dumps({
            "images": [str(p) for p, _ in jobs], "boxes": [b.tolist() for _, b in jobs],
        }))  # fmt: skip
        per_pass = sum(len(b) for _, b in jobs)

        api = Wholebody(model=model, detector=None, device="cpu", threads=1, flip_test=False,
                        nms="none", batch_size=args.batch_size)  # fmt: skip
        pred = api.predictor
        session, name = pred.model.session, pred.model.input_name
        work = [(cv2.imread(str(p)), b) for p, b in jobs]  # BGR, as users and rtmlib read them
        crops = [pred.crops(read_image(p), boxes)[0] for p, boxes in jobs]

        def ours() -> int:
            return sum(len(api(image, boxes)[0]) for image, boxes in work)

        def network() -> int:  # the calls ours makes
            for c in crops:
                for i in range(0, len(c), args.batch_size):
                    session.run(None, {name: c[i : i + args.batch_size]})
            return per_pass

        def network_b1() -> int:  # one crop per call, as rtmlib
            for c in crops:
                for i in range(len(c)):
                    session.run(None, {name: c[i : i + 1]})
            return per_pass

        if ours() != per_pass:
            raise RuntimeError(f"Wholebody returned other than {per_pass} poses a pass")
        runs = {
            "ours": lambda: timed(ours, args.people),
            "network": lambda: timed(network, args.people),
            "network_b1": lambda: timed(network_b1, args.people),
        }
        if rtmlib is not None:
            runs["rtmlib"] = lambda: run_rtmlib(rtmlib, model, jobs_file, input_size, args.people)
        for key in ("ours", "network", "network_b1"):  # warm-up (rtmlib's is in its process)
            runs[key]()
        results: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):  # interleaved, so that load changes hit all alike
            for key, run in runs.items():
                results[key].append(run())

    for key, rates in results.items():
        print(f"{key:>11}: " + " ".join(f"{r:6.1f}" for r in rates) + " people/s per core")
    med = {k: statistics.median(v) for k, v in results.items()}
    limit = max(med["network"], med["network_b1"])
    out = {
        "figure": f"people/s per CPU core, {input_size[0]}x{input_size[1]} SimCC ONNX, "
        "the one-call API Wholebody (no flip test, no NMS)",
        "value": round(med["ours"], 1),
        "reference": round(med["rtmlib"], 1) if "rtmlib" in med else None,
        "ratio_rtmlib": round(med["ours"] / med["rtmlib"], 3) if "rtmlib" in med else None,
        "network": round(med["network"], 1),
        "network_b1": round(med["network_b1"], 1),
        "ratio_network": round(med["ours"] / limit, 3),
        "runs": {k: [round(r, 1) for r in v] for k, v in results.items()},
        "data": "shared sample, detection-file boxes" if use_sample else "generated",
        "images": len(jobs),
        "people_per_pass": per_pass,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "onnxruntime": importlib.metadata.version("onnxruntime"),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "threads": 1,
    }
    if rtmlib is None:
        why = "--no-rtmlib" if args.no_rtmlib else "no rtmlib venv (benchmarks/reference_venv.py)"
        out["rtmlib_skipped"] = why
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
