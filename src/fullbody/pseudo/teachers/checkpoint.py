"""This project's own trained student as a teacher: round-2 self-distillation.

The student of round 1 labels the data for the student of round 2. The teacher is the
inference predictor on the checkpoint
(:meth:`fullbody.inference.predictor.PosePredictor.from_checkpoint`: the checkpoint's own
weights, whatever files it was trained from): person boxes cropped with the training geometry,
ImageNet-normalised, the checkpoint's own flip test and decoding; no pose NMS (each labelled
person is one ground-truth box). Each point's heatmap score, clipped to [0, 1], is its
confidence. It can label any part; as the ``wholebody`` teacher
(``+teacher/wholebody=checkpoint teacher.wholebody.path=last.ckpt``) it labels the parts that
no part teacher takes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fullbody.models.checkpoint import CheckpointError
from fullbody.pseudo.teachers.base import (
    TEACHER_PARTS,
    People,
    Prediction,
    TeacherError,
    check_parts,
)


class CheckpointTeacher:
    """A ``PoseModule`` checkpoint (``train.py``'s ``.ckpt``) as a teacher."""

    def __init__(
        self,
        path: str | os.PathLike,
        parts: Sequence[str] = TEACHER_PARTS,
        device: str = "cpu",
        batch_size: int = 32,
        flip_test: bool | None = None,
        dark: bool | None = None,
        num_threads: int = 1,
    ):
        from fullbody.inference.predictor import PosePredictor

        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise TeacherError(f"checkpoint teacher {self.path} not found")
        self.parts = check_parts(list(parts), f"CheckpointTeacher({self.path.name})")
        if device == "cpu":
            torch.set_num_threads(num_threads)
        options = {"flip_test": flip_test, "dark": dark}  # None: the checkpoint's own setting
        try:
            self.predictor = PosePredictor.from_checkpoint(
                self.path, device=device, nms="none", batch_size=batch_size,
                **{k: v for k, v in options.items() if v is not None},
            )  # fmt: skip
        except CheckpointError as e:
            raise TeacherError(f"checkpoint teacher: {e}") from None

    @torch.inference_mode()
    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        rows = np.flatnonzero((people.bboxes[:, 2] >= 1) & (people.bboxes[:, 3] >= 1))
        if not len(rows):
            return out
        crops, to_image = self.predictor.crops(image, people.bboxes[rows])
        xy, scores = self.predictor.decode(self.predictor.outputs(crops), to_image)
        out.xy[rows] = xy.double().cpu().numpy()
        out.conf[rows] = np.clip(scores.double().cpu().numpy(), 0.0, 1.0)
        return out
