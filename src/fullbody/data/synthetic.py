"""Synthetic multi-person whole-body scenes with exact 133-point labels: the built-in data set.

Every image holds 1-6 articulated figures drawn with OpenCV on a random background: a torso,
limbs as thick strokes (each person's left and right limbs, shoes and palms in different
colours), a head whose skin outline runs through the 17 jaw points and whose brows, nose, eyes
and lips are polylines through the other 51 iBUG points, hands made of a palm and five
differently coloured fingers through the 21 hand points, and feet with big toe, small toe and
heel. Every keypoint also carries a small mark (a dot or a ring) drawn at its exact position
with sub-pixel, anti-aliased drawing, so each label can be localised from local appearance.

Labels follow COCO-WholeBody conventions. Pixel centres lie at integer coordinates (OpenCV's
convention, the one its affine warps use). A point outside the image is unlabelled
(``v = 0``, ``x = y = 0``); a point hidden by a nearer person, by a random occluding object or
by a part of the same figure drawn over it is labelled occluded (``v = 1``); every other point is
visible (``v = 2``). People are drawn far to near, so occlusion is what the image shows. As in
COCO-WholeBody, some parts are left unlabelled (all zeros, ``*_valid`` false): faces and hands
smaller than :attr:`SceneConfig.min_part_size`, the faces of people seen from behind, and a
random few. ``bbox`` is the tight box of the drawn figure clipped to the image, ``area`` the
figure's silhouette area inside the image (a segmentation area, as in COCO), part boxes the
extent of the part's labelled points.

Labels are computed from geometry alone, so :func:`generate_labels` gives exactly the labels
:func:`generate` writes without drawing anything. Each image is seeded from ``(seed, index)``:
output is identical for any number of worker processes.

Command line::

    python -m fullbody.data.synthetic --out data/synthetic --images 2000 --seed 0 --pseudo
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from tqdm.auto import tqdm

from fullbody.annotations import BOX_PARTS, PARTS, WholeBodySet, points_box
from fullbody.jsonio import write_json_atomic
from fullbody.keypoints import NAME_TO_INDEX, NUM_KEYPOINTS, PART_SLICES

__all__ = [
    "GENERATOR_VERSION",
    "PseudoConfig",
    "SceneConfig",
    "generate",
    "generate_labels",
    "main",
    "perturb_labels",
]

#: Bumped whenever the same parameters would draw different scenes (invalidates caches).
GENERATOR_VERSION = 1

IMAGES_DIR = "images"
ANNOTATIONS = "annotations.json"
PSEUDO_ANNOTATIONS = "pseudo_annotations.json"
MANIFEST = "manifest.json"
#: Written first and removed last: its presence without a manifest marks an unfinished run.
PARTIAL = "manifest.partial.json"
_IMAGE_NAME = re.compile(r"^\d{12}\.jpg$")
_OWN_FILES = {IMAGES_DIR, ANNOTATIONS, PSEUDO_ANNOTATIONS, MANIFEST, PARTIAL}


# ------------------------------------------------------------------------------ configuration
@dataclass
class SceneConfig:
    """Every knob of the scene distribution. Sizes are pixels; probabilities are per person
    unless stated otherwise. Lists (from YAML) are accepted wherever a pair is expected."""

    #: Image width and height.
    image_size: tuple[int, int] = (640, 480)
    #: Fewest and most people per image (uniform).
    people: tuple[int, int] = (1, 6)
    #: Standing height (head top to heel) of most people, log-uniform.
    height_range: tuple[float, float] = (80.0, 400.0)
    #: Share of people drawn from ``small_height_range`` instead (the small-person tail).
    small_fraction: float = 0.15
    small_height_range: tuple[float, float] = (36.0, 80.0)
    #: Head and hand size relative to human proportions (face width ~0.085 x height and hand
    #: length ~0.108 x height at 1.0). Larger heads and hands are the stylisation that keeps
    #: 68 face and 21 hand points apart at the usual 64x48 heatmap resolution.
    head_scale: float = 1.6
    hand_scale: float = 1.5
    #: Largest in-plane rotation of a figure (degrees, uniform), and the chance of a rotation
    #: of up to 90 degrees instead.
    rotation_deg: float = 15.0
    p_large_rotation: float = 0.05
    #: Largest head turn (yaw, degrees) and the chance a person is seen from behind (face not
    #: visible, left and right sides mirrored).
    yaw_deg: float = 25.0
    p_back_view: float = 0.08
    #: Chance a person is placed overlapping an earlier one, or partly outside the image.
    p_overlap: float = 0.4
    p_truncate: float = 0.2
    #: Largest share of a truncated person's box outside the image.
    max_truncation: float = 0.6
    #: Chance an image has occluding objects, and their largest number.
    p_occluders: float = 0.35
    max_occluders: int = 2
    #: Chance each of foot, face and hands is left unlabelled at random (COCO-WholeBody's
    #: ``*_valid`` false), and the size (px, longer side of the points' box) below which faces
    #: and hands are never labelled.
    p_unlabelled_part: float = 0.04
    min_part_size: float = 8.0
    #: Fewest and most background distractor shapes (some limb-like).
    clutter: tuple[int, int] = (4, 16)
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from YAML/Hydra (OmegaConf ListConfig) -> tuples
            v = getattr(self, f.name)
            if isinstance(v, Sequence) and not isinstance(v, str):
                setattr(self, f.name, tuple(v))
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.people = (int(self.people[0]), int(self.people[1]))
        self.clutter = (int(self.clutter[0]), int(self.clutter[1]))
        self.max_occluders, self.jpeg_quality = int(self.max_occluders), int(self.jpeg_quality)
        problems = []
        if min(self.image_size) < 32:
            problems.append(f"image_size {self.image_size}: both sides must be >= 32")
        if not 1 <= self.people[0] <= self.people[1] <= 99:
            problems.append(f"people {self.people}: need 1 <= min <= max <= 99")
        for name in ("height_range", "small_height_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                problems.append(f"{name} {(lo, hi)}: need 0 < low <= high")
        for name in ("head_scale", "hand_scale"):
            if not 0.25 <= getattr(self, name) <= 4:
                problems.append(f"{name} {getattr(self, name)}: must lie in [0.25, 4]")
        shares = [f.name for f in fields(self) if f.name.startswith("p_")]
        for name in [*shares, "small_fraction", "max_truncation"]:
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} {getattr(self, name)}: must lie in [0, 1]")
        if not 0 <= self.clutter[0] <= self.clutter[1]:
            problems.append(f"clutter {self.clutter}: need 0 <= min <= max")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality {self.jpeg_quality}: must lie in [1, 100]")
        if self.max_occluders < 0 or self.min_part_size < 0:
            problems.append("max_occluders and min_part_size must be >= 0")
        if problems:
            raise ValueError("SceneConfig: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        """The knobs as JSON values (pairs as lists), as stored in the manifest."""
        return json.loads(json.dumps(asdict(self)))


# ------------------------------------------------------------------------------ layout tables
_K = NAME_TO_INDEX
_SIDES = ("left", "right")
#: In a front view the person's left side is image +x.
_SGN = np.array([1.0, -1.0])
_FACE0 = PART_SLICES["face"].start
_HAND0 = np.array([PART_SLICES["lefthand"].start, PART_SLICES["righthand"].start])
_FOOT = {
    key: np.array([_K[f"{s}_{key}"] for s in _SIDES]) for key in ("big_toe", "small_toe", "heel")
}


def _pair(name: str) -> np.ndarray:
    return np.array([_K[f"{s}_{name}"] for s in _SIDES])


_SHOULDER, _ELBOW, _WRIST = _pair("shoulder"), _pair("elbow"), _pair("wrist")
_HIP, _KNEE, _ANKLE = _pair("hip"), _pair("knee"), _pair("ankle")
_EYE, _EAR = _pair("eye"), _pair("ear")

# Draw layers of one figure, back to front; a keypoint belongs to the layer that draws its mark.
LEGS, TORSO, ARMS, HEAD, HANDS = range(5)
_RANK_STEP = 8  # rank = draw order * step + layer; occluders take ranks between people


def _keypoint_layers() -> np.ndarray:
    layer = np.full(NUM_KEYPOINTS, HEAD)
    layer[PART_SLICES["foot"]] = LEGS
    layer[PART_SLICES["lefthand"]] = HANDS
    layer[PART_SLICES["righthand"]] = HANDS
    for idx, lay in ((_KNEE, LEGS), (_ANKLE, LEGS), (_HIP, TORSO), (_SHOULDER, ARMS)):
        layer[idx] = lay
    layer[_ELBOW], layer[_WRIST] = ARMS, HANDS
    return layer


KEYPOINT_LAYER = _keypoint_layers()

# Colour slots of a figure (the five finger colours last).
(C_LLEG, C_RLEG, C_LSHOE, C_RSHOE, C_SHIRT, C_LARM, C_RARM, C_SKIN, C_HAIR, C_LPALM, C_RPALM,
 C_LIPS, C_FINGER) = range(13)  # fmt: skip
_NUM_SLOTS = C_FINGER + 5
# Capsules of a figure, by draw layer: left thigh, left shin, right thigh, right shin, neck,
# left upper arm, forearm, right upper arm, forearm, then the fingers' segments (thumb to little
# finger, three each; left hand first).
_CAP_LAYER = np.array([LEGS] * 4 + [TORSO] + [ARMS] * 4 + [HANDS] * 30)
_NUM_CAPS = len(_CAP_LAYER)
_CAP_FINGERS = slice(9, 39)
# Polygons: left foot, right foot, torso, hair, skin, left ear, right ear, left palm, right palm.
_POLY_LAYER = np.array([LEGS, LEGS, TORSO, HEAD, HEAD, HEAD, HEAD, HANDS, HANDS])
_P_FOOT, _P_TORSO, _P_HAIR, _P_SKIN, _P_EAR, _P_PALM = 0, 2, 3, 4, 5, 7
_NUM_VERTS = 26

#: Finger stroke colours (BGR): thumb, forefinger, middle, ring, pinky, the same on both hands.
_FINGER_COLORS = np.array(
    [[200, 90, 20], [40, 170, 40], [20, 140, 230], [170, 40, 170], [150, 150, 20]], np.uint8
)


def _face_template() -> tuple[np.ndarray, np.ndarray]:
    """68 iBUG points of a frontal face in face units (jaw half-width 1, chin at y = 1, y down,
    image left = the subject's right, as iBUG) and their depth for turning the head."""
    t = np.linspace(0.0, np.pi, 17)
    jaw = np.stack([-np.cos(t), -0.15 + 1.15 * np.sin(t) ** 0.85], 1)
    s = np.linspace(0.0, 1.0, 5)
    brow_r = np.stack([-0.85 + 0.67 * s, -0.5 - 0.14 * np.sin(np.pi * (0.2 + 0.7 * s))], 1)
    brow_l = brow_r[::-1] * [-1, 1]
    bridge = np.stack([np.zeros(4), np.linspace(-0.38, 0.12, 4)], 1)
    base = np.array([[-0.24, 0.2], [-0.12, 0.25], [0.0, 0.28], [0.12, 0.25], [0.24, 0.2]])
    eye = np.array([[-0.19, 0], [-0.07, -0.085], [0.07, -0.085], [0.19, 0], [0.07, 0.075],
                    [-0.07, 0.075]])  # fmt: skip
    eye_r = eye + [-0.42, -0.3]
    eye_l = eye_r[[3, 2, 1, 0, 5, 4]] * [-1, 1]  # mirror image, inner corner first
    mouth_o = np.array([[-0.36, 0], [-0.22, -0.09], [-0.08, -0.12], [0, -0.1], [0.08, -0.12],
                        [0.22, -0.09], [0.36, 0], [0.22, 0.1], [0.1, 0.14], [0, 0.15],
                        [-0.1, 0.14], [-0.22, 0.1]]) + [0, 0.58]  # fmt: skip
    mouth_i = np.array([[-0.26, 0], [-0.1, -0.03], [0, -0.03], [0.1, -0.03], [0.26, 0],
                        [0.1, 0.03], [0, 0.03], [-0.1, 0.03]]) + [0, 0.58]  # fmt: skip
    pts = np.concatenate([jaw, brow_r, brow_l, bridge, base, eye_r, eye_l, mouth_o, mouth_i])
    depth = 0.5 * np.sqrt(np.clip(1 - pts[:, 0] ** 2, 0, None))
    depth[27:31] += [0.1, 0.2, 0.3, 0.4]
    depth[31:36] += [0.15, 0.2, 0.25, 0.2, 0.15]
    depth[48:68] += 0.05
    return pts, depth


_FACE_T, _FACE_Z = _face_template()
# Face points that move with the expression knobs (iBUG indices).
_EYE_TOP, _EYE_BOTTOM = [37, 38, 43, 44], [40, 41, 46, 47]
_LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
_MOUTH_CORNERS = [48, 54, 60, 64]

# Hand in its own frame (units of hand length, u along the hand, n towards the thumb).
_HAND_THUMB1 = np.array([0.12, 0.12])
_HAND_MCP = np.array([[0.42, 0.15], [0.45, 0.05], [0.43, -0.05], [0.38, -0.14]])
_HAND_SEGMENTS = np.array(
    [[0.14, 0.12, 0.11], [0.22, 0.13, 0.11], [0.24, 0.15, 0.12], [0.22, 0.14, 0.11],
     [0.17, 0.10, 0.09]]
)  # fmt: skip
_HAND_SPREAD = np.array([0.0, 0.10, 0.0, -0.10, -0.21])  # finger base angles (rad) at spread 1
_PALM = np.array([[0.04, 0.09], [0.13, 0.17], [0.42, 0.2], [0.47, 0.06], [0.45, -0.06],
                  [0.39, -0.19], [0.05, -0.1]])  # fmt: skip


def _mark_table() -> tuple[np.ndarray, np.ndarray]:
    """Colour (BGR) of each keypoint's mark and whether it is a ring (dark rim)."""
    color = np.zeros((NUM_KEYPOINTS, 3), np.uint8)
    ring = np.zeros(NUM_KEYPOINTS, bool)
    body = {"shoulder": (0, 255, 255), "elbow": (255, 255, 0), "wrist": (255, 255, 255),
            "hip": (0, 160, 255), "knee": (255, 0, 255), "ankle": (0, 255, 0)}  # fmt: skip
    for name, c in body.items():
        color[_pair(name)], ring[_pair(name)] = c, True
    color[_EAR], ring[_EAR] = (0, 0, 255), True
    color[_EYE] = (10, 10, 10)
    color[_FOOT["big_toe"]], color[_FOOT["small_toe"]] = (0, 0, 255), (255, 60, 0)
    color[_FOOT["heel"]] = (255, 255, 255)
    face = np.zeros((68, 3), np.uint8)
    jaw_cls = np.minimum(np.arange(17), 16 - np.arange(17)) % 2  # symmetric: flip-consistent
    face[:17] = np.where(jaw_cls[:, None] == 0, [30, 30, 140], [140, 40, 20])
    face[17:27], face[27:36] = (0, 230, 255), (255, 110, 0)
    face[36:48], face[48:60], face[60:68] = (0, 170, 0), (255, 255, 255), (255, 255, 0)
    color[PART_SLICES["face"]] = face
    hand = np.array([(255, 255, 255), (0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 0, 255)])
    levels = np.array([0] + [1, 2, 3, 4] * 5)
    for h0 in _HAND0:
        color[h0 : h0 + 21] = hand[levels]
        ring[h0] = True
    return color, ring


_MARK_COLOR, _MARK_RING = _mark_table()
# Points drawn once although two keypoints share them: body nose = face 30, wrist = hand root.
_MARK_SKIP = np.zeros(NUM_KEYPOINTS, bool)
_MARK_SKIP[_K["nose"]] = True
_MARK_SKIP[_WRIST] = True


# ------------------------------------------------------------------------------ geometry
def _u(a: np.ndarray) -> np.ndarray:
    """Unit vectors at angles ``a`` (radians from +x towards +y, i.e. clockwise on screen)."""
    return np.stack([np.cos(a), np.sin(a)], -1)


def _ellipse(cx, cy, ax, ay, n: int = _NUM_VERTS) -> np.ndarray:
    """(..., n, 2) polygon approximating axis-aligned ellipses (arrays broadcast)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = np.asarray(cx)[..., None] + np.asarray(ax)[..., None] * np.cos(t)
    y = np.asarray(cy)[..., None] + np.asarray(ay)[..., None] * np.sin(t)
    return np.stack(np.broadcast_arrays(x, y), -1)


def _pad(poly: np.ndarray) -> np.ndarray:
    """Pad (..., v, 2) polygons to the common vertex count by repeating the last vertex."""
    v = poly.shape[-2]
    if v == _NUM_VERTS:
        return poly
    tail = np.repeat(poly[..., -1:, :], _NUM_VERTS - v, axis=-2)
    return np.concatenate([poly, tail], axis=-2)


class People(NamedTuple):
    """Geometry of the figures of one image (image pixels); row = person in sampling order."""

    kp: np.ndarray  # (n, 133, 2) every keypoint, labelled or not
    caps: np.ndarray  # (n, 39, 5) capsules x0, y0, x1, y1, radius
    polys: np.ndarray  # (n, 9, 26, 2) polygons (padded by repeating the last vertex)
    drawn: np.ndarray  # (n, 9) bool: False for the hair of the bald, the face of a back view
    back: np.ndarray  # (n,) bool seen from behind
    height: np.ndarray  # (n,) standing height, px
    face_unit: np.ndarray  # (n,) jaw half-width, px
    hand_len: np.ndarray  # (n,) wrist to middle fingertip, px
    colors: np.ndarray  # (n, slots, 3) uint8 BGR
    order: np.ndarray  # (n,) draw order, 0 = farthest

    def extent(self) -> np.ndarray:
        """(n, 4) x0, y0, x1, y1 of everything drawn."""
        r = self.caps[..., 4]
        lo = np.minimum(self.caps[..., :2], self.caps[..., 2:4]) - r[..., None]
        hi = np.maximum(self.caps[..., :2], self.caps[..., 2:4]) + r[..., None]
        pts = np.where(self.drawn[..., None, None], self.polys, np.nan).reshape(len(r), -1, 2)
        lo = np.minimum(lo.min(1), np.nanmin(pts, 1))
        hi = np.maximum(hi.max(1), np.nanmax(pts, 1))
        return np.concatenate([lo, hi], 1)


#: Random numbers drawn per person: uniforms in [0, 1) and standard normals.
_NUM_UNIFORM, _NUM_NORMAL = 96, 200


class _Draws:
    """Hands out consecutive columns of a (people, k) table of random numbers."""

    def __init__(self, table: np.ndarray) -> None:
        self.table, self.k = table, 0

    def take(self, width: int = 0) -> np.ndarray:
        w = max(width, 1)
        if self.k + w > self.table.shape[1]:
            raise RuntimeError("random draw table too small; raise _NUM_UNIFORM/_NUM_NORMAL")
        out = self.table[:, self.k : self.k + w]
        self.k += w
        return out[:, 0] if width == 0 else out

    def uniform(self, lo: float, hi: float, width: int = 0) -> np.ndarray:
        return lo + (hi - lo) * self.take(width)


def _build_people(uniform: np.ndarray, normal: np.ndarray, cfg: SceneConfig) -> People:
    """Figures around the origin (mid-hip), one per row of the random tables; vectorised over
    people (of any number of images), deterministic given the tables."""
    n = len(uniform)
    U, Z = _Draws(uniform), _Draws(normal)
    sgn = _SGN[None, :]  # (1, 2) left, right
    small = U.take() < cfg.small_fraction
    lo = np.log(np.where(small, cfg.small_height_range[0], cfg.height_range[0]))
    hi = np.log(np.where(small, cfg.small_height_range[1], cfg.height_range[1]))
    height = np.exp(lo + (hi - lo) * U.take())

    # Proportions in units of standing height (normalised below).
    f = 0.043 * cfg.head_scale * U.uniform(0.92, 1.08)
    hand_len = 0.108 * cfg.hand_scale * U.uniform(0.92, 1.08)
    torso, neck = 0.30 * U.uniform(0.9, 1.1), 0.025 * U.uniform(0.6, 1.4)
    shoulder_w, hip_w = 0.23 * U.uniform(0.88, 1.12), 0.16 * U.uniform(0.88, 1.12)
    upper, fore = 0.175 * U.uniform(0.92, 1.08), 0.155 * U.uniform(0.92, 1.08)
    thigh, shin = 0.245 * U.uniform(0.92, 1.08), 0.245 * U.uniform(0.92, 1.08)
    foot_len = 0.13 * U.uniform(0.45, 1.0, 2)  # foreshortened towards the camera
    total = 0.035 + thigh + shin + torso + neck + 2.8 * f
    f, hand_len, torso, neck = f / total, hand_len / total, torso / total, neck / total
    shoulder_w, hip_w, upper, fore = (shoulder_w / total, hip_w / total, upper / total,
                                      fore / total)  # fmt: skip
    thigh, shin, foot_len = thigh / total, shin / total, foot_len / total[:, None]

    # Torso.
    a_up = -np.pi / 2 + np.clip(0.08 * Z.take(), -0.25, 0.25)
    ld = _u(a_up + np.pi / 2)  # towards the person's left
    down = a_up + np.pi
    mid_sh = torso[:, None] * _u(a_up)
    tilt = 0.01 * Z.take(2)[..., None] * _u(a_up)[:, None]
    shoulder = mid_sh[:, None] + (sgn * shoulder_w[:, None] / 2)[..., None] * ld[:, None] + tilt
    hip = (sgn * hip_w[:, None] / 2)[..., None] * ld[:, None]

    # Arms: abduction from hanging down, elbow and wrist bends; mirrored per side.
    raised = U.take(2) < 0.4
    th1 = np.where(raised, U.uniform(-0.5, 3.1, 2), U.uniform(0.08, 0.8, 2))
    a_upper = down[:, None] - sgn * th1
    elbow = shoulder + upper[:, None, None] * _u(a_upper)
    a_fore = a_upper - sgn * U.uniform(-2.4, 2.4, 2)
    wrist = elbow + fore[:, None, None] * _u(a_fore)
    a_hand = a_fore - sgn * U.uniform(-0.6, 0.6, 2)

    # Legs and feet.
    wide = U.take(2) < 0.25
    ph1 = np.where(wide, U.uniform(-0.35, 1.4, 2), U.uniform(-0.12, 0.35, 2))
    a_thigh = down[:, None] - sgn * ph1
    knee = hip + thigh[:, None, None] * _u(a_thigh)
    a_shin = a_thigh - sgn * U.uniform(-0.7, 0.7, 2)
    ankle = knee + shin[:, None, None] * _u(a_shin)
    a_foot = a_shin - sgn * U.uniform(0.5, 1.9, 2)
    uf, us = _u(a_foot), _u(a_shin)
    nf = _u(a_foot + sgn * np.pi / 2)
    heel = ankle + 0.035 / total[:, None, None] * us - 0.015 / total[:, None, None] * uf
    tip = ankle + 0.02 / total[:, None, None] * us + foot_len[..., None] * uf
    big_toe = tip + 0.018 / total[:, None, None] * nf
    small_toe = (ankle + 0.02 / total[:, None, None] * us + 0.75 * foot_len[..., None] * uf
                 - 0.025 / total[:, None, None] * nf)  # fmt: skip

    # Head: face template with expression, shape jitter and a head turn.
    a_head = a_up + np.clip(0.15 * Z.take(), -0.5, 0.5)
    chin = mid_sh + neck[:, None] * _u(a_head)
    xdir, ydir = _u(a_head + np.pi / 2), _u(a_head + np.pi)
    face = _FACE_T + 0.015 * Z.take(136).reshape(n, 68, 2)
    face[:, 17:27, 1] -= U.uniform(-0.05, 0.12)[:, None]
    eye_c = face[:, [36, 39, 42, 45], 1].mean(1)[:, None]
    open_ = U.uniform(0.4, 1.3)[:, None]
    for idx in (_EYE_TOP, _EYE_BOTTOM):
        face[:, idx, 1] = eye_c + (face[:, idx, 1] - eye_c) * open_
    face[:, _LOWER_LIP, 1] += (U.take() ** 2 * 0.3)[:, None]
    face[:, _MOUTH_CORNERS, 1] -= U.uniform(-0.06, 0.1)[:, None]
    yaw = np.deg2rad(U.uniform(-cfg.yaw_deg, cfg.yaw_deg))[:, None]
    cy, sy = np.cos(yaw), np.sin(yaw)
    face[..., 0] = face[..., 0] * cy + _FACE_Z * sy

    def head_pts(p: np.ndarray) -> np.ndarray:  # (n, k, 2) face units -> local units
        p = p - [0, 1]  # chin at the origin
        return chin[:, None] + f[:, None, None] * (
            p[..., :1] * xdir[:, None] + p[..., 1:] * ydir[:, None]
        )

    t = np.linspace(0, np.pi, 11)[1:-1]
    arc = np.stack([np.cos(t), -0.15 - 0.95 * np.sin(t)], 1)
    arc_x = arc[:, 0] * cy + 0.5 * np.sqrt(1 - arc[:, 0] ** 2) * sy
    arc = np.stack([arc_x, np.broadcast_to(arc[:, 1], arc_x.shape)], -1)
    skin = np.concatenate([face[:, :17], arc], 1)
    back = U.take() < cfg.p_back_view
    bald = (U.take() < 0.1) & ~back
    hx = -0.25 * sy[:, 0] + U.uniform(-0.05, 0.05)
    hair = np.where(
        back[:, None, None],
        _ellipse(hx * 0, -0.4, 1.1, 1.42),
        _ellipse(hx, -0.85 + U.uniform(-0.05, 0.35), U.uniform(1.1, 1.25), U.uniform(0.95, 1.3)),
    )
    ears = _ellipse(np.stack([cy[:, 0], -cy[:, 0]], 1) * 1.0, -0.3, 0.17, 0.19, 10)

    # Hands: palm and five fingers; the thumb is on the side that makes the two hands mirror
    # images of each other (so a horizontal flip with swapped labels is a valid scene).
    spread = U.uniform(0.3, 2.5, 2)
    curl = U.take(10).reshape(n, 2, 5) ** 1.5
    u_h, n_h = _u(a_hand), _u(a_hand - sgn * np.pi / 2)  # (n, 2, 2)
    hl = hand_len[:, None, None]

    def hand_pts(p: np.ndarray) -> np.ndarray:  # (..., k, 2) hand frame -> local (n, 2, k, 2)
        return wrist[:, :, None] + hl[..., None] * (
            p[..., :1] * u_h[:, :, None] + p[..., 1:] * n_h[:, :, None]
        )

    base = np.concatenate([_HAND_THUMB1[None], _HAND_MCP])  # (5, 2)
    ang = _HAND_SPREAD * spread[..., None]  # (n, 2, 5) angle from u towards n
    ang[..., 0] = U.uniform(0.45, 1.2, 2)  # thumb abduction
    bends = 0.12 * Z.take(30).reshape(n, 2, 5, 3)
    shrink = 1 - curl[..., None] * np.array([0.35, 0.55, 0.65])
    seg_ang = ang[..., None] + np.cumsum(bends, -1)
    steps = (_HAND_SEGMENTS * shrink)[..., None] * np.stack(
        [np.cos(seg_ang), np.sin(seg_ang)], -1
    )  # (n, 2, 5, 3, 2) in hand-frame units
    chain = base[None, None, :, None] + np.cumsum(steps, 3)  # joints 2..4 of each finger
    fingers = np.concatenate([np.broadcast_to(base[None, None, :, None], chain[..., :1, :].shape),
                              chain], 3)  # (n, 2, 5, 4, 2)  # fmt: skip
    hand = np.concatenate([np.zeros((n, 2, 1, 2)), fingers.reshape(n, 2, 20, 2)], 2)
    hand = hand_pts(hand)  # (n, 2, 21, 2)
    palm = hand_pts(np.broadcast_to(_PALM, (n, 2) + _PALM.shape))

    # Keypoints.
    kp = np.zeros((n, NUM_KEYPOINTS, 2))
    face_img = head_pts(face)
    kp[:, _FACE0 : _FACE0 + 68] = face_img
    kp[:, _K["nose"]] = face_img[:, 30]
    kp[:, _EYE[0]] = face_img[:, 42:48].mean(1)
    kp[:, _EYE[1]] = face_img[:, 36:42].mean(1)
    ear_img = head_pts(ears.mean(2))
    kp[:, _EAR[0]], kp[:, _EAR[1]] = ear_img[:, 0], ear_img[:, 1]
    for idx, val in ((_SHOULDER, shoulder), (_ELBOW, elbow), (_WRIST, wrist), (_HIP, hip),
                     (_KNEE, knee), (_ANKLE, ankle), (_FOOT["big_toe"], big_toe),
                     (_FOOT["small_toe"], small_toe), (_FOOT["heel"], heel)):  # fmt: skip
        kp[:, idx] = val
    for s in range(2):
        kp[:, _HAND0[s] : _HAND0[s] + 21] = hand[:, s]

    # Capsules (radii in local units for now).
    caps = np.zeros((n, _NUM_CAPS, 5))
    limb_r = U.uniform(0.85, 1.15) / total  # limb thickness factor
    limbs = [(0, _HIP, _KNEE, 0.042), (1, _KNEE, _ANKLE, 0.032),
             (5, _SHOULDER, _ELBOW, 0.028), (6, _ELBOW, _WRIST, 0.023)]  # fmt: skip
    for s in range(2):
        for k, a, b, r in limbs:
            caps[:, k + 2 * s, :4] = np.concatenate([kp[:, a[s]], kp[:, b[s]]], 1)
            caps[:, k + 2 * s, 4] = r * limb_r
        joints = hand[:, s, 1:].reshape(n, 5, 4, 2)
        seg = np.concatenate([joints[:, :, :-1], joints[:, :, 1:]], -1).reshape(n, 15, 4)
        caps[:, 9 + 15 * s : 24 + 15 * s, :4] = seg
        caps[:, 9 + 15 * s : 24 + 15 * s, 4] = 0.038 * hand_len[:, None]
    caps[:, 4, :2], caps[:, 4, 2:4] = mid_sh - 0.02 / total[:, None] * _u(a_up), chin
    caps[:, 4, 4] = 0.42 * f

    # Polygons.
    polys = np.zeros((n, len(_POLY_LAYER), _NUM_VERTS, 2))
    drawn = np.ones((n, len(_POLY_LAYER)), bool)
    t_ = 1 / total[:, None, None]
    for s in range(2):
        foot = np.stack([
            heel[:, s] - 0.015 * t_[:, 0] * uf[:, s] - 0.012 * t_[:, 0] * nf[:, s],
            heel[:, s] - 0.012 * t_[:, 0] * uf[:, s] + 0.015 * t_[:, 0] * nf[:, s],
            big_toe[:, s] + 0.01 * t_[:, 0] * uf[:, s] + 0.012 * t_[:, 0] * nf[:, s],
            big_toe[:, s] + 0.012 * t_[:, 0] * uf[:, s] - 0.006 * t_[:, 0] * nf[:, s],
            small_toe[:, s] + 0.008 * t_[:, 0] * uf[:, s] - 0.012 * t_[:, 0] * nf[:, s],
        ], 1)  # fmt: skip
        polys[:, _P_FOOT + s] = _pad(foot)
        polys[:, _P_EAR + s] = _pad(head_pts(ears[:, s]))
        polys[:, _P_PALM + s] = _pad(palm[:, s])
    up = _u(a_up)
    torso_poly = np.stack([
        shoulder[:, 0] + 0.035 * t_[:, 0] * ld - 0.01 * t_[:, 0] * up,
        shoulder[:, 1] - 0.035 * t_[:, 0] * ld - 0.01 * t_[:, 0] * up,
        hip[:, 1] - 0.03 * t_[:, 0] * ld - 0.02 * t_[:, 0] * up,
        hip[:, 0] + 0.03 * t_[:, 0] * ld - 0.02 * t_[:, 0] * up,
    ], 1)  # fmt: skip
    polys[:, _P_TORSO] = _pad(torso_poly)
    polys[:, _P_HAIR] = head_pts(hair)
    polys[:, _P_SKIN] = head_pts(skin)
    drawn[:, _P_HAIR] = ~bald
    drawn[:, _P_SKIN] = ~back

    # Back view: the figure mirrored, so the person's left lies on image left.
    mirror = np.where(back, -1.0, 1.0)
    kp[..., 0] *= mirror[:, None]
    caps[..., [0, 2]] *= mirror[:, None, None]
    polys[..., 0] *= mirror[:, None, None]

    # In-plane rotation, then scale to pixels.
    large = U.take() < cfg.p_large_rotation
    rot = np.deg2rad(np.where(large, U.uniform(-90, 90), U.uniform(-1, 1) * cfg.rotation_deg))
    c, s_ = np.cos(rot), np.sin(rot)
    R = np.stack([np.stack([c, -s_], -1), np.stack([s_, c], -1)], -2) * height[:, None, None]

    def tf(p: np.ndarray) -> np.ndarray:
        sh = p.shape
        return np.einsum("nij,nkj->nki", R, p.reshape(n, -1, 2)).reshape(sh)

    kp = tf(kp)
    caps[..., :2], caps[..., 2:4] = tf(caps[..., :2]), tf(caps[..., 2:4])
    polys = tf(polys)
    # Stroke widths are whole pixels (cv2 draws integer thickness); radius = width / 2.
    caps[..., 4] = np.maximum(1, np.round(2 * caps[..., 4] * height[:, None])) / 2
    colors = _colors(U, Z)
    return People(kp, caps, polys, drawn, back, height, f * height, hand_len * height, colors,
                  np.zeros(n, np.int64))  # fmt: skip


def _hsv_to_bgr(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    if np.size(h) == 0:
        return np.zeros((*np.shape(h), 3), np.uint8)
    hsv = np.stack([h * 180, s * 255, v * 255], -1).astype(np.uint8).reshape(-1, 1, 3)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).reshape(*h.shape, 3)


def _colors(U: _Draws, Z: _Draws) -> np.ndarray:
    """Per-person colour slots; left and right limbs, shoes and palms differ in hue."""
    n = len(U.table)
    col = np.zeros((n, _NUM_SLOTS, 3), np.uint8)
    base, step = U.take(3), U.uniform(0.2, 0.8, 3)  # legs, arms, shoes: two hues apart
    hue = np.concatenate(
        [
            np.stack([base, (base + step) % 1], -1).reshape(n, 6),
            U.take(1),
            U.uniform(0.02, 0.12, 1),
            U.uniform(0.93, 1.0, 1),
        ],
        1,
    )
    sat = np.concatenate(
        [
            U.uniform(0.35, 0.95, 6),
            U.uniform(0.1, 0.9, 1),
            U.uniform(0.2, 0.8, 1),
            U.uniform(0.4, 0.8, 1),
        ],
        1,
    )
    val = np.concatenate([U.uniform(0.3, 0.95, 6), U.uniform(0.25, 0.95, 1),
                          U.uniform(0.05, 0.75, 1), U.uniform(0.45, 0.85, 1)], 1)  # fmt: skip
    slots = [C_LLEG, C_RLEG, C_LARM, C_RARM, C_LSHOE, C_RSHOE, C_SHIRT, C_HAIR, C_LIPS]
    col[:, slots] = _hsv_to_bgr(hue, sat, val)
    tone = U.take()[:, None]
    skin = np.array([70, 100, 150]) * (1 - tone) + np.array([185, 205, 245]) * tone
    col[:, C_SKIN] = (skin + 8 * Z.take(3)).clip(0, 255)
    palm = col[:, C_SKIN].astype(float)[:, None] + 25 * Z.take(6).reshape(n, 2, 3)
    palm[:, 1] *= U.uniform(0.6, 0.85)[:, None]  # the two palms differ in brightness
    swap = U.take() < 0.5
    palm[swap] = palm[swap, ::-1]
    col[:, [C_LPALM, C_RPALM]] = palm.clip(0, 255)
    col[:, C_FINGER:] = np.clip(_FINGER_COLORS + 12 * Z.take(15).reshape(n, 5, 3), 0, 255)
    return col


# ------------------------------------------------------------------------------ scenes
class Scene(NamedTuple):
    """One image's figures, occluders and labels (labels rounded as they are written)."""

    width: int
    height: int
    people: People
    occluders: np.ndarray  # (k, 26, 2) polygons
    occluder_rank: np.ndarray  # (k,)
    occluder_colors: np.ndarray  # (k, 3) uint8
    keypoints: np.ndarray  # (n, 133, 3) x, y, v
    bboxes: np.ndarray  # (n, 4) xywh
    areas: np.ndarray  # (n,)
    valid: np.ndarray  # (n, 5) bool, PARTS order
    part_boxes: np.ndarray  # (n, 3, 4) xywh, BOX_PARTS order


def _place(rng: np.random.Generator, cfg: SceneConfig, people: People) -> People:
    """Translate each figure into the image: uniformly, next to an earlier one (overlap) or
    partly outside (truncation)."""
    W, H = cfg.image_size
    ext = people.extent()
    size = ext[:, 2:] - ext[:, :2]
    n = len(size)
    lo = np.zeros((n, 2))  # top-left corner of each placed extent
    dims = np.array([W, H], float)
    for i in range(n):
        free = dims - size[i]
        # Allowed corner range: inside, or at most max_truncation of the box outside.
        out = cfg.max_truncation * size[i]
        lo_lim, hi_lim = np.minimum(0, free) - out, np.maximum(0, free) + out
        inside_lo, inside_hi = np.minimum(0, free), np.maximum(0, free)
        if i > 0 and rng.random() < cfg.p_overlap:
            j = int(rng.integers(i))
            cj = lo[j] + size[j] / 2
            side = rng.choice([-1.0, 1.0])
            off = np.array([side * rng.uniform(0.15, 0.6) * (size[i, 0] + size[j, 0]) / 2,
                            rng.uniform(-0.25, 0.25) * size[j, 1]])  # fmt: skip
            corner = cj + off - size[i] / 2
            corner = np.clip(corner, inside_lo - 0.3 * out, inside_hi + 0.3 * out)
        elif rng.random() < cfg.p_truncate:
            corner = rng.uniform(inside_lo, inside_hi)
            axis = int(rng.random() < 0.4)  # bottom/top edges a little less often
            frac = rng.uniform(0.1, max(cfg.max_truncation, 0.1)) * size[i, axis]
            corner[axis] = inside_lo[axis] - frac if rng.random() < 0.5 else inside_hi[axis] + frac
        else:
            corner = rng.uniform(inside_lo, inside_hi)
        lo[i] = np.clip(corner, lo_lim, hi_lim)
    shift = lo - ext[:, :2]
    caps = people.caps.copy()
    caps[..., :2] += shift[:, None]
    caps[..., 2:4] += shift[:, None]
    return people._replace(
        kp=people.kp + shift[:, None], caps=caps, polys=people.polys + shift[:, None, None]
    )


_SHIFT = 4
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


def _fp(a: np.ndarray) -> np.ndarray:
    """Fixed-point (1/16 px) integer coordinates for cv2's ``shift`` argument."""
    return np.round(np.asarray(a) * _ONE).astype(np.int32)


class _Fixed(NamedTuple):
    """A scene's figures in cv2's fixed-point integers, converted once per scene."""

    kp: list  # (n, 133, 2)
    ends: list  # (n, 39, 4) capsule end points
    widths: list  # (n, 39) stroke widths, px
    polys: np.ndarray  # (n, 9, 26, 2) int32


def _fixed(p: People) -> _Fixed:
    return _Fixed(_fp(p.kp).tolist(), _fp(p.caps[..., :4]).tolist(),
                  (2 * p.caps[..., 4]).round().astype(int).tolist(), _fp(p.polys))  # fmt: skip


_LAYER_CAPS = [np.flatnonzero(lay == _CAP_LAYER).tolist() for lay in range(5)]
_LAYER_POLYS = [np.flatnonzero(lay == _POLY_LAYER).tolist() for lay in range(5)]


def _raster_layer(buf: np.ndarray, fx: _Fixed, p: People, i: int, layer: int, value: int) -> None:
    """Fill the shapes of one layer of figure ``i`` with ``value``, without anti-aliasing: the
    geometry :func:`render` draws, for the depth and silhouette buffers."""
    ends, widths = fx.ends[i], fx.widths[i]
    for k in _LAYER_CAPS[layer]:
        e = ends[k]
        cv2.line(buf, (e[0], e[1]), (e[2], e[3]), value, widths[k], cv2.LINE_8, _SHIFT)
    for k in _LAYER_POLYS[layer]:
        if p.drawn[i, k]:
            cv2.fillPoly(buf, [fx.polys[i, k]], value, cv2.LINE_8, _SHIFT)


def _depth_buffer(p: People, fx: _Fixed, occluders: np.ndarray, occluder_rank: np.ndarray,
                  W: int, H: int) -> np.ndarray:  # fmt: skip
    """(H, W) draw rank + 1 of the last shape drawn on each pixel (0 = background)."""
    buf = np.zeros((H, W), np.int16)
    jobs = [(int(o) * _RANK_STEP + lay, i, lay) for i, o in enumerate(p.order)
            for lay in range(5)]  # fmt: skip
    jobs += [(int(r), -1 - j, 0) for j, r in enumerate(occluder_rank)]
    for rank, i, lay in sorted(jobs):
        if i >= 0:
            _raster_layer(buf, fx, p, i, lay, rank + 1)
        else:
            cv2.fillPoly(buf, [_fp(occluders[-1 - i])], rank + 1, cv2.LINE_8, _SHIFT)
    return buf


def _silhouette_area(p: People, fx: _Fixed, W: int, H: int) -> np.ndarray:
    """Pixel area of each figure's silhouette inside the image (what a COCO segmentation
    measures, except that occlusion by others is not subtracted)."""
    ext = np.round(p.extent()).astype(int)
    lo = np.maximum(ext[:, :2], 0)
    hi = np.minimum(ext[:, 2:] + 1, [W, H])
    buf = np.zeros((H, W), np.uint8)
    areas = np.zeros(len(ext))
    for i in range(len(ext)):
        if (hi[i] <= lo[i]).any():
            continue
        for layer in range(5):
            _raster_layer(buf, fx, p, i, layer, 1)
        roi = buf[lo[i, 1] : hi[i, 1], lo[i, 0] : hi[i, 0]]
        areas[i] = cv2.countNonZero(roi)
        roi[:] = 0
    return areas


def _occluder_shapes(
    rng: np.random.Generator, cfg: SceneConfig, people: People
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(people.kp)
    k = int(rng.integers(1, cfg.max_occluders + 1)) if rng.random() < cfg.p_occluders else 0
    if cfg.max_occluders == 0:
        k = 0
    polys = np.zeros((k, _NUM_VERTS, 2))
    rank = np.zeros(k, np.int64)
    for j in range(k):
        target = int(rng.integers(n))
        hgt = people.height[target]
        centre = people.kp[target, rng.integers(NUM_KEYPOINTS)] + rng.normal(0, 0.05 * hgt, 2)
        w, h = rng.uniform(0.12, 0.45, 2) * hgt
        ang = rng.uniform(0, np.pi)
        kind = rng.integers(3)
        if kind == 0:  # rotated rectangle
            shape = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [w / 2, h / 2]
        elif kind == 1:  # ellipse
            shape = _ellipse(0.0, 0.0, w / 2, h / 2, 20)
        else:  # random convex-ish polygon
            t = np.sort(rng.uniform(0, 2 * np.pi, 6))
            rad = rng.uniform(0.6, 1.0, 6)
            shape = np.stack([np.cos(t) * rad * w / 2, np.sin(t) * rad * h / 2], 1)
        c, s = np.cos(ang), np.sin(ang)
        polys[j] = _pad(shape @ np.array([[c, s], [-s, c]]) + centre)
        # Drawn in front of the target and behind a random number of nearer people.
        depth = int(rng.integers(people.order[target] + 1, n + 1))
        rank[j] = depth * _RANK_STEP - 1
    colors = _hsv_to_bgr(rng.uniform(0, 1, k), rng.uniform(0, 0.9, k), rng.uniform(0.2, 1, k))
    return polys, rank, colors.reshape(k, 3)


#: Images whose figures are built together. Batches have fixed boundaries (0-15, 16-31, ...)
#: so that every way of producing an image computes it with identical array operations.
BATCH = 16


def sample_scenes(batch: int, seed: int, cfg: SceneConfig, count: int = BATCH) -> list[Scene]:
    """Figures, occluders and labels (no drawing) of the first ``count`` images of batch
    ``batch``; image ``i`` is seeded from ``(seed, i)`` alone. The figures of the whole batch
    are always built, so an image's numbers never depend on how many were asked for."""
    first = batch * BATCH
    rngs = [np.random.default_rng([seed, first + k]) for k in range(BATCH)]
    sizes = [int(r.integers(cfg.people[0], cfg.people[1] + 1)) for r in rngs]
    uniform = np.concatenate([r.random((n, _NUM_UNIFORM)) for r, n in zip(rngs, sizes)])
    normal = np.concatenate([r.standard_normal((n, _NUM_NORMAL)) for r, n in zip(rngs, sizes)])
    people = _build_people(uniform, normal, cfg)
    ends = np.cumsum([0, *sizes])
    return [_finish_scene(r, cfg, People(*(a[lo:hi] for a in people)))
            for r, lo, hi in zip(rngs[:count], ends[:-1], ends[1:])]  # fmt: skip


def sample_scene(index: int, seed: int, cfg: SceneConfig) -> Scene:
    """The figures, occluders and labels of image ``index`` (no drawing)."""
    batch, k = divmod(index, BATCH)
    return sample_scenes(batch, seed, cfg, k + 1)[k]


def _finish_scene(rng: np.random.Generator, cfg: SceneConfig, people: People) -> Scene:
    """Place one image's figures and occluders, and compute its labels."""
    W, H = cfg.image_size
    n = len(people.kp)
    people = _place(rng, cfg, people)
    # Far to near: mostly smaller (farther) people first.
    depth_key = people.height * np.exp(rng.normal(0, 0.25, n))
    order = np.empty(n, np.int64)
    order[np.argsort(depth_key, kind="stable")] = np.arange(n)
    people = people._replace(order=order)
    occ_polys, occ_rank, occ_colors = _occluder_shapes(rng, cfg, people)

    # Occluded: the pixel under the point was last drawn by a shape of a later rank.
    kp = people.kp
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= W - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= H - 1)
    fx = _fixed(people)
    depth = _depth_buffer(people, fx, occ_polys, occ_rank, W, H)
    px = np.where(inside[..., None], np.round(kp), 0).astype(np.int64)
    rank = order[:, None] * _RANK_STEP + KEYPOINT_LAYER[None]
    occluded = depth[px[..., 1], px[..., 0]] > rank + 1
    vis = np.where(inside, np.where(occluded, 1.0, 2.0), 0.0)

    # Unlabelled parts: faces seen from behind, too small faces and hands, random ones.
    vis[np.ix_(people.back, np.r_[_K["nose"], _EYE, _FACE0 : _FACE0 + 68])] = 0
    labelled = np.ones((n, len(PARTS)), bool)
    labelled[:, 1:] = rng.random((n, len(PARTS) - 1)) >= cfg.p_unlabelled_part
    for p in ("face", "lefthand", "righthand"):
        sl = PART_SLICES[p]
        span = (kp[:, sl].max(1) - kp[:, sl].min(1)).max(1)
        labelled[:, PARTS.index(p)] &= span >= cfg.min_part_size
    for pi, p in enumerate(PARTS):
        vis[~labelled[:, pi], PART_SLICES[p]] = 0
    xy = np.where(vis[..., None] > 0, np.round(kp, 2), 0.0)
    keypoints = np.concatenate([xy, vis[..., None]], -1)
    valid = np.stack([(vis[:, PART_SLICES[p]] > 0).any(1) for p in PARTS], 1)

    ext = people.extent()
    box0 = np.clip(ext[:, :2], 0, [W - 1, H - 1])
    box1 = np.clip(ext[:, 2:], 0, [W - 1, H - 1])
    bboxes = np.round(np.concatenate([box0, box1 - box0], 1), 2)
    areas = _silhouette_area(people, fx, W, H)
    part_boxes = np.round(
        np.stack([points_box(keypoints[:, PART_SLICES[p]]) for p in BOX_PARTS], 1), 2
    )
    return Scene(W, H, people, occ_polys, occ_rank, occ_colors, keypoints, bboxes, areas, valid,
                 part_boxes)  # fmt: skip


# ------------------------------------------------------------------------------ drawing
def render_background(rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray:
    """A varied background: a smooth colour field, blotches, tiles or stripes, and distractor
    shapes (some of them limb-like strokes and rings)."""
    W, H = cfg.image_size
    w, h = max(W // 4, 8), max(H // 4, 8)  # composed at quarter size, then upscaled once
    gh, gw = rng.integers(2, 7, 2)
    base = rng.integers(0, 256, (gh, gw, 3), dtype=np.uint8)
    if rng.random() < 0.5:  # muted
        base = (base // 2 + rng.integers(40, 128)).astype(np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    kind = int(rng.integers(3))
    if kind < 2:
        if kind == 0:  # blotches
            k = int(rng.integers(2, 10))
            tex = rng.integers(0, 256, (h // k + 2, w // k + 2, 3), dtype=np.uint8)
            tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
        else:  # tiles, bricks or stripes
            ty, tx = (rng.integers(1, 12), rng.integers(1, 16)) if rng.random() < 0.7 else (1, 24)
            if rng.random() < 0.3:
                ty, tx = tx, 1
            tex = rng.integers(0, 256, (int(ty), int(tx), 3), dtype=np.uint8)
            tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_NEAREST)
        amp = float(rng.uniform(0.1, 0.4))
        img = cv2.addWeighted(img, 1.0, tex, amp, -amp * 128)
    # Distractors: filled discs and polygons drawn at quarter size (soft, like things out of
    # focus); limb-like strokes, rings and wiggly lines drawn sharp at full size.
    shapes = [(int(rng.integers(4)), rng.integers(0, 256, 3).tolist(), rng.uniform([0, 0], [W, H]),
               rng.uniform(4, 0.3 * min(W, H)), rng.random())
              for _ in range(int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1)))]  # fmt: skip
    q = np.array([w / W, h / H])
    for kind, color, c, size, r in shapes:
        if kind == 1 and r < 0.5:  # disc
            cv2.circle(
                img, _fp(c * q).tolist(), int(size * q[0] * _ONE / 2), color, -1, _AA, _SHIFT
            )
        elif kind == 2:
            pts = rng.uniform(-size, size, (int(rng.integers(3, 6)), 2)) + c
            cv2.fillPoly(img, [_fp(pts * q)], color, _AA, _SHIFT)
    img = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)
    for kind, color, c, size, r in shapes:
        if kind == 0:  # limb-like stroke
            d = c + rng.normal(0, 0.25 * min(W, H), 2)
            cv2.line(img, _fp(c).tolist(), _fp(d).tolist(), color, 1 + int(r * 13), _AA, _SHIFT)
        elif kind == 1 and r >= 0.5:  # ring
            cv2.circle(img, _fp(c).tolist(), int(size * _ONE / 2), color, 1 + int(r * 6 - 3),
                       _AA, _SHIFT)  # fmt: skip
        elif kind == 3:  # wiggly line
            pts = np.cumsum(rng.normal(0, size / 4, (int(rng.integers(3, 8)), 2)), 0) + c
            cv2.polylines(img, [_fp(pts)], False, color, 1 + int(r * 3), _AA, _SHIFT)
    return img


_MARK_COLOR_T = [tuple(c) for c in _MARK_COLOR.tolist()]
_MARK_RING_L = _MARK_RING.tolist()


def _marks(idx: Any) -> list[int]:
    """Keypoints whose marks a group draws (shared points are drawn once)."""
    return [int(k) for k in idx if not _MARK_SKIP[k]]


_LEG_MARKS = _marks([*_KNEE, *_ANKLE])
_FOOT_MARKS = _marks(range(PART_SLICES["foot"].start, PART_SLICES["foot"].stop))
_HIP_MARKS, _ARM_MARKS = _marks(_HIP), _marks([*_SHOULDER, *_ELBOW])
_EYE_MARKS, _EAR_MARKS = _marks(_EYE), _marks(_EAR)
_FACE_MARKS = _marks(range(_FACE0, _FACE0 + 68))
_HAND_MARKS = _marks(range(_HAND0[0], _HAND0[0] + 21)) + _marks(range(_HAND0[1], _HAND0[1] + 21))


def _draw_marks(img: np.ndarray, kp: list, radius: float, idx: list[int], ring: float) -> None:
    """A dot (with a dark rim for ring marks) of the keypoint's colour at each point."""
    r = max(int(radius * _ONE), _ONE // 2)
    rr = int(r * ring)
    for k in idx:
        if _MARK_RING_L[k]:
            cv2.circle(img, kp[k], rr, (20, 20, 20), -1, _AA, _SHIFT)
        cv2.circle(img, kp[k], r, _MARK_COLOR_T[k], -1, _AA, _SHIFT)


def _draw_person(img: np.ndarray, p: People, fx: _Fixed, i: int, layer: int) -> None:
    """Draw one layer of figure ``i``: its shapes, then its keypoint marks."""
    col = [tuple(c) for c in p.colors[i].tolist()]
    kp, ends, widths, polys = fx.kp[i], fx.ends[i], fx.widths[i], fx.polys[i]
    hgt, fu, hl = p.height[i], p.face_unit[i], p.hand_len[i]
    body_r = max(0.9, 0.011 * hgt)

    def cap(k: int, color) -> None:
        e = ends[k]
        cv2.line(img, (e[0], e[1]), (e[2], e[3]), color, widths[k], _AA, _SHIFT)

    def poly(k: int, color) -> None:
        if p.drawn[i, k]:
            cv2.fillPoly(img, [polys[k]], color, _AA, _SHIFT)

    if layer == LEGS:
        for s, slot in enumerate((C_LLEG, C_RLEG)):
            cap(2 * s, col[slot])
            cap(2 * s + 1, col[slot])
        for s, slot in enumerate((C_LSHOE, C_RSHOE)):
            poly(_P_FOOT + s, col[slot])
        _draw_marks(img, kp, body_r, _LEG_MARKS, 1.5)
        _draw_marks(img, kp, max(0.7, 0.008 * hgt), _FOOT_MARKS, 1.5)
    elif layer == TORSO:
        cap(4, col[C_SKIN])
        poly(_P_TORSO, col[C_SHIRT])
        _draw_marks(img, kp, body_r, _HIP_MARKS, 1.5)
    elif layer == ARMS:
        for s, slot in enumerate((C_LARM, C_RARM)):
            cap(5 + 2 * s, col[slot])
            cap(6 + 2 * s, col[slot])
        _draw_marks(img, kp, body_r, _ARM_MARKS, 1.5)
    elif layer == HEAD:
        poly(_P_HAIR, col[C_HAIR])
        poly(_P_SKIN, col[C_SKIN])
        dark = tuple(int(v * 0.45) for v in col[C_SKIN])
        poly(_P_EAR, dark)
        poly(_P_EAR + 1, dark)
        if not p.back[i]:
            face = np.asarray(kp[_FACE0 : _FACE0 + 68], np.int32)
            line = (20, 20, 20)
            brow_w = max(1, round(0.09 * fu))
            cv2.polylines(img, [face[:17]], False, dark, 1, _AA, _SHIFT)
            cv2.polylines(img, [face[17:22], face[22:27]], False, col[C_HAIR], brow_w, _AA,
                          _SHIFT)  # fmt: skip
            cv2.polylines(img, [face[27:31], face[31:36]], False, dark, 1, _AA, _SHIFT)
            cv2.fillPoly(img, [face[36:42], face[42:48]], (245, 245, 245), _AA, _SHIFT)
            cv2.polylines(img, [face[36:42], face[42:48]], True, line, 1, _AA, _SHIFT)
            cv2.fillPoly(img, [face[48:60]], col[C_LIPS], _AA, _SHIFT)
            cv2.fillPoly(img, [face[60:68]], (40, 20, 60), _AA, _SHIFT)
            pupil = max(0.6, 0.07 * fu)
            _draw_marks(img, kp, pupil, _EYE_MARKS, 1.0)
            _draw_marks(img, kp, max(0.5, 0.055 * fu), _FACE_MARKS, 1.0)
        _draw_marks(img, kp, max(0.7, 0.07 * fu), _EAR_MARKS, 1.6)
    else:
        fr = widths[_CAP_FINGERS]
        for s, slot in enumerate((C_LPALM, C_RPALM)):
            poly(_P_PALM + s, col[slot])
            for fgr in range(5):
                k = 9 + 15 * s + 3 * fgr
                chain = np.array([ends[k][:2], ends[k][2:], ends[k + 1][2:], ends[k + 2][2:]],
                                 np.int32)  # fmt: skip
                cv2.polylines(img, [chain], False, col[C_FINGER + fgr], fr[15 * s + 3 * fgr],
                              _AA, _SHIFT)  # fmt: skip
        _draw_marks(img, kp, max(0.5, 0.028 * hl), _HAND_MARKS, 1.6)


def render(scene: Scene, rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray:
    """Draw a scene: background, then figures (layer by layer) and occluders far to near."""
    img = render_background(rng, cfg)
    p = scene.people
    fx = _fixed(p)
    jobs = [(int(o) * _RANK_STEP + lay, 0, i, lay) for i, o in enumerate(p.order)
            for lay in range(5)]  # fmt: skip
    jobs += [(int(r), 1, j, 0) for j, r in enumerate(scene.occluder_rank)]
    for _, kind, i, lay in sorted(jobs):
        if kind == 0:
            _draw_person(img, p, fx, i, lay)
        else:
            color = tuple(int(c) for c in scene.occluder_colors[i])
            pts = _fp(scene.occluders[i])
            cv2.fillPoly(img, [pts], color, _AA, _SHIFT)
            edge = tuple(int(c * 0.6) for c in scene.occluder_colors[i])
            cv2.polylines(img, [pts], True, edge, 2, _AA, _SHIFT)
    return img


def render_image(index: int, seed: int, cfg: SceneConfig) -> tuple[Scene, np.ndarray]:
    """Scene and BGR image of image ``index``; drawing randomness has its own stream."""
    scene = sample_scene(index, seed, cfg)
    return scene, render(scene, np.random.default_rng([seed, index, 1]), cfg)


# ------------------------------------------------------------------------------ label sets
def image_id(index: int) -> int:
    """COCO image id of image ``index`` (ids start at 1)."""
    return index + 1


def _image_record(index: int, cfg: SceneConfig) -> dict[str, Any]:
    i = image_id(index)
    return {"id": i, "file_name": f"{i:012d}.jpg", "width": cfg.image_size[0],
            "height": cfg.image_size[1]}  # fmt: skip


def _assemble(scenes: list[Scene], cfg: SceneConfig, seed: int) -> WholeBodySet:
    counts = [len(s.keypoints) for s in scenes]
    gt = WholeBodySet.from_arrays(
        images=[_image_record(i, cfg) for i in range(len(scenes))],
        image_ids=np.repeat([image_id(i) for i in range(len(scenes))], counts),
        keypoints=np.concatenate([s.keypoints for s in scenes]),
        bboxes=np.concatenate([s.bboxes for s in scenes]),
        areas=np.concatenate([s.areas for s in scenes]),
        valid=np.concatenate([s.valid for s in scenes]),
        part_boxes=np.concatenate([s.part_boxes for s in scenes]),
    )
    gt.header["info"] = {
        "description": "fullbody synthetic whole-body scenes (exact labels)",
        "generator": f"fullbody.data.synthetic v{GENERATOR_VERSION}",
        "seed": seed,
    }
    return gt


def generate_labels(
    num_images: int, seed: int = 0, *, config: SceneConfig | None = None
) -> WholeBodySet:
    """The labels :func:`generate` writes for these parameters, without drawing any image."""
    cfg = config or SceneConfig()
    _check_args(num_images, seed)
    scenes: list[Scene] = []
    for b in range(math.ceil(num_images / BATCH)):
        scenes += sample_scenes(b, seed, cfg, min(BATCH, num_images - b * BATCH))
    return _assemble(scenes, cfg, seed)


# ------------------------------------------------------------------------------ pseudo-labels
@dataclass
class PseudoConfig:
    """How teacher-like pseudo-labels deviate from the exact ones (sizes relative to the part:
    the longer side of a face or hand box, 0.1 x sqrt(area) for a foot)."""

    #: Typical point error (standard deviation per axis) as a share of the part's size.
    noise: float = 0.03
    #: Error multiplier for points a human marked occluded (teachers guess those).
    occluded_factor: float = 2.0
    #: Spread of the per-instance difficulty (log-normal sigma): some parts are much worse.
    instance_spread: float = 0.5
    #: Log-normal sigma of the teacher's misjudgement of its own error (0 = confidences rank
    #: errors perfectly).
    conf_noise: float = 0.5
    #: Chance a labelled point is missing from the teacher's output (v = 0, conf 0).
    p_drop: float = 0.04
    #: Chance a foot's small toe is missing (several teachers have no small toe).
    p_small_toe_missing: float = 0.6
    #: Chance a whole foot, face or hand is missing.
    p_missing_part: float = 0.03
    #: Chance a point is an outlier: 0.5-2 part sizes off, with a middling confidence.
    p_outlier: float = 0.02
    #: Chance a hand is predicted 0.6-1.5 hand sizes away from where it is, confidently.
    p_hand_displaced: float = 0.03
    #: Chance a person's left and right hand predictions are exchanged.
    p_hands_swapped: float = 0.02


_PSEUDO_PARTS = ("foot", "face", "lefthand", "righthand")


def perturb_labels(
    gt: WholeBodySet, seed: int, *, config: PseudoConfig | None = None
) -> WholeBodySet:
    """Teacher-like pseudo-labels from exact ones, for exercising distillation.

    Body points stay the human labels (confidence 1). Foot, face and hand points get noise
    proportional to their part's size, confidences in [0, 1] that fall with the error (but
    imperfectly), some points and parts missing, outliers, displaced and swapped hands, and
    often no small toe. Points stay inside their image. Deterministic for a seed.
    """
    cfg = config or PseudoConfig()
    rng = np.random.default_rng([seed, 1, 2, 3])
    n = len(gt)
    kp = gt.keypoints.copy()
    lab = kp[..., 2] > 0
    occ = kp[..., 2] == 1
    conf = lab.astype(np.float64)
    scale = 0.1 * np.sqrt(np.maximum(gt.areas, 1.0))
    out = kp.copy()
    for p in _PSEUDO_PARTS:
        sl = PART_SLICES[p]
        k = sl.stop - sl.start
        size = scale.copy()
        if p in BOX_PARTS:
            box = gt.part_boxes[:, BOX_PARTS.index(p)]
            size = np.where(box[:, 2:].max(1) > 0, box[:, 2:].max(1), scale)
        inst = np.exp(rng.normal(0, cfg.instance_spread, n))[:, None]
        sigma = cfg.noise * size[:, None] * inst * np.where(occ[:, sl], cfg.occluded_factor, 1)
        err = rng.normal(0, 1, (n, k, 2)) * sigma[..., None]
        # Confidence from the error the teacher believes it made: imperfectly correlated.
        z = np.hypot(err[..., 0], err[..., 1]) / (cfg.noise * size[:, None])
        z_seen = z * np.exp(rng.normal(0, cfg.conf_noise, (n, k)))
        c = 1 / (1 + np.exp(1.3 * (z_seen - 2.0)))
        outlier = rng.random((n, k)) < cfg.p_outlier
        dist = rng.uniform(0.5, 2.0, (n, k)) * size[:, None]
        ang = rng.uniform(0, 2 * np.pi, (n, k))
        err[outlier] = (dist[..., None] * _u(ang))[outlier]
        c[outlier] = rng.uniform(0.05, 0.7, (n, k))[outlier]
        if p.endswith("hand"):
            moved = rng.random(n) < cfg.p_hand_displaced
            shift = rng.uniform(0.6, 1.5, n)[:, None] * size[:, None] * _u(rng.uniform(0, 7, n))
            err[moved] += shift[moved, None]
        out[:, sl, :2] = kp[:, sl, :2] + err
        conf[:, sl] = np.where(lab[:, sl], c, 0)
        gone = rng.random(n) < cfg.p_missing_part
        conf[gone, sl] = 0
    drop = rng.random(conf.shape) < cfg.p_drop
    toes = _FOOT["small_toe"]
    drop[:, toes] |= rng.random((n, 2)) < cfg.p_small_toe_missing
    body = PART_SLICES["body"]
    drop[:, body] = False
    conf[drop] = 0
    conf[:, body] = lab[:, body]
    out[:, body] = kp[:, body]

    swap = rng.random(n) < cfg.p_hands_swapped
    lh, rh = PART_SLICES["lefthand"], PART_SLICES["righthand"]
    for arr in (out, conf):
        left = arr[swap, lh].copy()
        arr[swap, lh] = arr[swap, rh]
        arr[swap, rh] = left

    keep = conf > 0
    conf = np.where(keep, np.clip(np.round(conf, 3), 0.001, 1.0), 0.0)
    sizes = np.array([[gt.images[int(i)]["width"], gt.images[int(i)]["height"]]
                      for i in gt.image_ids], float).reshape(n, 2)  # fmt: skip
    xy = np.clip(out[..., :2], 0, sizes[:, None] - 1)
    out = np.concatenate([np.where(keep[..., None], np.round(xy, 2), 0.0),
                          np.where(keep, 2.0, 0.0)[..., None]], -1)  # fmt: skip
    out[:, body] = kp[:, body]
    valid = np.stack([(out[:, PART_SLICES[p], 2] > 0).any(1) for p in PARTS], 1)
    part_boxes = np.round(np.stack([points_box(out[:, PART_SLICES[p]]) for p in BOX_PARTS], 1), 2)
    res = WholeBodySet.from_arrays(
        images=gt.images.values(),
        image_ids=gt.image_ids,
        keypoints=out,
        bboxes=gt.bboxes,
        areas=gt.areas,
        ann_ids=gt.ann_ids,
        valid=valid,
        part_boxes=part_boxes,
        conf=conf,
    )
    res.header = {**gt.header}
    info = dict(gt.header.get("info", {}))
    info["description"] = "fullbody synthetic pseudo-labels (perturbed exact labels)"
    info["pseudo_seed"] = seed
    res.header["info"] = info
    return res


# ------------------------------------------------------------------------------ writing
def _check_args(num_images: int, seed: int) -> None:
    if not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _make_batch(args: tuple[int, int, int, SceneConfig, str]) -> list[Scene]:
    """Scenes of one batch of images, writing each image that is not already on disk."""
    batch, count, seed, cfg, images_dir = args
    out = []
    params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
    for k, scene in enumerate(sample_scenes(batch, seed, cfg, count)):
        i = batch * BATCH + k
        path = Path(images_dir) / f"{image_id(i):012d}.jpg"
        # A resumed run keeps finished images: they are written atomically, so they are whole.
        if not path.is_file():
            img = render(scene, np.random.default_rng([seed, i, 1]), cfg)
            ok, buf = cv2.imencode(".jpg", img, params)
            if not ok:
                raise RuntimeError(f"{path}: JPEG encoding failed")
            _write_atomic(path, buf.tobytes())
        out.append(scene._replace(people=None))  # only the labels travel back (cheap to pickle)
    return out


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _params(num_images: int, seed: int, pseudo: bool, cfg: SceneConfig) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "num_images": int(num_images),
            "seed": int(seed), "pseudo": bool(pseudo), "config": cfg.to_json()}  # fmt: skip


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _foreign(out: Path) -> list[str]:
    """Entries of ``out`` this generator would not have written."""
    bad = [e.name for e in out.iterdir() if e.name not in _OWN_FILES and not _is_tmp(e.name)]
    images = out / IMAGES_DIR
    if images.exists() and not images.is_dir():
        bad.append(IMAGES_DIR)
    elif images.is_dir():
        bad += [f"{IMAGES_DIR}/{e.name}" for e in images.iterdir()
                if not (_IMAGE_NAME.match(e.name) or _is_tmp(e.name))]  # fmt: skip
    for name in (ANNOTATIONS, PSEUDO_ANNOTATIONS, MANIFEST, PARTIAL):
        if (out / name).is_dir():
            bad.append(name)
    return sorted(bad)


def _is_tmp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _clear_own(out: Path) -> None:
    """Remove what this generator writes (never anything else); the manifest goes first."""
    for name in (MANIFEST, PARTIAL, ANNOTATIONS, PSEUDO_ANNOTATIONS):
        if (out / name).is_file():
            (out / name).unlink()
    for e in out.iterdir():
        if e.is_file() and _is_tmp(e.name):
            e.unlink()
    images = out / IMAGES_DIR
    if images.is_dir():
        for e in images.iterdir():
            if e.is_file() and (_IMAGE_NAME.match(e.name) or _is_tmp(e.name)):
                e.unlink()


def _prepare(out: Path, params: dict[str, Any], overwrite: bool) -> bool:
    """Check the output folder; True when it already holds this exact data set."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    manifest = _read_json(out / MANIFEST) if (out / MANIFEST).is_file() else None
    same = isinstance(manifest, dict) and manifest.get("params") == params
    if same:
        expected = [ANNOTATIONS] + ([PSEUDO_ANNOTATIONS] if params["pseudo"] else [])
        if all((out / name).is_file() for name in expected):
            return True
    foreign = _foreign(out)
    partial = _read_json(out / PARTIAL) if (out / PARTIAL).is_file() else None
    # Same parameters but unfinished (no manifest) or damaged: finish it, keeping the images.
    resumable = same or (
        manifest is None and isinstance(partial, dict) and partial.get("params") == params
    )
    if overwrite:
        if not resumable:
            _clear_own(out)
        return False
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise FileExistsError(
            f"{out}: holds files this generator did not write ({shown}); choose an empty or "
            "new folder, or pass overwrite=True (--overwrite) to write beside them"
        )
    if resumable or not any(out.iterdir()):
        return False
    if manifest is not None or partial is not None:
        src = manifest if manifest is not None else partial
        old = src.get("params") if isinstance(src, dict) else None
        what = "a finished" if manifest is not None else "an unfinished"
        raise FileExistsError(
            f"{out}: holds {what} synthetic data set with different parameters "
            f"({_param_diff(old, params)}); pass overwrite=True (--overwrite) to replace it"
        )
    raise FileExistsError(
        f"{out}: holds synthetic-looking files but no manifest; pass overwrite=True "
        "(--overwrite) to replace them"
    )


def _param_diff(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "unreadable manifest"
    flat_old = {**old, **old.get("config", {})} if isinstance(old.get("config"), dict) else old
    flat_new = {**new, **new["config"]}
    diffs = [f"{k}: {flat_old.get(k)!r} -> {v!r}" for k, v in flat_new.items()
             if k != "config" and flat_old.get(k) != v]  # fmt: skip
    return "; ".join(diffs) or "manifest incomplete"


def generate(
    out_dir: str | os.PathLike,
    num_images: int,
    seed: int = 0,
    *,
    pseudo: bool = False,
    config: SceneConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``num_images`` scenes to ``out_dir`` and return it.

    Writes ``images/{image_id:012d}.jpg``, ``annotations.json`` (COCO-WholeBody), with
    ``pseudo`` also ``pseudo_annotations.json`` (:func:`perturb_labels`), and last
    ``manifest.json`` (parameters and counts). A folder that already holds the same data set is
    returned at once; an unfinished run with the same parameters resumes (finished images are
    kept). Any other content is an error unless ``overwrite``, which replaces what this
    generator writes and leaves other files alone. ``workers > 1`` draws images in that many
    processes; the output is byte-identical for any worker count.
    """
    cfg = config or SceneConfig()
    _check_args(num_images, seed)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    out = Path(out_dir)
    params = _params(num_images, seed, pseudo, cfg)
    if _prepare(out, params, overwrite):
        return out
    images_dir = out / IMAGES_DIR
    images_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic({"params": params}, out / PARTIAL)

    jobs = [(b, min(BATCH, num_images - b * BATCH), seed, cfg, str(images_dir))
            for b in range(math.ceil(num_images / BATCH))]  # fmt: skip
    scenes: list[Scene] = []
    bar = tqdm(total=num_images, desc="synthetic images", unit="img", disable=not progress)
    try:
        if workers == 1:
            results = map(_make_batch, jobs)
            for res in results:
                scenes += res
                bar.update(len(res))
        else:
            # Fresh interpreters: forking a process whose OpenCV/BLAS thread pools are running
            # can deadlock. (Scripts calling this need the ``if __name__ == "__main__"`` guard.)
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as ex:
                for res in ex.map(_make_batch, jobs):
                    scenes += res
                    bar.update(len(res))
    finally:
        bar.close()

    gt = _assemble(scenes, cfg, seed)
    gt.save(out / ANNOTATIONS)
    counts = {
        "images": num_images,
        "people": len(gt),
        "labelled_points": int((gt.keypoints[..., 2] > 0).sum()),
        "occluded_points": int((gt.keypoints[..., 2] == 1).sum()),
        "labelled_parts": {p: int(gt.valid[:, i].sum()) for i, p in enumerate(PARTS)},
    }
    files = {"images": IMAGES_DIR, "annotations": ANNOTATIONS}
    if pseudo:
        perturb_labels(gt, seed).save(out / PSEUDO_ANNOTATIONS)
        files["pseudo_annotations"] = PSEUDO_ANNOTATIONS
    manifest = {"generator": "fullbody.data.synthetic", "params": params, "counts": counts,
                "files": files}  # fmt: skip
    write_json_atomic(manifest, out / MANIFEST)
    (out / PARTIAL).unlink(missing_ok=True)
    return out


# ------------------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fullbody.data.synthetic``: write a synthetic data set."""
    ap = argparse.ArgumentParser(
        prog="python -m fullbody.data.synthetic",
        description="Write synthetic multi-person whole-body scenes with exact COCO-WholeBody "
        "labels: OUT/images/*.jpg, OUT/annotations.json, OUT/manifest.json.",
    )
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--images", required=True, type=int, help="number of images")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--pseudo", action="store_true",
                    help="also write teacher-like pseudo_annotations.json")  # fmt: skip
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different data set (or write beside foreign files)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        out = generate(args.out, args.images, args.seed, pseudo=args.pseudo,
                       workers=args.workers, overwrite=args.overwrite,
                       progress=not args.quiet)  # fmt: skip
    except (FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = json.loads((out / MANIFEST).read_text())["counts"]
    print(f"{out}: {counts['images']} images, {counts['people']} people")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
