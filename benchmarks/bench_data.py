"""Training data pipeline speed: samples/s per CPU core, ours against a per-sample reference.

Both pipelines go from the JPEG files of the shared COCO-WholeBody sample to what the loss
sees — a batch of normalised 256x192 crops and 133 Gaussian heatmaps of 64x48 per person —
with the same augmentation (box jitter, half-body, scale, rotation, mirror, photometric),
on one core (OpenCV and torch limited to one thread), in one process, interleaved repeats.

* reference: a straightforward mmpose-style pipeline, per sample: decode the whole image,
  mirror the whole image when flipping, half-body, random scale/rotation, affine crop,
  photometric augmentation, 133 heatmaps rendered on the CPU with numpy (a 3-sigma window per
  keypoint, as mmpose's MSRA heatmaps), collate, then batched normalisation (as mmpose's data
  preprocessor).
* ours: :class:`fullbody.data.dataset.TopDownDataset` (one affine, reduced JPEG decoding where
  the crop allows, photometric on the uint8 crop, table-lookup normalisation, keypoints +
  weights instead of heatmaps), collate, then the batched heatmap encode of
  :class:`fullbody.codecs.heatmap.HeatmapCodec` on ``--device``.

Ends by printing one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from fullbody.annotations import WholeBodySet
from fullbody.codecs.heatmap import HeatmapCodec
from fullbody.data.dataset import (
    TopDownDataset,
    default_photometric,
)
from fullbody.data.jitter import LearnedJitter
from fullbody.data.sampler import ImageGroupedSampler
from fullbody.data.transforms import box_to_center_scale, half_body_box, truncated_normal
from fullbody.images import IMAGENET_MEAN, IMAGENET_STD
from fullbody.keypoints import FLIP_INDEX
from fullbody.utils.machine import machine_name

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = Path(
    os.environ.get("FULLBODY_SAMPLE_DIR", ROOT.parent / "shared" / "data" / "coco_wholebody_sample")
)


class ReferencePipeline:
    """The straightforward per-sample pipeline (see the module docstring)."""

    def __init__(self, ds: TopDownDataset, photometric, sigma: float = 2.0) -> None:
        self.ds, self.photometric, self.sigma = ds, photometric, sigma
        self.rng = np.random.default_rng(0)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255

    def sample(self, i: int) -> dict:
        ds, rng = self.ds, self.rng
        image = cv2.imread(str(ds.image_path(ds.image_ids[i])), cv2.IMREAD_COLOR)  # BGR
        kpts = ds.keypoints[i].astype(np.float64)
        weight = ds.weights[i].copy()
        box = ds.jitter(ds.boxes[i], rng, kpts) if ds.jitter is not None else ds.boxes[i]
        center, scale = box_to_center_scale(box, ds.aspect_ratio, ds.padding)
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
        xy = ds.codec.input_to_heatmap(xy)
        heatmaps, weight = self.render(xy, weight)
        return {
            "image": np.ascontiguousarray(crop.transpose(2, 0, 1)),
            "heatmaps": heatmaps,
            "target_weight": weight,
        }

    def render(self, xy: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """133 Gaussians, each computed on the window of 3 sigma around its keypoint."""
        hh, hw = self.ds.heatmap_size
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


def ours_batch(ds: TopDownDataset, codec: HeatmapCodec, indices, device) -> dict:
    batch = default_collate([ds[i] for i in indices])
    xy = batch["target_xy"].to(device, non_blocking=True)
    weight = batch["target_weight"].to(device, non_blocking=True)
    batch["heatmaps"], batch["target_weight"] = codec.encode(xy, weight)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch


def timed(fn, orders, batch_size) -> float:
    """Samples per second of this process's CPU time (user + system, one thread): per-core
    throughput, unaffected by other processes competing for the cores."""
    n, t0 = 0, time.process_time()
    for order in orders:
        for s in range(0, len(order) - batch_size + 1, batch_size):
            fn(order[s : s + batch_size])
            n += batch_size
    return n / (time.process_time() - t0)


def loader_throughput(ds, codec, device, batch_size, order, workers) -> float:
    """Wall-clock samples/s through a DataLoader with ``workers`` processes (pinned memory and
    the encode on ``device``) over the training order ``order``: what the loader can feed a
    training step."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(ds, order), batch_size=batch_size, num_workers=workers,
        drop_last=True, pin_memory=device.type == "cuda", prefetch_factor=4,
    )  # fmt: skip
    n, t0 = 0, None
    for batch in loader:
        xy = batch["target_xy"].to(device, non_blocking=True)
        weight = batch["target_weight"].to(device, non_blocking=True)
        batch["image"].to(device, non_blocking=True)
        codec.encode(xy, weight)
        if t0 is None:  # start the clock once the workers are up
            t0 = time.perf_counter()
            continue
        n += len(xy)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sample-dir", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--samples", type=int, default=384, help="samples per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--group-size", type=int, default=4, help="people of one image in a row")
    p.add_argument(
        "--device", default="auto", help="where the batched encode runs: auto, cpu, cuda"
    )
    p.add_argument("--workers", type=int, default=0,
                   help="also measure a DataLoader with this many workers (wall clock)")  # fmt: skip
    p.add_argument("--no-photometric", action="store_true")
    args = p.parse_args(argv)

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    ann_file = args.sample_dir / "annotations" / "coco_wholebody_sample.json"
    if not ann_file.is_file():
        print(f"error: {ann_file} not found (set --sample-dir)", file=sys.stderr)
        return 2
    ann = WholeBodySet.load(ann_file)
    photometric = None if args.no_photometric else default_photometric()
    ds = TopDownDataset(
        ann, args.sample_dir / "images", train=True, jitter=LearnedJitter(), photometric=photometric
    )
    ref = ReferencePipeline(ds, photometric)
    codec = HeatmapCodec(ds.input_size, ds.heatmap_size)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    epochs = max(1, args.samples // len(ds))

    def orders(group_size: int, n_epochs: int = epochs) -> list[list[int]]:
        """An epoch-after-epoch training order from the sampler the DataModule uses."""
        sampler = ImageGroupedSampler(ds.image_ids, group_size, seed=0)
        out = []
        for e in range(n_epochs):
            sampler.set_epoch(e)
            out += list(sampler)
        return [out]

    grouped, single = orders(args.group_size), orders(1)
    runs = {
        "reference": lambda: timed(ref.batch, single, args.batch_size),
        "ours": lambda: timed(lambda i: ours_batch(ds, codec, i, device), grouped, args.batch_size),
        "ours_ungrouped": lambda: timed(
            lambda i: ours_batch(ds, codec, i, device), single, args.batch_size
        ),
        "ours_no_encode": lambda: timed(
            lambda i: default_collate([ds[j] for j in i]), grouped, args.batch_size
        ),
    }
    for run in runs.values():  # warm-up: file cache, lazy imports, allocator, CUDA context
        run()
    results: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):  # interleaved, so that load changes hit all alike
        for k, run in runs.items():
            results[k].append(run())
    for k, v in results.items():
        print(f"{k:>15}: " + " ".join(f"{x:7.1f}" for x in v) + " samples/s per core")
    med = {k: statistics.median(v) for k, v in results.items()}
    out = {
        "figure": "train samples/s per CPU core, JPEG -> normalised 256x192 crops + 133 heatmaps 64x48",
        "value": round(med["ours"], 1),
        "reference": round(med["reference"], 1),
        "ratio": round(med["ours"] / med["reference"], 2),
        "group_size": args.group_size,
        "value_ungrouped": round(med["ours_ungrouped"], 1),
        "ratio_ungrouped": round(med["ours_ungrouped"] / med["reference"], 2),
        "loader_only": round(med["ours_no_encode"], 1),
        "encode_device": str(device),
        "batch_size": args.batch_size,
        "people": len(ds),
        "photometric": photometric is not None,
        "machine": machine_name()
        + (f", {torch.cuda.get_device_name()}" if device.type == "cuda" else ""),
    }
    if args.workers:
        long = orders(args.group_size, 8 * epochs * args.workers)[0]
        sps = loader_throughput(ds, codec, device, args.batch_size, long, args.workers)
        print(f"DataLoader, {args.workers} workers: {sps:.1f} samples/s (wall clock)")
        out["loader_workers"] = args.workers
        out["loader_samples_per_s"] = round(sps, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
