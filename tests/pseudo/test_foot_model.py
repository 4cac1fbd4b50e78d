"""The geometric small-toe model: placement, confidences, fitting, hold-out."""

import numpy as np
import pytest

from fullbody.keypoints import NAME_TO_INDEX as K
from fullbody.pseudo.foot_model import fit_small_toes, holdout, small_toes


def people(n: int, along: float, across: float, seed: int = 0) -> np.ndarray:
    """(n, 133, 3) people with labelled hips and feet whose small toes obey the model exactly."""
    rng = np.random.default_rng(seed)
    kp = np.zeros((n, 133, 3))
    for name in ("left_hip", "right_hip", "left_big_toe", "left_heel", "right_big_toe",
                 "right_heel"):  # fmt: skip
        kp[:, K[name], :2] = rng.uniform(0, 200, (n, 2))
        kp[:, K[name], 2] = 2
    for s, o in (("left", "right"), ("right", "left")):
        big, heel = kp[:, K[f"{s}_big_toe"], :2], kp[:, K[f"{s}_heel"], :2]
        hips = kp[:, K[f"{s}_hip"], :2] - kp[:, K[f"{o}_hip"], :2]
        kp[:, K[f"{s}_small_toe"], :2] = big + along * (heel - big) + across * hips
        kp[:, K[f"{s}_small_toe"], 2] = 2
    return kp


def test_fit_recovers_the_parameters_and_placement_reproduces_the_labels():
    kp = people(6, 0.07, 0.2)
    along, across, n = fit_small_toes(kp)
    assert n == 12 and along == pytest.approx(0.07) and across == pytest.approx(0.2)
    conf = np.zeros((6, 133))
    conf[:, [K["left_big_toe"], K["right_big_toe"]]] = 0.9
    conf[:, [K["left_heel"], K["right_heel"]]] = 0.8
    xy, c = small_toes(kp[..., :2], conf, kp[:, :17], along, across, conf_scale=0.5)
    small = [K["left_small_toe"], K["right_small_toe"]]
    np.testing.assert_allclose(xy[:, small], kp[:, small, :2], atol=1e-9)
    np.testing.assert_allclose(c[:, small], 0.4)  # 0.5 x min(big toe, heel)
    assert (c[:, 17] == 0.9).all()  # other points untouched


def test_without_both_hips_the_sideways_term_is_dropped_and_no_big_toe_means_no_small_toe():
    kp = people(2, 0.1, 0.3)
    body = kp[:, :17].copy()
    body[0, K["right_hip"], 2] = 0
    conf = np.ones((2, 133))
    conf[1, K["left_big_toe"]] = 0
    xy, c = small_toes(kp[..., :2], conf, body, 0.1, 0.3, 1.0)
    big, heel = kp[0, K["left_big_toe"], :2], kp[0, K["left_heel"], :2]
    np.testing.assert_allclose(xy[0, K["left_small_toe"]], big + 0.1 * (heel - big))
    assert c[1, K["left_small_toe"]] == 0 and c[1, K["right_small_toe"]] == 1


def test_fit_needs_labelled_feet_and_holdout_scores_each_group():
    kp = people(4, 0.05, 0.15)
    with pytest.raises(ValueError, match="at least 2 labelled feet"):
        fit_small_toes(kp[:1, :, :] * np.r_[np.ones(20), np.zeros(113)][None, :, None])
    rows = holdout(kp, np.full(4, 100.0**2), np.array([1, 1, 2, 2]))
    assert [r["group"] for r in rows] == [1, 2]
    assert all(r["mean_oks"] == pytest.approx(1.0) for r in rows)
    noisy = kp.copy()
    noisy[:, K["left_small_toe"], :2] += 30.0
    assert all(
        r["mean_oks"] < 0.99 for r in holdout(noisy, np.full(4, 100.0**2), np.array([1, 1, 2, 2]))
    )
