import numpy as np
import pytest

from fullbody import keypoints as K


def test_layout_sizes_and_order():
    assert len(K.KEYPOINT_NAMES) == K.NUM_KEYPOINTS == 133
    assert len(set(K.KEYPOINT_NAMES)) == 133
    sizes = {p: s.stop - s.start for p, s in K.PART_SLICES.items()}
    assert sizes == {"body": 17, "foot": 6, "face": 68, "lefthand": 21, "righthand": 21}
    starts = [s.start for s in K.PART_SLICES.values()]
    assert starts == [0, 17, 23, 91, 112]
    assert K.KEYPOINT_NAMES[17] == "left_big_toe" and K.KEYPOINT_NAMES[22] == "right_heel"
    assert (
        K.KEYPOINT_NAMES[91] == "left_hand_root" and K.KEYPOINT_NAMES[132] == "right_pinky_finger4"
    )
    assert K.part_of(0) == "body" and K.part_of(90) == "face" and K.part_of(112) == "righthand"


def test_flip_is_an_involution_swapping_left_and_right():
    idx = K.FLIP_INDEX
    assert np.array_equal(idx[idx], np.arange(133))
    for i, j in enumerate(idx):
        a, b = K.KEYPOINT_NAMES[i], K.KEYPOINT_NAMES[j]
        if a.startswith("left_"):
            assert b == "right_" + a[5:]
        elif a.startswith("right_"):
            assert b == "left_" + a[6:]
        elif i < 23:
            assert i == j == 0  # the nose is the only centre-line body point
        # every left/right name has a partner, never itself
        if "left" in a or "right" in a:
            assert i != j


def test_face_centre_line_points_stay_put():
    centre = {0, 31, 50, 51, 52, 53, 56, 74, 80, 85, 89}
    fixed = {i for i in range(133) if K.FLIP_INDEX[i] == i}
    assert fixed == centre


def test_flip_pairs_match_the_published_table():
    pairs = set(K.FLIP_PAIRS)
    for p in [(1, 2), (15, 16), (17, 20), (19, 22), (23, 39), (30, 32), (40, 49), (44, 45),
              (54, 58), (55, 57), (59, 68), (63, 70), (64, 69), (71, 77), (78, 82), (88, 90),
              (91, 112), (111, 132)]:  # fmt: skip
        assert p in pairs


def test_official_sigmas():
    s = K.SIGMAS
    assert s.shape == (133,)
    assert s[0] == 0.026 and s[16] == 0.089
    assert list(s[17:23]) == [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
    assert s[23] == 0.042 and s[70] == 0.034 and s[90] == 0.008
    assert np.array_equal(s[91:112], s[112:133])
    assert s[91] == 0.029 and s[95] == 0.047 and s[111] == 0.031
    assert s.sum() == pytest.approx(3.861, abs=1e-9)
    # body and hand sigmas are mirror-symmetric (the official face and foot ones are not)
    for part in ("body", "lefthand", "righthand"):
        i = K.part_indices(part)
        assert np.array_equal(s[i], s[K.FLIP_INDEX[i]])


def test_halpe_sigmas_and_part_lookup():
    assert np.all(K.part_sigmas("foot", "halpe") == 0.089)
    assert np.all(K.part_sigmas("face", "halpe") == 0.015)
    assert K.part_sigmas("wholebody").shape == (133,)
    with pytest.raises(KeyError, match="unknown part"):
        K.part_indices("hands")
    with pytest.raises(ValueError, match="sigma scheme"):
        K.part_sigmas("body", "openpose")


def test_skeleton_links_are_valid_and_cover_every_point():
    links = np.array(K.SKELETON)
    assert links.min() >= 0 and links.max() < 133
    assert set(links.ravel()) == set(range(133))
    # mirrored skeleton is the same skeleton
    flipped = {tuple(sorted((K.FLIP_INDEX[a], K.FLIP_INDEX[b]))) for a, b in K.SKELETON}
    assert flipped == {tuple(sorted(link)) for link in K.SKELETON}
    assert set(K.PART_COLORS) == set(K.PART_SLICES)
