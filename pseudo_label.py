"""Pseudo-label COCO people with face, hand and foot teachers (docs/pseudo_labels.md).

``python pseudo_label.py ann_file=person_keypoints_train2017.json image_dir=train2017
out_file=pseudo.json [teacher/face=dlib] [part_boxes=gt] [workers=2] [report=true]``
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="conf", config_name="pseudo_label")
def main(cfg: DictConfig) -> None:
    """Run the sharded, resumable labelling job and, if asked, its quality report."""
    from fullbody.jsonio import AnnotationError
    from fullbody.pseudo.runner import PseudoLabeller
    from fullbody.pseudo.teachers.base import TeacherError
    from fullbody.utils.cli import user_errors

    teachers = OmegaConf.to_container(cfg.get("teacher") or {}, resolve=True)
    # Bad input or setting (an image that disagrees with its record, a truncated image, a shard
    # folder of another job, a teacher file that is not one, ...): one line naming it, exit 2;
    # finished shards are kept.
    errors = (AnnotationError, FileNotFoundError, FileExistsError, ValueError, TeacherError)
    with user_errors(*errors, cfg=cfg):
        job = PseudoLabeller(
            ann_file=cfg.ann_file,
            image_dir=cfg.image_dir,
            out_file=cfg.out_file,
            teachers=teachers,
            part_boxes=cfg.part_boxes,
            min_conf=(
                OmegaConf.to_container(cfg.min_conf)
                if OmegaConf.is_dict(cfg.min_conf)
                else cfg.min_conf
            ),
            fusion=cfg.fusion,
            fusion_parts=list(cfg.fusion_parts),
            workers=cfg.workers,
            shard_size=cfg.shard_size,
            threads_per_worker=cfg.threads_per_worker,
            overwrite=cfg.overwrite,
            keep_shards=cfg.keep_shards,
            progress=cfg.progress,
            report=cfg.report,
            skip_bad_images=cfg.skip_bad_images,
        )
        labels = job.run()
    print(f"wrote {len(labels)} people to {cfg.out_file}")
    if job.skipped:
        print(f"skipped {len(job.skipped)} unreadable images, listed in {job.skipped_file}")
    if job.report_table is not None:
        from fullbody.evaluation.wholebody import format_table
        from fullbody.pseudo.report import format_calibration

        print(format_table(job.report_table["metrics"]))
        print(format_calibration(job.report_table["calibration"]))
        print(f"report: {job.report_file}, reliability plot: {job.calibration_plot}")


if __name__ == "__main__":
    main()
