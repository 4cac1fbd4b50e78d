"""Figure geometry: layout tables, the keypoint-to-layer map, and articulated figures
(:class:`People`) built from tables of random numbers, vectorised over people."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from fullbody.keypoints import NAME_TO_INDEX, NUM_KEYPOINTS, PART_SLICES
from fullbody.synthetic.config import SceneConfig

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
