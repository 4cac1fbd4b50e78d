"""Top-down whole-body prediction: an RGB image and person boxes in, 133-point poses out.

:class:`PosePredictor` crops every box with the training geometry
(:mod:`fullbody.geometry`: aspect-fixed box, 1.25 padding, one affine warp), normalises
the crops as the training data is (:class:`fullbody.images.ImageNormalizer`), runs the
network in batches over people (PyTorch module or ONNX file, CPU or GPU), then, as training's
evaluation does (:mod:`fullbody.codecs.topdown`), merges the mirrored crops' outputs (flip
test), decodes with the head's codec (heatmaps: argmax or DARK; SimCC), maps the points back to
image pixels, and finally removes duplicate poses with OKS-NMS or parametric pose NMS
(:mod:`fullbody.evaluation.nms`).

The network side is a :class:`HeatmapModel`: anything mapping a float32 (B, 3, H, W) array of
normalised crops to (B, K, H/4, W/4) heatmaps, or to ``(simcc_x, simcc_y)`` for a SimCC head.
:class:`TorchHeatmapModel` wraps an ``nn.Module`` (e.g. a trained checkpoint's network),
:class:`OnnxHeatmapModel` an exported file (one output: heatmaps; two: SimCC).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from fullbody.codecs.topdown import (
    Outputs,
    as_float,
    create_codec,
    decode_to_image,
    flip_merge,
    person_score,
)
from fullbody.errors import ConfigError, InputNotFoundError
from fullbody.evaluation.nms import NMSMethod, PoseNMSParams, check_nms_method, pose_nms
from fullbody.geometry import box_crop_affines, invert_affines, warp
from fullbody.images import ImageNormalizer, read_image
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.results import Predictions
from fullbody.utils.onnx_session import OnnxModelError, onnx_session


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ------------------------------------------------------------------ heatmap models
class HeatmapModel(Protocol):
    """Normalised crops (B, 3, H, W) float32 -> float32 heatmaps (B, K, H/4, W/4), or the
    pair ``(simcc_x, simcc_y)`` of a SimCC head."""

    def __call__(self, crops: np.ndarray) -> Outputs: ...


class TorchHeatmapModel:
    """An ``nn.Module`` heatmap network in eval mode on ``device`` (``half``: fp16 on GPU)."""

    def __init__(
        self,
        net: nn.Module,
        device: str | torch.device | None = "auto",
        half: bool = False,
        channels_last: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = torch.float16 if half else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.eval().to(self.device, dtype=self.dtype, memory_format=self.memory_format)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> Outputs:
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device, non_blocking=True)
        x = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        return as_float(self.net(x))


class OnnxHeatmapModel:
    """An exported heatmap network run by onnxruntime (see ``export.py``).

    ``metadata`` holds the codec and decoding settings that ``export.py`` stored in the file.
    Its outputs are chosen by name, never by position: ``simcc_x``/``simcc_y`` (a SimCC head,
    as RTMPose publishes them) or ``heatmaps`` (a single unnamed output is taken as heatmaps),
    and they must agree with the metadata's ``head``; ``head`` is ``"simcc"`` or ``"heatmap"``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:

        self.path = Path(path)
        if not self.path.is_file():
            raise InputNotFoundError(f"{self.path}: pose ONNX file not found")
        self.session = onnx_session(self.path, providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.head, self.output_names = self._choose_outputs()

    def _choose_outputs(self) -> tuple[str, list[str]]:
        names = [o.name for o in self.session.get_outputs()]
        said = self.metadata.get("head")
        if {"simcc_x", "simcc_y"} <= set(names):
            head, chosen = "simcc", ["simcc_x", "simcc_y"]
        elif "heatmaps" in names or len(names) == 1:
            head, chosen = "heatmap", ["heatmaps" if "heatmaps" in names else names[0]]
        else:
            raise OnnxModelError(
                f"{self.path}: outputs {names}: none is named 'heatmaps', nor 'simcc_x' and "
                "'simcc_y' (export.py's names); which one to use is not guessed"
            )
        if said is not None and (said == "simcc") != (head == "simcc"):
            raise OnnxModelError(
                f"{self.path}: its metadata says head={said}, but its outputs {names} are "
                f"those of a {head} model"
            )
        return head, chosen

    def __call__(self, crops: np.ndarray) -> Outputs:
        x = np.ascontiguousarray(crops, dtype=np.float32)
        run = self.session.run(self.output_names, {self.input_name: x})
        out = [torch.from_numpy(o).float() for o in run]
        return out[0] if len(out) == 1 else tuple(out)


# ------------------------------------------------------------------ results
@dataclass
class PoseResult:
    """The poses of one image, one row per person (after NMS)."""

    keypoints: np.ndarray  # (N, 133, 3) image px + confidence
    scores: np.ndarray  # (N,) person score (box score x mean confident keypoint score, or pNMS)
    boxes: np.ndarray  # (N, 4) xywh, the person box each pose was predicted from
    box_scores: np.ndarray  # (N,) detector scores
    box_index: np.ndarray  # (N,) row of the input box each pose came from

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> PoseResult:
        return cls(
            np.zeros((0, NUM_KEYPOINTS, 3)),
            np.zeros(0),
            np.zeros((0, 4)),
            np.zeros(0),
            np.zeros(0, np.int64),
        )

    def to_predictions(self, image_id: int) -> Predictions:
        """These poses as results rows of image ``image_id`` (for a results JSON or the metric)."""
        n = len(self)
        return Predictions(
            image_ids=np.full(n, image_id, np.int64),
            keypoints=self.keypoints.reshape(n, NUM_KEYPOINTS, 3),
            scores=self.scores,
            bboxes=self.boxes,
        )


# ------------------------------------------------------------------ predictor
class PosePredictor:
    """Person boxes -> whole-body poses (see the module docstring).

    Args:
        model: the network (:class:`TorchHeatmapModel`, :class:`OnnxHeatmapModel`).
        input_size, heatmap_size: (height, width) of the crops and heatmaps the model uses.
        head: ``"simcc"`` for a SimCC model (``split_ratio`` bins per pixel), else heatmaps.
        flip_test: merge with the outputs of the mirrored crops.
        dark: DARK sub-pixel decoding of heatmaps (else argmax + quarter pixel).
        batch_size: people per network call (doubled internally by the flip test).
        padding: box enlargement before cropping (training uses 1.25).
        score_threshold: keypoints above it count in the person score.
        nms: "oks" (mmpose: OKS > ``oks_threshold`` removes the weaker pose), "parametric"
            (RMPE/AlphaPose pose NMS, merges poses and re-scores; ``nms_params``) or "none".
        min_box_size: boxes narrower or lower than this (px) are skipped.
    """

    def __init__(
        self,
        model: HeatmapModel,
        input_size: Sequence[int] = (256, 192),
        heatmap_size: Sequence[int] = (64, 48),
        head: str = "heatmap",
        split_ratio: float = 2.0,
        flip_test: bool = True,
        dark: bool = True,
        batch_size: int = 32,
        padding: float = 1.25,
        score_threshold: float = 0.2,
        nms: NMSMethod = "oks",
        oks_threshold: float = 0.9,
        nms_params: PoseNMSParams | None = None,
        min_box_size: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.codec = create_codec(
            head, input_size, heatmap_size, dark=dark, split_ratio=split_ratio
        )
        self.head = "simcc" if head == "simcc" else "heatmap"
        self.input_size = self.codec.input_size
        self.flip_test = flip_test
        self.dark = dark
        self.batch_size = batch_size
        self.padding = padding
        self.score_threshold = score_threshold
        self.nms = check_nms_method(nms)
        self.oks_threshold = oks_threshold
        self.nms_params = nms_params
        self.min_box_size = min_box_size
        self.normalize = ImageNormalizer()

    # -------------------------------------------------------------- construction
    @classmethod
    def from_checkpoint(
        cls,
        ckpt_path: str | os.PathLike,
        device: str | torch.device | None = "auto",
        half: bool = False,
        **kwargs: Any,
    ) -> PosePredictor:
        """A predictor on a training checkpoint (``PoseModule``, loaded by
        :func:`fullbody.models.module.load_pose_model`); its codec and decoding settings are
        the checkpoint's unless given in ``kwargs``."""
        from fullbody.models.module import load_pose_model

        module = load_pose_model(ckpt_path, "ckpt_path")
        hp = module.hparams
        settings = {
            "input_size": tuple(hp.input_size),
            "heatmap_size": tuple(hp.heatmap_size),
            "head": str(hp.head),
            "split_ratio": float(hp.get("split_ratio", 2.0)),
            "flip_test": bool(hp.flip_test),
            "dark": bool(hp.dark),
            "score_threshold": float(hp.score_threshold),
        }
        model = TorchHeatmapModel(module.net, device, half, bool(hp.channels_last))
        return cls(model, **{**settings, **kwargs})

    @classmethod
    def from_onnx(
        cls,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        **kwargs: Any,
    ) -> PosePredictor:
        """A predictor on an ONNX file: one written by ``export.py`` (settings from its
        metadata), or a SimCC file in RTMPose's published layout (two outputs, ratio from their
        lengths)."""
        model = OnnxHeatmapModel(path, providers, threads)
        meta = model.metadata
        settings: dict[str, Any] = {}
        by_name = {o.name: o for o in model.session.get_outputs()}
        outputs = [by_name[n] for n in model.output_names]
        if model.head == "simcc":
            settings["head"] = "simcc"
            if "split_ratio" in meta:
                settings["split_ratio"] = float(meta["split_ratio"])
        for key in ("input_size", "heatmap_size"):
            if key in meta:
                settings[key] = tuple(int(v) for v in meta[key].split(","))
        for key in ("flip_test", "dark"):
            if key in meta:
                settings[key] = meta[key] == "true"
        if "score_threshold" in meta:
            settings["score_threshold"] = float(meta["score_threshold"])
        if "input_size" not in settings:
            shape = model.session.get_inputs()[0].shape
            if isinstance(shape[2], int) and isinstance(shape[3], int):
                settings["input_size"] = (shape[2], shape[3])
                maps = outputs[0].shape  # (N, K, h, w) heatmaps: their stride may be 2, 4 or 8
                static = len(maps) == 4 and all(isinstance(v, int) for v in maps[2:])
                hm = (maps[2], maps[3]) if static else (shape[2] // 4, shape[3] // 4)
                settings["heatmap_size"] = hm
                bins_x = outputs[0].shape[-1]
                if len(outputs) == 2 and "split_ratio" not in meta and isinstance(bins_x, int):
                    settings["split_ratio"] = bins_x / shape[3]
        maps = tuple(outputs[0].shape[2:])
        said = settings.get("heatmap_size")
        static = all(isinstance(v, int) for v in maps)
        if model.head == "heatmap" and said and static and maps != tuple(said):
            raise OnnxModelError(
                f"{model.path}: output '{model.output_names[0]}' gives {maps[0]}x{maps[1]} "
                f"maps, its metadata says heatmap_size={list(said)}"
            )
        return cls(model, **{**settings, **kwargs})

    # -------------------------------------------------------------- steps
    def crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops (N, 3, H, W) float32 and crop->image affines (N, 2, 3) float64."""
        h, w = self.input_size
        to_crop = box_crop_affines(boxes, (h, w), self.padding)
        crops = np.empty((len(to_crop), 3, h, w), dtype=np.float32)
        pixels = np.empty((h, w, image.shape[2]), dtype=image.dtype)  # one warp buffer for all
        for i, m in enumerate(to_crop):
            self.normalize(warp(image, m, (h, w), out=pixels), out=crops[i])
        return crops, invert_affines(to_crop)

    def outputs(self, crops: np.ndarray) -> Outputs:
        """Network outputs of normalised crops, in batches, flip-merged when ``flip_test``."""
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = crops[i : i + self.batch_size]
            if self.flip_test:
                n = len(x)
                both = self._run(np.concatenate([x, x[..., ::-1]]))
                out.append(flip_merge(self.codec, _rows(both, 0, n), _rows(both, n, None)))
            else:
                out.append(self._run(x))
        if len(out) == 1:  # one batch (the usual case): no copy
            return out[0]
        if isinstance(out[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*out))
        return torch.cat(out)

    def _run(self, x: np.ndarray) -> Outputs:
        outputs = self.model(x)
        h, w = self.input_size
        if self.head == "simcc":
            r = self.codec.split_ratio
            want = [(len(x), NUM_KEYPOINTS, round(w * r)), (len(x), NUM_KEYPOINTS, round(h * r))]
            what = f"split_ratio {r}"
        else:
            want = [(len(x), NUM_KEYPOINTS, *self.codec.heatmap_size)]
            what = f"heatmap_size {self.codec.heatmap_size}"
        got = [tuple(o.shape) for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
        if got != want:
            shapes = (got[0], want[0]) if len(got) == len(want) == 1 else (got, want)
            raise ConfigError(
                f"the model maps {tuple(x.shape)} crops to {shapes[0]}, expected "
                f"{shapes[1]} ({self.head} head): input_size {self.input_size} and {what} do not "
                "match the model (a CNN backbone needs input sides divisible by its stride, 32)"
            )
        return outputs

    def decode(self, outputs: Outputs, crop_to_image: np.ndarray) -> tuple[Tensor, Tensor]:
        """Outputs -> (N, K, 2) image px (float64) and (N, K) keypoint scores."""
        return decode_to_image(self.codec, outputs, crop_to_image)

    def __call__(
        self,
        image: np.ndarray | str | os.PathLike,
        boxes: np.ndarray,
        box_scores: np.ndarray | None = None,
    ) -> PoseResult:
        """Poses of the people in ``boxes`` (N, 4) xywh of an RGB image (array or file)."""
        if not isinstance(image, np.ndarray):
            image = read_image(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be (H, W, 3) uint8 RGB, got {image.dtype} array of shape {image.shape}"
            )
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        box_scores = (
            np.ones(len(boxes))
            if box_scores is None
            else np.asarray(box_scores, dtype=np.float64).reshape(-1)
        )
        if len(box_scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(box_scores)} box scores")
        if not (np.isfinite(boxes).all() and np.isfinite(box_scores).all()):
            raise ValueError("boxes and box scores must be finite numbers")
        rows = np.flatnonzero(
            (boxes[:, 2] >= self.min_box_size) & (boxes[:, 3] >= self.min_box_size)
        )
        if len(rows) == 0:
            return PoseResult.empty()
        crops, to_image = self.crops(image, boxes[rows])
        xy, kscores = self.decode(self.outputs(crops), to_image)
        bs = torch.as_tensor(box_scores[rows], device=kscores.device)
        scores = person_score(kscores, bs, self.score_threshold)
        kpts = torch.cat([xy, kscores.double().unsqueeze(-1)], -1).cpu().numpy()
        keep, kpts, scores = pose_nms(
            kpts, scores.double().cpu().numpy(), boxes[rows], box_scores[rows], self.nms,
            oks_threshold=self.oks_threshold, params=self.nms_params,
        )  # fmt: skip
        return PoseResult(kpts, scores, boxes[rows][keep], box_scores[rows][keep], rows[keep])


def _rows(outputs: Outputs, start: int, stop: int | None) -> Outputs:
    """Rows ``start:stop`` of a batch of outputs (a tensor or a SimCC pair)."""
    if isinstance(outputs, tuple):
        return tuple(o[start:stop] for o in outputs)
    return outputs[start:stop]


def load_predictor(
    ckpt_path: str | os.PathLike | None = None,
    onnx_path: str | os.PathLike | None = None,
    device: str | None = "auto",
    half: bool = False,
    providers: Sequence[str] | None = None,
    nms_params: dict[str, Any] | None = None,
    **settings: Any,
) -> PosePredictor:
    """A predictor on exactly one of a checkpoint or an ONNX file (what the configs call).

    ``settings`` left None keep the model's own (e.g. ``flip_test``, ``dark``);
    ``nms_params`` overrides fields of the parametric NMS defaults.
    """
    if (ckpt_path is None) == (onnx_path is None):
        given = "both" if ckpt_path is not None else "neither"
        raise ConfigError(
            f"ckpt_path={ckpt_path}, onnx_path={onnx_path}: {given} given; give exactly one of "
            "ckpt_path=CKPT or onnx_path=MODEL.onnx"
        )
    kwargs = {k: v for k, v in settings.items() if v is not None}
    if nms_params:
        kwargs["nms_params"] = _nms_params(nms_params)
    if ckpt_path is not None:
        return PosePredictor.from_checkpoint(ckpt_path, device, half, **kwargs)
    if providers is None and str(device) == "cpu":
        providers = ["CPUExecutionProvider"]
    return PosePredictor.from_onnx(onnx_path, providers, **kwargs)


def _nms_params(overrides: dict[str, Any]) -> PoseNMSParams:
    from dataclasses import replace

    from fullbody.evaluation.nms import WHOLEBODY_PARAMS

    return replace(WHOLEBODY_PARAMS, **overrides)
