"""Crop geometry: boxes, affines, warps, flips and half-body against known transforms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinydata import person

from fullbody.data.transforms import LOWER_HALF, UPPER_HALF, half_body_box, inside, truncated_normal
from fullbody.geometry import (
    affine_matrix,
    box_to_center_scale,
    compose_affine,
    flip_index_points,
    flip_keypoints,
    invert_affine,
    person_affines,
    reduced_to_full,
    transform_points,
    warp,
)
from fullbody.keypoints import FLIP_INDEX, NAME_TO_INDEX, NUM_KEYPOINTS

OUT = (256, 192)


def test_box_to_center_scale_fixes_aspect_and_pads():
    c, s = box_to_center_scale(np.array([10, 20, 30, 200]), 0.75, 1.25)  # tall: width grows
    np.testing.assert_allclose(c, [25, 120])
    np.testing.assert_allclose(s, [150 * 1.25, 200 * 1.25])
    c, s = box_to_center_scale(np.array([0, 0, 300, 100]), 0.75, 1.0)  # wide: height grows
    np.testing.assert_allclose(c, [150, 50])
    np.testing.assert_allclose(s, [300, 400])
    cs, ss = box_to_center_scale(np.array([[10, 20, 30, 200], [0, 0, 300, 100]]), 0.75, 1.0)
    assert cs.shape == ss.shape == (2, 2)
    np.testing.assert_allclose(ss[:, 0] / ss[:, 1], 0.75)


def test_affine_maps_box_edges_to_crop_edges():
    center, scale = np.array([100.0, 80.0]), np.array([96.0, 128.0])
    m = affine_matrix(center, scale, 0.0, OUT)
    h, w = OUT
    corners = np.array([center - scale / 2, center + scale / 2, center])
    np.testing.assert_allclose(
        transform_points(corners, m), [[-0.5, -0.5], [w - 0.5, h - 0.5], [(w - 1) / 2, (h - 1) / 2]]
    )


def test_rotation_is_counter_clockwise_on_screen():
    m = affine_matrix(np.array([50.0, 50.0]), np.array([192.0, 256.0]), 90.0, OUT)
    right_of_centre = transform_points(np.array([[60.0, 50.0]]), m)[0]
    cx, cy = (OUT[1] - 1) / 2, (OUT[0] - 1) / 2
    np.testing.assert_allclose(right_of_centre, [cx, cy - 10], atol=1e-9)  # now above


def test_flip_matrix_mirrors_the_crop():
    c, s = np.array([120.0, 90.0]), np.array([150.0, 200.0])
    m, mf = affine_matrix(c, s, 17.0, OUT), affine_matrix(c, s, 17.0, OUT, flip=True)
    pts = np.random.default_rng(0).uniform(0, 200, (50, 2))
    a, b = transform_points(pts, m), transform_points(pts, mf)
    np.testing.assert_allclose(b[:, 0], OUT[1] - 1 - a[:, 0])
    np.testing.assert_allclose(b[:, 1], a[:, 1])


@settings(max_examples=50, deadline=None)
@given(
    cx=st.floats(-100, 700),
    cy=st.floats(-100, 700),
    sw=st.floats(5, 900),
    aspect=st.floats(0.3, 3),
    rot=st.floats(-180, 180),
    flip=st.booleans(),
)
def test_inverse_affine_recovers_points(cx, cy, sw, aspect, rot, flip):
    m = affine_matrix(np.array([cx, cy]), np.array([sw, sw * aspect]), rot, OUT, flip)
    pts = np.random.default_rng(1).uniform(-50, 650, (20, 2))
    back = transform_points(transform_points(pts, m), invert_affine(m))
    np.testing.assert_allclose(back, pts, atol=1e-7 * max(1.0, sw))


def test_compose_matches_sequential_application():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    pts = rng.normal(size=(10, 2))
    np.testing.assert_allclose(
        transform_points(pts, compose_affine(a, b)), transform_points(transform_points(pts, b), a)
    )


def test_transform_points_keeps_extra_columns():
    pts = np.array([[1.0, 2.0, 0.7]])
    out = transform_points(pts, np.array([[2.0, 0, 1], [0, 3.0, 0]]))
    np.testing.assert_allclose(out, [[3.0, 6.0, 0.7]])


def test_flip_twice_is_identity():
    kp = np.random.default_rng(3).uniform(0, 100, (NUM_KEYPOINTS, 3))
    np.testing.assert_allclose(flip_keypoints(flip_keypoints(kp, 192), 192), kp)
    np.testing.assert_array_equal(flip_index_points(flip_index_points(kp)), kp)
    batch = np.stack([kp, kp + 1])
    np.testing.assert_allclose(flip_keypoints(flip_keypoints(batch, 50), 50), batch)


def test_flip_swaps_sides_and_mirrors_x():
    kp = np.zeros((NUM_KEYPOINTS, 3))
    left, right = NAME_TO_INDEX["left_wrist"], NAME_TO_INDEX["right_wrist"]
    kp[left] = [10, 20, 2]
    kp[right] = [30, 40, 1]
    out = flip_keypoints(kp, 100)
    np.testing.assert_allclose(out[right], [89, 20, 2])  # the old left wrist, mirrored
    np.testing.assert_allclose(out[left], [69, 40, 1])
    assert (FLIP_INDEX[FLIP_INDEX] == np.arange(NUM_KEYPOINTS)).all()


def _blob_centres(
    crop: np.ndarray, colours: dict[int, tuple[int, int, int]]
) -> dict[int, np.ndarray]:
    out = {}
    for k, col in colours.items():
        hit = np.all(np.abs(crop.astype(int) - col) <= 12, axis=-1)
        if hit.sum() >= 3:
            ys, xs = np.nonzero(hit)
            out[k] = np.array([xs.mean(), ys.mean()])
    return out


@pytest.mark.parametrize("rot,flip,zoom", [(0, False, 1.0), (33, False, 0.8), (-70, True, 1.3)])
def test_warp_moves_pixels_where_transform_points_moves_points(rot, flip, zoom):
    """Dots painted at known points land in the crop where the points' transform says."""
    img = np.full((300, 300, 3), 20, np.uint8)
    pts = {0: (120, 80), 1: (200, 150), 2: (90, 230)}
    colours = {0: (250, 40, 40), 1: (40, 250, 40), 2: (40, 40, 250)}
    for k, p in pts.items():
        cv2.circle(img, p, 6, colours[k], -1)
    m = affine_matrix(np.array([150.0, 150.0]), np.array([240.0, 320.0]) * zoom, rot, OUT, flip)
    crop = warp(img, m, OUT)
    assert crop.shape == (*OUT, 3) and crop.dtype == np.uint8
    found = _blob_centres(crop, colours)
    expect = transform_points(np.array([pts[k] for k in sorted(pts)], float), m)
    assert set(found) == {0, 1, 2}
    for k in found:
        np.testing.assert_allclose(found[k], expect[k], atol=0.6)


