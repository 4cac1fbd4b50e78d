import numpy as np
import pytest
from conftest import skeleton

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import NAME_TO_INDEX as K
from fullbody.pseudo.proposals import (
    REGION_PARTS,
    human_region_boxes,
    paired_box_iou,
    proposal_quality,
    propose,
    with_human_boxes,
)


def _centre(box):
    return box[..., :2] + box[..., 2:] / 2


def test_upright_person_regions_sit_at_head_wrists_and_ankles():
    body = skeleton()
    r = propose(body)
    assert r.ok.all()
    face, lh, rh, lf, rf = (r.boxes[0, j] for j in range(5))
    fc = _centre(face)
    # face: centred below the eyes' mean, near the nose, sized ~ 2 eye spans (6 px) / 0.9 ear span
    assert 16 < fc[1] < 24 and abs(fc[0] - 50) < 1
    assert face[2] == pytest.approx(max(0.9 * 14, 2.0 * 6, 2.6 * np.hypot(3, 3)))
    np.testing.assert_allclose(r.up[0, 0], [0, -1], atol=1e-9)
    # hands: beyond the wrists along the forearm
    for box, side, up in ((lh, "left", r.up[0, 1]), (rh, "right", r.up[0, 2])):
        w, e = body[0, K[f"{side}_wrist"], :2], body[0, K[f"{side}_elbow"], :2]
        np.testing.assert_allclose(up, (w - e) / np.linalg.norm(w - e))
        assert np.dot(_centre(box) - w, w - e) > 0
    # feet: around the ankle, up the shin
    for box, side in ((lf, "left"), (rf, "right")):
        a = body[0, K[f"{side}_ankle"], :2]
        assert box[0] < a[0] < box[0] + box[2] and box[1] < a[1] < box[1] + box[3]
        np.testing.assert_allclose(r.up[0, REGION_PARTS.index(f"{side}foot")], [0, -1])


def test_proposals_rotate_and_scale_with_the_skeleton():
    body = skeleton()
    theta = np.deg2rad(90)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    turned = body.copy()
    turned[..., :2] = 3 * (body[..., :2] - 50) @ rot.T + 200
    a, b = propose(body), propose(turned)
    np.testing.assert_allclose(b.up, a.up @ rot.T, atol=1e-9)
    # the face and hand boxes are squares: centres move with the skeleton, sides scale by 3
    for j in range(3):
        np.testing.assert_allclose(
            _centre(b.boxes[0, j]), 3 * (_centre(a.boxes[0, j]) - 50) @ rot.T + 200, atol=1e-6
        )
        np.testing.assert_allclose(b.boxes[0, j, 2], 3 * a.boxes[0, j, 2])


def test_short_forearm_uses_the_torso_and_missing_points_give_no_region():
    body = skeleton()
    body[0, K["left_elbow"], :2] = body[0, K["left_wrist"], :2] + [0, -2]  # forearm at the camera
    r = propose(body)
    upper_arm = np.hypot(68 - 62, 73 - 35)  # left shoulder -> the moved elbow
    assert r.boxes[0, 1, 2] == pytest.approx(0.5 * 0.87 * upper_arm)
    body[0, K["left_elbow"], 2] = 0  # no elbow: the torso sizes the hand
    torso = np.hypot(5, 45)  # left shoulder (62,35) -> left hip (57,80)
    assert propose(body).boxes[0, 1, 2] == pytest.approx(0.5 * 0.52 * torso)
    body[0, K["left_wrist"], 2] = 0
    body[0, [0, 1, 2, 3], 2] = 0  # only the right ear is left of the face
    body[0, K["right_ankle"], 2] = 0
    r = propose(body)
    assert not r.ok[0, REGION_PARTS.index("lefthand")]
    assert not r.ok[0, REGION_PARTS.index("face")]
    assert not r.ok[0, REGION_PARTS.index("rightfoot")]
    assert (r.boxes[0, ~r.ok[0]] == 0).all()


def test_missing_elbow_points_the_hand_along_the_arm():
    body = skeleton()
    body[0, K["right_elbow"], 2] = 0
    up = propose(body).up[0, REGION_PARTS.index("righthand")]
    arm = body[0, K["right_wrist"], :2] - body[0, K["right_shoulder"], :2]
    np.testing.assert_allclose(up, arm / np.linalg.norm(arm))


def test_face_seen_from_behind_still_points_up_and_profile_faces_get_a_box():
    body = skeleton()
    back = body.copy()  # from behind: the person's left ear is on the image's left
    back[0, [3, 4], :2] = back[0, [4, 3], :2]
    back[0, [0, 1, 2], 2] = 0
    r = propose(back)
    assert r.ok[0, 0] and r.up[0, 0, 1] < -0.99
    profile = body.copy()
    profile[0, [2, 4], 2] = 0  # nose, left eye, left ear
    r = propose(profile)
    assert r.ok[0, 0] and r.boxes[0, 0, 2] >= 1.5 * np.hypot(4, 2) - 1e-9


def test_bad_shape_raises():
    with pytest.raises(ValueError, match=r"\(n, 17, 3\)"):
        propose(np.zeros((2, 133, 3)))


def test_quality_is_perfect_for_human_boxes_and_drops_with_misses():
    body = skeleton(2)
    kpts = np.zeros((2, 133, 3))
    kpts[:, :17] = body
    r = propose(body)
    boxes = r.boxes[:, :3].copy()
    ws = WholeBodySet.from_arrays(
        [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 200}],
        np.ones(2), kpts, np.tile([0, 0, 100, 150], (2, 1)),
        valid=np.array([[True, False, True, True, False]] * 2), part_boxes=boxes,
    )  # fmt: skip
    q = proposal_quality(with_human_boxes(r, boxes), ws)
    assert q["face"]["mean_iou"] == 1.0 and q["face"]["recall@0.5"] == 1.0
    assert q["lefthand"]["n"] == 2 and q["leftfoot"]["n"] == 0
    assert q["leftfoot"]["mean_iou"] is None and q["leftfoot"]["point_recall"] is None
    r.ok[1, 0] = False
    assert proposal_quality(r, ws)["face"]["recall@0.5"] == 0.5
    assert human_region_boxes(ws)[1][:, 0].all()
    assert paired_box_iou(np.array([[0, 0, 2, 2.0]]), np.array([[1, 1, 2, 2.0]]))[
        0
    ] == pytest.approx(1 / 7)


@pytest.mark.needs_sample
def test_proposals_on_the_sample_find_faces_and_hands(sample_ann_file):
    ws = WholeBodySet.load(sample_ann_file)
    q = proposal_quality(propose(ws.keypoints[:, :17]), ws)
    assert q["face"]["mean_iou"] > 0.6 and q["face"]["recall@0.5"] >= 0.75
    for part in ("lefthand", "righthand"):
        assert q[part]["mean_iou"] > 0.25 and q[part]["point_recall"] > 0.5
    for part in ("leftfoot", "rightfoot"):
        assert q[part]["point_recall"] > 0.7
