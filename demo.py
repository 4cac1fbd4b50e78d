"""Whole-body poses on images, folders or videos: ``python demo.py input=PATH ckpt_path=CKPT``.

See docs/inference.md. Everything lands in the run folder (``outputs/demo/runs/<time>/``), or
in ``out_dir`` (refused when it holds a previous demo's outputs, unless ``overwrite=true``).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    """Detect, estimate and draw (see the module docs)."""
    from fullbody.jobs import demo
    from fullbody.utils.cli import user_errors

    with user_errors(cfg):
        demo.run(cfg)


if __name__ == "__main__":
    main()
