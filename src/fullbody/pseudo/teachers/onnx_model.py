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
- ``path`` or ``url``: a local file, or a published one fetched once into the teacher cache and
  checked against ``sha256`` (:func:`fullbody.pseudo.teachers.fetch.fetch_model`).
- ``keypoints``: which of the 133 points the K outputs are, in order: ``"wholebody"`` (K = 133),
  a part name (``"face"``, ``"lefthand"``, ``"foot"`` ...), ``"hand"`` (21 points used for both
  hands with ``region: hands``), or a list of indices.
- ``region``: the crop. ``person``: the person box, widened to the input's aspect ratio and
  scaled by ``box_scale`` (1.25, as top-down whole-body models are trained). ``face``,
  ``lefthand``, ``righthand``, ``hands``: the proposed part region, a square of ``box_scale`` x
  its side rotated upright by the region's direction (``rotate: false`` keeps it unrotated).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fullbody.codecs.topdown import create_codec, crop_to_image_points, decode_to_image
from fullbody.errors import ConfigError
from fullbody.geometry import (
    UP,
    box_to_square,
    crop_affines,
    invert_affines,
    person_crops,
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
from fullbody.pseudo.teachers.fetch import fetch_model
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


class OnnxTopDown:
    """A top-down ONNX whole-body or part model as a teacher (layout in the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        parts: Sequence[str] = TEACHER_PARTS,
        keypoints: str | Sequence[int] = "wholebody",
        region: str = "person",
        input_size: Sequence[int] | None = None,
        output: str = "heatmaps",
        split_ratio: float = 2.0,
        url: str | None = None,
        sha256: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        box_scale: float = 1.25,
        rotate: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        num_threads: int = 1,
    ):
        if (path is None) == (url is None):
            raise ConfigError("OnnxTopDown needs exactly one of path (a local file) and url")
        self.path = Path(path) if path is not None else fetch_model(url, sha256, cache_dir)
        if not self.path.is_file():
            raise TeacherError(f"ONNX teacher model {self.path} not found")
        if region not in REGIONS:
            raise ConfigError(f"{self.path}: region {region!r} must be one of {REGIONS}")
        if output not in OUTPUTS:
            raise ConfigError(f"{self.path}: output {output!r} must be one of {OUTPUTS}")
        self.split_ratio = split_ratio
        self.parts = check_parts(list(parts), f"OnnxTopDown({self.path.name})")
        self.region, self.output, self.box_scale, self.rotate = region, output, box_scale, rotate
        self.indices = _indices(keypoints)
        if region == "hands" and len(self.indices) != 21:
            raise ConfigError(f"{self.path}: region 'hands' needs a 21-point hand model")
        self.session = onnx_session(self.path, ["CPUExecutionProvider"], num_threads)
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise TeacherError(f"{self.path}: input must be (B, 3, H, W), got {inp.shape}")
        self.input_name = inp.name
        self.dynamic_batch = not isinstance(inp.shape[0], int)
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
        self.output_names = self._outputs()
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)

    def _crops(self, people: People, part: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows to run and their image -> input affines."""
        h, w = self.input_hw
        if part == "person":
            return person_crops(people.bboxes, self.input_hw, self.box_scale)
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
            codec = create_codec("simcc", self.input_hw, split_ratio=self.split_ratio)
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
            codec = create_codec("heatmap", self.input_hw, heatmap_size=raw.shape[2:], dark=False)
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
