"""Drawing: backgrounds with distractors, figures layer by layer with their keypoint marks, and
occluders, far to near (:func:`render`)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fullbody.keypoints import PART_SLICES
from fullbody.synthetic.config import SceneConfig
from fullbody.synthetic.figure import (
    _ANKLE,
    _CAP_FINGERS,
    _EAR,
    _ELBOW,
    _EYE,
    _FACE0,
    _HAND0,
    _HIP,
    _KNEE,
    _MARK_COLOR,
    _MARK_RING,
    _MARK_SKIP,
    _P_EAR,
    _P_FOOT,
    _P_HAIR,
    _P_PALM,
    _P_SKIN,
    _P_TORSO,
    _RANK_STEP,
    _SHOULDER,
    ARMS,
    C_FINGER,
    C_HAIR,
    C_LARM,
    C_LIPS,
    C_LLEG,
    C_LPALM,
    C_LSHOE,
    C_RARM,
    C_RLEG,
    C_RPALM,
    C_RSHOE,
    C_SHIRT,
    C_SKIN,
    HEAD,
    LEGS,
    TORSO,
    People,
)
from fullbody.synthetic.scenes import (
    _AA,
    _ONE,
    _SHIFT,
    Scene,
    _Fixed,
    _fixed,
    _fp,
    sample_scene,
)


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
