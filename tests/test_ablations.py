"""The ablation experiments (conf/experiment/ablation_*.yaml, docs/ablations.md): each sweeps
its variants (conf/ablation/<name>/) over two seeds at a fixed step count, tests on held-out
scenes, and each variant sets what it says."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.configs import compose_config
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
#: Per ablation, what each variant must compose to: (dotted key, value) pairs.
EXPECTED = {
    "labels": {
        "exact": [("data.train_labels", "exact"), ("data.pseudo", None)],
        "pseudo": [("data.train_labels", "pseudo"), ("data.pseudo", None)],
        "teachers_measured": [
            ("data.train_labels", "pseudo"),
            ("data.pseudo.part_noise.lefthand", 0.1517),
        ],
    },
    "confidence": {
        "weighted": [
            ("data.train.conf_weighting", True),
            ("data.train.conf_floor", 0.0),
            ("data.calibration_images", 0),
        ],
        "unweighted": [("data.train.conf_weighting", False), ("data.train.conf_floor", 0.0)],
        "threshold": [("data.train.conf_weighting", False), ("data.train.conf_floor", 0.5)],
        "recalibrated": [("data.train.conf_weighting", True), ("data.calibration_images", 50)],
    },
    "rmpe": {
        "plain": [("model.stn", False), ("model.parallel_sppe", False)],
        "sstn_psppe": [("model.stn", True), ("model.parallel_sppe", True)],
        "sstn": [("model.stn", True), ("model.parallel_sppe", False)],
    },
    "jitter": {
        "pgpg": [("data.train.jitter._target_", "fullbody.data.jitter.LearnedJitter")],
        "dpg": [("data.train.jitter._target_", "fullbody.data.jitter.DPGJitter")],
        "none": [("data.train.jitter", None)],
    },
}


def _with_hydra(overrides: list[str]) -> DictConfig:
    """train.yaml composed with ``overrides``, the ``hydra`` node (sweeper, mode) kept."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("train", overrides=overrides, return_hydra_config=True)


def _get(cfg, dotted: str):
    for key in dotted.split("."):
        cfg = cfg[key]
    return cfg


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_ablation_sweeps_its_variants_over_two_seeds(name, tmp_path):
    exp = f"+experiment=ablation_{name}"
    params = _with_hydra([exp]).hydra.sweeper.params
    variants = params[f"+ablation/{name}"].split(",")
    assert variants == list(EXPECTED[name])  # the baseline (default) first or as documented
    assert {p.stem for p in (CONF / "ablation" / name).glob("*.yaml")} == set(variants)
    assert len(str(params.seed).split(",")) >= 2
    for variant, pairs in EXPECTED[name].items():
        # The order a multirun job composes in: the sweep's parameters, then the command line.
        cfg = _with_hydra([f"+ablation/{name}={variant}", "seed=1", exp])
        for key, value in pairs:
            assert _get(cfg, key) == value, (variant, key)
        assert cfg.trainer.max_steps == 1000 and cfg.data.test_images == 200
        assert str(cfg.hydra.mode).endswith("MULTIRUN")


def test_the_pseudo_label_ablations_train_on_pseudo_labels(tmp_path):
    cfg = compose_config("train", ["+experiment=ablation_confidence"], output_dir=tmp_path)
    assert cfg.data.train_labels == "pseudo" and cfg.data.pseudo.part_noise.face == 0.01174
    for name in ("rmpe", "jitter"):
        cfg = compose_config("train", [f"+experiment=ablation_{name}"], output_dir=tmp_path)
        assert cfg.data._target_.endswith("SimulatedDetectorDataModule")
        assert cfg.data.det_jitter._target_.endswith("LearnedJitter")


@pytest.mark.slow
def test_the_labels_ablation_runs_as_one_command(tmp_path):
    """`python train.py +experiment=ablation_labels` (tiny): six jobs, tested on held-out
    scenes, and a summary with three variants of two seeds each."""
    sweep = tmp_path / "sweep"
    args = [f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}",
            "data.train_images=3", "data.val_images=2", "data.test_images=2",
            "data.batch_size=4", "trainer.max_steps=2", "model.head_channels=16",
            "model.spec.flip_test=false"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), WANDB_MODE="offline")
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "+experiment=ablation_labels",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(sweep / "sweep_summary_variants.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["overrides"], r["runs"]) for r in rows] == [
        (f"+ablation/labels={v}", "2") for v in ("exact", "pseudo", "teachers_measured")
    ]
    assert (tmp_path / "data" / "synthetic" / "val_n2_s8" / "annotations.json").is_file()
    derived = list((tmp_path / "data" / "synthetic" / "train_n3_s0").glob("pseudo_annotations_*"))
    assert len(derived) == 1  # the measured teachers' labels, made once for both seeds


def test_every_table_on_the_results_page_is_its_sweeps_summary():
    """docs/ablations.md: each variant table, marked with the summary it copies, holds that
    file's means and spreads (3 decimals), every variant of it, in its order."""
    page = (ROOT / "docs" / "ablations.md").read_text()
    marks = re.findall(r"<!-- table: (\S+) -->\n((?:\|.*\n)+)", page)
    assert len(marks) >= 4
    for source, table in marks:
        with open(ROOT / "docs" / source) as f:
            rows = list(csv.DictReader(f))
        lines = table.strip().splitlines()[2:]
        assert len(lines) == len(rows), source
        for line, row in zip(lines, rows, strict=True):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[0] == f"`{row['overrides'].split('=')[-1]}`" and cells[1] == row["runs"]
            parts = ("body", "foot", "face", "lefthand", "righthand", "wholebody")
            want = [f"{float(row[p + '/AP']):.3f} ± {float(row[p + '/AP_sd']):.3f}" for p in parts]
            assert cells[2:] == want, (source, cells[0])
