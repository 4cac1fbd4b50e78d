"""The ``demo.py`` command: detector and pose predictor from the config over images, folders
or videos (:mod:`fullbody.inference.run_demo`); prints what was drawn and where."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from fullbody.inference.run_demo import DemoRunner, check_out_dir, list_inputs, run_demo


def run(cfg: DictConfig) -> None:
    """Build detector and predictor from the config, run, print where the outputs are."""
    # Input and output folder first: a mistake in either costs no drawing.
    list_inputs(cfg.input)
    check_out_dir(cfg.out_dir, cfg.overwrite)
    runner = DemoRunner(
        predictor=instantiate(cfg.predictor),
        detector=instantiate(cfg.detector),
        draw_threshold=cfg.draw.threshold,
        min_pose_score=cfg.draw.min_pose_score,
        draw_boxes=cfg.draw.boxes,
    )
    out = run_demo(
        cfg.input,
        runner,
        cfg.out_dir,
        ann_file=cfg.ann_file,
        progress=cfg.progress,
        video_codec=cfg.video_codec,
        max_frames=cfg.max_frames,
        overwrite=cfg.overwrite,
    )
    s = out.summary()
    print(
        f"{s['images']} images/frames, {s['people']} people, {len(s['skipped'])} skipped "
        f"-> {out.out_dir}"
    )
    for item in s["skipped"]:
        print(f"  skipped: {item['reason']}")
