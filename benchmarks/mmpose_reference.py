"""The reference: mmpose 1.3.2's own top-down training pipeline, timed per CPU core.

Runs in a throw-away virtualenv with mmpose (see ``benchmarks/reference_venv.py``), never in the
project's environment:

    /tmp/mmposevenv/bin/python benchmarks/mmpose_reference.py ANN.json IMAGES_DIR [--samples 256]

The pipeline is the one of mmpose's COCO-WholeBody heatmap configs
(``td-hm_res50_8xb64-210e_coco-wholebody-256x192.py``): ``LoadImage``, ``GetBBoxCenterScale``,
``RandomFlip``, ``RandomHalfBody``, ``RandomBBoxTransform``, ``TopdownAffine`` (256x192),
``GenerateTarget`` with ``MSRAHeatmap`` (64x48, sigma 2: 133 heatmaps on the CPU) and
``PackPoseInputs``, through mmpose's ``CocoWholeBodyDataset``; then ``pseudo_collate`` and what
mmpose's data preprocessor does to a batch (stack, BGR -> RGB, normalise) on the CPU. One thread
(OpenCV and torch), random order. Prints one JSON object on stdout: ``{"samples_per_s": [per
repeat, per CPU second], "people": ...}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmpose.datasets import CocoWholeBodyDataset
from mmpose.datasets.transforms import (
    GenerateTarget,
    GetBBoxCenterScale,
    LoadImage,
    PackPoseInputs,
    RandomBBoxTransform,
    RandomFlip,
    RandomHalfBody,
    TopdownAffine,
)

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ann_file")
    ap.add_argument("images")
    ap.add_argument("--samples", type=int, default=256, help="samples per timed repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    codec = dict(type="MSRAHeatmap", input_size=(192, 256), heatmap_size=(48, 64), sigma=2)
    pipeline = [
        LoadImage(),
        GetBBoxCenterScale(),
        RandomFlip(direction="horizontal"),
        RandomHalfBody(),
        RandomBBoxTransform(),
        TopdownAffine(input_size=codec["input_size"]),
        GenerateTarget(encoder=codec),
        PackPoseInputs(),
    ]
    # mmpose's parser reads a `segmentation` field, which label files without masks lack.
    labels = json.loads(Path(args.ann_file).read_text())
    for ann in labels["annotations"]:
        ann.setdefault("segmentation", [])
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        ann_file = Path(tmp) / "labels.json"  # read once, here: the data set keeps it in memory
        ann_file.write_text(json.dumps(labels))
        ds = CocoWholeBodyDataset(
            ann_file=str(ann_file),
            data_root="",
            data_prefix=dict(img=args.images.rstrip("/") + "/"),
            pipeline=pipeline,
            test_mode=False,
        )
    rng = np.random.default_rng(0)

    def run(n: int) -> float:
        order = np.concatenate([rng.permutation(len(ds)) for _ in range(-(-n // len(ds)))])[:n]
        c0 = time.process_time()
        for s in range(0, n - args.batch_size + 1, args.batch_size):
            batch = pseudo_collate([ds[int(i)] for i in order[s : s + args.batch_size]])
            images = torch.stack(batch["inputs"]).float()[:, [2, 1, 0]]
            (images - MEAN) / STD
        done = (n // args.batch_size) * args.batch_size
        return done / (time.process_time() - c0)

    run(args.batch_size)  # warm-up: file cache, lazy imports
    rates = [run(args.samples) for _ in range(args.repeats)]
    print(json.dumps({"samples_per_s": rates, "people": len(ds)}))


if __name__ == "__main__":
    main()
