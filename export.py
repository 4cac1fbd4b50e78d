"""Export a checkpoint to ONNX and check parity: ``python export.py ckpt_path=CKPT``.

Writes the ONNX file (``out_file``, default ``<run folder>/model.onnx``) and
``export_report.json`` (max/mean absolute heatmap difference onnxruntime vs PyTorch on random
crops). Exits with status 1 when the difference exceeds ``check.tolerance``. See
docs/inference.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    """Load the checkpoint, export, compare, report."""
    from fullbody.inference.export import export_onnx, onnx_parity, random_crops
    from fullbody.jsonio import write_json_atomic
    from fullbody.models.module import PoseModule

    ckpt = Path(cfg.ckpt_path).expanduser()
    if not ckpt.is_file():
        print(f"error: {ckpt}: checkpoint not found (ckpt_path)", file=sys.stderr)
        sys.exit(2)
    module = PoseModule.load_from_checkpoint(
        ckpt, map_location="cpu", teacher_ckpt=None, compile=False
    )
    hp = module.hparams
    metadata = {
        "input_size": list(hp.input_size),
        "heatmap_size": list(hp.heatmap_size),
        "sigma": hp.sigma,
        "flip_test": bool(hp.flip_test),
        "dark": bool(hp.dark),
        "score_threshold": hp.score_threshold,
        "num_keypoints": hp.num_keypoints,
        "backbone": hp.backbone,
        "head": hp.head,
        "checkpoint": ckpt.name,
    }
    try:
        path = export_onnx(module.net, cfg.out_file, hp.input_size, metadata, cfg.opset,
                           overwrite=cfg.overwrite)  # fmt: skip
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    crops = random_crops(cfg.check.crops, hp.input_size, cfg.check.seed)
    report = onnx_parity(module.net, path, crops, tuple(cfg.check.batch_sizes))
    report.update({"onnx": str(path), "checkpoint": str(ckpt), "tolerance": cfg.check.tolerance})
    report_file = path.with_name("export_report.json")
    write_json_atomic(report, report_file)
    ok = report["max_abs_diff"] <= cfg.check.tolerance
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(
        f"onnxruntime vs PyTorch on {report['crops']} random crops, batch sizes "
        f"{report['batch_sizes']}: max |diff| {report['max_abs_diff']:.3g}, mean "
        f"{report['mean_abs_diff']:.3g} (heatmap max {report['max_heatmap']:.3g}) -> "
        f"{'OK' if ok else 'ABOVE TOLERANCE'} ({report_file})"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
