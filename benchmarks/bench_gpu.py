"""The check a lent GPU runs in one go (under 8 minutes), ending with one JSON line:

1. training throughput of the paper's model (``conf/model/fastpose.yaml``: SE-ResNet-50 + DUC) at
   256x192, batch 64, bf16: ``PoseModule`` under Lightning against a bare PyTorch loop, same
   batches, network, loss and optimiser (``bench_train.py``'s two loops);
2. whether the data pipeline keeps that GPU fed: training crops per second of the real loader
   (synthetic scenes, 256x192 crops and their augmentation) with 0, 2, 4, ... worker processes,
   and the fewest workers that outrun the training loop;
3. a short budgeted run of ``python train.py trainer=gpu`` (the time budget sizes it) and its
   best checkpoint on 200 held-out scenes of another seed (``python eval.py``).

    python benchmarks/bench_gpu.py                  # on a machine with a CUDA GPU
    python benchmarks/bench_gpu.py --budget-min 3 --out /tmp/gpu_check
    python benchmarks/bench_gpu.py --dry-run        # every path on the CPU, tiny sizes

``--dry-run`` (also ``--smoke``, as the benchmark suite calls it) runs the same code on the
CPU with a tiny model input, a handful of scenes and a budget of seconds, so it cannot rot.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from fullbody.utils.machine import machine_name, resolve_precision  # noqa: E402

PARTS = ("body", "foot", "face", "lefthand", "righthand", "wholebody")


def compose(overrides: list[str]) -> Any:
    """The train config with ``overrides`` (Hydra's compose API, no run folder)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def model_kwargs(cfg: Any) -> dict[str, Any]:
    """The network and loss settings of a composed model config (bench_train builds the rest)."""
    from omegaconf import OmegaConf

    kw = OmegaConf.to_container(cfg.model, resolve=True)
    keep = ("head_channels", "final_kernel", "part_weights")
    return {k: kw[k] for k in keep if k in kw}


def throughput(args: argparse.Namespace, cfg: Any, device: torch.device) -> dict[str, float]:
    """Images/s of the paper's model: Lightning and the bare loop, one alternating pair each."""
    import bench_train

    h, w = args.input
    ns = argparse.Namespace(
        backbone=cfg.model.backbone,
        head=cfg.model.head,
        input=[h, w],
        batch=args.batch,
        stride=4,
        steps=args.steps,
        warmup=args.warmup,
        precision=resolve_precision("auto", device.type),
        channels_last=True,
        pin=device.type == "cuda",
        backbone_kwargs=None,
        model_kwargs=model_kwargs(cfg),
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    bare = bench_train.bench_bare(ns, False, device)
    lit = bench_train.bench_lightning(ns, False, device)
    return {
        "lightning": round(lit, 1),
        "bare": round(bare, 1),
        "ratio": round(lit / bare, 3),
        "precision": ns.precision,
    }


def loader_rates(args: argparse.Namespace, data_root: Path) -> dict[int, float]:
    """Training crops/s of the synthetic data module's loader at each worker count."""
    from hydra.utils import instantiate

    rates: dict[int, float] = {}
    for workers in args.workers:
        h, w = args.input
        cfg = compose([
            f"data.root={data_root / 'synthetic'}", f"data.train_images={args.train_images}",
            f"data.val_images={args.val_images}", f"model.spec.input_size=[{h},{w}]",
            "model.spec.stride=4", f"data.batch_size={args.batch}",
            f"data.num_workers={workers}", f"data.persistent_workers={workers > 0}",
        ])  # fmt: skip
        dm = instantiate(cfg.data)
        dm.prepare_data()
        dm.setup("fit")
        it = iter(dm.train_dataloader())
        next(it)  # workers started, first batch made
        start, images = time.perf_counter(), 0
        for _ in range(args.loader_batches):
            try:
                images += len(next(it)["image"])
            except StopIteration:
                it = iter(dm.train_dataloader())
        rates[workers] = round(images / (time.perf_counter() - start), 1)
        del it
        print(f"loader, {workers} workers: {rates[workers]:.1f} crops/s", flush=True)
    return rates


def run(cmd: list[str], timeout: float) -> str:
    """Run an entry point of this repository; its output (both streams), or the failure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:1])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def budgeted_run(args: argparse.Namespace, out: Path, data_root: Path) -> dict[str, Any]:
    """``train.py`` under a time budget, then its best checkpoint on held-out scenes."""
    run_dir = out / "train"
    started = time.perf_counter()
    text = run(["train.py", f"hydra.run.dir={run_dir}", f"paths.data_dir={data_root}",
                "logger=csv", f"callbacks.budget.minutes={args.budget_min}",
                *args.train_args], timeout=args.budget_min * 60 + 300)  # fmt: skip
    wall = time.perf_counter() - started
    line = re.search(r"(this \w+.*?): (\S+), ([\d.]+) s/step -> ([\d,]+) steps", text)
    best = sorted((run_dir / "checkpoints").glob("epoch*.ckpt"))
    if not line or not best:
        raise RuntimeError(
            f"train.py printed no budget line or wrote no best checkpoint: {text[-2000:]}"
        )
    metrics = out / "held_out.json"
    run(["eval.py", f"ckpt_path={best[-1]}", "data=synthetic", f"paths.data_dir={data_root}",
         "data.data_seed=7", f"data.val_images={args.held_out_images}",
         f"metrics_file={metrics}", f"hydra.run.dir={out / 'eval'}"],
        timeout=600)  # fmt: skip
    table = json.loads(metrics.read_text())
    return {
        "budget_min": args.budget_min,
        "wall_s": round(wall, 1),
        "precision": line.group(2),
        "s_per_step": float(line.group(3)),
        "steps": int(line.group(4).replace(",", "")),
        "held_out_ap": {p: round(table[f"{p}/AP"], 3) for p in PARTS if f"{p}/AP" in table},
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="run folders (default: a temp folder)")
    ap.add_argument("--budget-min", type=float, default=3.0, help="the budgeted run's minutes")
    ap.add_argument("--dry-run", "--smoke", dest="dry_run", action="store_true",
                    help="every path on the CPU with tiny sizes, in seconds")  # fmt: skip
    args = ap.parse_args(argv)
    gpu = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda" if gpu else "cpu")
    if not gpu and not args.dry_run:
        raise SystemExit("no CUDA GPU here: run with --dry-run to check the script on the CPU")
    cpus = os.cpu_count() or 1
    args.input, args.batch, args.steps, args.warmup = [256, 192], 64, 30, 10
    args.workers = [0] + [k for k in (2, 4, 8, 12, 16) if k <= cpus]
    args.train_images, args.val_images, args.loader_batches = 300, 50, 30
    args.held_out_images = 200
    args.train_args = ["trainer=gpu"]
    overrides = ["model=fastpose"]
    if args.dry_run:
        args.input, args.batch, args.steps, args.warmup = [64, 64], 2, 2, 1
        args.workers, args.train_images, args.val_images, args.loader_batches = [0, 1], 4, 2, 2
        args.held_out_images, args.budget_min = 2, 0.5
        args.train_args = ["+experiment=smoke", "trainer.max_epochs=-1", "model.warmup_epochs=2",
                           "callbacks.budget.skip_steps=1", "callbacks.budget.measure_steps=2",
                           "logger=csv"]  # fmt: skip
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    out.mkdir(parents=True, exist_ok=True)
    data_root = out / "data"
    cfg = compose(overrides)
    figures = throughput(args, cfg, device)
    print(f"fastpose {args.input[0]}x{args.input[1]} batch {args.batch}: lightning "
          f"{figures['lightning']} img/s, bare {figures['bare']} img/s", flush=True)  # fmt: skip
    rates = loader_rates(args, data_root)  # generates the scenes the budgeted run then finds
    enough = [k for k, r in rates.items() if r >= figures["lightning"]]
    budget = budgeted_run(args, out, data_root)
    print(f"budgeted run: {budget['steps']} steps in {budget['wall_s']} s, held-out "
          f"{budget['held_out_ap']}", flush=True)  # fmt: skip
    line = {
        "figure": f"train_images_per_s_fastpose_{args.input[0]}x{args.input[1]}_b{args.batch}",
        "value": figures["lightning"],
        "reference": figures["bare"],
        "ratio": figures["ratio"],
        "precision": figures["precision"],
        "device": torch.cuda.get_device_name(device) if gpu else machine_name(),
        "loader_crops_per_s": {str(k): v for k, v in rates.items()},
        "workers_needed": min(enough) if enough else None,
        "budgeted_run": budget,
        "dry_run": args.dry_run,
        "out": str(out),
    }
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
