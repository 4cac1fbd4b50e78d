"""Export a checkpoint to ONNX and check parity: ``python export.py ckpt_path=CKPT``.

Writes the ONNX file (``out_file``, default ``<run folder>/model.onnx``) and
``export_report.json`` (max/mean absolute output difference onnxruntime vs PyTorch on random
crops). The model is written under a temporary name and moved to ``out_file`` only when the
difference is within ``check.tolerance``; otherwise it is removed (the report stays) and the
exit status is 1. See docs/inference.md.
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
    from fullbody.models.checkpoint import CheckpointError
    from fullbody.models.module import load_pose_model
    from fullbody.utils.cli import user_errors

    with user_errors(FileNotFoundError, CheckpointError, cfg=cfg):
        ckpt = Path(cfg.ckpt_path).expanduser()
        module = load_pose_model(ckpt, "ckpt_path")
    final = Path(cfg.out_file).expanduser()
    if final.exists() and not cfg.overwrite:
        print(f"error: {final}: exists (pass overwrite=true to replace it)", file=sys.stderr)
        sys.exit(2)
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
        "split_ratio": hp.get("split_ratio", 2.0),
        "checkpoint": ckpt.name,
    }
    # Checked under a temporary name: a model that fails the check never sits at out_file.
    candidate = final.with_name(f".{final.name}.unchecked")
    try:
        path = export_onnx(module.net, candidate, hp.input_size, metadata, cfg.opset,
                           overwrite=True)  # fmt: skip
        crops = random_crops(cfg.check.crops, hp.input_size, cfg.check.seed)
        report = onnx_parity(module.net, path, crops, tuple(cfg.check.batch_sizes))
        ok = report["max_abs_diff"] <= cfg.check.tolerance
        if ok:
            path.replace(final)
        size_mb = final.stat().st_size / 1e6 if ok else 0.0
    finally:
        candidate.unlink(missing_ok=True)
    report.update({"onnx": str(final) if ok else None, "checkpoint": str(ckpt),
                   "tolerance": cfg.check.tolerance})  # fmt: skip
    report_file = final.with_name("export_report.json")
    write_json_atomic(report, report_file)
    print(f"wrote {final} ({size_mb:.1f} MB)" if ok else f"{final}: not written (check failed)")
    print(
        f"onnxruntime vs PyTorch on {report['crops']} random crops, batch sizes "
        f"{report['batch_sizes']}: max |diff| {report['max_abs_diff']:.3g}, mean "
        f"{report['mean_abs_diff']:.3g} (output max {report['max_output']:.3g}) -> "
        f"{'OK' if ok else 'ABOVE TOLERANCE'} ({report_file})"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
