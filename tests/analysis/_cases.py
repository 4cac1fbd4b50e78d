"""Hand-made people with hands and faces of known size, for the analysis tests."""

from __future__ import annotations

import numpy as np
from helpers import poses

from fullbody.annotations import WholeBodySet
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES

LH, RH, FACE = PART_SLICES["lefthand"], PART_SLICES["righthand"], PART_SLICES["face"]
_RNG = np.random.default_rng(7)
#: Fixed unit layouts spanning exactly [0, 1] in x and y.
_HAND_UNIT = _RNG.uniform(0, 1, (21, 2))
_HAND_UNIT[0], _HAND_UNIT[1] = (0.0, 0.0), (1.0, 1.0)
_FACE_UNIT = _RNG.uniform(0, 1, (68, 2))
_FACE_UNIT[0], _FACE_UNIT[1] = (0.0, 0.0), (1.0, 1.0)
_BODY_UNIT = _RNG.uniform(0, 1, (23, 2))


def person(
    x: float, y: float, height: float = 200.0, left: float = 20.0, right: float = 20.0
) -> np.ndarray:
    """(133, 3) labelled points (v = 2): body and feet over a ``height`` tall box at (x, y),
    a 40 px face, a left hand of box side ``left`` px and a right hand of ``right`` px."""
    kp = np.zeros((NUM_KEYPOINTS, 3))
    kp[:23, :2] = (x, y) + _BODY_UNIT * (height / 2, height)
    kp[FACE, :2] = (x + 10, y) + _FACE_UNIT * 40
    kp[LH, :2] = (x - left - 5, y + height / 2) + _HAND_UNIT * left
    kp[RH, :2] = (x + height / 2 + 5, y + height / 2) + _HAND_UNIT * right
    kp[:, 2] = 2
    return kp


def ground_truth(people: list[tuple[int, np.ndarray]], **kw) -> WholeBodySet:
    """:func:`helpers.poses.ground_truth` in 1000 x 1000 images; boxes (and areas) from the
    body and feet points."""
    return poses.ground_truth(people, size=1000, box_points=slice(0, 23), **kw)
