"""MediaPipe's hand-landmark model (``hand_landmark_full.tflite``) as the hand teacher.

The model takes a 224 x 224 RGB crop in [0, 1] with the hand upright (wrist -> middle-finger
base pointing up) and returns 21 points in crop pixels (already in the COCO-WholeBody hand
order: wrist, then thumb, index, middle, ring, pinky from base to tip), a hand-presence
probability, a handedness score and world points. The first crop comes from the proposed hand
region (rotated along the forearm, ``crop_scale`` x the region's side); each ``refine`` pass
re-crops from the previous landmarks the way MediaPipe tracks a hand (rotation wrist -> middle
base, box of the palm and finger-base points, x2, shifted 0.1 towards the fingers), kept only
when the model's presence does not drop.

Search: when the arm direction is unknown (wrist or elbow unlabelled) or the first crop's
presence is below ``search_below``, the hand is also tried at ``search_rotations`` evenly spaced
rotations times each of ``search_scales`` (x the region's side) times each centre of
``search_shifts`` (region sides along the region's up vector: negative values move towards the
wrist, which lies 0.6 side behind a proposed region's centre), and the crop with the highest
presence wins (the model's own judgement of where a hand is upright and framed), among those
whose points' centre lies within one region side of the region's centre (else it found another
hand).

Every point of a hand gets the presence probability as confidence; a hand whose predicted
wrist lies farther than ``wrist_tolerance`` x the crop side from the human wrist is dropped
(the teacher found another hand, or none).
"""

from __future__ import annotations

import os

import numpy as np

from fullbody.errors import ConfigError
from fullbody.geometry import box_to_square, rotated_extent, unit
from fullbody.keypoints import NAME_TO_INDEX, PART_SLICES
from fullbody.pseudo.teachers.base import (
    People,
    Prediction,
    TFLiteModel,
    check_parts,
    crop_points_to_image,
    model_file,
)

MODEL_FILE = "hand_landmark_full.tflite"
#: MediaPipe's landmarks -> region rule: which points, scale, shift towards the fingers.
ROI_POINTS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])
ROI_SCALE = 2.0
ROI_SHIFT = 0.1


