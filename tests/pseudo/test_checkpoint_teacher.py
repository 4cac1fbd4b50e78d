"""The project's own checkpoint as a teacher (round-2 self-distillation), on a tiny model the
test builds and saves itself."""

import numpy as np
import pytest
import torch
from helpers.checkpoints import save_checkpoint, tiny_module
from pseudo_data import skeleton

from fullbody.codecs.spec import TopDownSpec
from fullbody.geometry import box_to_center_scale
from fullbody.inference.predictor import PosePredictor
from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.proposals import propose
from fullbody.pseudo.runner import PseudoLabeller
from fullbody.pseudo.teachers.base import People, TeacherError
from fullbody.pseudo.teachers.checkpoint import CheckpointTeacher

INPUT = (96, 64)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    module = tiny_module(spec=TopDownSpec.standard(INPUT))
    return save_checkpoint(module, tmp_path_factory.mktemp("ckpt") / "student.ckpt")


def test_checkpoint_teacher_matches_the_predictor_and_maps_into_each_box(ckpt):
    teacher = CheckpointTeacher(ckpt)
    body = np.concatenate([skeleton(1, 1.0, (10, 10)), skeleton(1, 1.0, (130, 20)), skeleton(1)])
    boxes = np.array([[30.0, 20, 45, 135], [150, 30, 45, 135], [0, 0, 0, 0]])
    image = np.random.default_rng(0).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    pred = teacher.predict(image, People(body, boxes, propose(body)))
    ref = PosePredictor.from_checkpoint(ckpt, device="cpu", nms="none")(image, boxes[:2])
    order = np.argsort(ref.box_index)
    np.testing.assert_allclose(pred.xy[:2], ref.keypoints[order, :, :2], atol=1e-6)
    np.testing.assert_allclose(pred.conf[:2], np.clip(ref.keypoints[order, :, 2], 0, 1), atol=1e-6)
    assert (pred.conf[2] == 0).all() and (pred.conf[:2] > 0).any()
    centre, size = box_to_center_scale(boxes[:2], INPUT[1] / INPUT[0], 1.25)
    lo, hi = centre - size / 2 - 1, centre + size / 2 + 1
    assert ((pred.xy[:2] >= lo[:, None]) & (pred.xy[:2] <= hi[:, None])).all()


def test_checkpoint_teacher_labels_what_no_part_teacher_takes(ckpt, dataset, tmp_path):
    teachers = {
        "wholebody": {"_target_": "fullbody.pseudo.teachers.checkpoint.CheckpointTeacher",
                      "path": str(ckpt)},
        "face": {"_target_": "fake_teachers.RegionTeacher", "parts": ["face"]},
    }  # fmt: skip
    out = PseudoLabeller(dataset, dataset.parent / "images", tmp_path / "round2.json", teachers,
                         workers=0, min_conf=0.05, progress=False).run()  # fmt: skip
    assert (out.conf[:, PART_SLICES["face"]] == 0.9).all()  # the part teacher wins the face
    hands = out.conf[:, 91:]
    assert (hands > 0).any() and not np.isin(hands[hands > 0], [0.3]).any()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(TeacherError, match="not found"):
        CheckpointTeacher(tmp_path / "none.ckpt")


def test_a_file_that_is_not_a_checkpoint_is_a_teacher_error_naming_it(ckpt, tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(ckpt, weights_only=True)["state_dict"], bare)
    with pytest.raises(TeacherError, match=rf"checkpoint teacher: {bare} .*bare state dict"):
        CheckpointTeacher(bare)
