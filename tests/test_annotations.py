import copy
import json

import numpy as np
import pytest

from fullbody.annotations import WholeBodySet, points_box
from fullbody.jsonio import AnnotationError, write_json_atomic
from fullbody.keypoints import PART_SLICES


def _tiny() -> dict:
    """One image, one person with a labelled body, face and right hand."""
    kp = np.zeros((133, 3))
    rng = np.random.default_rng(0)
    kp[:, :2] = rng.uniform(10, 90, (133, 2)).round(2)
    kp[:, 2] = 2
    kp[PART_SLICES["lefthand"]] = 0
    ann = {
        "id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 4000.5,
        "bbox": [5.0, 5.0, 90.0, 90.0], "num_keypoints": 17, "segmentation": [[1, 2, 3, 4]],
        "keypoints": kp[:17].ravel().tolist(), "foot_kpts": kp[17:23].ravel().tolist(),
        "face_kpts": kp[23:91].ravel().tolist(), "lefthand_kpts": kp[91:112].ravel().tolist(),
        "righthand_kpts": kp[112:].ravel().tolist(), "face_valid": True, "foot_valid": True,
        "lefthand_valid": False, "righthand_valid": True, "face_box": [10, 10, 20, 20],
        "lefthand_box": [0, 0, 0, 0], "righthand_box": [50, 50, 10, 10],
    }  # fmt: skip
    image = {"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}
    return {"images": [image], "annotations": [ann], "categories": [{"id": 1, "name": "person"}]}


def test_load_arrays_and_validity():
    s = WholeBodySet.from_json(_tiny(), "tiny.json")
    assert len(s) == 1 and s.keypoints.shape == (1, 133, 3)
    assert s.valid.tolist() == [[True, True, True, False, True]]
    assert s.num_labelled.tolist() == [[17, 6, 68, 0, 21]]
    assert not s.has_conf and s.conf.sum() == 133 - 21
    assert s.part_boxes[0, 2].tolist() == [50, 50, 10, 10]
    assert s.by_image()[1].tolist() == [0]


def test_round_trip_is_lossless(tmp_path):
    data = _tiny()
    s = WholeBodySet.from_json(copy.deepcopy(data), "tiny.json")
    out = s.save(tmp_path / "out.json")
    assert json.loads(out.read_text()) == data


def test_sample_round_trip(sample_ann_file, tmp_path):
    original = json.loads(sample_ann_file.read_text())
    s = WholeBodySet.load(sample_ann_file)
    assert len(s) == 14 and len(s.images) == 4
    assert np.array_equal(s.valid[:, 0], s.num_labelled[:, 0] > 0)
    assert s.valid[:, 3].sum() < 14  # some left hands are marked invalid
    s.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == original
    # a second generation is byte-identical to the first
    WholeBodySet.load(tmp_path / "again.json").save(tmp_path / "third.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "third.json").read_bytes()


def test_pseudo_label_confidences_round_trip(tmp_path):
    s = WholeBodySet.from_json(_tiny(), "tiny.json")
    conf = np.where(s.keypoints[..., 2] > 0, 0.5, 0.0)
    conf[:, :17] = 1.0
    p = WholeBodySet.from_arrays(s.images.values(), s.image_ids, s.keypoints, s.bboxes, conf=conf)
    p.save(tmp_path / "p.json")
    d = json.loads((tmp_path / "p.json").read_text())
    assert (
        d["annotations"][0]["face_conf"][0] == 0.5
        and len(d["annotations"][0]["lefthand_conf"]) == 21
    )
    back = WholeBodySet.load(tmp_path / "p.json")
    assert back.has_conf and np.array_equal(back.conf, conf)
    assert np.array_equal(back.keypoints, s.keypoints)


def test_body_only_coco_file_loads_with_other_parts_unlabelled():
    d = _tiny()
    ann = d["annotations"][0]
    for k in list(ann):
        if k not in ("id", "image_id", "bbox", "keypoints", "area", "iscrowd", "category_id"):
            del ann[k]
    s = WholeBodySet.from_json(d, "person_keypoints.json")
    assert s.valid.tolist() == [[True, False, False, False, False]]
    assert s.keypoints[0, 17:].sum() == 0


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d.pop("annotations"), "annotations", "missing"),
        (lambda d: d["images"][0].pop("width"), "width", "missing"),
        (lambda d: d["annotations"][0].pop("bbox"), "bbox", "missing"),
        (lambda d: d["annotations"][0].pop("keypoints"), "keypoints", "missing"),
        (lambda d: d["annotations"][0]["keypoints"].pop(), "keypoints", "51 numbers, got 50"),
        (lambda d: d["annotations"][0]["face_kpts"].append(1.0), "face_kpts", "204 numbers"),
        (
            lambda d: d["annotations"][0]["keypoints"].__setitem__(3, float("nan")),
            "keypoints",
            "NaN",
        ),
        (lambda d: d["annotations"][0]["keypoints"].__setitem__(2, -1), "keypoints", ">= 0"),
        (
            lambda d: d["annotations"][0]["keypoints"].__setitem__(0, "x"),
            "keypoints",
            "not a number",
        ),
        (lambda d: d["annotations"][0].__setitem__("bbox", [50, 50, 80, 10]), "bbox", "outside"),
        (lambda d: d["annotations"][0].__setitem__("bbox", [5, 5, -1, 10]), "bbox", "negative"),
        (
            lambda d: d["annotations"][0].__setitem__("face_box", [-20, 5, 10, 10]),
            "face_box",
            "outside",
        ),
        (
            lambda d: d["annotations"][0].__setitem__("image_id", 99),
            "image_id",
            "unknown image id 99",
        ),
        (lambda d: d["annotations"][0].__setitem__("area", float("inf")), "area", "finite"),
        (
            lambda d: d["annotations"][0].__setitem__("face_conf", [0.5] * 67),
            "face_conf",
            "68 numbers",
        ),
        (
            lambda d: d["annotations"][0].__setitem__("face_conf", [1.5] * 68),
            "face_conf",
            r"\[0, 1\]",
        ),
        (lambda d: d["annotations"].append(dict(d["annotations"][0])), "id", "duplicate"),
    ],
)
@pytest.mark.parametrize("via", ["object", "file"])
def test_malformed_input_names_file_record_and_field(mutate, field, message, via, tmp_path):
    d = _tiny()
    mutate(d)
    with pytest.raises(AnnotationError, match=message) as err:
        if via == "object":
            WholeBodySet.from_json(d, "bad.json")
        else:  # read lazily (simdjson), or by Python's json for NaN / Infinity
            path = tmp_path / "bad.json"
            path.write_text(json.dumps(d))
            WholeBodySet.load(path)
    bad = "bad.json" if via == "object" else str(tmp_path / "bad.json")
    assert err.value.field == field and err.value.file == bad
    assert str(err.value).startswith(f"{bad}: ")


