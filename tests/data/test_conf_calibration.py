"""The confidence recalibration: the isotonic fit, the map file, its use in training data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from tinydata import person, write_set

from fullbody.annotations import WholeBodySet
from fullbody.codecs.spec import TopDownSpec
from fullbody.data.calibration import (
    CalibrationMap,
    CalibrationMapError,
    PartCurve,
    TooFewPointsWarning,
    fit_against,
    fit_calibration_map,
    isotonic,
    read_calibration_map,
)
from fullbody.data.datamodule import DataConfigError, SyntheticDataModule, WholeBodyDataModule
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES

SPEC = TopDownSpec.standard((64, 48))
OPTION = "data.train.conf_calibration"


def _min_max(y: np.ndarray) -> np.ndarray:
    """The isotonic fit by its closed form: value i = max over a <= i of min over b >= i of
    mean(y[a..b]) (Barlow et al.), for distinct sorted x."""
    n = len(y)
    return np.array(
        [max(min(y[a : b + 1].mean() for b in range(i, n)) for a in range(i + 1)) for i in range(n)]
    )


def test_pav_matches_a_hand_example():
    knots, values = isotonic([0.1, 0.2, 0.3, 0.4, 0.5], [1, 0, 0, 1, 1])
    np.testing.assert_allclose(knots, [0.1, 0.3, 0.4, 0.5])  # block {0.1..0.3}: its ends
    np.testing.assert_allclose(values, [1 / 3, 1 / 3, 1, 1])
    knots, values = isotonic([0.5, 0.5, 0.2], [1, 0, 1])  # ties pooled, order irrelevant
    np.testing.assert_allclose(knots, [0.2, 0.5]) and np.testing.assert_allclose(
        values, [2 / 3] * 2
    )
    with pytest.raises(ValueError, match="as many x as y"):
        isotonic([0.1], [1, 0])


@pytest.mark.parametrize("seed", range(5))
def test_pav_is_monotone_and_matches_the_closed_form(seed):
    rng = np.random.default_rng(seed)
    x = rng.permutation(np.linspace(0, 1, 12))
    y = (rng.random(12) < x).astype(float) if seed % 2 else rng.normal(x, 0.3)
    knots, values = isotonic(x, y)
    assert np.all(np.diff(knots) > 0) and np.all(np.diff(values) >= -1e-12)
    order = np.argsort(x)
    np.testing.assert_allclose(np.interp(x[order], knots, values), _min_max(y[order]))


def _curve_map() -> CalibrationMap:
    return CalibrationMap({"face": PartCurve(np.array([0.2, 0.6]), np.array([0.1, 0.9]), 80)})


def test_a_map_round_trips_and_applies_by_interpolation(tmp_path):
    path = _curve_map().save(tmp_path / "m.json")
    back = read_calibration_map(path, OPTION)
    assert back.parts["face"].n == 80 and back.path == path
    conf = np.full((2, NUM_KEYPOINTS), 0.4)
    conf[1, PART_SLICES["face"]] = [0.0, 0.5, 1.0] + [0.6] * 65
    with pytest.warns(TooFewPointsWarning, match="no curve for body, foot, lefthand") as caught:
        out = back.apply(conf)
    assert len(caught) == 1  # once, naming every part it lacks
    face = out[:, PART_SLICES["face"]]
    assert face[0] == pytest.approx(np.full(68, 0.5))
    np.testing.assert_allclose(face[1, :4], [0.1, 0.7, 0.9, 0.9])  # clamped beyond the ends
    np.testing.assert_array_equal(out[:, :17], 0.4)  # no body curve: unchanged
    assert conf[1, 23] == 0.0  # the input is not modified


def test_parts_with_too_few_points_are_left_out_with_a_warning():
    rng = np.random.default_rng(0)
    conf = rng.random(60)
    points = {"face": (conf, conf > 0.5), "foot": (conf[:10], conf[:10] > 0.5)}
    with pytest.warns(TooFewPointsWarning, match="foot has 10 points .* fewer than 50"):
        fitted = fit_calibration_map(points)
    assert list(fitted.parts) == ["face"] and fitted.parts["face"].n == 60
    np.testing.assert_array_equal(fitted.parts["face"].prob[[0, -1]], [0, 1])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "not a readable JSON"),
        ({"format": "other"}, "not a calibration map"),
        ({"format": "fullbody.calibration_map", "version": 9, "parts": {}}, "version 9"),
        ({"format": "fullbody.calibration_map", "version": 1, "parts": {}}, "holds no curve"),
        ({"parts": {"hands": {"conf": [0], "prob": [0], "n": 1}}}, "unknown part 'hands'"),
        ({"parts": {"face": {"conf": [0.5, 0.2], "prob": [0, 1], "n": 9}}}, "must increase"),
        ({"parts": {"face": {"conf": [0.2, 0.5], "prob": [1, 0], "n": 9}}}, "must not decrease"),
        ({"parts": {"face": {"conf": [0.2], "prob": [1.5], "n": 9}}}, r"outside \[0, 1\]"),
        ({"parts": {"face": {"conf": [0.2], "n": 9}}}, "needs numeric"),
    ],
)
def test_bad_maps_are_refused_naming_file_and_option(tmp_path, content, problem):
    path = tmp_path / "m.json"
    if isinstance(content, dict) and "format" not in content:
        content = {"format": "fullbody.calibration_map", "version": 1, **content}
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(CalibrationMapError, match=rf"^{OPTION}: {path}: .*{problem}"):
        read_calibration_map(path, OPTION)


# ---------------------------------------------------------------------------- in training data
def _pseudo_set(root, conf: float = 0.7):
    people = [person(40, 20), person(20, 30, 1.0), person(190, 40, 0.9)]
    scenes = [((240, 200), people[:1]), ((260, 320), people[1:])]
    confs = [np.where(p[:, 2] > 0, conf, 0.0) for p in people]
    return write_set(root, scenes, conf=confs)


def _module(ann_file, image_dir, **train) -> WholeBodyDataModule:
    section = {"ann_file": str(ann_file), "image_dir": str(image_dir), "photometric": None}
    val = {"ann_file": str(ann_file), "image_dir": str(image_dir)}
    return WholeBodyDataModule({**section, **train}, val, spec=SPEC, num_workers=0)


def test_the_map_recalibrates_training_weights(tmp_path):
    ann_file, image_dir = _pseudo_set(tmp_path)
    path = _curve_map().save(tmp_path / "m.json")
    plain = _module(ann_file, image_dir)
    plain.setup("fit")
    dm = _module(ann_file, image_dir, conf_calibration=str(path))
    with pytest.warns(TooFewPointsWarning):
        dm.setup("fit")
    face = PART_SLICES["face"]
    w0, w = plain.train_dataset.weights, dm.train_dataset.weights
    assert set(np.unique(w0[w0 > 0])) == {np.float32(0.7)}
    labelled = w[:, face] > 0
    np.testing.assert_allclose(w[:, face][labelled], 0.9)  # 0.7: beyond the last knot
    np.testing.assert_array_equal(w[:, :17], w0[:, :17])  # no body curve


def test_refusals_of_the_map_option(tmp_path):
    ann_file, image_dir = _pseudo_set(tmp_path / "pseudo")
    human_file, human_dir = write_set(tmp_path / "human", [((240, 200), [person(40, 20)])])
    path = _curve_map().save(tmp_path / "m.json")
    with pytest.raises(CalibrationMapError, match=rf"^{OPTION}: .*ann.json holds labels without"):
        _module(human_file, human_dir, conf_calibration=str(path)).setup("fit")
    # Refused at construction (before a logger or a trainer starts): settings it cannot act
    # under, a missing or malformed map.
    with pytest.raises(CalibrationMapError, match=r"conf_floor=0 .* would change nothing"):
        _module(ann_file, image_dir, conf_calibration=str(path), conf_weighting=False)
    with pytest.raises(CalibrationMapError, match=rf"^{OPTION}: .*none.json: no such file"):
        _module(ann_file, image_dir, conf_calibration=str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(CalibrationMapError, match=rf"^{OPTION}: .*bad.json: not a calibration"):
        _module(ann_file, image_dir, conf_calibration=str(tmp_path / "bad.json"))
    with pytest.raises(DataConfigError, match=r"conf_weighting must be true or false"):
        _module(ann_file, image_dir, conf_weighting="no")
    floored = _module(ann_file, image_dir, conf_calibration=str(path), conf_weighting=False,
                      conf_floor=0.5)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TooFewPointsWarning)
        floored.setup("fit")  # a threshold on recalibrated confidences: accepted
    w = floored.train_dataset.weights
    assert set(np.unique(w)) == {0.0, 1.0}


def test_fit_against_exact_labels_scores_the_shifted_points():
    people = np.stack([person(40, 20), person(20, 30)] * 20)
    images = [{"id": 1, "file_name": "a.png", "width": 400, "height": 400}]
    boxes = [[0, 0, 150, 250]] * len(people)
    exact = WholeBodySet.from_arrays(images, [1] * len(people), people, boxes)
    labels = exact.subset(np.arange(len(exact)))
    labels.has_conf = True
    labels.conf = np.where(people[..., 2] > 0, 0.9, 0.0)
    bad = np.arange(len(people)) % 2 == 1
    labels.conf[bad] = np.where(people[bad, :, 2] > 0, 0.3, 0.0)
    labels.keypoints = labels.keypoints.copy()
    labels.keypoints[bad, 17:23, 0] += 40  # the low-confidence feet are far off
    with pytest.warns(TooFewPointsWarning) as caught:
        fitted = fit_against(labels, exact)
    assert sorted(str(w.message).split(": ")[1][:22] for w in caught) == [
        "lefthand has 40 points", "righthand has 40 point"]  # fmt: skip
    assert "body" not in fitted.parts  # copied from the exact labels
    foot = fitted.parts["foot"]
    np.testing.assert_allclose(foot.conf, [0.3, 0.9]) and np.testing.assert_allclose(
        foot.prob, [0, 1]
    )


@pytest.mark.slow
def test_synthetic_calibration_images_fit_write_reuse_and_apply(tmp_path):
    kw = {"train_images": 4, "val_images": 1, "spec": SPEC, "num_workers": 0}
    dm = SyntheticDataModule(tmp_path, train_labels="pseudo", calibration_images=3, **kw)
    assert dm.calibration_file == dm.train_dir / "pseudo_annotations.calibration_n3.json"
    with pytest.raises(FileNotFoundError, match="not generated yet"):
        dm.setup("fit")
    dm.prepare_data()
    stamp = dm.calibration_file.stat().st_mtime_ns
    fitted = read_calibration_map(dm.calibration_file, "test")
    assert {"face", "lefthand", "righthand"} <= set(fitted.parts) and "body" not in fitted.parts
    dm.prepare_data()  # found: reused
    assert dm.calibration_file.stat().st_mtime_ns == stamp
    with pytest.warns(TooFewPointsWarning, match="no curve for body"):
        dm.setup("fit")
    labels = WholeBodySet.load(dm.train_labels_file)
    face = PART_SLICES["face"]
    lab = labels.keypoints[:, face, 2] > 0
    expected = np.interp(labels.conf[:, face], fitted.parts["face"].conf, fitted.parts["face"].prob)
    rows = dm.train_dataset.rows
    got = dm.train_dataset.weights[:, face]
    np.testing.assert_allclose(got[lab[rows]], expected[rows][lab[rows]], rtol=1e-6)
    with pytest.raises(DataConfigError, match=r"data\.calibration_images=3 needs .*pseudo"):
        SyntheticDataModule(tmp_path, calibration_images=3, **kw)
    with pytest.raises(DataConfigError, match=r"must be in \[0, 4\]"):
        SyntheticDataModule(tmp_path, train_labels="pseudo", calibration_images=5, **kw)
    with pytest.raises(DataConfigError, match="leave data.train.conf_calibration unset"):
        SyntheticDataModule(tmp_path, train_labels="pseudo", calibration_images=3,
                            train={"conf_calibration": "x.json"}, **kw)  # fmt: skip
