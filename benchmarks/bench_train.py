"""Training throughput: PoseModule under Lightning vs a bare PyTorch loop, same model and loss.

Both loops run in this process on the same device, the same pre-made batches (one
``DataLoader`` of collated, pinned batches, copied to the device each step), the same network
(timm backbone + DUC head), the same on-device target rendering and loss, the same (fused) Adam
and precision / memory-format / compile settings; only the loop differs. Throughput counts
images per second over the timed steps (after warm-up, synchronised with the device).

    python benchmarks/bench_train.py                 # GPU: resnet50 256x192 batch 64, 1 round
    python benchmarks/bench_train.py --variants eager,compiled
    python benchmarks/bench_train.py --device cpu    # CPU recipe: resnet18 128x96 batch 8, 3 rounds
    python benchmarks/bench_train.py --device cpu --head fpn --stride 2 --out-indices 0,1,2,3
                                                     # the network of `python train.py`

Rounds alternate which loop runs first (bare, Lightning; then Lightning, bare; ...).

Prints one line per variant, then one JSON line: the first variant's figures plus all variants.

``--ab`` instead times settings of the bare loop against each other, interleaved round by round
in this one process (on a shared machine only ratios are worth reading), each against the first:

    python benchmarks/bench_train.py --device cpu --head fpn --stride 2 --out-indices 0,1,2,3 \
        --precision 32-true --ab cl,nchw,cl+compiled,cl+b16,cl+t1,cl+noonednn
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_train.py ...
                                                     # as a CPU without AVX-512 (no native bf16)

A setting is ``+``-joined tokens: ``cl``/``nchw`` (memory format), ``compiled``
(``torch.compile``), ``bN`` (batch N; images/s stay comparable), ``tN`` (N threads), ``HxW``
(input size), ``noonednn`` (PyTorch's own convolutions), ``bf16``/``fp32`` (precision).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fullbody.codecs import is_channels_last
from fullbody.codecs.spec import HEATMAP_STRIDES, TopDownSpec
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.module import PoseModule, adam
from fullbody.utils.machine import machine_name, resolve_precision


class _Batches(Dataset):
    """A few distinct pre-collated batches (pinned on CUDA runs), served ``length`` times.

    This is what a DataLoader with worker processes hands the training loop: collated, pinned
    batches, so each step's only data work in the main process is an asynchronous copy to the
    device. (Collating 64 crops in the main process would make both loops CPU-bound and turn the
    comparison into one of how that serial work interleaves.)
    """

    def __init__(self, distinct: int, length: int, batch: int, size: tuple[int, int], pin: bool):
        g = torch.Generator().manual_seed(0)
        h, w = size
        self.batches = []
        for _ in range(distinct):
            b = {
                "image": torch.randn(batch, 3, h, w, generator=g),
                "target_xy": torch.rand(batch, NUM_KEYPOINTS, 2, generator=g)
                * torch.tensor([float(w), float(h)]),
                "target_weight": (torch.rand(batch, NUM_KEYPOINTS, generator=g) > 0.2).float(),
            }
            self.batches.append({k: v.pin_memory() if pin else v for k, v in b.items()})
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.batches[i % len(self.batches)]


class _Timer(L.Callback):
    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.start, self.steps = warmup, device, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= self.warmup:
            self.steps += 1

    def elapsed(self) -> float:
        _sync(self.device)
        return time.perf_counter() - self.start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _module(args: argparse.Namespace, compiled: bool) -> PoseModule:
    torch.manual_seed(0)
    h, w = args.input
    return PoseModule(
        backbone=args.backbone,
        head=args.head,
        spec=TopDownSpec.standard((h, w), stride=args.stride),
        lr=1e-3,
        lr_policy="constant",
        channels_last=args.channels_last,
        compile=compiled,
        backbone_kwargs=args.backbone_kwargs,
        **getattr(args, "model_kwargs", {}),  # e.g. the paper model's head widths (bench_gpu)
    )


def _loader(args: argparse.Namespace) -> DataLoader:
    data = _Batches(4, args.warmup + args.steps, args.batch, tuple(args.input), args.pin)
    return DataLoader(data, batch_size=None, shuffle=False)


def bench_lightning(args: argparse.Namespace, compiled: bool, device: torch.device) -> float:
    model = _module(args, compiled)
    timer = _Timer(args.warmup, device)
    trainer = L.Trainer(
        accelerator=device.type if device.type != "cuda" else "gpu",
        devices=1,
        precision=args.precision,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(model, train_dataloaders=_loader(args))
    return timer.steps * args.batch / timer.elapsed()


def bench_bare(args: argparse.Namespace, compiled: bool, device: torch.device) -> float:
    model = _module(args, compiled).to(device)
    model.train()
    opt = adam(model.parameters(), lr=1e-3)  # the optimiser Lightning's loop gets
    bf16 = args.precision.startswith("bf16")
    start = 0.0
    steps = 0
    for i, batch in enumerate(_loader(args)):
        if i == args.warmup:
            _sync(device)
            start = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            heatmaps = model(batch["image"])
            target, weight = model.codec.targets(
                batch["target_xy"], batch["target_weight"], is_channels_last(heatmaps)
            )
            loss = model.loss(heatmaps, target, weight).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= args.warmup:
            steps += 1
    _sync(device)
    return steps * args.batch / (time.perf_counter() - start)


def _setting(args: argparse.Namespace, spec: str) -> tuple[argparse.Namespace, dict]:
    """The arguments of one ``--ab`` setting and the global switches it needs."""
    a = argparse.Namespace(**vars(args))
    switches = {"threads": torch.get_num_threads(), "onednn": True, "compiled": False}
    for token in spec.split("+"):
        if token in ("cl", "nchw"):
            a.channels_last = token == "cl"
        elif token == "compiled":
            switches["compiled"] = True
        elif token == "noonednn":
            switches["onednn"] = False
        elif token in ("bf16", "fp32"):
            a.precision = "bf16-mixed" if token == "bf16" else "32-true"
        elif token[:1] in ("b", "t") and token[1:].isdigit():
            if token[0] == "b":
                a.batch = int(token[1:])
            else:
                switches["threads"] = int(token[1:])
        elif "x" in token and token.replace("x", "").isdigit():
            a.input = [int(v) for v in token.split("x")]
        else:
            raise SystemExit(f"--ab: unknown token {token!r} in {spec!r}")
    return a, switches


def bench_settings(args: argparse.Namespace, specs: list[str], device: torch.device) -> list[dict]:
    """Bare-loop images/s of each setting, medians over interleaved rounds (the order rotates)."""
    runs: dict[str, list[float]] = {s: [] for s in specs}
    threads = torch.get_num_threads()
    for r in range(args.rounds):
        for spec in specs[r % len(specs) :] + specs[: r % len(specs)]:
            a, sw = _setting(args, spec)
            torch.set_num_threads(sw["threads"])
            torch.backends.mkldnn.enabled = sw["onednn"]
            try:
                runs[spec].append(bench_bare(a, sw["compiled"], device))
                print(f"round {r + 1}, {spec}: {runs[spec][-1]:.1f} img/s", flush=True)
            finally:
                torch.set_num_threads(threads)
                torch.backends.mkldnn.enabled = True
    base = statistics.median(runs[specs[0]])
    out = []
    for spec in specs:
        value = statistics.median(runs[spec])
        out.append(
            {"setting": spec, "images_per_s": round(value, 1), "ratio": round(value / base, 3)}
        )
        print(f"{spec}: {value:.1f} img/s, {value / base:.3f} x {specs[0]}")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--backbone", default=None, help="default resnet50 on GPU, resnet18 on CPU")
    ap.add_argument("--head", default="duc")
    ap.add_argument("--input", type=int, nargs=2, default=None, metavar=("H", "W"),
                    help="default 256 192 on GPU, 128 96 on CPU")  # fmt: skip
    ap.add_argument("--batch", type=int, default=None, help="default 64 on GPU, 8 on CPU")
    ap.add_argument("--stride", type=int, default=4, choices=HEATMAP_STRIDES,
                    help="heatmap stride (2: the CPU default's fpn head on the stem)")  # fmt: skip
    ap.add_argument("--out-indices", default=None,
                    help="backbone stages built, comma list (0,1,2,3: the CPU default's ResNet-18 "
                    "to stride 16); default every stage for fpn, the deepest otherwise")  # fmt: skip
    ap.add_argument("--steps", type=int, default=30, help="timed steps per loop")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps per loop")
    ap.add_argument("--precision", default=None,
                    help="default: as trainer.precision=auto (bf16-mixed where bf16 is native)")  # fmt: skip
    ap.add_argument("--variants", default="eager", help="comma list of eager, compiled")
    ap.add_argument(
        "--rounds", type=int, default=None,
        help="alternate the two loops this many times and report medians (CPU figures drift; "
        "default 1 on GPU, 3 on CPU)",
    )  # fmt: skip
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    ap.add_argument("--ab", default=None,
                    help="comma list of bare-loop settings timed against the first (see above)")  # fmt: skip
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: resnet18, 64x64, batch 2, 2 + 1 steps, 2 rounds")  # fmt: skip
    args = ap.parse_args(argv)
    if args.smoke:
        args.backbone, args.input, args.batch = "resnet18", [64, 64], 2
        args.steps, args.warmup, args.rounds = 2, 1, 2
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.backbone = args.backbone or ("resnet50" if gpu else "resnet18")
    args.input = args.input or ([256, 192] if gpu else [128, 96])
    args.batch = args.batch or (64 if gpu else 8)
    args.rounds = args.rounds or (1 if gpu else 3)
    args.precision = args.precision or resolve_precision("auto", device.type)
    args.pin = device.type == "cuda"
    args.backbone_kwargs = None
    if args.out_indices:
        args.backbone_kwargs = {"out_indices": [int(i) for i in args.out_indices.split(",")]}
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine_name()
    if args.ab:
        specs = args.ab.split(",")
        settings = bench_settings(args, specs, device)
        line = {
            "figure": f"train_images_per_s_bare_{args.backbone}_{args.input[0]}x{args.input[1]}"
            f"_b{args.batch}_{specs[0]}",
            "value": settings[0]["images_per_s"],
            "device": name or device.type,
            "precision": args.precision,
            "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
            "head": args.head,
            "heatmap_stride": args.stride,
            "out_indices": args.out_indices,
            "rounds": args.rounds,
            "settings": settings,
        }
        print(json.dumps(line))
        return line
    results = []
    for variant in args.variants.split(","):
        compiled = variant == "compiled"
        try:
            bares, lits = [], []
            for r in range(args.rounds):  # alternate which loop runs first: no order bias
                loops = [(bares, bench_bare), (lits, bench_lightning)]
                for out, bench in loops if r % 2 == 0 else loops[::-1]:
                    out.append(bench(args, compiled, device))
            bare, lit = statistics.median(bares), statistics.median(lits)
        except Exception as e:  # e.g. no compiler tool chain: report, go on with the others
            print(f"{variant}: failed: {e!r}")
            results.append({"variant": variant, "error": repr(e)[:300]})
            continue
        results.append(
            {
                "variant": variant,
                "lightning": round(lit, 1),
                "bare": round(bare, 1),
                "ratio": round(lit / bare, 3),
                "overhead_pct": round(100 * (1 - lit / bare), 1),
                "rounds": args.rounds,
            }
        )
        print(
            f"{variant}: lightning {lit:.1f} img/s, bare loop {bare:.1f} img/s, ratio {lit / bare:.3f}"
        )
    ok = [r for r in results if "error" not in r]
    if not ok:
        raise SystemExit("every variant failed")
    first = ok[0]
    line = {
        "figure": f"train_images_per_s_{args.backbone}_{args.input[0]}x{args.input[1]}_b{args.batch}",
        "value": first["lightning"],
        "reference": first["bare"],
        "ratio": first["ratio"],
        "overhead_pct": first["overhead_pct"],
        "device": name or device.type,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "head": args.head,
        "heatmap_stride": args.stride,
        "out_indices": args.out_indices,
        "variants": results,
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
