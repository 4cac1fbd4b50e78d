"""MediaPipe's hand-landmark model (``hand_landmark_full.tflite``) as the hand teacher.

The model takes a 224 x 224 RGB crop in [0, 1] with the hand upright (wrist -> middle-finger
base pointing up) and returns 21 points in crop pixels (already in the COCO-WholeBody hand
order: wrist, then thumb, index, middle, ring, pinky from base to tip), a hand-presence
probability, a handedness score and world points. The first crop comes from the proposed hand
region (rotated along the forearm, ``crop_scale`` x the region's side); each ``refine`` pass
re-crops from the previous landmarks the way MediaPipe tracks a hand (rotation wrist -> middle
base, box of the palm and finger-base points, x2, shifted 0.1 towards the fingers).

Every point of a hand gets the presence probability as confidence; a hand whose predicted
wrist lies farther than ``wrist_tolerance`` x the crop side from the human wrist is dropped
(the teacher found another hand, or none).
"""

from __future__ import annotations

import os

import numpy as np

from fullbody.keypoints import NAME_TO_INDEX, PART_SLICES
from fullbody.pseudo.crops import box_to_square, rotated_extent, unit
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
        num_threads: int = 1,
    ):
        self.parts = check_parts(parts, "MediaPipeHand")
        if not set(self.parts) <= {"lefthand", "righthand"}:
            raise ValueError(f"MediaPipeHand labels hands only, got parts {self.parts}")
        self.model = TFLiteModel(model_file(MODEL_FILE, model_dir), num_threads)
        self.crop_scale, self.refine, self.wrist_tolerance = crop_scale, refine, wrist_tolerance

    def _run(self, image: np.ndarray, centre, side, up) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (n, 21, 2) in image px and presence (n,) for n crops."""
        (points, presence, *_), inverse = self.model.run_crops(image, centre, side, up)
        pts = crop_points_to_image(inverse, points.reshape(-1, 21, 3)[..., :2])
        return pts, np.clip(presence.reshape(len(pts), -1)[:, 0].astype(np.float64), 0.0, 1.0)

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        for part in self.parts:
            side = part.removesuffix("hand")
            boxes, up, ok = people.regions.part(part)
            rows = np.flatnonzero(ok)
            if not len(rows):
                continue
            centre, crop_side = box_to_square(boxes[rows], self.crop_scale)
            u = up[rows]
            for step in range(1 + self.refine):
                pts, presence = self._run(image, centre, crop_side, u)
                if step < self.refine:  # MediaPipe's tracking rule
                    u = unit(pts[:, 9] - pts[:, 0])
                    mask = np.zeros((len(rows), 21), bool)
                    mask[:, ROI_POINTS] = True
                    centre, extent = rotated_extent(pts, mask, u)
                    centre = centre + ROI_SHIFT * extent[:, None] * u
                    crop_side = np.maximum(ROI_SCALE * extent, 1.0)
            wrist = people.body[rows, NAME_TO_INDEX[f"{side}_wrist"]]
            far = (
                np.linalg.norm(pts[:, 0] - wrist[:, :2], axis=1) > self.wrist_tolerance * crop_side
            )
            presence = np.where((wrist[:, 2] > 0) & far, 0.0, presence)
            sl = PART_SLICES[part]
            out.xy[rows, sl] = pts
            out.conf[rows, sl] = presence[:, None]
        return out
