"""Train the whole-body student: ``python train.py [+experiment=NAME] [key=value ...]``.

With no arguments it trains the small CPU student on the built-in synthetic data set, tests it
on held-out synthetic images, prints the per-part AP table and writes ``metrics.json`` in the
run folder (``outputs/train/runs/<time>/``). See docs/training.md.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """One training job; returns ``cfg.optimized_metric`` for hyper-parameter sweepers."""
    from fullbody.jobs import train
    from fullbody.utils.cli import user_errors

    with user_errors(cfg):
        return train.run(cfg)


if __name__ == "__main__":
    main()
