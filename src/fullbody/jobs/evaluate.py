"""The ``eval.py`` command: score a results file, or a checkpoint's predictions, with the
official COCO-WholeBody metric; print the per-part table and write the metrics files.

The pass itself (NMS, metric, breakdowns, atomic writes) is :mod:`fullbody.evaluation.run`,
shared with the training callback; this module adds what the command owns: its options, where
the predictions come from (a results file, or :func:`predict_checkpoint` on a data config's
test split) and what it prints.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from fullbody.annotations import WholeBodySet
from fullbody.errors import ConfigError
from fullbody.evaluation.breakdown import format_breakdown
from fullbody.evaluation.nms import check_nms_method
from fullbody.evaluation.run import run_evaluation, write_evaluation
from fullbody.evaluation.wholebody import format_table, scope_note
from fullbody.keypoints import EVAL_PARTS
from fullbody.results import Predictions

log = logging.getLogger(__name__)
SIGMAS = ("official", "halpe")


def check_options(cfg: DictConfig) -> Path:
    """Refuse mixed modes (a checkpoint and files), unknown parts/sigmas/nms of the
    ``evaluation`` group, an OKS threshold outside [0, 1] and a metrics file that cannot be
    written (ConfigError naming the option); return the metrics file's path."""
    files = [k for k in ("ann_file", "results_file") if cfg.get(k)]
    if cfg.get("ckpt_path") and files:
        given = " ".join(f"{k}={cfg[k]}" for k in files)
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} and {given}: a checkpoint is scored on the data "
            "config's test split, a results file against ann_file; give one mode, not both"
        )
    ev = cfg.evaluation
    parts = list(ev.parts) if ev.parts is not None else []
    unknown = [p for p in parts if p not in EVAL_PARTS]
    if not parts or unknown:
        raise ConfigError(f"evaluation.parts={parts}: unknown {unknown or 'none given'}; choose "
                          f"from {list(EVAL_PARTS)}")  # fmt: skip
    if ev.sigmas not in SIGMAS:
        raise ConfigError(f"evaluation.sigmas={ev.sigmas}: unknown; expected one of {list(SIGMAS)}")
    check_nms_method(ev.nms, "evaluation.nms")
    t = ev.oks_threshold
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
        raise ConfigError(f"evaluation.oks_threshold={t}: must be a number in [0, 1]")
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


def predict_checkpoint(
    ckpt_path: str | Path, data_cfg: DictConfig, trainer_cfg: DictConfig | None = None
) -> tuple[WholeBodySet, Predictions]:
    """Predict with a ``train.py`` checkpoint on a data config's test split.

    The checkpoint loads with its own weights only (:func:`fullbody.models.module.load_pose_model`).
    The data config's ``input_size``/``heatmap_size`` are set to the checkpoint's. Returns the
    split's ground truth (a ``WholeBodySet``) and the predictions (``Predictions``, one row per
    person box, in ``person_id`` order).
    """
    # Imported here: scoring a results file needs neither torch nor Lightning.
    import lightning as L
    from hydra.utils import instantiate

    from fullbody.evaluation.callback import gather_predictions
    from fullbody.models.module import load_pose_model
    from fullbody.utils.machine import resolve_precision

    path = Path(ckpt_path).expanduser()
    model = load_pose_model(path, "ckpt_path")
    data_cfg = data_cfg.copy()
    with open_dict(data_cfg):
        data_cfg.input_size = list(model.hparams.input_size)
        data_cfg.heatmap_size = list(model.hparams.heatmap_size)
    datamodule = instantiate(data_cfg)
    kwargs = OmegaConf.to_container(trainer_cfg, resolve=True) if trainer_cfg else {}
    assert isinstance(kwargs, dict)
    if "precision" in kwargs:
        kwargs["precision"] = resolve_precision(kwargs["precision"], kwargs.get("accelerator"))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, **kwargs)
    batches = trainer.predict(model, datamodule=datamodule)
    chunks = [{k: v.detach().cpu().numpy() for k, v in b["preds"].items()} for b in batches or []]
    arrays = gather_predictions(chunks)
    preds = Predictions(
        image_ids=arrays["image_id"],
        keypoints=arrays["keypoints"],
        scores=arrays["score"],
        bboxes=arrays["bbox"],
    )
    gt = datamodule.test_annotations
    preds.validate(gt.images, str(path))
    log.info("%d predictions from %s", len(preds), path)
    return gt, preds


def run(cfg: DictConfig) -> None:
    """What ``eval.py`` does: load (or predict), validate, NMS, evaluate, print and write."""
    out = check_options(cfg)
    ev = cfg.evaluation
    parts = tuple(ev.parts)
    if cfg.get("ckpt_path"):
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
        sigmas=ev.sigmas,
        nms=ev.nms,
        oks_threshold=ev.oks_threshold,
        breakdowns=ev.breakdowns,
    )  # fmt: skip  (written below, once printed, with the scope note)
    print(f"{source}: {len(run.predictions)} predictions on {len(gt.images)} images "
          f"({ev.sigmas} sigmas)")  # fmt: skip
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
