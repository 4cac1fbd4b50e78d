import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fake_teachers import RegionTeacher

from fullbody.annotations import WholeBodySet, points_box
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.labelling import assign_parts
from fullbody.pseudo.runner import PseudoLabeller

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAKE = {"fake": {"_target_": "fake_teachers.RegionTeacher"}}


def _job(dataset: Path, out: Path, **kw) -> PseudoLabeller:
    kw.setdefault("teachers", FAKE)
    kw.setdefault("workers", 0)
    kw.setdefault("progress", False)
    return PseudoLabeller(dataset, dataset.parent / "images", out, **kw)


def test_labels_follow_the_merge_rules(dataset, tmp_path):
    out = tmp_path / "pseudo.json"
    labels = _job(dataset, out, shard_size=4).run()
    human = WholeBodySet.load(dataset)
    back = WholeBodySet.load(out)
    np.testing.assert_array_equal(back.ann_ids, human.ann_ids)
    np.testing.assert_array_equal(back.keypoints[:, :17], human.keypoints[:, :17])
    np.testing.assert_array_equal(back.keypoints, labels.keypoints)
    assert back.has_conf and not (out.parent / "pseudo.shards").exists()
    assert back.valid[:, 2].all() and not back.valid[:, 3:].any()  # face 0.9, hands 0.3
    assert (back.conf[:, PART_SLICES["face"]] == 0.9).all()
    heels = back.keypoints[:, [19, 22], 2]
    assert ((heels == 1) | (heels == 0)).all() and (heels == 1).any()
    np.testing.assert_allclose(
        back.part_boxes[:, 0], points_box(back.keypoints[:, PART_SLICES["face"]])
    )
    raw = json.loads(out.read_text())["annotations"][0]
    assert len(raw["face_conf"]) == 68 and raw["lefthand_valid"] is False


def test_refuses_to_overwrite_and_rejects_a_foreign_shard_folder(dataset, tmp_path):
    out = tmp_path / "pseudo.json"
    out.write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite=true"):
        _job(dataset, out).run()
    assert out.read_text() == "{}"
    _job(dataset, out, overwrite=True).run()
    assert WholeBodySet.load(out).valid[:, 2].all()
    out2 = tmp_path / "other.json"
    (tmp_path / "other.shards").mkdir()
    (tmp_path / "other.shards" / "manifest.json").write_text('{"version": 0}')
    with pytest.raises(FileExistsError, match="different job"):
        _job(dataset, out2).run()
    _job(dataset, out2, overwrite=True).run()
    assert out2.read_bytes() == out.read_bytes()


def test_bad_inputs_name_the_problem(dataset, tmp_path):
    out = tmp_path / "p.json"
    with pytest.raises(ValueError, match="part_boxes"):
        _job(dataset, out, part_boxes="boxes")
    with pytest.raises(ValueError, match="no teacher"):
        _job(dataset, out, teachers={"hand": None})
    with pytest.raises(TypeError, match="_target_"):
        _job(dataset, out, teachers={"x": RegionTeacher()}, workers=1)
    with pytest.raises(AnnotationError, match="part_boxes=gt"):
        _job(dataset, out, part_boxes="gt").run()
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        _job(dataset.parent / "nope.json", out).run()
    bad = dataset.parent / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(AnnotationError, match="malformed JSON"):
        _job(bad, out).run()
    with pytest.raises(FileNotFoundError, match="image folder"):
        PseudoLabeller(dataset, tmp_path / "nowhere", out, FAKE, workers=0).run()
    (dataset.parent / "images" / "0003.png").unlink()
    with pytest.raises(FileNotFoundError, match="0003.png"):
        _job(dataset, out).run()
    cv2.imwrite(str(dataset.parent / "images" / "0003.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(AnnotationError, match="10x10 but the annotation says 240x180"):
        _job(dataset, out, overwrite=True).run()
    with pytest.raises(ValueError, match="claimed by teachers"):
        assign_parts({"a": RegionTeacher(("face",)), "b": RegionTeacher(("face", "foot"))})


def test_part_teachers_win_over_the_wholebody_teacher():
    whole, face = RegionTeacher(), RegionTeacher(("face",))
    got = assign_parts({"wholebody": whole, "face": face})
    assert got["face"] is face and got["foot"] is whole and got["lefthand"] is whole


_CHILD = """
import sys
from fullbody.pseudo.runner import PseudoLabeller
PseudoLabeller(sys.argv[1], sys.argv[2], sys.argv[3], {teachers!r}, workers=1, shard_size=2,
               keep_shards=True, progress=False).run()
"""


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_output(dataset, tmp_path):
    teachers = {"fake": {"_target_": "fake_teachers.RegionTeacher", "delay": 0.15}}
    images = dataset.parent / "images"
    out = tmp_path / "resumed.json"
    shards = tmp_path / "resumed.shards"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(teachers=teachers), str(dataset), str(images), str(out)],
        env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while len(list(shards.glob("shard-*.json"))) < 2:
        assert child.poll() is None, "the job ended before it could be killed"
        assert time.time() < deadline, "no shard written in time"
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert not out.exists()
    before = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.json")}
    assert 2 <= len(before) < 5
    PseudoLabeller(
        dataset, images, out, teachers, workers=1, shard_size=2, keep_shards=True, progress=False
    ).run()
    after = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.json")}
    assert len(after) == 5 and all(after[k] == v for k, v in before.items())  # nothing redone
    reference = tmp_path / "reference.json"
    PseudoLabeller(
        dataset, images, reference, teachers, workers=2, shard_size=2, progress=False
    ).run()
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_hydra_entry_point(dataset, tmp_path):
    out = tmp_path / "hydra.json"
    cmd = [
        sys.executable, str(ROOT / "pseudo_label.py"), f"ann_file={dataset}",
        f"image_dir={dataset.parent / 'images'}", f"out_file={out}", "workers=0", "progress=false",
        "~teacher/hand", "~teacher/face", "~teacher/foot",
        "+teacher.fake._target_=fake_teachers.RegionTeacher", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert WholeBodySet.load(out).valid[:, 2].all()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode != 0 and "overwrite=true" in again.stderr
