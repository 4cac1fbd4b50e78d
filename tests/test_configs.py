"""Every config file under conf/ composes: each entry config, each option of each group (every
experiment included), with every interpolation resolved that can be without data — a value the
user must give (``???``) is the only thing left open."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from helpers.configs import CONF, run_config
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

#: What an entry config needs on the command line before it composes.
ENTRIES = {
    "train": [],
    "eval": [],
    "demo": ["input=x.jpg"],
    "export": [],
    "pseudo_label": [],
    "hand_crops": [],
}
#: The entry config that holds each group (the rest belong to train.yaml).
GROUP_ENTRY = {"detector": "demo", "teacher": "pseudo_label"}
#: Options that need a Hydra plugin, and the plugin's module.
PLUGINS = {
    "hparams_search/optuna": "hydra_plugins.hydra_optuna_sweeper",
    "hydra/launcher/slurm_gpu": "hydra_plugins.hydra_submitit_launcher",
}
OPTIONS = sorted(
    p.relative_to(CONF).with_suffix("").as_posix()
    for p in CONF.rglob("*.yaml")
    if p.parent != CONF and not p.name.startswith("_")  # _partials are included by options
)


def resolve_all(cfg: DictConfig | ListConfig, where: str = "") -> int:
    """Resolve every value of ``cfg`` (raising on any interpolation that cannot be resolved)
    except values the user must give; returns how many values were resolved."""
    n = 0
    keys = range(len(cfg)) if isinstance(cfg, ListConfig) else list(cfg.keys())
    for key in keys:
        path = f"{where}.{key}" if where else str(key)
        try:
            value = cfg[key]
        except (MissingMandatoryValue, InterpolationToMissingValueError):
            continue
        if isinstance(value, DictConfig | ListConfig):
            n += resolve_all(value, path)
        else:
            n += 1
    return n


def _compose(entry: str, overrides: list[str], tmp_path: Path) -> DictConfig:
    return run_config(entry, [*ENTRIES[entry], *overrides], output_dir=tmp_path / "run",
                      data_dir=tmp_path / "data")  # fmt: skip


def test_the_glob_sees_every_kind_of_config():
    groups = {o.rsplit("/", 1)[0] for o in OPTIONS}
    assert {"data", "data/jitter", "model", "experiment", "evaluation", "teacher/hand",
            "detector", "hydra/launcher"} <= groups  # fmt: skip
    assert {p.stem for p in CONF.glob("*.yaml")} == set(ENTRIES)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_entry_config_composes(entry, tmp_path):
    cfg = _compose(entry, [], tmp_path)
    assert resolve_all(cfg) > 5
    assert cfg.paths.output_dir == str(tmp_path / "run")


@pytest.mark.parametrize("option", OPTIONS)
def test_group_option_composes(option, tmp_path):
    if option in PLUGINS and importlib.util.find_spec(PLUGINS[option]) is None:
        pytest.skip(f"{option} needs {PLUGINS[option]}")
    group, name = option.rsplit("/", 1)
    entry = GROUP_ENTRY.get(group.split("/")[0], "train")
    try:
        cfg = _compose(entry, [f"{group}={name}"], tmp_path)
    except ConfigCompositionException as e:  # a group the entry has no default for: add it
        if "+" not in str(e) and "not in the defaults list" not in str(e).lower():
            raise
        cfg = _compose(entry, [f"+{group}={name}"], tmp_path)
    assert resolve_all(cfg) > 5
    OmegaConf.to_container(cfg, resolve=False)  # the whole tree is a plain config


def test_resolve_all_leaves_only_mandatory_values_open():
    from omegaconf.errors import InterpolationKeyError

    cfg = OmegaConf.create({"a": 1, "b": "${a}", "c": "???", "d": "${c}", "e": [{"f": "${b}"}]})
    assert resolve_all(cfg) == 3
    with pytest.raises(InterpolationKeyError):
        resolve_all(OmegaConf.create({"x": {"y": "${no.such.key}"}}))
