"""The confidence calibration of the pseudo-label report: pure functions on arrays."""

import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.data.calibration import point_errors
from fullbody.keypoints import part_sigmas
from fullbody.pseudo.report import (
    calibration,
    calibration_bins,
    calibration_gap,
    save_reliability_plot,
)


def test_error_growing_as_confidence_falls_gives_a_monotone_table():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 5000)
    error = (1 - conf) * 0.2 + rng.uniform(0, 0.02, conf.size)
    bins = calibration_bins(conf, error, error < 0.1)
    assert [b["n"] for b in bins] == [int(((conf >= lo) & (conf < lo + 0.2)).sum())
                                      for lo in (0, 0.2, 0.4, 0.6, 0.8)]  # fmt: skip
    errs = [b["error"] for b in bins]
    within = [b["within"] for b in bins]
    assert all(a > b for a, b in zip(errs, errs[1:]))
    assert all(a <= b for a, b in zip(within, within[1:])) and within[0] == 0 and within[-1] == 1


def test_points_land_in_their_bins_edges_included_below_and_one_in_the_last():
    conf = np.array([0.0, 0.2, 0.39, 0.4, 1.0, 0.95])
    error = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    within = np.array([0, 0, 1, 1, 1, 0], bool)
    bins = calibration_bins(conf, error, within, edges=(0.0, 0.2, 0.4, 0.6, 1.0))
    assert [b["n"] for b in bins] == [1, 2, 1, 2]
    assert [b["error"] for b in bins] == [1.0, 2.5, 4.0, 5.5]
    assert bins[1]["conf"] == pytest.approx(0.295) and bins[3]["within"] == 0.5
    assert bins[2]["within"] == 1.0 and bins[0]["within"] == 0.0
    empty = calibration_bins(conf[:1], error[:1], within[:1])
    assert empty[1] == {"lo": 0.2, "hi": 0.4, "n": 0, "conf": None, "error": None, "within": None}
    assert calibration_gap(bins) == pytest.approx((2 * 0.205 + 1 * 0.6 + 2 * 0.475) / 6)
    with pytest.raises(ValueError, match="outside"):
        calibration_bins(np.array([1.2]), np.array([0.0]), np.array([True]))
    with pytest.raises(ValueError, match="increase"):
        calibration_bins(conf, error, within, edges=(0, 0.5, 0.5, 1))


def test_point_errors_are_oks_normalised_and_half_at_the_tolerance():
    sig = part_sigmas("foot")
    area = 400.0
    # the OKS term is 0.5 where d^2 = 2 ln 2 area (2 sigma)^2
    d = np.sqrt(2 * np.log(2) * area) * 2 * sig
    gt = np.zeros((6, 3))
    pred = np.stack([d, np.zeros(6)], 1)
    err, term = point_errors(pred, gt, area, sig)
    assert err == pytest.approx(d / 20.0) and term == pytest.approx(0.5)


def _people(shift: float) -> WholeBodySet:
    kpts = np.zeros((2, 133, 3))
    kpts[:, :17] = [30, 30, 2]
    kpts[:, 17:23] = [40, 40, 2]
    kpts[:, 91:112] = [50, 50, 2]
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}]
    out = WholeBodySet.from_arrays(images, [1, 1], kpts, [[0, 0, 10, 10]] * 2)
    out.keypoints[1, 17:23, 0] += shift
    return out


def test_calibration_matches_people_by_id_and_skips_a_copied_body(tmp_path):
    human = _people(0.0)
    labels = _people(5.0)  # person 2's feet 5 px (0.5 sqrt(area)) off
    labels.has_conf = True
    labels.conf[:] = 0.0
    labels.conf[0, 17:23], labels.conf[1, 17:23] = 0.9, 0.3
    labels.conf[:, 91:112] = 1.0
    reordered = labels.subset(np.array([1, 0]))  # rows in another order: matched by ann id
    table = calibration(reordered, human)
    assert list(table) == ["foot", "face", "lefthand", "righthand"]  # the body is copied
    assert table["face"]["n"] == 0 and table["face"]["gap"] is None  # no face labelled
    foot = {b["lo"]: b for b in table["foot"]["bins"] if b["n"]}
    assert foot[0.8]["error"] == 0.0 and foot[0.8]["within"] == 1.0
    assert foot[0.2]["error"] == pytest.approx(0.5) and foot[0.2]["within"] == 0.0
    assert table["lefthand"]["bins"][-1]["n"] == 42 and table["lefthand"]["gap"] == 0.0
    labels.keypoints[0, 0, 0] += 1  # a body that is not the human label is calibrated too
    assert "body" in calibration(labels, human)
    png = save_reliability_plot(table, tmp_path / "cal.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
