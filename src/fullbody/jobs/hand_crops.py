"""The ``hand_crops.py`` command: build (or reuse) a held-out set of hand crops, label it with
the configured hand teacher and score it (:mod:`fullbody.pseudo.hand_crops`)."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from tqdm import tqdm

from fullbody.errors import ConfigError, OutputExistsError
from fullbody.evaluation.wholebody import format_table
from fullbody.jobs.pseudo_label import labeller, plain
from fullbody.jsonio import write_json_atomic
from fullbody.pseudo.hand_crops import CROPS_FILE, IMAGES, load_or_build_crops, score_hand_crops


def run(cfg: DictConfig) -> None:
    """Build (or reuse) the crop set, label it with the hand teacher, score, print, write."""
    teacher = plain(cfg.teacher.hand) if "teacher" in cfg else None
    if not teacher:
        raise ConfigError("teacher/hand: no hand teacher configured")
    name = cfg.name or HydraConfig.get().runtime.choices.get("teacher/hand")
    out_dir = Path(cfg.out_dir)
    labels_file, report_file = out_dir / f"labels.{name}.json", out_dir / f"report.{name}.json"
    if not cfg.overwrite and (labels_file.exists() or report_file.exists()):
        raise OutputExistsError(
            f"{labels_file} or {report_file} exists; pass another name= or overwrite=true"
        )
    bar = (lambda it: tqdm(it, desc="cutting hands", unit="hand")) if cfg.progress else iter
    crops = load_or_build_crops(
        cfg.ann_file, cfg.image_dir, out_dir, cfg.size, cfg.margin, cfg.area, cfg.overwrite, bar
    )
    job = labeller(
        cfg,
        ann_file=out_dir / CROPS_FILE,
        image_dir=out_dir / IMAGES,
        out_file=labels_file,
        teachers={"hand": teacher},
        part_boxes="gt",
    )
    table = score_hand_crops(job.run(), crops)
    table["settings"] = {
        **crops.header["hand_crops"],
        "teacher": teacher,
        "min_conf": plain(cfg.min_conf),
    }
    write_json_atomic(table, report_file)
    print(format_table(table["metrics"], parts=("hand", "lefthand", "righthand")))
    print("coverage (labelled / labelable):", json.dumps(table["coverage"]))
    print(f"crops: {out_dir / CROPS_FILE}, labels: {labels_file}, report: {report_file}")
