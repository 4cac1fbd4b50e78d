"""Any top-down ONNX pose model given by file path, run with onnxruntime: a drop-in teacher.

Expected layout (export your model to match, or set the options):

- input: one float32 tensor (B, 3, H, W), RGB, ``(pixel / 255 - mean) / std`` (ImageNet
  mean/std by default; ``mean=[0,0,0] std=[1,1,1]`` for [0, 1] input). B may be fixed to 1 or
  dynamic (then all crops of an image run as one batch).
- output (the first one): ``heatmaps`` (B, K, h, w), decoded by arg-max with the quarter-pixel
  shift (:class:`fullbody.codecs.heatmap.HeatmapCodec`, centre-aligned frames), the peak value
  clipped to [0, 1] being the confidence; or ``keypoints`` (B, K, 3) as x, y in input pixels and
  a score in [0, 1] (or (B, K, 2), confidence 1); or ``simcc``: the outputs named ``simcc_x``
  (B, K, W*r) and ``simcc_y`` (B, K, H*r) (else the first two), as RTMPose, DWPose and RTMW
  publish them, decoded by :class:`fullbody.codecs.simcc.SimCCCodec` (split ratio
  ``split_ratio``), the smaller axis maximum clipped to [0, 1] being the confidence.
- ``path`` or ``model``: a local file, or a published model by name (``rtmw-x-384x288``,
  ``dwpose-l-384x288`` ...: :mod:`fullbody.inference.published`), fetched once into the model
  cache and checked there; its input size, SimCC output and split ratio come with the name.
- ``keypoints``: which of the 133 points the K outputs are, in order: ``"wholebody"`` (K = 133),
  a part name (``"face"``, ``"lefthand"``, ``"foot"`` ...), ``"hand"`` (21 points used for both
  hands with ``region: hands``), or a list of indices.
- ``region``: the crop. ``person``: the person box, widened to the input's aspect ratio and
  scaled by ``box_scale``, as the predictor crops (:func:`fullbody.geometry.person_affines`).
  ``face``, ``lefthand``, ``righthand``, ``hands``: the proposed part region, a square of
  ``box_scale`` x its side rotated upright by the region's direction (``rotate: false`` keeps it
  unrotated). ``box_scale`` null: the model's padding.
- A file written by ``export.py`` carries its model's :class:`~fullbody.codecs.spec.TopDownSpec`
  in its metadata: its input size, padding, codec (heatmaps or SimCC, split ratio, DARK) are
  then the model's, and ``input_size``, ``output`` and ``split_ratio`` must agree with it or be
  left unset. Other files: ``input_size`` from the model, the standard padding
  (:data:`fullbody.codecs.spec.STANDARD`) and ``output`` / ``split_ratio`` as given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fullbody.codecs.heatmap import HeatmapCodec
from fullbody.codecs.simcc import SimCCCodec
from fullbody.codecs.spec import STANDARD, TopDownSpec
from fullbody.codecs.topdown import crop_to_image_points, decode_to_image
from fullbody.errors import ConfigError
from fullbody.geometry import (
    UP,
    box_to_square,
    crop_affines,
    invert_affines,
    person_affines,
    warp_crops,
)
from fullbody.images import IMAGENET_MEAN, IMAGENET_STD
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES, part_indices
from fullbody.pseudo.teachers.base import (
    TEACHER_PARTS,
    People,
    Prediction,
    TeacherError,
    check_parts,
)
from fullbody.utils.onnx_session import onnx_session

REGIONS = ("person", "face", "lefthand", "righthand", "hands")
OUTPUTS = ("heatmaps", "keypoints", "simcc")


def _indices(keypoints: str | Sequence[int]) -> np.ndarray:
    if isinstance(keypoints, str):
        if keypoints == "hand":
            return np.arange(21)
        return part_indices(keypoints)
    idx = np.asarray(list(keypoints), dtype=np.int64)
    if idx.ndim != 1 or len(idx) == 0 or (idx < 0).any() or (idx >= NUM_KEYPOINTS).any():
        raise ConfigError(f"keypoint indices must be a non-empty list in [0, 133), got {keypoints}")
    return idx


def _same(value: object) -> object:
    """A setting in a comparable form (sequences as tuples of floats)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return tuple(float(v) for v in value)
    return float(value)  # type: ignore[arg-type]


