"""The knobs of the scene distribution (:class:`SceneConfig`) and the generator version."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

#: Bumped whenever the same parameters would draw different scenes (invalidates caches).
GENERATOR_VERSION = 1


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


def check_args(num_images: int, seed: int) -> None:
    if not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
