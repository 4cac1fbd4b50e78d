"""MediaPipe's pose-landmark model (BlazePose, ``pose_landmark_full.tflite``) as the foot teacher.

The model takes a 256 x 256 RGB crop in [0, 1] of the whole person, upright and centred on the
hips, and returns 39 x 5 values per crop: x, y (crop pixels), z, a visibility logit and a
presence logit; points 0-32 are BlazePose's, 33 and 34 the hip centre and a point beyond the
head that MediaPipe re-crops from. Heels (29 left, 30 right) become COCO-WholeBody's heels (19,
22) and foot indices (31, 32) the big toes (17, 20); no small toe is predicted, so 18 and 21
stay unlabelled. Left and right are the person's own, as in COCO.

The first crop: centred on the human hip midpoint (else the person box), up from hips to
shoulders, side 2.5 x the largest distance from that centre to a labelled body point (x1.15 for
the head and feet beyond them) -- MediaPipe's 2 x radius x 1.25 rule. Each ``refine`` pass
re-crops from points 33/34 as MediaPipe tracks. A point's confidence is its presence
probability; it is "occluded" (COCO v = 1) when its visibility probability is below 0.5. A foot
whose predicted ankle lies farther than ``ankle_tolerance`` x the foot region's side from the
human ankle gets confidence 0 (the model fit another pose).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from fullbody.errors import ConfigError
from fullbody.geometry import UP, unit
from fullbody.keypoints import NAME_TO_INDEX as K
from fullbody.pseudo.foot_model import FOOT_POINTS, small_toes
from fullbody.pseudo.teachers.base import (
    People,
    Prediction,
    TFLiteModel,
    check_parts,
    crop_points_to_image,
    model_file,
    sigmoid,
)

MODEL_FILE = "pose_landmark_full.tflite"
#: Per side: BlazePose's ankle index, and COCO-WholeBody index -> BlazePose index of the heel
#: and of the foot index (the big toe).
FOOT_MAP = {
    "left": (27, {K["left_heel"]: 29, K["left_big_toe"]: 31}),
    "right": (28, {K["right_heel"]: 30, K["right_big_toe"]: 32}),
}
ROI_SCALE = 1.25
BODY_MARGIN = 1.15


def initial_crops(people: People) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (n,2), sides (n,) and up vectors (n,2) of first full-body crops."""
    body = people.body
    lab = body[..., 2] > 0
    hips = lab[:, K["left_hip"]] & lab[:, K["right_hip"]]
    shoulders = lab[:, K["left_shoulder"]] & lab[:, K["right_shoulder"]]
    hip_mid = (body[:, K["left_hip"], :2] + body[:, K["right_hip"], :2]) / 2
    sh_mid = (body[:, K["left_shoulder"], :2] + body[:, K["right_shoulder"], :2]) / 2
    box_mid = people.bboxes[:, :2] + people.bboxes[:, 2:] / 2
    centre = np.where(hips[:, None], hip_mid, box_mid)
    up = np.where((hips & shoulders)[:, None], unit(sh_mid - hip_mid), UP)
    dist = np.linalg.norm(body[..., :2] - centre[:, None], axis=2)
    radius = BODY_MARGIN * np.where(lab, dist, 0.0).max(1)
    radius = np.where(lab.sum(1) >= 2, radius, 0.0)
    radius = np.maximum(radius, people.bboxes[:, 2:].max(1) / 2)
    return centre, 2 * ROI_SCALE * np.maximum(radius, 1.0), up


class MediaPipePoseFeet:
    """Foot teacher: heels and big toes (foot index) from BlazePose."""

    parts = ("foot",)

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        refine: int = 1,
        ankle_tolerance: float = 0.5,
        small_toes: Mapping[str, float] | None = None,
        num_threads: int = 1,
    ):
        check_parts(self.parts, "MediaPipePoseFeet")
        self.model = TFLiteModel(model_file(MODEL_FILE, model_dir), num_threads)
        self.refine, self.ankle_tolerance = refine, ankle_tolerance
        self.small_toes = dict(small_toes) if small_toes else None
        if self.small_toes and set(self.small_toes) != {"along", "across", "conf_scale"}:
            raise ConfigError(
                f"small_toes needs along, across and conf_scale, got {sorted(self.small_toes)}"
            )

    def landmarks(self, image: np.ndarray, centre, side, up) -> np.ndarray:
        """(n, 39, 5) per crop: x, y in image px, z, visibility and presence probabilities."""
        (raw, *_), inverse = self.model.run_crops(image, centre, side, up)
        out = raw.reshape(-1, 39, 5).astype(np.float64)
        out[..., :2] = crop_points_to_image(inverse, out[..., :2])
        out[..., 3:] = sigmoid(out[..., 3:])
        return out

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        pred = Prediction.empty(len(people))
        feet_ok = people.regions.ok[:, 3] | people.regions.ok[:, 4]
        rows = np.flatnonzero(feet_ok)
        if not len(rows):
            return pred
        sub = People(people.body[rows], people.bboxes[rows], people.regions.subset(rows))
        centre, side, up = initial_crops(sub)
        for step in range(1 + self.refine):
            lm = self.landmarks(image, centre, side, up)
            if step < self.refine:
                centre, top = lm[:, 33, :2], lm[:, 34, :2]
                up = unit(top - centre)
                side = np.maximum(2 * ROI_SCALE * np.linalg.norm(top - centre, axis=1), 1.0)
        for s, (ankle, mapping) in FOOT_MAP.items():
            boxes, _, ok = sub.regions.part(f"{s}foot")
            human = sub.body[:, K[f"{s}_ankle"]]
            off = np.linalg.norm(lm[:, ankle, :2] - human[:, :2], axis=1)
            keep = ok & (off <= self.ankle_tolerance * boxes[:, 2:].max(1))
            for coco, bp in mapping.items():
                pred.xy[rows, coco] = lm[:, bp, :2]
                pred.conf[rows, coco] = np.where(keep, lm[:, bp, 4], 0.0)
                pred.occluded[rows, coco] = lm[:, bp, 3] < 0.5
        if self.small_toes:
            pred.xy, pred.conf = small_toes(pred.xy, pred.conf, people.body, **self.small_toes)
            for big, small, *_ in FOOT_POINTS.values():  # hidden when the big toe is
                pred.occluded[:, small] = pred.occluded[:, big]
        return pred
