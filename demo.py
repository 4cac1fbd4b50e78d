"""Whole-body poses on images, folders or videos: ``python demo.py input=PATH ckpt_path=CKPT``.

See docs/inference.md. Everything lands in the run folder (``outputs/demo/runs/<time>/``), or
in ``out_dir`` (refused when it holds a previous demo's outputs, unless ``overwrite=true``).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    """Build detector and predictor from the config, run, print where the outputs are."""
    from hydra.utils import instantiate

    from fullbody.inference.run_demo import DemoRunner, check_out_dir, list_inputs, run_demo
    from fullbody.jsonio import AnnotationError
    from fullbody.models.checkpoint import CheckpointError
    from fullbody.utils.cli import user_errors

    errors = (FileNotFoundError, FileExistsError, PermissionError, AnnotationError, CheckpointError)
    with user_errors(*errors, cfg=cfg):
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


if __name__ == "__main__":
    main()
