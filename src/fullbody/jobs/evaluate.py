"""The ``eval.py`` command: score a results file, a checkpoint's predictions or a pose model's
predictions with the official COCO-WholeBody metric; print the per-part table and write the
metrics files.

The pass itself (NMS, metric, breakdowns, atomic writes) is :mod:`fullbody.evaluation.run`,
shared with the training callback; this module adds what the command owns: its options, where
the predictions come from (a results file, :func:`predict_checkpoint` on a data config's test
split, or :func:`predict_pose_model` on ``ann_file``'s images) and what it prints. Exactly one
source is given; an option of another source is refused, never ignored.
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
    """Refuse unknown parts/sigmas/nms of the ``evaluation`` group, an OKS threshold outside
    [0, 1] and a metrics file that cannot be written (ConfigError naming the option); return the
    metrics file's path. Mixed sources of predictions: :func:`check_source`."""
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
    The data config crops with the checkpoint's spec (its input size and box padding, whatever
    the data config says). Returns the
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
        data_cfg.spec = model.spec.to_dict()
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


#: The sources of predictions, and the options only one of them reads.
SOURCES = {"results_file": ("ann_file",), "ckpt_path": (),
           "pose_model": ("ann_file", "image_dir", "det_file")}  # fmt: skip


def check_source(cfg: DictConfig) -> str:
    """The one source of predictions the options give; a ConfigError when none, several, or an
    option another source reads (e.g. ``image_dir`` without ``pose_model``) is set."""
    files = [k for k in ("ann_file", "results_file") if cfg.get(k)]
    if cfg.get("ckpt_path") and files and not cfg.get("pose_model"):
        shown = " ".join(f"{k}={cfg[k]}" for k in files)
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} and {shown}: a checkpoint is scored on the data "
            "config's test split, a results file against ann_file; give one mode, not both"
        )
    given = [k for k in SOURCES if cfg.get(k)]
    if len(given) != 1:
        raise ConfigError(f"give exactly one of {', '.join(f'{k}=...' for k in SOURCES)}; got "
                          f"{' and '.join(given) or 'none'}")  # fmt: skip
    source = given[0]
    stray = [k for k in ("ann_file", "image_dir", "det_file")
             if cfg.get(k) and k not in SOURCES[source]]  # fmt: skip
    if stray:
        why = ("a checkpoint is scored on its data config's labels" if source == "ckpt_path"
               else f"{source}=... does not read it")  # fmt: skip
        raise ConfigError(f"{', '.join(stray)}: not read with {source}=... ({why}); remove it")
    return source


def predict_pose_model(cfg: DictConfig) -> tuple[WholeBodySet, Predictions]:
    """Run ``pose_model`` over ``ann_file``'s images (:mod:`fullbody.inference.on_images`)."""
    from fullbody.inference.detectors import DetectionFileDetector
    from fullbody.inference.on_images import predict_annotated_images
    from fullbody.inference.wholebody import load_pose_model

    for key in ("ann_file", "image_dir"):
        if not cfg.get(key):
            raise ConfigError(f"{key} is not set: pose_model=... is run on ann_file's images "
                              "in image_dir")  # fmt: skip
    gt = WholeBodySet.load(cfg.ann_file)
    detector = DetectionFileDetector(cfg.det_file) if cfg.get("det_file") else None
    predictor = load_pose_model(cfg.pose_model, cfg.get("device", "auto"))
    boxes = cfg.det_file if detector else "the ground truth's person boxes"
    log.info("%s on %d images of %s, boxes from %s", cfg.pose_model, len(gt.images),
             cfg.ann_file, boxes)  # fmt: skip
    return gt, predict_annotated_images(predictor, gt, cfg.image_dir, detector)


def run(cfg: DictConfig) -> None:
    """What ``eval.py`` does: load (or predict), validate, NMS, evaluate, print and write."""
    kind = check_source(cfg)
    out = check_options(cfg)
    ev = cfg.evaluation
    parts = tuple(ev.parts)
    if kind in ("ckpt_path", "pose_model"):
        if kind == "ckpt_path":
            gt, preds = predict_checkpoint(cfg.ckpt_path, cfg.data, cfg.trainer)
        else:
            gt, preds = predict_pose_model(cfg)
        source = str(cfg[kind])
        saved = preds.save(Path(cfg.paths.output_dir) / "results.json", overwrite=True)
        print(f"predictions written to {saved}")
    else:
        if not cfg.get("ann_file"):
            raise ConfigError("ann_file is not set: give ann_file=PATH for results_file=...")
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
