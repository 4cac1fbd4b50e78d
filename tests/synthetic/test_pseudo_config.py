"""Pseudo-label settings: per-part noise, refusals, and pseudo-labels derived from a generated
set's exact labels (made once per config, reused, identical to the generator's by default)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import PART_SLICES
from fullbody.synthetic import (
    PSEUDO_ANNOTATIONS,
    PseudoConfig,
    derive_pseudo_labels,
    generate,
    generate_labels,
    perturb_labels,
    pseudo_labels_name,
)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "set"
    return generate(out, 4, seed=3, pseudo=True, progress=False)


def test_default_config_derives_the_generators_file_byte_for_byte(small_set: Path) -> None:
    path = derive_pseudo_labels(small_set, PseudoConfig())
    assert path.name == pseudo_labels_name(PseudoConfig()) and path.parent == small_set
    assert path.read_bytes() == (small_set / PSEUDO_ANNOTATIONS).read_bytes()


def test_part_noise_moves_only_its_part() -> None:
    gt = generate_labels(12, seed=4)
    default = perturb_labels(gt, 4)
    same = perturb_labels(gt, 4, config=PseudoConfig(part_noise=dict.fromkeys(
        ("foot", "face", "lefthand", "righthand"), 0.03)))  # fmt: skip
    np.testing.assert_array_equal(same.keypoints, default.keypoints)
    np.testing.assert_array_equal(same.conf, default.conf)
    face = perturb_labels(gt, 4, config=PseudoConfig(part_noise={"face": 0.2}))
    np.testing.assert_array_equal(face.conf, default.conf)  # confidences follow relative error
    sl = PART_SLICES["face"]
    rest = np.ones(133, bool)
    rest[sl] = False
    np.testing.assert_array_equal(face.keypoints[:, rest], default.keypoints[:, rest])
    err = [np.abs(s.keypoints[:, sl, :2] - gt.keypoints[:, sl, :2])[gt.keypoints[:, sl, 2] > 0]
           for s in (default, face)]  # fmt: skip
    assert np.median(err[1]) > 3 * np.median(err[0])


def test_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"PseudoConfig.part_noise.hand: unknown part"):
        PseudoConfig(part_noise={"hand": 0.1})
    with pytest.raises(ValueError, match=r"PseudoConfig.noise: must be > 0"):
        PseudoConfig(noise=0)
    with pytest.raises(ValueError, match=r"data.pseudo.p_drop: must lie in \[0, 1\]"):
        PseudoConfig.from_options({"p_drop": 1.5}, "data.pseudo")
    with pytest.raises(ValueError, match=r"data.pseudo.part_noise.face: must be > 0"):
        PseudoConfig.from_options({"part_noise": {"face": "big"}}, "data.pseudo")
    with pytest.raises(ValueError, match=r"data.pseudo.nosie: unknown field"):
        PseudoConfig.from_options({"nosie": 0.1}, "data.pseudo")
    cfg = PseudoConfig.from_options({"noise": 1, "part_noise": {"foot": 2}}, "data.pseudo")
    assert cfg.noise_of("foot") == 2.0 and cfg.noise_of("face") == 1


def test_derived_file_is_made_once_reused_and_unique_to_its_config(tmp_path: Path) -> None:
    out = generate(tmp_path / "set", 3, seed=2, progress=False)
    cfg = PseudoConfig(part_noise={"face": 0.05})
    path = derive_pseudo_labels(out, cfg)
    stamp = path.stat().st_mtime_ns
    assert derive_pseudo_labels(out, replace(cfg)) == path and path.stat().st_mtime_ns == stamp
    other = derive_pseudo_labels(out, PseudoConfig(part_noise={"face": 0.06}))
    assert other != path and other.read_bytes() != path.read_bytes()
    assert WholeBodySet.load(path).to_json() == perturb_labels(
        WholeBodySet.load(out / "annotations.json"), 2, config=cfg).to_json()  # fmt: skip
    assert not list(out.glob(".*.tmp"))
    # The set's own files: not foreign to the generator, removed when the set is replaced.
    assert generate(out, 3, seed=2, progress=False) == out
    generate(out, 2, seed=2, overwrite=True, progress=False)
    assert not path.exists() and not other.exists()


def test_derive_needs_a_finished_set(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no finished synthetic data set"):
        derive_pseudo_labels(tmp_path, PseudoConfig())
