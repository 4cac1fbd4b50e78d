"""What every teacher is: people of one image in, 133-point predictions with confidences out.

A teacher labels some of the parts ``foot``, ``face``, ``lefthand``, ``righthand`` (the body
always stays the human label). It receives the RGB image and the :class:`People` of that image
(their human body keypoints, person boxes and proposed part regions) and returns a
:class:`Prediction`: image-pixel coordinates, a confidence in [0, 1] for every one of the 133
points (0 for points it does not predict) and an ``occluded`` flag for teachers that can tell
a located-but-hidden point (COCO v = 1) from a visible one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from fullbody.errors import ConfigError, UserError
from fullbody.geometry import (
    crop_affines,
    invert_affines,
    mirror_affines,
    transform_points,
    warp_crops,
)
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.pseudo.proposals import Regions

#: Parts a teacher may label.
TEACHER_PARTS = ("foot", "face", "lefthand", "righthand")
#: Environment variable naming the folder of downloaded teacher model files.
MODEL_DIR_ENV = "FULLBODY_TEACHER_DIR"
INSTALL_HINT = "python -m fullbody.pseudo.teachers.install  (or: make teachers)"


class TeacherError(UserError, RuntimeError):
    """A teacher cannot run: missing optional package or model file (the message says the fix)."""


@dataclass
class People:
    """The people of one image, as handed to a teacher."""

    body: np.ndarray  # (n, 17, 3) human body keypoints, image px + visibility
    bboxes: np.ndarray  # (n, 4) person boxes xywh
    regions: Regions  # proposed (or human) part regions

    def __len__(self) -> int:
        return len(self.body)


@dataclass
class Prediction:
    """A teacher's output for ``n`` people, all 133 points (conf 0 where not predicted)."""

    xy: np.ndarray  # (n, 133, 2) image px
    conf: np.ndarray  # (n, 133) in [0, 1]
    occluded: np.ndarray  # (n, 133) bool: located but hidden (COCO v = 1)

    @classmethod
    def empty(cls, n: int) -> Prediction:
        """Nothing predicted for ``n`` people."""
        return cls(
            np.zeros((n, NUM_KEYPOINTS, 2)),
            np.zeros((n, NUM_KEYPOINTS)),
            np.zeros((n, NUM_KEYPOINTS), bool),
        )


@runtime_checkable
class Teacher(Protocol):
    """Anything with ``parts`` and ``predict`` is a teacher (see the module docstring)."""

    parts: tuple[str, ...]

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        """Predict the teacher's parts for the people of one (H, W, 3) uint8 RGB image."""
        ...


def check_parts(parts: tuple[str, ...] | list[str], name: str) -> tuple[str, ...]:
    """Validate a teacher's part list."""
    parts = tuple(parts)
    bad = [p for p in parts if p not in TEACHER_PARTS]
    if bad or not parts:
        raise ConfigError(f"{name}: parts {parts!r} must be a non-empty subset of {TEACHER_PARTS}")
    return parts


def model_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder of the downloaded teacher model files: ``override``, else $FULLBODY_TEACHER_DIR,
    else ``~/.cache/fullbody/teachers``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fullbody" / "teachers"


def model_file(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Path of an installed teacher model file; a clear error with the fix when it is missing."""
    path = model_dir(directory) / name
    if not path.is_file():
        raise TeacherError(
            f"teacher model file {path} not found; install the teacher models once with: "
            f"{INSTALL_HINT}"
        )
    return path


class TFLiteModel:
    """A ``.tflite`` model run with ai-edge-litert; inputs and outputs as float32 arrays."""

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise TeacherError(
                "the MediaPipe teachers need ai-edge-litert: pip install -e '.[teachers]'"
            ) from e
        self.path = Path(path)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (inp,) = self.interpreter.get_input_details()
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        outs = self.interpreter.get_output_details()
        self.output_indices = [o["index"] for o in outs]
        self.output_shapes = [tuple(int(v) for v in o["shape"][1:]) for o in outs]

    @property
    def size(self) -> int:
        """Side of the square input (models here take (1, S, S, 3))."""
        return self.input_shape[1]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run one (S, S, 3) float32 input; the outputs in the model's order, batch dim dropped."""
        self.interpreter.set_tensor(self.input_index, x[None].astype(np.float32, copy=False))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i)[0].copy() for i in self.output_indices]

    def run_crops(
        self,
        image: np.ndarray,
        centre: np.ndarray,
        side: np.ndarray,
        up: np.ndarray,
        mirror: bool = False,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """The MediaPipe landmark step shared by every MediaPipe teacher: cut n rotated square
        crops (:func:`fullbody.geometry.crop_affines`) at the model's input size, scale
        them to [0, 1] RGB, run each. Returns one (n, ...) array per model output and the
        crop -> image affines (n, 2, 3) for :func:`crop_points_to_image`. ``mirror`` runs the
        left-right mirrored crops (the affines returned map their points back unmirrored)."""
        size = self.size
        affines = crop_affines(centre, side, up, size)
        if mirror:
            affines = mirror_affines(affines, size)
        crops = warp_crops(image, affines, size).astype(np.float32) / 255.0
        runs = [self(crop) for crop in crops]
        outputs = [
            np.stack([r[j] for r in runs]) if runs else np.zeros((0, *shape), np.float32)
            for j, shape in enumerate(self.output_shapes)
        ]
        return outputs, invert_affines(affines)


def crop_points_to_image(inverse: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, k, 2) landmarks in MediaPipe's continuous crop coordinates (pixel edges at integers)
    -> image px in OpenCV's pixel-centre convention, through the crop -> image affines."""
    return transform_points(np.asarray(points, np.float64) - 0.5, inverse)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Logistic function, overflow-safe."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))
