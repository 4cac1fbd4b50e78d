"""The repository's Hydra configs, composed as the entry points compose them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

CONF = Path(__file__).resolve().parents[2] / "conf"


def compose_config(
    name: str, overrides: Sequence[str] = (), *, output_dir: Path | None = None
) -> DictConfig:
    """``conf/<name>.yaml`` with ``overrides`` (and ``paths.output_dir`` when given), composed
    outside any run (a Hydra instance left by an earlier test is cleared first)."""
    GlobalHydra.instance().clear()
    extra = [] if output_dir is None else [f"paths.output_dir={output_dir}"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(name, overrides=[*overrides, *extra])


def run_config(
    name: str, overrides: Sequence[str], *, output_dir: Path, data_dir: Path | None = None
) -> DictConfig:
    """The config as the job of ``conf/<name>.yaml`` sees it inside a run: composed with its
    output (and data) folder, the run's HydraConfig set, the ``hydra`` node removed."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    extra = [f"paths.output_dir={output_dir}"]
    extra += [] if data_dir is None else [f"paths.data_dir={data_dir}"]
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(name, overrides=[*overrides, *extra], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
