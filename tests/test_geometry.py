import numpy as np
import pytest

from fullbody.geometry import (
    box_to_square,
    crop_affines,
    invert_affines,
    mirror_affines,
    rotated_extent,
    transform_points,
    unit,
    warp_crops,
)


def test_unrotated_square_crop_maps_box_corners_to_crop_corners():
    a = crop_affines(np.array([[50.0, 40.0]]), np.array([20.0]), np.array([[0.0, -1.0]]), 100)
    # The square [40, 60] x [30, 50] fills the crop out to its outer pixel edges.
    got = transform_points(np.array([[[40.0, 30.0], [60.0, 50.0], [50.0, 40.0]]]), a)
    np.testing.assert_allclose(got, [[[-0.5, -0.5], [99.5, 99.5], [49.5, 49.5]]], atol=1e-9)


def test_up_vector_points_to_the_top_of_the_crop():
    centre = np.array([[100.0, 100.0]])
    up = np.array([[1.0, 0.0]])  # the part points right in the image
    a = crop_affines(centre, np.array([40.0]), up, 64)
    tip = transform_points(np.array([[[110.0, 100.0]]]), a)[0, 0]
    mid = (64 - 1) / 2
    assert tip[0] == pytest.approx(mid) and tip[1] < mid  # straight up in the crop


def test_round_trip_and_rectangular_crops():
    rng = np.random.default_rng(0)
    c, up = rng.uniform(0, 200, (5, 2)), rng.normal(size=(5, 2))
    sides = rng.uniform(10, 50, (5, 2))
    a = crop_affines(c, sides, up, (48, 64))
    p = rng.uniform(0, 200, (5, 7, 2))
    np.testing.assert_allclose(transform_points(transform_points(p, a), invert_affines(a)), p)
    # the centre lands in the crop's middle whatever the rotation
    np.testing.assert_allclose(transform_points(c[:, None], a)[:, 0], [[23.5, 31.5]] * 5)


def test_warp_moves_a_bright_pixel_where_the_affine_says():
    img = np.zeros((120, 160, 3), np.uint8)
    img[70, 90] = 255
    a = crop_affines(np.array([[80.0, 60.0]]), np.array([60.0]), unit(np.array([[1.0, -1.0]])), 60)
    crop = warp_crops(img, a, 60)[0, ..., 0]
    peak = np.unravel_index(crop.argmax(), crop.shape)[::-1]
    expect = transform_points(np.array([[[90.0, 70.0]]]), a)[0, 0]
    np.testing.assert_allclose(peak, expect, atol=1.0)


def test_bad_sides_and_helpers():
    with pytest.raises(ValueError, match="positive"):
        crop_affines(np.zeros((1, 2)), np.array([0.0]), np.array([[0.0, -1.0]]), 10)
    with pytest.raises(ValueError, match="positive"):
        crop_affines(np.zeros((1, 2)), np.array([np.nan]), np.array([[0.0, -1.0]]), 10)
    np.testing.assert_allclose(unit(np.zeros((1, 2))), [[0.0, -1.0]])
    c, s = box_to_square(np.array([[10.0, 20.0, 30.0, 10.0]]), 2.0)
    np.testing.assert_allclose(c, [[25.0, 25.0]]) and np.testing.assert_allclose(s, [60.0])
    pts = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [99.0, 99.0]]])
    centre, side = rotated_extent(pts, np.array([[True, True, True, False]]), np.array([[0, -1.0]]))
    np.testing.assert_allclose(centre, [[5.0, 2.0]]) and np.testing.assert_allclose(side, [10.0])
    # rotated 90 degrees the same points have the same extent
    centre, side = rotated_extent(pts, np.array([[True, True, True, False]]), np.array([[1.0, 0]]))
    np.testing.assert_allclose(centre, [[5.0, 2.0]]) and np.testing.assert_allclose(side, [10.0])


def test_mirrored_crops_flip_the_pixels_and_map_points_back():
    img = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    a = crop_affines(np.array([[35.0, 25.0]]), np.array([30.0]), unit(np.array([[0.3, -1.0]])), 32)
    m = mirror_affines(a, 32)
    np.testing.assert_array_equal(warp_crops(img, m, 32), warp_crops(img, a, 32)[:, :, ::-1])
    p = np.array([[[12.0, 30.0]]])
    back = transform_points(transform_points(p, m), invert_affines(m))
    np.testing.assert_allclose(back, p)
    np.testing.assert_allclose(transform_points(p, m)[..., 0], 31 - transform_points(p, a)[..., 0])
    assert invert_affines(np.zeros((0, 2, 3))).shape == (0, 2, 3)


def test_antialiased_warp_keeps_the_affine_and_averages_what_it_shrinks():
    from fullbody.geometry import UP, warp_crop_antialiased

    # a linear ramp survives area averaging and bilinear sampling exactly: where the crop lands
    # in the image is the affine's, not shifted by the reduction
    ramp = np.broadcast_to(np.arange(400, dtype=np.float32)[None, :, None], (300, 400, 1))
    shrink = crop_affines(np.array([[201.3, 150.0]]), np.array([240.0]), UP[None], 60)[0]
    crop = warp_crop_antialiased(np.ascontiguousarray(ramp), shrink, 60)[..., 0]
    want = warp_crops(np.ascontiguousarray(ramp), shrink[None], 60)[0, ..., 0]
    np.testing.assert_allclose(crop[5:-5, 5:-5], want[5:-5, 5:-5], atol=0.02)
    # one-pixel stripes shrunk 4x: averaged to grey, where a plain bilinear warp aliases
    stripes = np.zeros((300, 400, 3), np.uint8)
    stripes[:, ::2] = 255
    smooth = warp_crop_antialiased(stripes, shrink, 60)[5:-5, 5:-5].astype(float)
    aliased = warp_crops(stripes, shrink[None], 60)[0, 5:-5, 5:-5].astype(float)
    assert np.abs(smooth - 127.5).max() < 3 and np.abs(aliased - 127.5).min() > 20
    # enlarging is the plain warp
    grow = crop_affines(np.array([[200.0, 150.0]]), np.array([30.0]), UP[None], 60)
    np.testing.assert_array_equal(
        warp_crop_antialiased(stripes, grow[0], 60), warp_crops(stripes, grow, 60)[0]
    )
