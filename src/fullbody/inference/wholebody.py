"""Whole-body poses of everyone in a photo in one call: :class:`Wholebody`.

    import cv2
    from fullbody import Wholebody
    keypoints, scores = Wholebody()(cv2.imread("people.jpg"))  # (N, 133, 2) px, (N, 133)

It is the project's top-down pipeline assembled once: a person detector
(:mod:`fullbody.inference.detectors`) proposes boxes, and :class:`PosePredictor` crops, runs,
decodes and de-duplicates the poses (:mod:`fullbody.inference.predictor`). ``model`` is a
checkpoint of ``train.py``, an ONNX file (``export.py``'s, or one in RTMPose's SimCC layout) or
a published model by name (:mod:`fullbody.inference.published`); ``detector`` a published
detector by name, an ONNX file in that end-to-end layout, any
:class:`~fullbody.inference.detectors.PersonDetector`, or None (then every call passes its
boxes). Published files are fetched once into the model cache on first use.

Images are (H, W, 3) uint8 arrays in ``color`` order: ``"bgr"`` by default, as ``cv2.imread``
and rtmlib give them, or ``"rgb"``; a file path is read as its pixels. Anything else is refused
with :class:`~fullbody.errors.ImageLayoutError`. Keypoints come back in image pixels, one row
per person, strongest pose first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fullbody.errors import ConfigError, ImageLayoutError
from fullbody.images import read_image
from fullbody.inference.detectors import (
    PUBLISHED_SETTINGS,
    OnnxDetector,
    PersonDetector,
    published_detector,
)
from fullbody.inference.predictor import PosePredictor, PoseResult, load_predictor
from fullbody.inference.published import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL

COLORS = ("bgr", "rgb")
PathOrName = str | os.PathLike


def onnx_providers(device: str | None) -> list[str] | None:
    """onnxruntime providers for a ``device`` string: None (CUDA when available) for "auto"."""
    if device is None or str(device) == "auto":
        return None
    if str(device).startswith("cuda"):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def load_pose_model(
    model: PathOrName,
    device: str | None = "auto",
    cache_dir: str | os.PathLike | None = None,
    **settings: Any,
) -> PosePredictor:
    """A predictor on a checkpoint, an ONNX file or a published model name (module docs);
    ``settings`` go to :class:`PosePredictor` (``flip_test``, ``nms``, ``batch_size`` ...)."""
    path = Path(model).expanduser()
    if path.is_file():
        key = "onnx_path" if path.suffix.lower() == ".onnx" else "ckpt_path"
        return load_predictor(**{key: path}, device=device, **settings)
    if isinstance(model, os.PathLike) or path.suffix.lower() in (".onnx", ".ckpt"):
        raise ConfigError(f"model={model}: no such file")
    return load_predictor(model=str(model), device=device, cache_dir=cache_dir, **settings)


def load_detector(
    detector: PathOrName | PersonDetector | None,
    device: str | None = "auto",
    cache_dir: str | os.PathLike | None = None,
    **settings: Any,
) -> PersonDetector | None:
    """A person detector from a published name, an end-to-end ONNX file, a detector object or
    None (module docs); ``settings`` go to :class:`OnnxDetector` (``score_threshold`` ...)."""
    if detector is None or (
        isinstance(detector, PersonDetector) and not isinstance(detector, str | os.PathLike)
    ):
        if settings:
            raise ConfigError(f"detector settings {sorted(settings)} apply to a published name "
                              f"or an ONNX file, not to detector={detector!r}")  # fmt: skip
        return detector
    providers = onnx_providers(device)
    path = Path(detector).expanduser()
    if path.is_file():
        options = {"score_threshold": 0.3, **PUBLISHED_SETTINGS, **settings}
        return OnnxDetector(path, providers=providers, **options)
    if isinstance(detector, os.PathLike) or path.suffix.lower() == ".onnx":
        raise ConfigError(f"detector={detector}: no such file")
    return published_detector(str(detector), cache_dir, providers=providers, **settings)


class Wholebody:
    """Detector + whole-body pose model in one object (see the module docstring).

    Args:
        model: checkpoint, ONNX file or published pose model name.
        detector: published detector name, end-to-end ONNX file, a detector object, or None.
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1" ...
        color: channel order of the arrays passed in: "bgr" (cv2) or "rgb".
        cache_dir: where published files are cached (default $FULLBODY_MODEL_DIR, else
            ``~/.cache/fullbody/models``).
        detector_settings: options of the ONNX detector (``score_threshold``, ``nms_iou`` ...).
        settings: options of :class:`PosePredictor` (``flip_test``, ``nms``, ``batch_size`` ...).
    """

    def __init__(
        self,
        model: PathOrName = DEFAULT_POSE_MODEL,
        detector: PathOrName | PersonDetector | None = DEFAULT_DETECTOR,
        device: str = "auto",
        color: str = "bgr",
        cache_dir: str | os.PathLike | None = None,
        detector_settings: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        if color not in COLORS:
            raise ConfigError(f"color={color!r}: expected one of {COLORS}")
        self.color = color
        self.predictor = load_pose_model(model, device, cache_dir, **settings)
        self.detector = load_detector(detector, device, cache_dir, **(detector_settings or {}))

    def __call__(
        self, image: np.ndarray | str | os.PathLike, boxes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 133, 2) in image pixels and their scores (N, 133), as rtmlib returns
        them; ``boxes`` (N, 4) xywh skips the detector."""
        result = self.predict(image, boxes)
        return result.keypoints[..., :2], result.keypoints[..., 2]

    def predict(
        self,
        image: np.ndarray | str | os.PathLike,
        boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        box_scores: np.ndarray | None = None,
    ) -> PoseResult:
        """Everything about the poses of one image: points with scores, person scores, the
        boxes they came from (see :class:`PoseResult`)."""
        rgb = self.rgb(image)
        if boxes is None:
            if self.detector is None:
                raise ConfigError("detector=None: pass the person boxes, predict(image, boxes)")
            boxes, box_scores = self.detector(rgb)
        return self.predictor(rgb, boxes, box_scores)

    def rgb(self, image: np.ndarray | str | os.PathLike) -> np.ndarray:
        """The image as the (H, W, 3) uint8 RGB array the pipeline runs on (a file is read)."""
        if isinstance(image, str | os.PathLike):
            return read_image(image)
        if not isinstance(image, np.ndarray):
            raise ImageLayoutError(f"image must be a NumPy array or a file path, got "
                                   f"{type(image).__name__}")  # fmt: skip
        if image.ndim != 3 or image.shape[2] != 3:
            hint = ""
            if image.ndim == 3 and image.shape[0] == 3:
                hint = " (channels first? use image.transpose(1, 2, 0))"
            elif image.ndim == 2:
                hint = " (grey? use cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))"
            elif image.ndim == 3 and image.shape[2] == 4:
                hint = " (with alpha? use image[..., :3])"
            raise ImageLayoutError(f"image must be (H, W, 3) {self.color.upper()}, got shape "
                                   f"{image.shape}{hint}")  # fmt: skip
        if image.dtype != np.uint8:
            raise ImageLayoutError(f"image must be uint8 (0-255), got {image.dtype} (a float image "
                                   "in [0, 1]: (image * 255).round().astype(np.uint8))")  # fmt: skip
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self.color == "bgr" else image
