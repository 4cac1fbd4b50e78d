"""Gallery crops: links, crop geometry, drawing where the points are, missing images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.poses import as_prediction, predictions

from fullbody.analysis.gallery import (
    crop_box,
    crop_pair,
    gallery_items,
    image_dir_of,
    part_links,
)
from fullbody.analysis.part_errors import point_errors
from fullbody.images import ImageReadError
from fullbody.keypoints import PART_COLORS

from ._cases import LH, ground_truth, person


def test_part_links_stay_inside_the_part():
    links = part_links("lefthand")
    assert len(links) == 20  # five fingers of four links from the root
    assert all(0 <= a < 21 and 0 <= b < 21 for a, b in links)
    assert (0, 1) in links and (3, 4) in links
    assert len(part_links("face")) > 60 and part_links("righthand") == links


def test_crop_box_covers_ground_truth_and_prediction():
    gt = np.array([[10.0, 10.0, 2], [30.0, 20.0, 2], [500.0, 500.0, 0]])
    pred = np.array([[12.0, 10.0, 1], [50.0, 20.0, 1], [900.0, 900.0, 1]])
    x0, y0, side = crop_box(gt, pred, pad=0.25)
    assert side == pytest.approx(40 * 1.5)  # x extent 10..50, padded; the unlabelled point aside
    assert x0 == pytest.approx(30 - side / 2) and y0 == pytest.approx(15 - side / 2)
    assert crop_box(gt[:1], pred[:1], min_side=24)[2] == 24


def test_crop_pair_draws_at_the_points():
    image = np.zeros((200, 200, 3), np.uint8)
    kp = np.zeros((21, 3))
    kp[:, 0] = np.linspace(50, 90, 21)
    kp[:, 1] = 100
    kp[:, 2] = 2
    pred = kp.copy()
    pred[:, 1] += 10  # every point 10 px low
    pred[:, 2] = 0.9
    left, right = crop_pair(image, kp, pred, "lefthand", out_px=128)
    assert left.shape == right.shape == (128, 128, 3) and left.dtype == np.uint8
    x0, y0, side = crop_box(kp, pred)
    k = 128 / side
    green = np.array(PART_COLORS["lefthand"][::-1])  # RGB
    gx, gy = round((70 - x0) * k), round((100 - y0) * k)
    px, py = round((70 - x0) * k), round((110 - y0) * k)
    assert np.abs(left[gy, gx].astype(int) - green).sum() < 60  # the ground-truth hand
    assert left[py, px].sum() == 0  # nothing where the prediction is
    assert np.abs(right[py, px].astype(int) - green).sum() < 60  # the predicted hand
    red = right[..., 0].astype(int) - right[..., 1]
    assert (red > 100).any()  # the error lines
    occluded = np.zeros(21, bool)
    occluded[10] = True  # an occluded ground-truth point is a ring, not a disc
    ring, _ = crop_pair(image, kp, pred, "lefthand", occluded=occluded, out_px=128)
    assert not np.array_equal(ring, left)


def test_gallery_items_read_images_and_name_missing_ones(tmp_path):
    gt = ground_truth([(1, person(100, 100))])
    kp = as_prediction(gt.keypoints[0])
    kp[LH, 0] += 3
    errors = point_errors(gt, predictions([(1, kp, 0.9)]), "lefthand")
    with pytest.raises(
        FileNotFoundError, match=r"000000000001\.jpg: image file not found \(image 1 "
    ):
        gallery_items(errors, [0], gt, tmp_path)
    cv2.imwrite(str(tmp_path / "000000000001.jpg"), np.full((1000, 1000, 3), 90, np.uint8))
    (item,) = gallery_items(errors, [0], gt, tmp_path, out_px=96)
    assert item.ground_truth.shape == (96, 96, 3) and item.image_id == 1
    assert item.side == "lefthand" and item.size == pytest.approx(20)
    assert item.error == pytest.approx(3 / 20) and 0 < item.oks < 1


def test_image_dir_of(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(FileNotFoundError, match="set IMAGE_DIR"):
        image_dir_of(tmp_path / "annotations" / "gt.json")
    (tmp_path / "images").mkdir()
    assert image_dir_of(tmp_path / "annotations" / "gt.json") == (tmp_path / "images").resolve()
    assert image_dir_of(tmp_path / "gt.json") == (tmp_path / "images").resolve()


def test_gallery_reads_images_as_stored_and_refuses_truncated_ones(tmp_path, bad_jpegs):
    gt = ground_truth([(1, person(100, 100))])
    errors = point_errors(gt, predictions([(1, as_prediction(gt.keypoints[0]), 0.9)]), "lefthand")
    rgb = np.zeros((1000, 1000, 3), np.uint8)
    rgb[:500] = (200, 30, 30)  # the hand (near y = 200) lies in the red top half
    path = bad_jpegs.exif_rotated(tmp_path / "000000000001.jpg", rgb)
    (turned,) = gallery_items(errors, [0], gt, tmp_path, out_px=64)
    data = path.read_bytes()
    path.write_bytes(data[:2] + data[4 + int.from_bytes(data[4:6], "big") :])  # EXIF removed
    (plain,) = gallery_items(errors, [0], gt, tmp_path, out_px=64)
    np.testing.assert_array_equal(turned.ground_truth, plain.ground_truth)
    assert turned.ground_truth[..., 0].mean() > 100  # red: the stored top half
    bad_jpegs.truncated(path, rgb)
    with pytest.raises(ImageReadError, match=r"000000000001\.jpg: cannot decode"):
        gallery_items(errors, [0], gt, tmp_path)
