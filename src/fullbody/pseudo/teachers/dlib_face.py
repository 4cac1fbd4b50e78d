"""dlib's 68-point shape predictor (iBUG 300-W order = the COCO-WholeBody face order).

The model file ``shape_predictor_68_face_landmarks.dat`` ships in the ``face_recognition_models``
package and runs with ``dlib-bin``. It was trained on dlib's HOG face-detector boxes, which are
about the square of the 68 points' extent from brows to chin: the face region's box scaled by
``box_scale`` plays that role. The face is first warped upright (eye line level) and enlarged
to a fixed resolution, since the predictor expects upright faces and takes integer boxes.

dlib gives no confidence. Each point's confidence is how well it agrees with the prediction on
the mirrored crop (mapped back with the iBUG left/right pairs):
``exp(-d^2 / (2 (flip_sigma * box side)^2))`` for a disagreement of ``d`` pixels.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from fullbody.geometry import (
    box_to_square,
    crop_affines,
    invert_affines,
    transform_points,
    warp_crops,
)
from fullbody.keypoints import FLIP_INDEX, PART_SLICES
from fullbody.pseudo.teachers.base import People, Prediction, TeacherError

MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
_FACE = PART_SLICES["face"]
#: iBUG index each face point becomes in a mirrored image.
FACE_FLIP = FLIP_INDEX[_FACE] - _FACE.start
#: The crop's side in units of the dlib box, and the box's side in crop pixels.
_MARGIN = 2.0
_BOX_PX = 160


def default_model_path() -> Path:
    """The 68-point model inside the installed ``face_recognition_models`` package.

    Found without importing the package (its ``__init__`` needs ``pkg_resources``, gone from
    recent setuptools).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise TeacherError(
            "the dlib face teacher needs face_recognition_models and dlib-bin: "
            "pip install -e '.[teachers]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILE


class DlibFace:
    """Face teacher: dlib's 68-point shape predictor with flip-consistency confidences."""

    parts = ("face",)

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        box_scale: float = 1.0,
        flip_sigma: float = 0.05,
    ):
        try:
            import dlib
        except ImportError as e:
            raise TeacherError(
                "the dlib face teacher needs dlib-bin: pip install -e '.[teachers]'"
            ) from e
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise TeacherError(f"dlib model file {path} not found: pip install -e '.[teachers]'")
        self._dlib = dlib
        self.predictor = dlib.shape_predictor(str(path))
        self.box_scale, self.flip_sigma = box_scale, flip_sigma
        size = round(_MARGIN * _BOX_PX)
        lo = (size - _BOX_PX) // 2
        self.size, self.rect = size, dlib.rectangle(lo, lo, lo + _BOX_PX - 1, lo + _BOX_PX - 1)

    def _shape(self, crop: np.ndarray) -> np.ndarray:
        shape = self.predictor(np.ascontiguousarray(crop), self.rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        boxes, up, ok = people.regions.part("face")
        rows = np.flatnonzero(ok)
        if not len(rows):
            return out
        centre, side = box_to_square(boxes[rows], self.box_scale * _MARGIN)
        affines = crop_affines(centre, side, up[rows], self.size)
        crops = warp_crops(image, affines, self.size)
        pts, agree = np.zeros((len(rows), 68, 2)), np.zeros((len(rows), 68))
        for i, crop in enumerate(crops):
            p = self._shape(crop)
            q = self._shape(crop[:, ::-1])[FACE_FLIP]  # mirrored crop, points swapped back
            q[:, 0] = self.size - 1 - q[:, 0]
            pts[i] = p
            d2 = ((p - q) ** 2).sum(1)
            agree[i] = np.exp(-d2 / (2 * (self.flip_sigma * _BOX_PX) ** 2))
        out.xy[rows, _FACE] = transform_points(pts, invert_affines(affines))
        out.conf[rows, _FACE] = agree
        return out
