"""Held-out hand crops (issue 17): the crop convention, the point mapping, the scoring with the
project's metric, coverage, and the ``hand_crops.py`` entry point on good and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fake_teachers import HAND_FRACTIONS, BoxHandTeacher

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import PART_SLICES, part_sigmas
from fullbody.pseudo.hand_crops import (
    CROPS_FILE,
    IMAGES,
    build_hand_crops,
    labelable_hands,
    load_or_build_crops,
    pooled,
    score_hand_crops,
)
from fullbody.pseudo.runner import PseudoLabeller

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Hand rectangles (pixel indices x, y, w, h): a small left hand (enlarged to 32 px) and a large
#: right hand (shrunk), both of person 1; person 2's left hand has no box, its right is invalid.
SMALL, LARGE = (40, 50, 12, 9), (150, 40, 80, 60)


def _hand(rect) -> tuple[np.ndarray, np.ndarray]:
    """The 21 labelled points at :data:`HAND_FRACTIONS` of a rectangle and its xywh box (pixel
    edges, OpenCV pixel centres)."""
    x, y, w, h = rect
    lo, size = np.array([x - 0.5, y - 0.5]), np.array([w, h], float)
    pts = np.concatenate([lo + HAND_FRACTIONS * size, np.full((21, 1), 2.0)], 1)
    return pts, np.array([*lo, w, h])


def make_hand_set(root: Path) -> Path:
    """One black 320 x 200 image with the two hands drawn white, and its COCO-WholeBody file."""
    (root / "images").mkdir(parents=True)
    img = np.zeros((200, 320, 3), np.uint8)
    for x, y, w, h in (SMALL, LARGE):
        img[y : y + h, x : x + w] = 255
    cv2.imwrite(str(root / "images" / "a.png"), img)
    kpts, boxes = np.zeros((2, 133, 3)), np.zeros((2, 3, 4))
    for row, part, rect in (
        (0, "lefthand", SMALL),
        (0, "righthand", LARGE),
        (1, "lefthand", SMALL),
    ):
        kpts[row, PART_SLICES[part]], box = _hand(rect)
        if row == 0:
            boxes[row, 1 + ("lefthand", "righthand").index(part)] = box
    valid = np.zeros((2, 5), bool)
    valid[0, 3:] = True
    valid[1, 3] = True  # a valid left hand without a hand box: not labelable
    ws = WholeBodySet.from_arrays(
        [{"id": 7, "file_name": "a.png", "width": 320, "height": 200}], [7, 7], kpts,
        [[20, 20, 250, 170], [30, 40, 40, 40]], areas=[12000.0, 1500.0], valid=valid,
        part_boxes=boxes,
    )  # fmt: skip
    ws.save(root / "hands.json")
    return root / "hands.json"


@pytest.fixture
def hand_set(tmp_path: Path) -> Path:
    return make_hand_set(tmp_path / "src")


def _label(crops_dir: Path, teacher, min_conf: float = 0.5) -> WholeBodySet:
    job = PseudoLabeller(
        crops_dir / CROPS_FILE, crops_dir / IMAGES, crops_dir / "labels.json", {"hand": teacher},
        part_boxes="gt", min_conf=min_conf, workers=0, progress=False, overwrite=True,
    )  # fmt: skip
    return job.run()


def test_the_hand_box_becomes_size_px_in_a_margin_x_crop_and_points_follow(hand_set, tmp_path):
    ws = WholeBodySet.load(hand_set)
    assert labelable_hands(ws) == [(0, "lefthand"), (0, "righthand")]
    crops = build_hand_crops(hand_set, hand_set.parent / "images", tmp_path / "c", 32, 2.0)
    assert len(crops) == 2 and crops.header["hand_crops"]["size"] == 32
    for row, (rect, part) in enumerate(((SMALL, "lefthand"), (LARGE, "righthand"))):
        rec = crops.images[int(crops.image_ids[row])]
        assert (rec["width"], rec["height"], rec["hand"]) == (64, 64, part)
        scale = 32 / max(rect[2:])
        box = crops.part_boxes[row, 1 + ("lefthand", "righthand").index(part)]
        # long side 32 px, centred on the crop (pixel centres at integers: centre 31.5)
        np.testing.assert_allclose(box[2:].max(), 32)
        np.testing.assert_allclose(box[:2] + box[2:] / 2, [31.5, 31.5])
        np.testing.assert_allclose(crops.areas[row], 12000.0 * scale**2)
        pts = crops.keypoints[row, PART_SLICES[part]]
        np.testing.assert_allclose(pts[:, :2], box[:2] + HAND_FRACTIONS * box[2:], atol=1e-9)
        assert (crops.keypoints[row, :91, 2] == 0).all()  # no body, foot or face points
        # the pixels moved with the points: the drawn hand fills the mapped box (within 1 px)
        img = cv2.imread(str(tmp_path / "c" / IMAGES / rec["file_name"]))
        ys, xs = np.nonzero(img[..., 2] > 128)
        np.testing.assert_allclose([xs.min() - 0.5, ys.min() - 0.5], box[:2], atol=1.0)
        np.testing.assert_allclose([xs.max() + 0.5, ys.max() + 0.5], box[:2] + box[2:], atol=1.0)


def test_a_teacher_that_finds_the_exact_hand_scores_1_and_a_shifted_one_less(hand_set, tmp_path):
    assert np.array_equal(part_sigmas("lefthand"), part_sigmas("righthand"))  # pooling is fair
    out = tmp_path / "c"
    crops = load_or_build_crops(hand_set, hand_set.parent / "images", out, 32, 2.0)
    table = score_hand_crops(_label(out, BoxHandTeacher()), crops)
    assert table["metrics"]["hand/AP"] == pytest.approx(1.0)
    assert table["metrics"]["lefthand/AP"] == table["metrics"]["righthand/AP"] == pytest.approx(1.0)
    assert table["coverage"]["hand"] == {"labelable": 2, "labelled": 2}
    wrong = score_hand_crops(_label(out, BoxHandTeacher(shift=0.3)), crops)
    assert wrong["metrics"]["hand/AP"] < 0.5
    # hand_box area (much smaller than the person's): the same small error costs more
    strict = load_or_build_crops(
        hand_set, hand_set.parent / "images", tmp_path / "s", area="hand_box"
    )
    slight = BoxHandTeacher(shift=0.05)
    person = score_hand_crops(_label(out, slight), crops)
    box = score_hand_crops(_label(tmp_path / "s", slight), strict)
    assert box["metrics"]["hand/AP"] < person["metrics"]["hand/AP"]


def test_unconfident_hands_stay_unlabelled_and_count_against_coverage(hand_set, tmp_path):
    out = tmp_path / "c"
    crops = load_or_build_crops(hand_set, hand_set.parent / "images", out)
    table = score_hand_crops(_label(out, BoxHandTeacher(conf=0.3)), crops)
    assert table["coverage"]["hand"] == {"labelable": 2, "labelled": 0}
    assert table["metrics"]["hand/AP"] == 0.0
    low = score_hand_crops(_label(out, BoxHandTeacher(conf=0.3), min_conf=0.2), crops)
    assert low["coverage"]["hand"]["labelled"] == 2 and low["metrics"]["hand/AP"] == pytest.approx(
        1.0
    )


def test_pooling_moves_right_hands_into_the_left_slot(hand_set, tmp_path):
    crops = load_or_build_crops(hand_set, hand_set.parent / "images", tmp_path / "c")
    both = pooled(crops)
    left, right = PART_SLICES["lefthand"], PART_SLICES["righthand"]
    np.testing.assert_array_equal(both.keypoints[1, left], crops.keypoints[1, right])
    assert (
        (both.keypoints[:, right] == 0).all()
        and both.valid[:, 3].all()
        and not both.valid[:, 4].any()
    )
    two = crops.subset([0])
    two.keypoints[0, right] = crops.keypoints[1, right]
    with pytest.raises(ValueError, match="one hand per person"):
        pooled(two)


def test_a_crop_set_is_reused_and_one_of_other_settings_refused(hand_set, tmp_path):
    out, images = tmp_path / "c", hand_set.parent / "images"
    first = load_or_build_crops(hand_set, images, out, 32)
    stamp = (out / CROPS_FILE).stat().st_mtime_ns
    again = load_or_build_crops(hand_set, images, out, 32)
    assert (out / CROPS_FILE).stat().st_mtime_ns == stamp and len(again) == len(first)
    with pytest.raises(FileExistsError, match="size"):
        load_or_build_crops(hand_set, images, out, 24)
    assert len(load_or_build_crops(hand_set, images, out, 24, overwrite=True)) == 2
    (out / CROPS_FILE).unlink()  # an interrupted build: crop images without the set
    with pytest.raises(FileExistsError, match="interrupted"):
        load_or_build_crops(hand_set, images, out, 24)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    cmd = [sys.executable, str(ROOT / "hand_crops.py"), "workers=0", "progress=false",
           "~teacher/hand", "+teacher.hand={_target_:fake_teachers.BoxHandTeacher}", *args,
           "hydra.run.dir=" + str(Path(args[0].split("=", 1)[1]).parent / "run")]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.slow
def test_the_entry_point_scores_and_refuses_bad_input_with_exit_2(hand_set, tmp_path):
    images = hand_set.parent / "images"
    out = tmp_path / "out"
    args = (f"ann_file={hand_set}", f"image_dir={images}", f"out_dir={out}", "name=box")
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.box.json").read_text())
    assert report["metrics"]["hand/AP"] == pytest.approx(1.0) and "hand" in done.stdout
    again = _cli(*args)  # an existing report is never replaced silently
    assert (
        again.returncode == 2
        and "report.box.json" in again.stderr
        and "Traceback" not in again.stderr
    )
    # a missing image: one line naming it
    (images / "a.png").rename(images / "b.png")
    gone = _cli(f"ann_file={hand_set}", f"image_dir={images}", f"out_dir={tmp_path / 'o2'}")
    assert gone.returncode == 2 and "a.png" in gone.stderr and "Traceback" not in gone.stderr
    # a malformed field: named with the file
    data = json.loads(hand_set.read_text())
    data["annotations"][0]["lefthand_box"] = "wide"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    broken = _cli(f"ann_file={bad}", f"image_dir={images}", f"out_dir={tmp_path / 'o3'}")
    assert (
        broken.returncode == 2 and "bad.json" in broken.stderr and "lefthand_box" in broken.stderr
    )


@pytest.mark.needs_teachers
@pytest.mark.needs_sample
def test_the_searching_hand_teacher_beats_the_plain_baseline_on_the_samples_crops(
    sample_dir, sample_ann_file, tmp_path
):
    """The sample's 10 hands at 32 px: the default teacher (search, re-crop, flip average)
    scores at least the issue's plain baseline, both on the same crops, and labels some."""
    import importlib.util

    from fullbody.pseudo.teachers.base import model_dir
    from fullbody.pseudo.teachers.install import MODELS
    from fullbody.pseudo.teachers.mediapipe_hand import MediaPipeHand
    from fullbody.utils.wheels import installed

    if importlib.util.find_spec("ai_edge_litert") is None or not all(
        installed(model_dir(), MODELS).values()
    ):
        pytest.skip("MediaPipe teachers not installed (make teachers)")
    out = tmp_path / "c"
    crops = load_or_build_crops(sample_ann_file, sample_dir / "images", out, 32, 2.0)
    assert len(crops) == 10
    plain = MediaPipeHand(
        refine=0, search_scales=(2.0,), search_shifts=(0.0,), search_below=1.0, flip_average=False
    )
    ours = score_hand_crops(_label(out, MediaPipeHand()), crops)
    base = score_hand_crops(_label(out, plain), crops)
    assert ours["coverage"]["hand"]["labelled"] >= 2
    assert (
        ours["metrics"]["hand/AP"] > 0 and ours["metrics"]["hand/AP"] >= base["metrics"]["hand/AP"]
    )
