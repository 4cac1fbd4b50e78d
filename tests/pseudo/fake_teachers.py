"""A cheap, deterministic teacher for runner tests (imported by worker processes by name)."""

from __future__ import annotations

import time

import numpy as np

from fullbody.pseudo.proposals import REGION_POINTS
from fullbody.pseudo.teachers.base import People, Prediction

#: Confidence the fake gives each region: face and feet confident, hands not.
CONF = {"face": 0.9, "lefthand": 0.3, "righthand": 0.3, "leftfoot": 0.8, "rightfoot": 0.8}


class RegionTeacher:
    """Puts each part's points on a ring inside its proposed region, offset by the image's mean
    intensity there (so the output depends on the pixels); optionally sleeps per person."""

    def __init__(self, parts=("foot", "face", "lefthand", "righthand"), delay: float = 0.0):
        self.parts = tuple(parts)
        self.delay = delay

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        for name, idx in REGION_POINTS.items():
            part = "foot" if name.endswith("foot") else name
            if part not in self.parts:
                continue
            boxes, _, ok = people.regions.part(name)
            for i in np.flatnonzero(ok):
                x, y, w, h = boxes[i]
                x0, y0 = int(max(x, 0)), int(max(y, 0))
                patch = image[y0 : int(y + h) + 1, x0 : int(x + w) + 1]
                shade = float(patch.mean()) / 255.0 if patch.size else 0.0
                t = np.linspace(0, 2 * np.pi, len(idx), endpoint=False) + shade
                out.xy[i, idx, 0] = x + w / 2 + 0.3 * w * np.cos(t)
                out.xy[i, idx, 1] = y + h / 2 + 0.3 * h * np.sin(t)
                out.conf[i, idx] = CONF[name]
                if part == "foot":
                    out.occluded[i, idx[-1]] = True  # the heel: located but hidden
        if self.delay:
            time.sleep(self.delay * len(people))
        return out


class ScaledTeacher(RegionTeacher):
    """:class:`RegionTeacher` with every confidence multiplied by ``scale`` (clipped to 1)."""

    def __init__(self, parts=("foot", "face", "lefthand", "righthand"), scale: float = 1.0):
        super().__init__(parts)
        self.scale = scale

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = super().predict(image, people)
        out.conf = np.minimum(out.conf * self.scale, 1.0)
        return out


#: Where :class:`BoxHandTeacher` puts the 21 hand points, as fractions of the hand's extent.
HAND_FRACTIONS = np.stack([np.linspace(0.05, 0.95, 21), (np.arange(21) * 7 % 21 + 0.5) / 21], 1)


class BoxHandTeacher:
    """Finds the bright rectangle of its hand region in the crop (pixels > 128 in the red
    channel) and puts the 21 points at :data:`HAND_FRACTIONS` of its extent (pixel edges, OpenCV
    centres), shifted by ``shift`` x its size; confidence ``conf``. Refuses people with body
    points: hand crops must come without them."""

    def __init__(self, parts=("lefthand", "righthand"), shift: float = 0.0, conf: float = 0.9):
        self.parts, self.shift, self.conf = tuple(parts), shift, conf

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        if (people.body[..., 2] > 0).any():
            raise AssertionError("hand crops must reach the teacher without body points")
        out = Prediction.empty(len(people))
        ys, xs = np.nonzero(image[..., 0] > 128)
        if not len(xs):
            return out
        lo = np.array([xs.min(), ys.min()]) - 0.5
        size = np.array([xs.max(), ys.max()]) + 0.5 - lo
        for part in self.parts:
            _, _, ok = people.regions.part(part)
            idx = REGION_POINTS[part]
            for i in np.flatnonzero(ok):
                out.xy[i, idx] = lo + (HAND_FRACTIONS + self.shift) * size
                out.conf[i, idx] = self.conf
        return out
