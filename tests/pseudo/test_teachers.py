"""Each real teacher on the real sample: its points must land near the human ones."""

import importlib.util

import cv2
import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.proposals import REGION_PARTS, propose, with_human_boxes
from fullbody.pseudo.teachers.base import People, TeacherError, model_dir
from fullbody.pseudo.teachers.install import MODELS
from fullbody.utils.wheels import installed

pytestmark = [pytest.mark.needs_teachers, pytest.mark.needs_sample]


@pytest.fixture(scope="module")
def mediapipe_models():
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("ai-edge-litert not installed (pip install -e '.[teachers]')")
    state = installed(model_dir(), MODELS)
    if not all(state.values()):
        missing = [k for k, ok in state.items() if not ok]
        pytest.skip(f"MediaPipe models {missing} not in {model_dir()} (make teachers)")
    return model_dir()


@pytest.fixture(scope="module")
def sample(sample_dir):
    ws = WholeBodySet.load(sample_dir / "annotations" / "coco_wholebody_sample.json")
    images = {}
    for iid, rec in ws.images.items():
        bgr = cv2.imread(str(sample_dir / "images" / rec["file_name"]))
        images[iid] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return ws, images


def run_teacher(teacher, sample, human_boxes: bool):
    """Predictions of ``teacher`` for every sample person, as (N, 133, 2), (N, 133)."""
    ws, images = sample
    xy, conf = np.zeros((len(ws), 133, 2)), np.zeros((len(ws), 133))
    regions = propose(ws.keypoints[:, :17])
    if human_boxes:
        regions = with_human_boxes(regions, ws.part_boxes)
    for iid, rows in ws.by_image().items():
        people = People(ws.keypoints[rows, :17], ws.bboxes[rows], regions.subset(rows))
        pred = teacher.predict(images[iid], people)
        xy[rows], conf[rows] = pred.xy, pred.conf
    return xy, conf, regions


def part_errors(ws, xy, part):
    """Mean point error of each human-valid part, in units of its human box's long side."""
    sl, b = PART_SLICES[part], ("face", "lefthand", "righthand").index(part)
    out = []
    for i in np.flatnonzero(ws.valid[:, list(PART_SLICES).index(part)]):
        lab = ws.keypoints[i, sl, 2] > 0
        d = np.linalg.norm(xy[i, sl] - ws.keypoints[i, sl, :2], axis=1)[lab]
        out.append(d.mean() / ws.part_boxes[i, b, 2:].max())
    return np.array(out)


@pytest.mark.parametrize("human_boxes", [True, False])
def test_mediapipe_face_lands_on_the_human_face_points(mediapipe_models, sample, human_boxes):
    from fullbody.pseudo.teachers.mediapipe_face import MediaPipeFace

    ws = sample[0]
    xy, conf, _ = run_teacher(MediaPipeFace(model_dir=mediapipe_models), sample, human_boxes)
    err = part_errors(ws, xy, "face")
    assert len(err) == 4 and err.mean() < 0.08 and err.max() < 0.15, err
    assert (conf[ws.valid[:, 2], 23] > 0.5).sum() >= 3


def test_dlib_face_lands_on_the_human_face_points(sample):
    if importlib.util.find_spec("dlib") is None:
        pytest.skip("dlib-bin not installed (pip install -e '.[teachers]')")
    from fullbody.pseudo.teachers.dlib_face import DlibFace

    try:
        teacher = DlibFace()
    except TeacherError as e:
        pytest.skip(str(e))
    ws = sample[0]
    xy, conf, _ = run_teacher(teacher, sample, human_boxes=True)
    err = part_errors(ws, xy, "face")
    assert len(err) == 4 and err.mean() < 0.12, err
    face = conf[ws.valid[:, 2]][:, PART_SLICES["face"]]
    assert ((face >= 0) & (face <= 1)).all() and face.mean() > 0.5


def test_mediapipe_hand_beats_the_box_centre(mediapipe_models, sample):
    from fullbody.pseudo.teachers.mediapipe_hand import MediaPipeHand

    ws = sample[0]
    teacher = MediaPipeHand(model_dir=mediapipe_models, wrist_tolerance=1e9)
    xy, _, _ = run_teacher(teacher, sample, human_boxes=True)
    centre = np.zeros_like(xy)
    for b, part in enumerate(("lefthand", "righthand")):
        box = ws.part_boxes[:, b + 1]
        centre[:, PART_SLICES[part]] = (box[:, :2] + box[:, 2:] / 2)[:, None]
    # The sample's hands are small and gloved: the teacher must still beat the box centre on
    # each side, and get some hand right.
    errs = []
    for part in ("lefthand", "righthand"):
        err, base = part_errors(ws, xy, part), part_errors(ws, centre, part)
        assert len(err) == 5 and err.mean() < base.mean(), (part, err, base)
        errs.append(err)
    assert np.concatenate(errs).min() < 0.15, errs


def test_mediapipe_pose_feet_land_near_the_human_feet(mediapipe_models, sample):
    from fullbody.pseudo.teachers.mediapipe_pose_feet import MediaPipePoseFeet

    ws = sample[0]
    xy, conf, regions = run_teacher(MediaPipePoseFeet(model_dir=mediapipe_models), sample, False)
    errs = []
    for side, idx in (("leftfoot", [17, 19]), ("rightfoot", [20, 22])):
        scale = regions.boxes[:, REGION_PARTS.index(side), 2:].max(1)
        for i, j in zip(*np.nonzero(ws.keypoints[:, idx, 2] > 0)):
            errs.append(np.linalg.norm(xy[i, idx[j]] - ws.keypoints[i, idx[j], :2]) / scale[i])
    errs = np.array(errs)
    assert len(errs) >= 20 and np.median(errs) < 0.25 and (errs < 0.3).mean() > 0.6, errs
    assert (conf[:, [18, 21]] == 0).all()  # small toes: never predicted


def test_missing_model_files_say_how_to_install(tmp_path):
    from fullbody.pseudo.teachers.mediapipe_hand import MediaPipeHand

    with pytest.raises(TeacherError, match="fullbody.pseudo.teachers.install"):
        MediaPipeHand(model_dir=tmp_path)
