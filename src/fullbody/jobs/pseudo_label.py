"""The ``pseudo_label.py`` command: the sharded, resumable pseudo-labelling job
(:class:`fullbody.pseudo.runner.PseudoLabeller`) and, if asked, its quality report.

:func:`labeller` reads the options every labelling command shares (confidence floor, workers,
shards, threads, overwrite, progress); ``hand_crops.py`` builds its job with it too.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from fullbody.evaluation.wholebody import format_table
from fullbody.pseudo.report import format_calibration
from fullbody.pseudo.runner import PseudoLabeller


def plain(node: Any) -> Any:
    """A config value as plain Python (a per-part mapping as a dict, resolved)."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def labeller(cfg: DictConfig, **job: Any) -> PseudoLabeller:
    """The labelling job of a command's config: the shared run options from ``cfg``, the rest
    (inputs, output, teachers, ...) as ``job`` keywords."""
    shared = {
        "min_conf": plain(cfg.min_conf),
        "workers": cfg.workers,
        "shard_size": cfg.shard_size,
        "threads_per_worker": cfg.threads_per_worker,
        "overwrite": cfg.overwrite,
        "progress": cfg.progress,
    }
    return PseudoLabeller(**{**shared, **job})


def run(cfg: DictConfig) -> None:
    """Label, save and print where the labels (and the skipped images, the report) are.

    Bad input or settings (an image that disagrees with its record, a truncated image, a shard
    folder of another job, a teacher file that is not one, ...) raise a UserError; finished
    shards are kept.
    """
    job = labeller(
        cfg,
        ann_file=cfg.ann_file,
        image_dir=cfg.image_dir,
        out_file=cfg.out_file,
        teachers=plain(cfg.get("teacher") or {}),
        part_boxes=cfg.part_boxes,
        fusion=cfg.fusion,
        fusion_parts=list(cfg.fusion_parts),
        keep_shards=cfg.keep_shards,
        report=cfg.report,
        skip_bad_images=cfg.skip_bad_images,
    )
    labels = job.run()
    print(f"wrote {len(labels)} people to {cfg.out_file}")
    if job.skipped:
        print(f"skipped {len(job.skipped)} unreadable images, listed in {job.skipped_file}")
    if job.report_table is not None:
        print(format_table(job.report_table["metrics"]))
        print(format_calibration(job.report_table["calibration"]))
        print(f"report: {job.report_file}, reliability plot: {job.calibration_plot}")
        print(f"calibration map (data.train.conf_calibration): {job.calibration_map_file}")
