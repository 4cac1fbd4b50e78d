"""Whole-body poses on images, folders or videos: ``python demo.py input=PATH ckpt_path=CKPT``.

See docs/inference.md. Everything lands in the run folder (``outputs/demo/runs/<time>/``).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    """Build detector and predictor from the config, run, print where the outputs are."""
    from hydra.utils import instantiate

    from fullbody.inference.run_demo import DemoRunner, run_demo

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
