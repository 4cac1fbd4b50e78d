"""draw_wholebody / tile_images: part colours at the points, skipped low scores, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fullbody.draw import draw_wholebody, tile_images
from fullbody.keypoints import NUM_KEYPOINTS, PART_COLORS, PART_SLICES


def _pose(score: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    k = np.zeros((NUM_KEYPOINTS, 3))
    k[:, 0] = rng.uniform(20, 300, NUM_KEYPOINTS)
    k[:, 1] = rng.uniform(20, 220, NUM_KEYPOINTS)
    k[:, 2] = score
    return k


def test_points_take_their_part_colour_and_input_is_untouched() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    pose = _pose()
    out = draw_wholebody(image, pose, radius=3, thickness=1)
    assert image.max() == 0 and out.shape == image.shape
    # The last-drawn point of each part (points go after links) shows that part's colour.
    for part, s in PART_SLICES.items():
        x, y = np.round(pose[s.stop - 1, :2]).astype(int)
        assert tuple(int(c) for c in out[y, x]) == PART_COLORS[part], part


def test_low_scores_are_skipped_and_batches_drawn() -> None:
    image = np.zeros((240, 320, 3), np.uint8)
    assert draw_wholebody(image, _pose(score=0.1), threshold=0.3).max() == 0
    two = np.stack([_pose(), _pose()])
    two[1, :, :2] += 5
    assert draw_wholebody(image, two, boxes=np.array([[10, 10, 50, 80]] * 2)).max() > 0


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="keypoints must be"):
        draw_wholebody(np.zeros((10, 10, 3), np.uint8), np.zeros((17, 3)))
    with pytest.raises(ValueError, match="image must be"):
        draw_wholebody(np.zeros((10, 10), np.uint8), _pose())


def test_tile_images_grid() -> None:
    tiles = [np.full((4, 3, 3), i, np.uint8) for i in range(5)]
    grid = tile_images(tiles, columns=2, pad=1)
    assert grid.shape == (3 * 5 - 1, 2 * 4 - 1, 3)
    assert grid[0, 0, 0] == 0 and grid[0, 4, 0] == 1 and grid[5, 0, 0] == 2 and grid[10, 0, 0] == 4
    with pytest.raises(ValueError, match="one size"):
        tile_images([np.zeros((4, 3, 3), np.uint8), np.zeros((5, 3, 3), np.uint8)])
