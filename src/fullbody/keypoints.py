"""The 133-point COCO-WholeBody layout: names, parts, OKS sigmas, flip pairs, skeleton, colours.

This is the single home of the layout; every other module imports it from here. Indices follow
the COCO-WholeBody v1.0 order: body 0-16, foot 17-22, face 23-90, left hand 91-111,
right hand 112-132. "Left" and "right" are the person's own sides, as in COCO.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import numpy as np

from fullbody.errors import ConfigError

NUM_KEYPOINTS: Final = 133

BODY_NAMES: Final = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
FOOT_NAMES: Final = (
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
# iBUG 300-W 68-point order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.
FACE_NAMES: Final = tuple(f"face-{i}" for i in range(68))
_FINGERS: Final = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand_names(side: str) -> tuple[str, ...]:
    """Wrist ('hand root') then each finger from base (1) to tip (4), as MediaPipe orders them."""
    return (f"{side}_hand_root",) + tuple(f"{side}_{f}{k}" for f in _FINGERS for k in range(1, 5))


LEFT_HAND_NAMES: Final = _hand_names("left")
RIGHT_HAND_NAMES: Final = _hand_names("right")
KEYPOINT_NAMES: Final = BODY_NAMES + FOOT_NAMES + FACE_NAMES + LEFT_HAND_NAMES + RIGHT_HAND_NAMES
NAME_TO_INDEX: Final = MappingProxyType({n: i for i, n in enumerate(KEYPOINT_NAMES)})

#: The five disjoint parts, in file order, as slices of the 133 points.
PART_SLICES: Final = MappingProxyType(
    {
        "body": slice(0, 17),
        "foot": slice(17, 23),
        "face": slice(23, 91),
        "lefthand": slice(91, 112),
        "righthand": slice(112, 133),
    }
)
#: The six evaluated parts: the five above plus all 133 points.
EVAL_PARTS: Final = ("body", "foot", "face", "lefthand", "righthand", "wholebody")
#: Slices for every evaluated part, "wholebody" included.
PART_SLICES_WITH_WHOLE: Final = MappingProxyType(
    {**PART_SLICES, "wholebody": slice(0, NUM_KEYPOINTS)}
)
#: Part name of every keypoint, shape (133,).
KEYPOINT_PART: Final = np.array(
    [p for p, s in PART_SLICES.items() for _ in range(s.start, s.stop)], dtype=object
)

#: COCO-WholeBody JSON field holding each part's flat [x, y, v] list.
PART_FIELDS: Final = MappingProxyType(
    {
        "body": "keypoints",
        "foot": "foot_kpts",
        "face": "face_kpts",
        "lefthand": "lefthand_kpts",
        "righthand": "righthand_kpts",
    }
)
#: Field of each part's per-keypoint teacher confidences in pseudo-label files.
CONF_FIELDS: Final = MappingProxyType(
    {
        "body": "keypoints_conf",
        "foot": "foot_conf",
        "face": "face_conf",
        "lefthand": "lefthand_conf",
        "righthand": "righthand_conf",
    }
)
#: Field of each part's validity flag (the body has none: it is always annotated in COCO).
VALID_FIELDS: Final = MappingProxyType(
    {
        "foot": "foot_valid",
        "face": "face_valid",
        "lefthand": "lefthand_valid",
        "righthand": "righthand_valid",
    }
)
#: Field of each part's box ([x, y, w, h]); feet have none in COCO-WholeBody.
BOX_FIELDS: Final = MappingProxyType(
    {"face": "face_box", "lefthand": "lefthand_box", "righthand": "righthand_box"}
)

# Official per-keypoint OKS sigmas (COCO-WholeBody evaluation, myeval_wholebody.py).
_BODY_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                0.107, 0.107, 0.087, 0.087, 0.089, 0.089]  # fmt: skip
_FOOT_SIGMAS = [0.068, 0.066, 0.066, 0.092, 0.094, 0.094]
_FACE_SIGMAS = [0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029,
                0.032, 0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012,
                0.012, 0.011, 0.011, 0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009,
                0.008, 0.016, 0.010, 0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008,
                0.011, 0.012, 0.010, 0.034, 0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010,
                0.008, 0.009, 0.009, 0.009, 0.007, 0.007, 0.008, 0.011, 0.008, 0.008, 0.008,
                0.010, 0.008]  # fmt: skip
_HAND_SIGMAS = [0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
                0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031]  # fmt: skip

#: Official COCO-WholeBody OKS sigmas, shape (133,).
SIGMAS: Final = np.array(
    _BODY_SIGMAS + _FOOT_SIGMAS + _FACE_SIGMAS + _HAND_SIGMAS + _HAND_SIGMAS, dtype=np.float64
)
SIGMAS.setflags(write=False)

#: AlphaPose/halpecocotools sigmas: COCO body, 0.089 for every foot point, 0.015 for face and
#: hands. Only for comparing with numbers published on that scale; not the official metric.
HALPE_SIGMAS: Final = np.concatenate(
    [np.array(_BODY_SIGMAS), np.full(6, 0.089), np.full(68 + 42, 0.015)]
)
HALPE_SIGMAS.setflags(write=False)


def _flip_pairs() -> tuple[tuple[int, int], ...]:
    body = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
    foot = [(17, 20), (18, 21), (19, 22)]
    # Face (iBUG indices + 23): jaw 0<->16 ..., brows 17<->26 ..., nose base 31<->35, 32<->34,
    # eyes 36<->45, 37<->44, 38<->43, 39<->42, 40<->47, 41<->46, mouth outer/inner rings.
    face_ibug = (
        [(i, 16 - i) for i in range(8)]
        + [(17 + i, 26 - i) for i in range(5)]
        + [(31, 35), (32, 34)]
        + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
        + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
    )
    face = [(a + 23, b + 23) for a, b in face_ibug]
    hands = [(91 + k, 112 + k) for k in range(21)]
    return tuple(body + foot + face + hands)


#: Left/right pairs exchanged by a horizontal flip.
FLIP_PAIRS: Final = _flip_pairs()


def _flip_index() -> np.ndarray:
    idx = np.arange(NUM_KEYPOINTS)
    for a, b in FLIP_PAIRS:
        idx[a], idx[b] = b, a
    idx.setflags(write=False)
    return idx


#: FLIP_INDEX[i] is the keypoint that i becomes after a horizontal flip (an involution).
FLIP_INDEX: Final = _flip_index()


def _links() -> tuple[tuple[int, int], ...]:
    n = NAME_TO_INDEX
    body = [
        ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"),
        ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
        ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_eye", "right_eye"),
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
        ("right_eye", "right_ear"), ("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
    ]  # fmt: skip
    foot = [
        ("left_ankle", "left_big_toe"), ("left_ankle", "left_small_toe"), ("left_ankle", "left_heel"),
        ("right_ankle", "right_big_toe"), ("right_ankle", "right_small_toe"),
        ("right_ankle", "right_heel"),
    ]  # fmt: skip
    links = [(n[a], n[b]) for a, b in body + foot]
    # Face contours in iBUG order: jaw, each brow, nose bridge and base, closed eyes and lips.
    chains = [range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36)]
    rings = [range(36, 42), range(42, 48), range(48, 60), range(60, 68)]
    for c in chains:
        links += [(23 + a, 23 + a + 1) for a in list(c)[:-1]]
    for r in rings:
        r = list(r)
        links += [(23 + a, 23 + b) for a, b in zip(r, r[1:] + r[:1])]
    for side in ("left", "right"):
        root = n[f"{side}_hand_root"]
        links.append((n[f"{side}_wrist"], root))
        for f in _FINGERS:
            chain = [root] + [n[f"{side}_{f}{k}"] for k in range(1, 5)]
            links += list(zip(chain[:-1], chain[1:]))
    return tuple(links)


#: Skeleton links (index pairs) for drawing: body, feet, face contours, hands.
SKELETON: Final = _links()

#: BGR drawing colour of each part (OpenCV order).
PART_COLORS: Final = MappingProxyType(
    {
        "body": (255, 128, 0),
        "foot": (0, 200, 255),
        "face": (255, 255, 255),
        "lefthand": (0, 255, 0),
        "righthand": (255, 0, 255),
    }
)


def part_of(index: int) -> str:
    """Name of the part that keypoint ``index`` belongs to."""
    return str(KEYPOINT_PART[index])


def part_indices(part: str) -> np.ndarray:
    """Indices (into the 133) of an evaluated part, "wholebody" included."""
    try:
        s = PART_SLICES_WITH_WHOLE[part]
    except KeyError:
        raise KeyError(f"unknown part {part!r}; expected one of {EVAL_PARTS}") from None
    return np.arange(s.start, s.stop)


def part_sigmas(part: str, scheme: str = "official") -> np.ndarray:
    """OKS sigmas of a part, ``scheme`` 'official' (COCO-WholeBody) or 'halpe' (AlphaPose)."""
    table = {"official": SIGMAS, "halpe": HALPE_SIGMAS}
    if scheme not in table:
        raise ValueError(f"unknown sigma scheme {scheme!r}; expected 'official' or 'halpe'")
    return table[scheme][part_indices(part)]


def part_factors(factors: Mapping[str, float] | None, option: str) -> np.ndarray:
    """(133,) per-keypoint factors from ``{part: factor}`` (parts of :data:`PART_SLICES`;
    unnamed parts 1). An unknown part or a negative factor is a ConfigError naming ``option``."""
    out = np.ones(NUM_KEYPOINTS)
    for part, value in (factors or {}).items():
        if part not in PART_SLICES:
            raise ConfigError(f"{option}: unknown part {part!r}; expected one of "
                              f"{list(PART_SLICES)}")  # fmt: skip
        if value < 0:
            raise ConfigError(f"{option}: the factor of {part!r} must be >= 0, got {value}")
        out[PART_SLICES[part]] = float(value)
    return out
