"""Evaluate keypoint results with the official COCO-WholeBody metric.

``python eval.py ann_file=GT.json results_file=RESULTS.json [metrics_file=OUT.json] [nms=oks]``
prints AP/AR per part and writes ``metrics.json`` (keys ``"<part>/<stat>"``).

``python eval.py ckpt_path=RUN/checkpoints/last.ckpt [data=coco_wholebody ...]`` first predicts
with a checkpoint of ``train.py`` on the data config's test split (its validation split when it
has none) and evaluates those predictions against that split's labels; the predictions are
saved as ``results.json`` in the run folder.

A wrong option or file ends in one line naming it and exit status 2. An empty results list (a
model that found nobody) scores 0; ground truth that labels only some parts (a COCO person
file) is said so, in the log and in ``metrics.json``'s ``notes``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.breakdown import format_breakdown
from fullbody.evaluation.results import Predictions
from fullbody.evaluation.run import run_evaluation, write_evaluation
from fullbody.evaluation.wholebody import format_table, scope_note
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import EVAL_PARTS
from fullbody.utils.cli import ConfigError, OutputError, user_errors

log = logging.getLogger(__name__)
CHOICES = {"sigmas": ("official", "halpe"), "nms": ("none", "oks", "parametric")}


def check_options(cfg: DictConfig) -> Path:
    """Refuse unknown parts/sigmas/nms, an OKS threshold outside [0, 1] and a metrics file that
    cannot be written (ConfigError naming the option); return the metrics file's path."""
    parts = list(cfg.parts) if cfg.parts is not None else []
    unknown = [p for p in parts if p not in EVAL_PARTS]
    if not parts or unknown:
        raise ConfigError(f"parts={parts}: unknown {unknown or 'none given'}; choose from "
                          f"{list(EVAL_PARTS)}")  # fmt: skip
    for key, choices in CHOICES.items():
        if cfg[key] not in choices:
            raise ConfigError(f"{key}={cfg[key]}: unknown; expected one of {list(choices)}")
    t = cfg.oks_threshold
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
        raise ConfigError(f"oks_threshold={t}: must be a number in [0, 1]")
    out = Path(cfg.metrics_file).expanduser()
    if out.is_dir():
        raise ConfigError(f"metrics_file={out}: is a folder; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"metrics_file={out}: cannot create its folder: {e.strerror}") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"metrics_file={out}: its folder is not writable")
    return out


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Load, validate, (optionally) NMS, evaluate, print and write the metrics."""
    errors = (ConfigError, OutputError, AnnotationError, FileNotFoundError, ValueError)
    with user_errors(*errors, cfg=cfg):
        evaluate_job(cfg)


def evaluate_job(cfg: DictConfig) -> None:
    """What ``eval.py`` does (see the module docs)."""
    out = check_options(cfg)
    parts = tuple(cfg.parts)
    if cfg.get("ckpt_path"):
        from fullbody.training import predict_checkpoint

        gt, preds = predict_checkpoint(cfg.ckpt_path, cfg.data, cfg.trainer)
        source = str(cfg.ckpt_path)
        saved = preds.save(Path(cfg.paths.output_dir) / "results.json", overwrite=True)
        print(f"predictions written to {saved}")
    else:
        for key in ("ann_file", "results_file"):
            if not cfg.get(key):
                raise ConfigError(f"{key} is not set: give {key}=PATH (or ckpt_path=CKPT)")
        gt = WholeBodySet.load(cfg.ann_file)
        preds = Predictions.load(cfg.results_file, images=gt.images, allow_empty=True)
        source = str(cfg.results_file)
        if not len(preds):
            log.warning("%s: no predictions (a model that found nobody): every AP is 0", source)
    run = run_evaluation(
        gt,
        preds,
        parts=parts,
        sigmas=cfg.sigmas,
        nms=cfg.nms,
        oks_threshold=cfg.oks_threshold,
        breakdowns=cfg.breakdown,
    )  # fmt: skip  (written below, once printed, with the scope note)
    print(f"{source}: {len(run.predictions)} predictions on {len(gt.images)} images "
          f"({cfg.sigmas} sigmas)")  # fmt: skip
    print(format_table(run.metrics, parts))
    note = scope_note(gt, parts)
    if note:
        log.warning("%s", note)
    if run.breakdowns:
        print(format_breakdown(run.breakdowns["size"], "person size"))
        print(format_breakdown(run.breakdowns["occlusion"], "occluded fraction"))
    replaced = out.exists()
    write_evaluation(run, out, notes=[note] if note else ())
    print(f"metrics {'replaced in' if replaced else 'written to'} {out}")
    if run.breakdowns:
        print(f"breakdown written to {out.with_name('breakdown.json')}")


if __name__ == "__main__":
    main()
