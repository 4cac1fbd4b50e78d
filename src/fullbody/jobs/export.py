"""The ``export.py`` command: a checkpoint to ONNX, kept only when onnxruntime agrees with
PyTorch within ``check.tolerance``; the parity report (:func:`report_path`) is written either
way."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from fullbody.errors import OutputExistsError
from fullbody.inference.export import checkpoint_metadata, export_checked, random_crops
from fullbody.jsonio import write_json_atomic
from fullbody.models.module import load_pose_model


def report_path(onnx_file: Path) -> Path:
    """The parity report of ``onnx_file``: ``<stem>.export_report.json`` beside it, so that a
    second export into the same folder does not replace the first one's report."""
    return onnx_file.with_name(f"{onnx_file.stem}.export_report.json")


def run(cfg: DictConfig) -> None:
    """Load the checkpoint, export, compare, report; exit status 1 when the check fails."""
    ckpt = Path(cfg.ckpt_path).expanduser()
    module = load_pose_model(ckpt, "ckpt_path")
    final = Path(cfg.out_file).expanduser()
    if final.exists() and not cfg.overwrite:
        raise OutputExistsError(f"{final}: exists (pass overwrite=true to replace it)")
    crops = random_crops(cfg.check.crops, module.spec.input_size, cfg.check.seed)
    report, ok = export_checked(
        module.net,
        final,
        module.spec,
        checkpoint_metadata(module.hparams, ckpt.name),
        crops,
        tolerance=cfg.check.tolerance,
        opset=cfg.opset,
        batch_sizes=tuple(cfg.check.batch_sizes),
    )
    size_mb = final.stat().st_size / 1e6 if ok else 0.0
    report.update({"onnx": str(final) if ok else None, "checkpoint": str(ckpt),
                   "tolerance": cfg.check.tolerance})  # fmt: skip
    report_file = report_path(final)
    write_json_atomic(report, report_file)
    print(f"wrote {final} ({size_mb:.1f} MB)" if ok else f"{final}: not written (check failed)")
    print(
        f"onnxruntime vs PyTorch on {report['crops']} random crops, batch sizes "
        f"{report['batch_sizes']}: max |diff| {report['max_abs_diff']:.3g}, mean "
        f"{report['mean_abs_diff']:.3g} (output max {report['max_output']:.3g}) -> "
        f"{'OK' if ok else 'ABOVE TOLERANCE'} ({report_file})"
    )
    if not ok:
        sys.exit(1)  # the command's answer: no model (the report says why)
