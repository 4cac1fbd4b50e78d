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
    from fullbody.data.datamodule import DataConfigError
    from fullbody.jsonio import AnnotationError
    from fullbody.training import WEIGHTS_ERRORS, train
    from fullbody.utils.cli import ConfigError, OutputError, user_errors
    from fullbody.utils.ddp import distributed_job

    errors = (ConfigError, OutputError, DataConfigError, AnnotationError, *WEIGHTS_ERRORS)
    with user_errors(*errors, cfg=cfg), distributed_job():
        metrics = train(cfg)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
