"""Evaluate keypoint results with the official COCO-WholeBody metric.

``python eval.py ann_file=GT.json results_file=RESULTS.json [metrics_file=OUT.json] [nms=oks]``
prints AP/AR per part and writes ``metrics.json`` (keys ``"<part>/<stat>"``).

``python eval.py ckpt_path=RUN/checkpoints/last.ckpt [data=coco_wholebody ...]`` first predicts
with a checkpoint of ``train.py`` on the data config's test split (its validation split when it
has none) and evaluates those predictions against that split's labels; the predictions are
saved as ``results.json`` in the run folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.breakdown import (
    OCCLUSION_PARTS,
    format_breakdown,
    occlusion_breakdown,
    size_breakdown,
)
from fullbody.evaluation.nms import nms_per_image
from fullbody.evaluation.results import Predictions
from fullbody.evaluation.wholebody import evaluate, format_table
from fullbody.jsonio import AnnotationError, write_json_atomic


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Load, validate, (optionally) NMS, evaluate, print and write the metrics."""
    parts = tuple(cfg.parts)
    try:
        if cfg.get("ckpt_path"):
            from fullbody.training import predict_checkpoint

            gt, preds = predict_checkpoint(cfg.ckpt_path, cfg.data, cfg.trainer)
            source = str(cfg.ckpt_path)
            saved = preds.save(Path(cfg.paths.output_dir) / "results.json", overwrite=True)
            print(f"predictions written to {saved}")
        else:
            for key in ("ann_file", "results_file"):
                if not cfg.get(key):
                    raise ValueError(f"{key} is not set: give {key}=PATH (or ckpt_path=CKPT)")
            gt = WholeBodySet.load(cfg.ann_file)
            preds = Predictions.load(cfg.results_file, images=gt.images)
            source = str(cfg.results_file)
    except (AnnotationError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    preds = nms_per_image(preds, cfg.nms, oks_threshold=cfg.oks_threshold)
    metrics = evaluate(gt, preds, parts, cfg.sigmas)
    print(f"{source}: {len(preds)} predictions on {len(gt.images)} images ({cfg.sigmas} sigmas)")
    print(format_table(metrics, parts))
    out = Path(cfg.metrics_file)
    replaced = out.exists()
    write_json_atomic(metrics, out)
    print(f"metrics {'replaced in' if replaced else 'written to'} {out}")
    if cfg.breakdown:
        breakdown = {
            "size": size_breakdown(gt, preds, parts, sigmas=cfg.sigmas),
            "occlusion": occlusion_breakdown(
                gt, preds, [p for p in OCCLUSION_PARTS if p in parts], sigmas=cfg.sigmas
            ),
        }
        print(format_breakdown(breakdown["size"], "person size"))
        print(format_breakdown(breakdown["occlusion"], "occluded fraction"))
        bd = out.with_name("breakdown.json")
        write_json_atomic(breakdown, bd)
        print(f"breakdown written to {bd}")


if __name__ == "__main__":
    main()