class OnnxTopDown:
    """A top-down ONNX whole-body or part model as a teacher (layout in the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        parts: Sequence[str] = TEACHER_PARTS,
        keypoints: str | Sequence[int] = "wholebody",
        region: str = "person",
        input_size: Sequence[int] | None = None,
        output: str | None = None,
        split_ratio: float | None = None,
        model: str | None = None,
        box_scale: float | None = None,
        rotate: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        num_threads: int = 1,
    ):
        if (path is None) == (model is None):
            raise ConfigError("OnnxTopDown needs exactly one of path (a local file) and model (a "
                             "published model name)")  # fmt: skip
        if model is not None:
            from fullbody.inference.published import published_pose_model

            published = published_pose_model(model)
            path, output = published.fetch(), "simcc"
            input_size, split_ratio = published.input_size, published.split_ratio
        self.path = Path(path)
        if not self.path.is_file():
            raise TeacherError(f"ONNX teacher model {self.path} not found")
        if region not in REGIONS:
            raise ConfigError(f"{self.path}: region {region!r} must be one of {REGIONS}")
        if output is not None and output not in OUTPUTS:
            raise ConfigError(f"{self.path}: output {output!r} must be one of {OUTPUTS}")
        self.parts = check_parts(list(parts), f"OnnxTopDown({self.path.name})")
        self.region, self.rotate = region, rotate
        self.indices = _indices(keypoints)
        if region == "hands" and len(self.indices) != 21:
            raise ConfigError(f"{self.path}: region 'hands' needs a 21-point hand model")
        self.session = onnx_session(self.path, ["CPUExecutionProvider"], num_threads)
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise TeacherError(f"{self.path}: input must be (B, 3, H, W), got {inp.shape}")
        self.input_name = inp.name
        self.dynamic_batch = not isinstance(inp.shape[0], int)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        #: The model's spec (a file of export.py), or None (a file from elsewhere).
        outputs = len(self.session.get_outputs())
        self.spec = TopDownSpec.from_metadata(meta, str(self.path), outputs)
        if self.spec is not None:
            own = {"input_size": self.spec.input_size, "split_ratio": self.spec.split_ratio,
                   "output": "simcc" if self.spec.kind == "simcc" else "heatmaps"}  # fmt: skip
            given = {"input_size": input_size, "split_ratio": split_ratio, "output": output}
            for key, value in given.items():
                if value is not None and _same(value) != _same(own[key]):
                    raise TeacherError(
                        f"{self.path}: {key}={value}, but the model's spec (its metadata) says "
                        f"{own[key]}; leave {key} unset"
                    )
            input_size, split_ratio, output = own["input_size"], own["split_ratio"], own["output"]
        fixed = tuple(inp.shape[2:4])
        if input_size and all(isinstance(v, int) for v in fixed) and tuple(input_size) != fixed:
            raise TeacherError(
                f"{self.path}: input_size={list(input_size)}, but the model takes fixed "
                f"{fixed[0]}x{fixed[1]} inputs; set input_size=null (or {list(fixed)})"
            )
        h, w = (input_size or fixed)[:2]
        if not (isinstance(h, int) and isinstance(w, int)):
            raise TeacherError(f"{self.path}: dynamic input size {inp.shape}; set input_size")
        self.input_hw = (int(h), int(w))
        self.output = output or "heatmaps"
        self.split_ratio = split_ratio or STANDARD["split_ratio"]
        model_padding = self.spec.padding if self.spec is not None else STANDARD["padding"]
        self.box_scale = model_padding if box_scale is None else box_scale
        self.output_names = self._outputs()
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)

    def _crops(self, people: People, part: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows to run and their image -> input affines."""
        h, w = self.input_hw
        if part == "person":
            rows = np.flatnonzero(people.bboxes[:, 2:].prod(1) > 0)
            return rows, person_affines(people.bboxes[rows], self.input_hw, self.box_scale)
        boxes, up, ok = people.regions.part(part)
        rows = np.flatnonzero(ok)
        centre, side = box_to_square(boxes[rows], self.box_scale)
        direction = up[rows] if self.rotate else np.broadcast_to(UP, (len(rows), 2))
        sides = np.stack([side * w / max(h, w), side * h / max(h, w)], axis=1)
        return rows, crop_affines(centre, sides, direction, (w, h))

    def _outputs(self) -> list[str]:
        """The outputs used, by name, never by position: ``simcc_x`` and ``simcc_y`` (as
        RTMPose/RTMW/DWPose publish them), or the only output, else one named ``heatmaps`` /
        ``keypoints`` (the ``output`` kind)."""
        names = [o.name for o in self.session.get_outputs()]
        if self.output == "simcc":
            if {"simcc_x", "simcc_y"} <= set(names):
                return ["simcc_x", "simcc_y"]
            raise TeacherError(
                f"{self.path}: output=simcc needs outputs named simcc_x and simcc_y, got {names}"
            )
        if len(names) == 1 or self.output in names:
            return [self.output if self.output in names else names[0]]
        raise TeacherError(
            f"{self.path}: outputs {names}: none is named '{self.output}'; which one holds the "
            f"{self.output} is not guessed"
        )

    def _infer(self, x: np.ndarray) -> list[np.ndarray]:
        names = self.output_names
        if self.dynamic_batch:
            return self.session.run(names, {self.input_name: x})
        runs = [self.session.run(names, {self.input_name: xi[None]}) for xi in x]
        return [np.concatenate([r[j] for r in runs]) for j in range(len(names))]

    def _decode(
        self, outputs: list[np.ndarray], crop_to_image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs and (m, 2, 3) crop -> image affines -> (m, K, 2) image px and (m, K)
        confidences, through the codecs' one decode path (:mod:`fullbody.codecs.topdown`)."""
        raw = outputs[0]
        k = len(self.indices)
        if raw.shape[1] != k:
            raise TeacherError(f"{self.path}: model gives {raw.shape[1]} points, expected {k}")
        a = torch.from_numpy(crop_to_image)
        if self.output == "keypoints":
            conf = raw[..., 2] if raw.shape[-1] >= 3 else np.ones(raw.shape[:2])
            xy_in = torch.from_numpy(raw[..., :2].astype(np.float64))
            return crop_to_image_points(xy_in, a).numpy(), np.clip(conf, 0.0, 1.0)
        tensors = tuple(torch.from_numpy(np.ascontiguousarray(o)) for o in outputs)
        if self.output == "simcc":
            h, w = self.input_hw
            codec = SimCCCodec(self.input_hw, self.split_ratio)
            sx, sy = outputs
            if sx.shape[-1] != codec.bins[0] or sy.shape[-1] != codec.bins[1]:
                raise TeacherError(
                    f"{self.path}: SimCC outputs {sx.shape}, {sy.shape} do not fit input {h}x{w} "
                    f"with split_ratio {self.split_ratio} (expected {codec.bins} bins)"
                )
            xy, score = decode_to_image(codec, tensors, a)
        else:
            if raw.ndim != 4:
                raise TeacherError(
                    f"{self.path}: heatmap output must be (B, K, h, w), got {raw.shape}"
                )
            codec = (
                self.spec.codec()
                if self.spec is not None
                else HeatmapCodec(self.input_hw, raw.shape[2:], STANDARD["sigma"], dark=False)
            )
            if tuple(raw.shape[2:]) != codec.heatmap_size:
                raise TeacherError(
                    f"{self.path}: heatmaps {raw.shape}, its spec says {codec.heatmap_size}"
                )
            xy, score = decode_to_image(codec, tensors[0], a)
        return xy.numpy(), np.clip(score.double().numpy(), 0.0, 1.0)

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        jobs = ["lefthand", "righthand"] if self.region == "hands" else [self.region]
        h, w = self.input_hw
        for job in jobs:
            rows, affines = self._crops(people, job)
            if not len(rows):
                continue
            crops = warp_crops(image, affines, (w, h)).astype(np.float32) / 255.0
            x = (crops.transpose(0, 3, 1, 2) - self.mean) / self.std
            outputs = self._infer(np.ascontiguousarray(x, np.float32))
            xy, conf = self._decode(outputs, invert_affines(affines))
            idx = self.indices + PART_SLICES[job].start if self.region == "hands" else self.indices
            out.xy[rows[:, None], idx] = xy
            out.conf[rows[:, None], idx] = conf
        return out
