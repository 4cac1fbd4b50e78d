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

from fullbody.data.transforms import transform_points
from fullbody.keypoints import NAME_TO_INDEX, PART_SLICES
from fullbody.pseudo.crops import (
    box_to_square,
    crop_affines,
    invert_affines,
    rotated_extent,
    unit,
    warp_crops,
)
from fullbody.pseudo.teachers.base import (
    People,
    Prediction,
    TFLiteModel,
    check_parts,
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
        size = self.model.size
        affines = crop_affines(centre, side, up, size)
        crops = warp_crops(image, affines, size).astype(np.float32) / 255.0
        pts, presence = np.zeros((len(crops), 21, 2)), np.zeros(len(crops))
        for i, crop in enumerate(crops):
            out = self.model(crop)
            pts[i] = out[0].reshape(21, 3)[:, :2] - 0.5  # continuous -> pixel-centre coords
            presence[i] = float(np.clip(out[1].ravel()[0], 0.0, 1.0))
        return transform_points(pts, invert_affines(affines)), presence

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
