"""Training data pipeline speed: samples/s per CPU core, ours against mmpose-style references.

Every pipeline goes from JPEG files to what the loss sees — a batch of normalised 256x192
crops and 133 Gaussian heatmaps of 64x48 per person, **all on the CPU** — with random
scale/rotation/mirror/half-body augmentation, on one core (OpenCV and torch limited to one
thread), in random order, timed in CPU seconds of the process (per-core throughput that other
jobs on the machine do not change much), interleaved repeats. The data set is generated
(:func:`fullbody.synthetic.generate`, 640x480 JPEGs, **one person per image**), so no
pipeline saves a decode by meeting an image twice in a row; ``--sample`` uses the shared
COCO-WholeBody sample instead, still in plain random order.

* ``reference``: a straightforward mmpose-style pipeline in this file, per sample: decode the
  whole image, mirror the whole image when flipping, half-body, random scale/rotation, affine
  crop, 133 heatmaps rendered with numpy (a 3-sigma window per keypoint, as mmpose's MSRA
  heatmaps), collate, batched normalisation (as mmpose's data preprocessor).
* ``mmpose``: mmpose 1.3.2's own pipeline (``benchmarks/mmpose_reference.py``, run in its venv,
  see ``benchmarks/reference_venv.py``) on the same files, when that venv is at hand.
* ours: :class:`fullbody.data.dataset.TopDownDataset` (one affine, reduced JPEG decoding where
  the crop allows, table-lookup normalisation, keypoints + weights), collate, then the batched
  heatmap encode of :class:`fullbody.codecs.heatmap.HeatmapCodec` on the CPU. The same with the
  encode on a GPU is a separate figure (``value_gpu_encode``), only on a CUDA machine.

Ours and the in-file reference also apply the box jitter; photometric augmentation is off
(mmpose's COCO-WholeBody heatmap recipe has none; ``--photometric`` adds it to both of ours).
Ends by printing one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Each batch's tens of MB of heatmaps are fresh memory: with 4 KiB pages the kernel zeroes them a
# page fault at a time. PyTorch backs large CPU tensors with transparent huge pages when this is
# set before its first large allocation; the mmpose run inherits it (like for like). Training
# does not set it: there it makes each step slower (docs/results.md, training throughput).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_venv import MMPOSE_SCRIPT, mmpose_python

from fullbody.annotations import WholeBodySet
from fullbody.codecs.heatmap import HeatmapCodec
from fullbody.codecs.spec import TopDownSpec
from fullbody.data.dataset import (
    TopDownDataset,
    default_photometric,
)
from fullbody.data.jitter import LearnedJitter
from fullbody.data.sampler import ImageGroupedSampler
from fullbody.data.transforms import half_body_box, truncated_normal
from fullbody.geometry import box_to_center_scale
from fullbody.images import IMAGENET_MEAN, IMAGENET_STD
from fullbody.keypoints import FLIP_INDEX
from fullbody.synthetic import SceneConfig, generate
from fullbody.utils.machine import machine_name
from fullbody.utils.sample import (
    SAMPLE_ANNOTATIONS,
    missing_sample_reason,
    sample_available,
    sample_dir,
)


class ReferencePipeline:
    """The straightforward per-sample pipeline (see the module docstring)."""

    def __init__(self, ds: TopDownDataset, photometric) -> None:
        self.ds, self.photometric, self.sigma = ds, photometric, ds.spec.sigma
        self.codec = HeatmapCodec(ds.input_size, ds.spec.heatmap_size, self.sigma, dark=False)
        self.rng = np.random.default_rng(0)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255

    def sample(self, key: tuple[int, int]) -> dict:
        ds, rng, i = self.ds, self.rng, key[0]
        image = cv2.imread(str(ds.image_path(ds.image_ids[i])), cv2.IMREAD_COLOR)  # BGR
        kpts = ds.keypoints[i].astype(np.float64)
        weight = ds.weights[i].copy()
        box = ds.jitter(ds.boxes[i], rng, kpts) if ds.jitter is not None else ds.boxes[i]
        center, scale = box_to_center_scale(box, ds.aspect_ratio, ds.spec.padding)
        flip = rng.random() < ds.flip_prob
        if flip:  # mirror the image, the keypoints (and swap sides) and the box centre
            image = image[:, ::-1].copy()
            w = image.shape[1]
            kpts = kpts[FLIP_INDEX]
            weight = weight[FLIP_INDEX]
            kpts[:, 0] = w - 1 - kpts[:, 0]
            center = np.array([w - 1 - center[0], center[1]])
        if rng.random() < ds.half_body_prob:
            half = half_body_box(kpts, rng)
            if half is not None:
                center, scale = box_to_center_scale(half, ds.aspect_ratio, ds.half_body_padding)
        scale = scale * (1.0 + truncated_normal(rng, ds.scale_factor, ds.scale_factor))
        rot = 0.0
        if rng.random() < ds.rotation_prob:
            rot = truncated_normal(rng, ds.rotation_factor, 2 * ds.rotation_factor)
        h, w = ds.input_size
        # Three point pairs -> affine, as mmpose's get_warp_matrix does.
        a = math.radians(rot)
        rot_pt = lambda p: np.array([p[0] * math.cos(a) + p[1] * math.sin(a),  # noqa: E731
                                     -p[0] * math.sin(a) + p[1] * math.cos(a)])  # fmt: skip
        src = np.stack(
            [center, center + rot_pt([0, -scale[1] / 2]), center + rot_pt([scale[0] / 2, 0])]
        )
        dst = np.array([[(w - 1) / 2, (h - 1) / 2], [(w - 1) / 2, -0.5], [w - 0.5, (h - 1) / 2]])
        matrix = cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))
        crop = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR)
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        if self.photometric is not None:
            crop = self.photometric(image=crop)["image"]
        xy = kpts[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        xy = self.codec.input_to_heatmap(xy)
        heatmaps, weight = self.render(xy, weight)
        return {
            "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),
            "heatmaps": heatmaps,
            "target_weight": weight,
        }

    def render(self, xy: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """133 Gaussians, each computed on the window of 3 sigma around its keypoint."""
        hh, hw = self.codec.heatmap_size
        heatmaps = np.zeros((len(xy), hh, hw), dtype=np.float32)
        weight = weight.astype(np.float32)
        r = int(3 * self.sigma)
        for k, (x, y) in enumerate(xy):
            if weight[k] <= 0:
                continue
            x0, y0 = round(x), round(y)
            x1, x2 = max(x0 - r, 0), min(x0 + r + 1, hw)
            y1, y2 = max(y0 - r, 0), min(y0 + r + 1, hh)
            if x1 >= x2 or y1 >= y2:
                weight[k] = 0
                continue
            gx = np.arange(x1, x2, dtype=np.float32) - x
            gy = np.arange(y1, y2, dtype=np.float32)[:, None] - y
            heatmaps[k, y1:y2, x1:x2] = np.exp(-(gx**2 + gy**2) / (2 * self.sigma**2))
        return heatmaps, weight

    def batch(self, indices) -> dict:
        batch = default_collate([self.sample(i) for i in indices])
        batch["image"] = (batch["image"].float() - self.mean) / self.std
        return batch


def ours_batch(ds: TopDownDataset, codec: HeatmapCodec, keys, device: torch.device) -> dict:
    """One training batch as the DataModule and the training step make it."""
    batch = default_collate([ds[k] for k in keys])
    xy = batch["target_xy"].to(device, non_blocking=True)
    weight = batch["target_weight"].to(device, non_blocking=True)
    batch["heatmaps"], batch["target_weight"] = codec.targets(xy, weight)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch


def timed(fn, order: list, batch_size: int) -> float:
    """Samples per second of this process's CPU time (user + system, one thread): per-core
    throughput, little affected by other processes competing for the cores."""
    n, t0 = 0, time.process_time()
    for s in range(0, len(order) - batch_size + 1, batch_size):
        fn(order[s : s + batch_size])
        n += batch_size
    return n / (time.process_time() - t0)


def run_mmpose(python: Path, ann_file: Path, images: Path, args) -> list[float]:
    """mmpose's pipeline in its venv: samples per CPU second, one per repeat."""
    cmd = [str(python), str(MMPOSE_SCRIPT), str(ann_file), str(images),
           "--samples", str(args.samples), "--repeats", "1", "--batch-size", str(args.batch_size)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"mmpose reference failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_per_s"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=300, help="generated images (one person each)")
    p.add_argument("--sample", action="store_true",
                   help="use the shared COCO-WholeBody sample instead of a generated set")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--samples", type=int, default=384, help="samples per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--photometric", action="store_true", help="photometric augmentation (ours)")
    p.add_argument("--no-mmpose", action="store_true", help="skip mmpose's own pipeline")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: 24 images, 16 samples a repeat, batch 8, one repeat; the mmpose "
                        "venv only if already built")  # fmt: skip
    args = p.parse_args(argv)
    if args.smoke:
        args.images, args.samples, args.batch_size, args.repeats = 24, 16, 8, 1

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.sample:
            if not sample_available():
                print(f"error: {missing_sample_reason()}", file=sys.stderr)
                return 2
            ann_file, images = sample_dir() / SAMPLE_ANNOTATIONS, sample_dir() / "images"
        else:
            cfg = SceneConfig(people=(1, 1))
            out = generate(Path(tmp) / "set", args.images, seed=0, config=cfg, progress=False)
            ann_file, images = out / "annotations.json", out / "images"
        photometric = default_photometric() if args.photometric else None
        ds = TopDownDataset(
            WholeBodySet.load(ann_file), images, train=True, jitter=LearnedJitter(),
            photometric=photometric, spec=TopDownSpec.standard((256, 192)),
        )  # fmt: skip
        ref = ReferencePipeline(ds, photometric)
        codec = ref.codec  # the same 256x192 -> 64x48 codec on both sides
        cpu = torch.device("cpu")
        gpu = torch.device("cuda") if torch.cuda.is_available() else None
        mmpose = None if args.no_mmpose else mmpose_python(create=not args.smoke)

        sampler = ImageGroupedSampler(ds.image_ids, 1, seed=0)  # plain shuffling
        epochs = iter(range(10**6))

        def order() -> list[tuple[int, int]]:
            """The next ``--samples`` keys of the training order, epoch after epoch."""
            keys: list[tuple[int, int]] = []
            while len(keys) < args.samples:
                sampler.set_epoch(next(epochs))
                keys += list(sampler)
            return keys[: args.samples]

        runs = {
            "ours": lambda: timed(
                lambda k: ours_batch(ds, codec, k, cpu), order(), args.batch_size
            ),
            "reference": lambda: timed(ref.batch, order(), args.batch_size),
            "ours_no_encode": lambda: timed(
                lambda k: default_collate([ds[j] for j in k]), order(), args.batch_size
            ),
        }
        if gpu is not None:
            runs["ours_gpu_encode"] = lambda: timed(
                lambda k: ours_batch(ds, codec, k, gpu), order(), args.batch_size
            )
        if mmpose is not None:
            runs["mmpose"] = lambda: run_mmpose(mmpose, ann_file, images, args)[0]
        for name, run in runs.items():  # warm-up: file cache, lazy imports, allocator, CUDA
            if name != "mmpose":  # (it warms up in its own process)
                run()
        results: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):  # interleaved, so that load changes hit all alike
            for k, run in runs.items():
                results[k].append(run())
    for k, v in results.items():
        print(f"{k:>15}: " + " ".join(f"{x:7.1f}" for x in v) + " samples/s per core")
    med = {k: statistics.median(v) for k, v in results.items()}
    out = {
        "figure": "train samples/s per CPU core, JPEG -> normalised 256x192 crops + 133 "
        "heatmaps 64x48 rendered on the CPU, plain random order",
        "value": round(med["ours"], 1),
        "reference": round(med["reference"], 1),
        "ratio": round(med["ours"] / med["reference"], 2),
        "mmpose": round(med["mmpose"], 1) if "mmpose" in med else None,
        "ratio_mmpose": round(med["ours"] / med["mmpose"], 2) if "mmpose" in med else None,
        "loader_only": round(med["ours_no_encode"], 1),
        "data": "shared sample" if args.sample else f"generated, {args.images} images",
        "people": len(ds),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "photometric": photometric is not None,
        "machine": machine_name(),
    }
    if "ours_gpu_encode" in med:  # a separate figure: the heatmaps rendered on the GPU
        out["value_gpu_encode"] = round(med["ours_gpu_encode"], 1)
        out["gpu"] = torch.cuda.get_device_name()
    if mmpose is None and not args.no_mmpose:
        out["mmpose_skipped"] = "no mmpose venv (benchmarks/reference_venv.py)"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
