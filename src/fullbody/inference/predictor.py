"""Top-down whole-body prediction: an RGB image and person boxes in, 133-point poses out.

:class:`PosePredictor` crops every box with the training geometry
(:func:`fullbody.geometry.person_affines`: aspect-fixed box, the model's padding, one affine
warp), normalises
the crops as the training data is (:class:`fullbody.images.ImageNormalizer`), runs the
network in batches over people (PyTorch module or ONNX file, CPU or GPU), then, as training's
evaluation does (:mod:`fullbody.codecs.topdown`), merges the mirrored crops' outputs (flip
test), decodes with the head's codec (heatmaps: argmax or DARK; SimCC), maps the points back to
image pixels, and finally removes duplicate poses with OKS-NMS or parametric pose NMS
(:mod:`fullbody.evaluation.nms`).

Every setting shared with training (crop, codec, decoding) is the model's
:class:`~fullbody.codecs.spec.TopDownSpec`, read from the checkpoint or the ONNX metadata.

The network side is a :class:`HeatmapModel`: anything mapping a float32 (B, 3, H, W) array of
normalised crops to (B, K, H/s, W/s) heatmaps (s: the heatmap stride), or to
``(simcc_x, simcc_y)`` for a SimCC head.
:class:`TorchHeatmapModel` wraps an ``nn.Module`` (e.g. a trained checkpoint's network),
:class:`OnnxHeatmapModel` an exported file (one output: heatmaps; two: SimCC).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from fullbody.codecs.spec import TopDownSpec
from fullbody.codecs.topdown import (
    Outputs,
    as_float,
    decode_to_image,
    flip_merge,
    person_score,
)
from fullbody.errors import ConfigError, InputNotFoundError
from fullbody.evaluation.nms import NMSMethod, PoseNMSParams, check_nms_method, pose_nms
from fullbody.geometry import invert_affines, person_affines, warp
from fullbody.images import ImageNormalizer, read_image
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.results import Predictions
from fullbody.utils.onnx_session import OnnxModelError, onnx_session

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ------------------------------------------------------------------ heatmap models
class HeatmapModel(Protocol):
    """Normalised crops (B, 3, H, W) float32 -> float32 heatmaps (B, K, H/s, W/s), or the
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
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        #: The batch a file with a fixed batch axis takes (published files: 1), else None.
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
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
        step = self.fixed_batch or max(len(x), 1)
        runs = [self.session.run(self.output_names, {self.input_name: x[i : i + step]})
                for i in range(0, len(x), step)]  # fmt: skip
        out = [
            torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts)).float()
            for parts in zip(*runs)
        ]  # fmt: skip  (one run: no copy)
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
        spec: the model's top-down settings (codec kind resolved): crop size and padding,
            codec, flip test, DARK, person-score threshold.
        batch_size: people per network call (doubled internally by the flip test).
        nms: "oks" (mmpose: OKS > ``oks_threshold`` removes the weaker pose), "parametric"
            (RMPE/AlphaPose pose NMS, merges poses and re-scores; ``nms_params``) or "none".
        min_box_size: boxes narrower or lower than this (px) are skipped.
    """

    def __init__(
        self,
        model: HeatmapModel,
        spec: TopDownSpec,
        batch_size: int = 32,
        nms: NMSMethod = "oks",
        oks_threshold: float = 0.9,
        nms_params: PoseNMSParams | None = None,
        min_box_size: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.spec = spec
        self.codec = spec.codec()
        self.input_size = spec.input_size
        self.batch_size = batch_size
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
        :func:`fullbody.models.module.load_pose_model`) with the checkpoint's spec; ``kwargs``
        are predictor options and overrides of the spec's decoding (:data:`DECODING`)."""
        from fullbody.models.module import load_pose_model

        module = load_pose_model(ckpt_path, "ckpt_path")
        spec, options = _override(module.spec, kwargs)
        model = TorchHeatmapModel(module.net, device, half, bool(module.hparams.channels_last))
        return cls(model, spec, **options)

    @classmethod
    def from_onnx(
        cls,
        path: str | os.PathLike,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        spec: TopDownSpec | None = None,
        **kwargs: Any,
    ) -> PosePredictor:
        """A predictor on an ONNX file: one written by ``export.py`` (its spec from the
        metadata), or a file from elsewhere (``spec``, else :func:`onnx_spec` derives one);
        ``kwargs`` as in :meth:`from_checkpoint`."""
        model = OnnxHeatmapModel(path, providers, threads)
        spec, options = _override(onnx_spec(model, spec), kwargs)
        return cls(model, spec, **options)

    # -------------------------------------------------------------- steps
    def crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops (N, 3, H, W) float32 and crop->image affines (N, 2, 3) float64."""
        h, w = self.input_size
        to_crop = person_affines(boxes, self.input_size, self.spec.padding)
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
            if self.spec.flip_test:
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
        if self.spec.kind == "simcc":
            r = self.spec.split_ratio
            want = [(len(x), NUM_KEYPOINTS, round(w * r)), (len(x), NUM_KEYPOINTS, round(h * r))]
            what = f"split_ratio {r}"
        else:
            want = [(len(x), NUM_KEYPOINTS, *self.spec.heatmap_size)]
            what = f"heatmap_size {self.spec.heatmap_size}"
        got = [tuple(o.shape) for o in (outputs if isinstance(outputs, tuple) else (outputs,))]
        if got != want:
            shapes = (got[0], want[0]) if len(got) == len(want) == 1 else (got, want)
            raise ConfigError(
                f"the model maps {tuple(x.shape)} crops to {shapes[0]}, expected "
                f"{shapes[1]} ({self.spec.kind} head): input_size {self.input_size} and {what} do not "
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
        scores = person_score(kscores, bs, self.spec.score_threshold)
        kpts = torch.cat([xy, kscores.double().unsqueeze(-1)], -1).cpu().numpy()
        keep, kpts, scores = pose_nms(
            kpts, scores.double().cpu().numpy(), boxes[rows], box_scores[rows], self.nms,
            oks_threshold=self.oks_threshold, params=self.nms_params,
        )  # fmt: skip
        return PoseResult(kpts, scores, boxes[rows][keep], box_scores[rows][keep], rows[keep])


#: The spec's decoding settings a caller may override (demo, teachers): None keeps the model's.
DECODING = ("flip_test", "dark", "score_threshold")


def _override(spec: TopDownSpec, kwargs: dict[str, Any]) -> tuple[TopDownSpec, dict[str, Any]]:
    """``spec`` with the :data:`DECODING` entries of ``kwargs`` (those not None), and the rest
    of ``kwargs`` (the predictor's own options)."""
    changes = {k: kwargs[k] for k in DECODING if kwargs.get(k) is not None}
    options = {k: v for k, v in kwargs.items() if k not in DECODING}
    return (dataclasses.replace(spec, **changes) if changes else spec), options


def onnx_spec(model: OnnxHeatmapModel, default: TopDownSpec | None = None) -> TopDownSpec:
    """The spec of an ONNX pose file: the one export stored in its metadata, else derived from
    its shapes as RTMPose's and other published files need (SimCC outputs: the split ratio
    from their lengths; heatmaps: at the output's stride), with the standard values for the
    rest (:data:`fullbody.codecs.spec.STANDARD`, logged), or ``default`` when given (a
    published model's). Its outputs must be those the spec
    describes (OnnxModelError naming the file)."""
    path = model.path
    shape = model.session.get_inputs()[0].shape
    by_name = {o.name: o for o in model.session.get_outputs()}
    first = by_name[model.output_names[0]].shape
    spec = TopDownSpec.from_metadata(model.metadata, str(path), len(model.output_names))
    spec = spec or default
    if spec is None:
        if not (isinstance(shape[2], int) and isinstance(shape[3], int)):
            raise ConfigError(
                f"{path}: no top-down spec in its metadata and a dynamic input size {shape}: "
                "export it with export.py, or with a fixed (B, 3, H, W) input"
            )
        h, w = shape[2], shape[3]
        changes: dict[str, Any] = {}
        if model.head == "simcc" and isinstance(first[-1], int):
            changes["split_ratio"] = first[-1] / w
        if model.head == "heatmap" and len(first) == 4 and isinstance(first[2], int) and first[2]:
            changes["stride"] = h // first[2]
        spec = TopDownSpec.standard((h, w), model.head, **changes)
        log.info("%s: no top-down spec in its metadata; derived %s", path, spec)
    if spec.kind != model.head:
        raise OnnxModelError(
            f"{path}: its spec says a {spec.kind} model, its outputs "
            f"{model.output_names} are those of a {model.head} model"
        )
    maps = tuple(first[2:])
    static = all(isinstance(v, int) for v in maps)
    if spec.kind == "heatmap" and static and maps != spec.heatmap_size:
        raise OnnxModelError(
            f"{path}: output '{model.output_names[0]}' gives {maps[0]}x{maps[1]} maps, its "
            f"spec says heatmap_size={list(spec.heatmap_size)}"
        )
    return spec


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
    model: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    **settings: Any,
) -> PosePredictor:
    """A predictor on exactly one of a checkpoint, an ONNX file or a published model name
    (``model``: :mod:`fullbody.inference.published`, fetched on first use into ``cache_dir``,
    default the model cache); what the configs call.

    ``settings`` left None keep the model's own (e.g. ``flip_test``, ``dark``);
    ``nms_params`` overrides fields of the parametric NMS defaults.
    """
    given = {k: v for k, v in (("pose_model", model), ("ckpt_path", ckpt_path),
                               ("onnx_path", onnx_path)) if v is not None}  # fmt: skip
    if len(given) != 1:
        what = {0: "neither given", 2: "both given", 3: "all three given"}[len(given)]
        shown = (
            ", ".join(f"{k}={v}" for k, v in given.items()) or "pose_model, ckpt_path, onnx_path"
        )
        raise ConfigError(f"{shown}: {what}; give exactly one of pose_model=NAME (a published "
                          "model), ckpt_path=CKPT or onnx_path=MODEL.onnx")  # fmt: skip
    kwargs = {k: v for k, v in settings.items() if v is not None}
    if nms_params:
        kwargs["nms_params"] = _nms_params(nms_params)
    if model is not None:
        from fullbody.inference.published import published_pose_model

        published = published_pose_model(model)
        onnx_path = published.fetch(cache_dir)
        kwargs["spec"] = TopDownSpec.standard(
            published.input_size, "simcc", split_ratio=published.split_ratio
        )  # RTMPose's crop: the standard padding
    if ckpt_path is not None:
        return PosePredictor.from_checkpoint(ckpt_path, device, half, **kwargs)
    if providers is None and str(device) == "cpu":
        providers = ["CPUExecutionProvider"]
    return PosePredictor.from_onnx(onnx_path, providers, **kwargs)


def _nms_params(overrides: dict[str, Any]) -> PoseNMSParams:
    from dataclasses import replace

    from fullbody.evaluation.nms import WHOLEBODY_PARAMS

    return replace(WHOLEBODY_PARAMS, **overrides)