class MediaPipeHand:
    """Hand teacher: 21 points per hand from MediaPipe's hand-landmark model."""

    def __init__(
        self,
        parts: tuple[str, ...] = ("lefthand", "righthand"),
        model_dir: str | os.PathLike | None = None,
        crop_scale: float = 2.0,
        refine: int = 1,
        wrist_tolerance: float = 0.25,
        search_rotations: int = 8,
        search_scales: tuple[float, ...] = (1.5, 2.0, 2.6),
        search_shifts: tuple[float, ...] = (0.0, -0.6),
        flip_average: bool = True,
        search_below: float = 0.5,
        num_threads: int = 1,
    ):
        self.parts = check_parts(parts, "MediaPipeHand")
        if not set(self.parts) <= {"lefthand", "righthand"}:
            raise ConfigError(f"MediaPipeHand labels hands only, got parts {self.parts}")
        self.model = TFLiteModel(model_file(MODEL_FILE, model_dir), num_threads)
        self.crop_scale, self.refine, self.wrist_tolerance = crop_scale, refine, wrist_tolerance
        if search_rotations < 0 or any(v <= 0 for v in search_scales):
            raise ConfigError("search_rotations must be >= 0 and search_scales positive")
        self.search_rotations, self.search_scales = int(search_rotations), tuple(search_scales)
        self.search_shifts = tuple(search_shifts) or (0.0,)
        self.flip_average = flip_average
        self.search_below = search_below

    def _run(
        self, image: np.ndarray, centre, side, up, mirror: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (n, 21, 2) in image px and presence (n,) for n crops (or their mirrors)."""
        (points, presence, *_), inverse = self.model.run_crops(image, centre, side, up, mirror)
        pts = crop_points_to_image(inverse, points.reshape(-1, 21, 3)[..., :2])
        return pts, np.clip(presence.reshape(len(pts), -1)[:, 0].astype(np.float64), 0.0, 1.0)

    def _search(self, image: np.ndarray, centre, side, up) -> tuple[np.ndarray, ...]:
        """For n hands: the crop (centre, side, up) among the rotations x scales x shifts with
        the highest presence, its landmarks and presence."""
        region_centre, region_side = centre, side
        shifts = np.asarray(self.search_shifts)
        m = len(shifts)
        centre = centre[:, None] + shifts[None, :, None] * side[:, None, None] * up[:, None]
        centre, side, up = centre.reshape(-1, 2), np.repeat(side, m), np.repeat(up, m, axis=0)
        n, r = len(centre), self.search_rotations
        angles = 2 * np.pi * np.arange(r) / r
        turns = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (r, 2)
        # every rotation of the region's own up vector, at every scale
        ups = np.stack(
            [up[:, 0:1] * turns[:, 0] - up[:, 1:2] * turns[:, 1],
             up[:, 0:1] * turns[:, 1] + up[:, 1:2] * turns[:, 0]], axis=2,
        )  # fmt: skip
        scales = np.asarray(self.search_scales)
        c = np.repeat(centre, r * len(scales), axis=0)
        sd = (side[:, None, None] * scales[None, :, None]).repeat(r, 2).reshape(-1)
        u = np.repeat(ups[:, None], len(scales), axis=1).reshape(-1, 2)
        pts, presence = self._run(image, c, sd, u)
        per_hand = m * r * len(scales)
        # a hand found beyond one region side from the region's centre is another hand
        off = np.linalg.norm(pts.mean(1) - np.repeat(region_centre, per_hand, axis=0), axis=1)
        score = np.where(off <= np.repeat(region_side, per_hand), presence, -1.0)
        best = score.reshape(-1, per_hand).argmax(1) + np.arange(n // m) * per_hand
        return c[best], sd[best], u[best], pts[best], presence[best], score[best]

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        for part in self.parts:
            side = part.removesuffix("hand")
            boxes, up, ok = people.regions.part(part)
            rows = np.flatnonzero(ok)
            if not len(rows):
                continue
            centre, region_side = box_to_square(boxes[rows], 1.0)
            crop_side, u = self.crop_scale * region_side, up[rows]
            pts, presence = self._run(image, centre, crop_side, u)
            arm = people.body[rows][:, [NAME_TO_INDEX[f"{side}_{j}"] for j in ("wrist", "elbow")]]
            unsure = ~(arm[..., 2] > 0).all(1) | (presence < self.search_below)
            todo = np.flatnonzero(unsure) if self.search_rotations else np.zeros(0, int)
            if len(todo):
                found = self._search(image, centre[todo], region_side[todo], u[todo])
                better = (found[4] > presence[todo]) & (found[5] >= 0)
                for dst, src in zip((centre, crop_side, u, pts, presence), found[:5], strict=True):
                    dst[todo[better]] = src[better]
            for _ in range(self.refine):  # MediaPipe's tracking rule, kept where not worse
                nu = unit(pts[:, 9] - pts[:, 0])
                mask = np.zeros((len(rows), 21), bool)
                mask[:, ROI_POINTS] = True
                nc, extent = rotated_extent(pts, mask, nu)
                nc = nc + ROI_SHIFT * extent[:, None] * nu
                ns = np.maximum(ROI_SCALE * extent, 1.0)
                npts, npres = self._run(image, nc, ns, nu)
                keep = npres >= presence
                pts[keep], presence[keep], crop_side[keep] = npts[keep], npres[keep], ns[keep]
            if self.flip_average:  # the final crop mirrored too, points weighted by presence
                u_final = unit(pts[:, 9] - pts[:, 0])
                c_final, extent = rotated_extent(pts, np.ones((len(rows), 21), bool), u_final)
                crops = (c_final, np.maximum(crop_side, 1.0), u_final)
                p0, w0 = self._run(image, *crops)
                p1, w1 = self._run(image, *crops, mirror=True)
                w = np.stack([w0, w1, presence]) + 1e-6
                pts = (w[0, :, None, None] * p0 + w[1, :, None, None] * p1
                       + w[2, :, None, None] * pts) / w.sum(0)[:, None, None]  # fmt: skip
            wrist = people.body[rows, NAME_TO_INDEX[f"{side}_wrist"]]
            far = (
                np.linalg.norm(pts[:, 0] - wrist[:, :2], axis=1) > self.wrist_tolerance * crop_side
            )
            presence = np.where((wrist[:, 2] > 0) & far, 0.0, presence)
            sl = PART_SLICES[part]
            out.xy[rows, sl] = pts
            out.conf[rows, sl] = presence[:, None]
        return out
