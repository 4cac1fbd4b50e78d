"""Fitting per-part noise to target APs: reaches the target with the report's scoring,
deterministic, flags what it cannot reach, and its command line prints the preset block."""

from __future__ import annotations

import pytest
import yaml

from fullbody.pseudo.noise_fit import fit_part_noise, main, part_aps
from fullbody.pseudo.report import quality_report
from fullbody.synthetic import PseudoConfig, generate_labels, perturb_labels


@pytest.fixture(scope="module")
def exact():
    return generate_labels(40, seed=6)


def test_scoring_is_the_pseudo_label_reports(exact) -> None:
    pseudo = perturb_labels(exact, 6)
    metrics = quality_report(pseudo, exact)["metrics"]
    assert part_aps(pseudo, exact) == {p: metrics[f"{p}/AP"] for p in part_aps(pseudo, exact)}


def test_fit_reaches_its_targets(exact) -> None:
    targets = {"face": 0.6, "lefthand": 0.3, "righthand": 0.45}
    fit = fit_part_noise(exact, targets, 6, tol=0.01)
    assert fit.reached == dict.fromkeys(targets, True)
    ap = part_aps(perturb_labels(exact, 6, config=PseudoConfig(part_noise=fit.noise)), exact)
    for part, target in targets.items():
        assert ap[part] == pytest.approx(fit.ap[part]) and abs(ap[part] - target) <= 0.01
    assert fit_part_noise(exact, targets, 6, tol=0.01) == fit  # deterministic
    assert fit.noise["lefthand"] > fit.noise["righthand"]  # lower AP, more noise


def test_unreachable_and_bad_targets(exact) -> None:
    # The default teacher misses most small toes: the foot AP stays far below 0.99.
    assert fit_part_noise(exact, {"foot": 0.99}, 6, max_iter=3).reached == {"foot": False}
    with pytest.raises(ValueError, match="unknown part"):
        fit_part_noise(exact, {"hand": 0.5}, 6)
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\)"):
        fit_part_noise(exact, {"face": 1.5}, 6)


def test_cli_prints_the_preset(capsys) -> None:
    assert main(["--targets", "face=0.6", "--set", "p_small_toe_missing=0",
                 "--images", "20", "--seed", "1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "default PseudoConfig AP vs exact: foot" in out and "face 0.6" in out
    block = yaml.safe_load("\n".join(ln for ln in out.splitlines() if not ln.startswith("#")))
    cfg = PseudoConfig.from_options(block, "preset")
    assert cfg.p_small_toe_missing == 0 and set(cfg.part_noise) == {"face"}
    assert main(["--targets", "face=x"]) == 2
    assert "--targets: expected NAME=NUMBER" in capsys.readouterr().err
