"""Train the whole-body student: ``python train.py [+experiment=NAME] [key=value ...]``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    """Print the composed config (the training loop lands with the training issue)."""
    print(OmegaConf.to_yaml(cfg, resolve=True))


if __name__ == "__main__":
    main()
