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