def test_file_and_object_give_the_same_arrays(tmp_path):
    d = _tiny()
    d["annotations"].append({**copy.deepcopy(d["annotations"][0]), "id": 8, "iscrowd": 1})
    d["annotations"][1]["face_conf"] = [0.5] * 68
    del d["annotations"][1]["area"], d["annotations"][1]["face_box"]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(d))
    a, b = WholeBodySet.from_json(d), WholeBodySet.load(path)
    for name in ("ann_ids", "image_ids", "keypoints", "conf", "bboxes", "areas", "iscrowd",
                 "valid", "part_boxes"):  # fmt: skip
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(b, name).flags.writeable, name
    assert a.extras == b.extras and a.header == b.header and a.images == b.images
    assert b.areas[1] == 90.0 * 90.0 and b.part_boxes[1, 0].tolist() == [0, 0, 0, 0]
    assert b.has_conf and b.conf[1, 23] == 0.5 and b.conf[0, 23] == 1.0


def test_first_bad_record_is_named_when_several_records_are_read(tmp_path):
    d = _tiny()
    for i in range(2, 6):
        d["annotations"].append({**copy.deepcopy(d["annotations"][0]), "id": i})
    d["annotations"][3]["face_kpts"][5] = -1  # a visibility flag: found for all records at once
    d["annotations"][4]["bbox"] = [1, 2, 300, 4]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(d))
    with pytest.raises(AnnotationError, match="visibility flags must be >= 0") as err:
        WholeBodySet.load(path)
    assert (err.value.record, err.value.field) == ("annotation 4", "face_kpts")


def test_missing_conf_list_means_human_labels():
    d = _tiny()
    d["annotations"][0]["face_conf"] = [0.25] * 68
    s = WholeBodySet.from_json(d, "p.json")
    assert s.has_conf
    assert np.all(s.conf[0, 23:91] == 0.25) and np.all(s.conf[0, :17] == 1.0)
    assert np.all(s.conf[0, 91:112] == 0.0)  # unlabelled left hand


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        WholeBodySet.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AnnotationError, match="bad.json: line 1: field '\\(json\\)': malformed"):
        WholeBodySet.load(bad)


def test_from_arrays_rejects_nan_and_bad_conf():
    kp = np.zeros((1, 133, 3))
    images = [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}]
    kp[0, 0] = [np.nan, 1, 2]
    with pytest.raises(AnnotationError, match="NaN"):
        WholeBodySet.from_arrays(images, [1], kp, [[0, 0, 5, 5]])
    with pytest.raises(AnnotationError, match="unknown image id"):
        WholeBodySet.from_arrays(images, [2], np.zeros((1, 133, 3)), [[0, 0, 5, 5]])
    with pytest.raises(AnnotationError, match=r"outside \[0, 1\]"):
        WholeBodySet.from_arrays(
            images, [1], np.zeros((1, 133, 3)), [[0, 0, 5, 5]], conf=np.full((1, 133), 2.0)
        )


def test_points_box_and_atomic_write(tmp_path):
    pts = np.array([[[1, 2, 2], [5, 9, 1], [100, 100, 0]], [[0, 0, 0]] * 3], dtype=float)
    assert points_box(pts).tolist() == [[1, 2, 4, 7], [0, 0, 0, 0]]
    target = tmp_path / "x.json"
    target.write_text('{"keep": true}')
    with pytest.raises(TypeError):
        write_json_atomic({"bad": object()}, target)
    assert json.loads(target.read_text()) == {"keep": True}  # the old file survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    write_json_atomic({"ok": 1}, target)
    assert target.stat().st_mode & 0o044 == 0o044  # readable by others, as open() would make it


def test_from_arrays_with_no_people(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}]
    s = WholeBodySet.from_arrays(images, [], np.zeros((0, 133, 3)), np.zeros((0, 4)))
    assert len(s) == 0 and s.part_boxes.shape == (0, 3, 4)
    back = WholeBodySet.load(s.save(tmp_path / "empty.json"))
    assert len(back) == 0 and list(back.images) == [1]
