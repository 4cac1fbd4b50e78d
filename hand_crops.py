"""Score a hand teacher on held-out hand crops of a labelled set (docs/pseudo_labels.md).

``python hand_crops.py ann_file=coco_wholebody_val_v1.0.json image_dir=val2017 out_dir=hands32
[size=32] [margin=2.0] [area=person] [teacher/hand=mediapipe_plain] [workers=2]``
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="conf", config_name="hand_crops")
def main(cfg: DictConfig) -> None:
    """Build (or reuse) the crop set, label it with the hand teacher, score it."""
    import json
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from tqdm import tqdm

    from fullbody.evaluation.wholebody import format_table
    from fullbody.jsonio import AnnotationError, write_json_atomic
    from fullbody.pseudo.hand_crops import (
        CROPS_FILE,
        IMAGES,
        load_or_build_crops,
        score_hand_crops,
    )
    from fullbody.pseudo.runner import PseudoLabeller
    from fullbody.pseudo.teachers.base import TeacherError
    from fullbody.utils.cli import ConfigError, user_errors

    errors = (AnnotationError, FileNotFoundError, FileExistsError, ValueError, TeacherError)
    with user_errors(ConfigError, *errors, cfg=cfg):
        teacher = (
            OmegaConf.to_container(cfg.teacher.hand, resolve=True) if "teacher" in cfg else None
        )
        if not teacher:
            raise ConfigError("teacher/hand: no hand teacher configured")
        name = cfg.name or HydraConfig.get().runtime.choices.get("teacher/hand")
        out_dir = Path(cfg.out_dir)
        labels_file, report_file = out_dir / f"labels.{name}.json", out_dir / f"report.{name}.json"
        if not cfg.overwrite and (labels_file.exists() or report_file.exists()):
            raise FileExistsError(
                f"{labels_file} or {report_file} exists; pass another name= or overwrite=true"
            )
        bar = (lambda it: tqdm(it, desc="cutting hands", unit="hand")) if cfg.progress else iter
        crops = load_or_build_crops(
            cfg.ann_file, cfg.image_dir, out_dir, cfg.size, cfg.margin, cfg.area,
            cfg.overwrite, bar,
        )  # fmt: skip
        min_conf = (
            OmegaConf.to_container(cfg.min_conf)
            if OmegaConf.is_dict(cfg.min_conf)
            else cfg.min_conf
        )
        job = PseudoLabeller(
            ann_file=out_dir / CROPS_FILE,
            image_dir=out_dir / IMAGES,
            out_file=labels_file,
            teachers={"hand": teacher},
            part_boxes="gt",
            min_conf=min_conf,
            workers=cfg.workers,
            shard_size=cfg.shard_size,
            threads_per_worker=cfg.threads_per_worker,
            overwrite=cfg.overwrite,
            progress=cfg.progress,
        )
        table = score_hand_crops(job.run(), crops)
        table["settings"] = {**crops.header["hand_crops"], "teacher": teacher, "min_conf": min_conf}
        write_json_atomic(table, report_file)
    print(format_table(table["metrics"], parts=("hand", "lefthand", "righthand")))
    print("coverage (labelled / labelable):", json.dumps(table["coverage"]))
    print(f"crops: {out_dir / CROPS_FILE}, labels: {labels_file}, report: {report_file}")


if __name__ == "__main__":
    main()
