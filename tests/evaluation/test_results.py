"""Results JSON: both layouts, round trips, and a clear error for every kind of bad input."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from helpers.poses import as_prediction, pose

from fullbody.jsonio import AnnotationError
from fullbody.keypoints import PART_FIELDS, PART_SLICES
from fullbody.results import Predictions, from_arrays

IMAGES = {1, 2}


def _flat(**extra) -> dict:
    kp = as_prediction(pose(10, 20), conf=0.5)
    return {
        "image_id": 1,
        "category_id": 1,
        "keypoints": kp.ravel().tolist(),
        "score": 0.7,
        **extra,
    }


def _split(**extra) -> dict:
    kp = as_prediction(pose(10, 20), conf=0.5)
    rec = {"image_id": 1, "category_id": 1, "score": 0.7, **extra}
    for p, f in PART_FIELDS.items():
        rec[f] = kp[PART_SLICES[p]].ravel().tolist()
    return rec


def test_layouts_load_to_the_same_arrays():
    a = Predictions.from_json([_flat(), _flat(image_id=2)], images=IMAGES)
    b = Predictions.from_json([_split(), _split(image_id=2)], images=IMAGES)
    assert np.array_equal(a.keypoints, b.keypoints) and a.keypoints.shape == (2, 133, 3)
    assert a.image_ids.tolist() == [1, 2] and a.scores.tolist() == [0.7, 0.7]
    assert a.part_scores == {} and a.bboxes is None


@pytest.mark.parametrize("layout", ["split", "flat"])
def test_round_trip(tmp_path, layout):
    recs = [_flat(face_score=0.2, bbox=[1, 2, 3, 4]), _flat(image_id=2, bbox=[0, 0, 5, 5.5])]
    p = Predictions.from_json(recs, images=IMAGES)
    assert np.isnan(p.part_scores["face"][1]) and p.score_for("face").tolist() == [0.2, 0.7]
    out = p.save(tmp_path / "r.json", layout)
    q = Predictions.load(out, images=IMAGES)
    assert np.array_equal(p.keypoints, q.keypoints) and np.array_equal(p.bboxes, q.bboxes)
    assert np.array_equal(p.part_scores["face"], q.part_scores["face"], equal_nan=True)
    data = json.loads(out.read_text())
    assert ("foot_kpts" in data[0]) == (layout == "split")
    assert "face_score" in data[0] and "face_score" not in data[1]
    with pytest.raises(FileExistsError):
        p.save(out)
    p.save(out, overwrite=True)


def test_containers():
    p = Predictions.from_json([_flat(face_score=0.1), _flat(image_id=2)])
    q = Predictions.from_json([_flat(image_id=2, wholebody_score=0.3)])
    c = Predictions.concatenate([p, q])
    assert c.image_ids.tolist() == [1, 2, 2]
    assert np.isnan(c.part_scores["face"][2]) and c.score_for("wholebody").tolist() == [
        0.7,
        0.7,
        0.3,
    ]
    assert c.subset(np.array([False, True, True])).image_ids.tolist() == [2, 2]
    assert c.subset([2, 0]).scores.tolist() == [0.7, 0.7]
    assert len(Predictions.concatenate([])) == 0
    with pytest.raises(KeyError):
        c.score_for("hands")
    arr = from_arrays(np.array([1]), np.zeros((1, 133, 3)), np.array([0.5]), images=IMAGES)
    assert len(arr) == 1
    with pytest.raises(AnnotationError, match="unknown image id 5"):
        from_arrays(np.array([5]), np.zeros((1, 133, 3)), np.array([0.5]), images=IMAGES)
    with pytest.raises(AnnotationError, match="'keypoints': NaN"):
        from_arrays(np.array([1]), np.full((1, 133, 3), np.nan), np.array([0.5]))


def _set(rec: dict, key: str, value) -> dict:
    rec = copy.deepcopy(rec)
    rec[key] = value
    return rec


def _drop(rec: dict, key: str) -> dict:
    rec = copy.deepcopy(rec)
    del rec[key]
    return rec


def _poke(rec: dict, key: str, index: int, value) -> dict:
    rec = copy.deepcopy(rec)
    rec[key][index] = value
    return rec


BAD = {
    "not a list": ({"image_id": 1}, "(root)", "expected a list"),
    "empty": ([], "(root)", "no predictions"),
    "record not an object": ([_flat(), [1, 2]], "(record)", "expected an object"),
    "missing image_id": ([_drop(_flat(), "image_id")], "image_id", "missing"),
    "missing keypoints": ([_drop(_flat(), "keypoints")], "keypoints", "missing"),
    "missing score": ([_drop(_flat(), "score")], "score", "missing"),
    "string image_id": ([_set(_flat(), "image_id", "1")], "image_id", "expected an integer"),
    "float image_id": ([_set(_flat(), "image_id", 1.0)], "image_id", "expected an integer"),
    "bool image_id": ([_set(_flat(), "image_id", True)], "image_id", "expected an integer"),
    "unknown image id": ([_flat(), _set(_flat(), "image_id", 9)], "image_id", "unknown image id 9"),
    "other category": ([_set(_flat(), "category_id", 2)], "category_id", "expected 1"),
    "17 body points only": ([_set(_flat(), "keypoints", [1.0] * 51)], "keypoints", "got 51 values"),
    "398 values": ([_set(_flat(), "keypoints", [1.0] * 398)], "keypoints", "got 398 values"),
    "nested points": ([_set(_flat(), "keypoints", [[1.0, 2.0, 0.5]] * 133)], "keypoints", "nested lists"),
    "nested split points": ([_set(_split(), "foot_kpts", [[1.0, 2.0, 0.5]] * 6)], "foot_kpts", "nested"),
    "keypoints not a list": ([_set(_flat(), "keypoints", "x")], "keypoints", "expected a list"),
    "NaN keypoint": ([_poke(_flat(), "keypoints", 5, math.nan)], "keypoints", "NaN or infinity at position 5"),
    "infinite keypoint": ([_poke(_flat(), "keypoints", 7, math.inf)], "keypoints", "NaN or infinity"),
    "string keypoint": ([_poke(_flat(), "keypoints", 3, "1.0")], "keypoints", "not a number"),
    "null keypoint": ([_poke(_flat(), "keypoints", 3, None)], "keypoints", "not a number"),
    "NaN score": ([_set(_flat(), "score", math.nan)], "score", "finite number"),
    "string score": ([_set(_flat(), "score", "0.5")], "score", "finite number"),
    "NaN part score": ([_flat(face_score=math.nan)], "face_score", "finite number"),
    "string part score": ([_flat(lefthand_score="high")], "lefthand_score", "finite number"),
    "split: short face": ([_set(_split(), "face_kpts", [0.0] * 201)], "face_kpts", "got 201 values"),
    "split: 133 points in keypoints": (
        [_set(_split(), "keypoints", [0.0] * 399)], "keypoints", "51 numbers, got 399",
    ),
    "split: missing right hand": ([_drop(_split(), "righthand_kpts")], "righthand_kpts", "missing"),
    "split: NaN in foot": ([_poke(_split(), "foot_kpts", 2, math.nan)], "foot_kpts", "NaN"),
    "mixed layouts flat then split": ([_flat(), _split()], "keypoints", "mixed layouts"),
    "mixed layouts split then flat": ([_split(), _flat()], "keypoints", "mixed layouts"),
    "bbox wrong length": ([_flat(bbox=[1, 2, 3])], "bbox", "list of 4 numbers"),
    "bbox negative": ([_flat(bbox=[1, 2, -3, 4])], "bbox", "negative"),
    "bbox on some records": ([_flat(bbox=[1, 2, 3, 4]), _flat()], "bbox", "missing"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_names_file_record_and_field(tmp_path, case):
    data, field, message = BAD[case]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))  # NaN / Infinity are written as JSON's extensions
    with pytest.raises(AnnotationError) as err:
        Predictions.load(path, images=IMAGES)
    assert err.value.field == field and message in err.value.problem, str(err.value)
    assert str(path) in str(err.value)
    if field not in ("(root)",):
        assert err.value.record.startswith("result #")


def test_malformed_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"image_id": 1, "keypoints": [1, 2,')
    with pytest.raises(
        AnnotationError, match=r"broken.json: line 1: field '\(json\)': malformed JSON"
    ):
        Predictions.load(path)
    with pytest.raises(FileNotFoundError, match="results file not found"):
        Predictions.load(tmp_path / "absent.json")


def test_empty_allowed_on_request():
    assert len(Predictions.from_json([], allow_empty=True)) == 0