def test_warp_of_flipped_matrix_is_mirrored_crop():
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8), (9, 9), 3)
    c, s = np.array([140.0, 100.0]), np.array([120.0, 160.0])
    plain = warp(img, affine_matrix(c, s, 12.0, OUT), OUT).astype(int)
    mirrored = warp(img, affine_matrix(c, s, 12.0, OUT, flip=True), OUT).astype(int)
    diff = np.abs(plain[:, ::-1] - mirrored)
    assert diff.max() <= 2 and diff.mean() < 0.3  # OpenCV's 1/32 px fixed-point rounding


def test_warp_into_a_buffer_writes_there_and_refuses_a_buffer_opencv_would_not_fill():
    img = np.random.default_rng(5).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    m = affine_matrix(np.array([40.0, 30.0]), np.array([30.0, 40.0]), 7.0, OUT)
    buf = np.full((*OUT, 3), 7, np.uint8)
    assert warp(img, m, OUT, out=buf) is buf
    np.testing.assert_array_equal(buf, warp(img, m, OUT))
    for bad in (np.empty((*OUT, 3), np.float32), np.empty((OUT[1], OUT[0], 3), np.uint8),
                np.empty((*OUT, 6), np.uint8)[..., ::2]):  # fmt: skip
        with pytest.raises(ValueError, match="out must be a contiguous"):
            warp(img, m, OUT, out=bad)


def test_reduced_decode_affine_matches_full_resolution():
    """A crop warped from a 1/4-size image through reduced_to_full equals the full-size crop."""
    rng = np.random.default_rng(5)
    img = cv2.resize(rng.integers(0, 255, (25, 40, 3), dtype=np.uint8), (640, 400), cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (0, 0), 6)
    small = cv2.resize(img, (160, 100), interpolation=cv2.INTER_AREA)
    m = affine_matrix(np.array([320.0, 200.0]), np.array([600.0, 800.0]), 5.0, OUT)
    full = warp(img, m, OUT).astype(float)
    reduced = warp(small, compose_affine(m, reduced_to_full(4)), OUT).astype(float)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(full[inner] - reduced[inner]).mean() < 1.5


def test_half_body_picks_one_half():
    kp = person(0, 0)
    rng = np.random.default_rng(6)
    seen = set()
    for _ in range(40):
        box = half_body_box(kp, rng)
        assert box is not None
        for name, idx in (("upper", UPPER_HALF), ("lower", LOWER_HALF)):
            pts = kp[idx][kp[idx, 2] > 0, :2]
            lo, hi = pts.min(0), pts.max(0)
            if np.allclose(box, [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]):
                seen.add(name)
    assert seen == {"upper", "lower"}


def test_half_body_needs_enough_points():
    kp = person(0, 0)
    kp[:17:2, 2] = 0  # 8 of 17 body points left
    assert half_body_box(kp, np.random.default_rng(0)) is None
    kp = person(0, 0)
    kp[11:17, 2] = 0  # no lower body: always the upper half
    box = half_body_box(kp, np.random.default_rng(0), min_total=9)
    up = kp[UPPER_HALF][kp[UPPER_HALF, 2] > 0, :2]
    np.testing.assert_allclose(box[:2], up.min(0))


def test_truncated_normal_and_inside():
    rng = np.random.default_rng(7)
    draws = np.array([truncated_normal(rng, 1.0, 0.5) for _ in range(1000)])
    assert draws.min() >= -0.5 and draws.max() <= 0.5
    pts = np.array([[-0.5, 0], [-0.51, 0], [47.49, 63.49], [47.5, 0], [0, 63.5]])
    np.testing.assert_array_equal(inside(pts, (64, 48)), [True, False, True, False, False])


def test_person_affines_follow_the_training_crop():
    boxes = np.array([[10.0, 20.0, 30.0, 120.0], [50.0, 50.0, 80.0, 40.0]])
    a = person_affines(boxes, (256, 192), 1.25)
    # a tall box: height x 1.25 fills the 256 rows; a wide box: width x 1.25 fills the 192 columns
    top_bottom = transform_points(np.array([[[25.0, 20.0 - 15.0], [25.0, 140.0 + 15.0]]]), a[:1])
    np.testing.assert_allclose(top_bottom[0, :, 1], [-0.5, 255.5], atol=1e-9)
    left_right = transform_points(np.array([[[50.0 - 10.0, 70.0], [130.0 + 10.0, 70.0]]]), a[1:])
    np.testing.assert_allclose(left_right[0, :, 0], [-0.5, 191.5], atol=1e-9)
