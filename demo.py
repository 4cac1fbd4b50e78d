"""Whole-body poses on images, folders or videos: ``python demo.py input=PATH ckpt_path=CKPT``.

See docs/inference.md. Everything lands in the run folder (``outputs/demo/runs/<time>/``).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    """Build detector and predictor from the config, run, print where the outputs are."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from fullbody.inference.demo import DemoRunner, run_demo

    try:
        predictor = instantiate(cfg.predictor)
    except InstantiationException as e:
        # A missing or unusable checkpoint / ONNX file, or contradictory options: one line.
        if not isinstance(e.__cause__, FileNotFoundError | ValueError):
            raise
        print(f"error: {e.__cause__}", file=sys.stderr)
        sys.exit(2)
    runner = DemoRunner(
        predictor=predictor,
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
    )
    s = out.summary()
    print(
        f"{s['images']} images/frames, {s['people']} people, {len(s['skipped'])} skipped "
        f"-> {out.out_dir}"
    )
    for item in s["skipped"]:
        print(f"  skipped: {item['reason']}")


if __name__ == "__main__":
    main()
