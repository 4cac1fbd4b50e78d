"""Published whole-body pose models and person detectors, by name: the one registry.

Every name here is a public ONNX file that the one-call API (:class:`fullbody.Wholebody`),
``demo.py``, ``eval.py`` and the pseudo-label teachers (``conf/teacher/wholebody/``) fetch on
first use through :func:`fullbody.utils.fetch.fetch_model` into the model cache
($FULLBODY_MODEL_DIR, else ``~/.cache/fullbody/models``): checked by length, opened with
onnxruntime, then pinned by SHA-256 (the value below where one is known, else the one recorded
on first use). OpenMMLab publishes its files as mmdeploy ``onnx_sdk`` zips; the cache keeps only
their ``end2end.onnx``, named after the zip.

Layouts (what the code relies on; the tests write tiny files in exactly these layouts):

* ``simcc`` pose models: input (1, 3, H, W) float32 RGB, ``(pixel - mean) / std`` with the
  ImageNet mean/std (x 255), the person box widened to W:H and padded x 1.25; outputs
  ``simcc_x`` (1, 133, 2W) and ``simcc_y`` (1, 133, 2H), COCO-WholeBody order, split ratio 2.
* ``yolox-end2end`` detectors: input (1, 3, S, S) float32, the image letterboxed into the
  top-left corner of a 114-grey square, BGR, 0-255; outputs ``dets`` (1, N, 5) = x1, y1, x2,
  y2, score in input pixels (NMS inside the graph) and ``labels`` (1, N), person = 0.

Published AP: pose models, whole-body AP on COCO-WholeBody v1.0 val (mmpose's model zoo, its
person detector of 56.4 human AP); detectors, person box AP on Human-Art val (the Human-Art
model zoo). Licences: the OpenMMLab files are Apache-2.0 (mmpose); DWPose's are Apache-2.0
(IDEA-Research/DWPose).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fullbody.errors import ConfigError
from fullbody.utils.fetch import fetch_model

_MMPOSE = "https://download.openmmlab.com/mmpose/v1/projects"


@dataclass(frozen=True)
class PublishedModel:
    """One published ONNX file and how to run it (see the module docstring)."""

    name: str
    title: str  # how its publisher names it
    url: str
    input_size: tuple[int, int]  # (h, w)
    layout: str  # "simcc" | "yolox-end2end"
    ap: float  # published AP (module docstring: on what)
    source: str
    licence: str = "Apache-2.0"
    member: str | None = None  # the file taken out of a zip
    size: int | None = None  # bytes of the cached (unpacked) .onnx, where verified
    sha256: str | None = None  # of the cached .onnx, where known

    @property
    def split_ratio(self) -> float:
        """SimCC bins per input pixel (2 in every published whole-body model)."""
        return 2.0

    def fetch(self, cache_dir: str | os.PathLike | None = None) -> Path:
        """The local file, fetched and checked on first use."""
        return fetch_model(self.url, self.sha256, cache_dir, self.member, self._loads)

    def _loads(self, path: Path) -> None:
        """A fetched file must have the verified size and open as ONNX with its input size."""
        from fullbody.utils.onnx_session import onnx_session

        if self.size is not None and path.stat().st_size != self.size:
            raise ValueError(f"{path.stat().st_size} bytes, expected {self.size}")
        shape = onnx_session(path, ["CPUExecutionProvider"]).get_inputs()[0].shape
        fixed = all(isinstance(v, int) for v in shape[2:])
        if fixed and tuple(shape[2:]) != self.input_size:
            raise ValueError(f"input {shape}, expected (1, 3, {self.input_size[0]}, "
                             f"{self.input_size[1]})")  # fmt: skip


_RTMW = f"{_MMPOSE}/rtmw/onnx_sdk"
_YOLOX = f"{_MMPOSE}/rtmposev1/onnx_sdk"
_E2E = "end2end.onnx"

#: Whole-body pose models (133 points) by name.
POSE_MODELS: dict[str, PublishedModel] = {
    m.name: m
    for m in [
        PublishedModel(
            "rtmw-x-384x288", "RTMW-x 384×288 (Cocktail13)",
            f"{_RTMW}/rtmw-x_simcc-cocktail13_pt-ucoco_270e-384x288-0949e3a9_20230925.zip",
            (384, 288), "simcc", 0.702, "OpenMMLab mmpose", member=_E2E,
        ),
        PublishedModel(
            "rtmw-x-256x192", "RTMW-x 256×192 (Cocktail13)",
            f"{_RTMW}/rtmw-x_simcc-cocktail13_pt-ucoco_270e-256x192-fbef0d61_20230925.zip",
            (256, 192), "simcc", 0.672, "OpenMMLab mmpose", member=_E2E,
        ),
        PublishedModel(
            "rtmw-l-384x288", "RTMW-l 384×288 (Cocktail14, distilled from RTMW-x)",
            f"{_RTMW}/rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip",
            (384, 288), "simcc", 0.701, "OpenMMLab mmpose", member=_E2E, size=229_320_930,
            sha256="bd033156e5104c4f5d2edfe0453e02661e30a2f3da453ec93c8764d561b83054",
        ),
        PublishedModel(
            "rtmw-l-256x192", "RTMW-l 256×192 (Cocktail14, distilled from RTMW-x)",
            f"{_RTMW}/rtmw-dw-x-l_simcc-cocktail14_270e-256x192_20231122.zip",
            (256, 192), "simcc", 0.660, "OpenMMLab mmpose", member=_E2E,
        ),
        PublishedModel(
            "dwpose-l-384x288", "DWPose-l 384×288 (UBody-COCO)",
            "https://huggingface.co/yzd-v/DWPose/resolve/main/dw-ll_ucoco_384.onnx",
            (384, 288), "simcc", 0.665, "IDEA-Research DWPose (Hugging Face yzd-v/DWPose)",
        ),
    ]
}  # fmt: skip

#: Person detectors by name (YOLOX fine-tuned on Human-Art, end-to-end NMS export).
DETECTORS: dict[str, PublishedModel] = {
    m.name: m
    for m in [
        PublishedModel("yolox-tiny-humanart", "YOLOX-tiny Human-Art",
                       f"{_YOLOX}/yolox_tiny_8xb8-300e_humanart-6f3252f9.zip", (416, 416),
                       "yolox-end2end", 0.477, "OpenMMLab mmpose", member=_E2E),
        PublishedModel("yolox-m-humanart", "YOLOX-m Human-Art",
                       f"{_YOLOX}/yolox_m_8xb8-300e_humanart-c2c7a14a.zip", (640, 640),
                       "yolox-end2end", 0.591, "OpenMMLab mmpose", member=_E2E),
        PublishedModel("yolox-x-humanart", "YOLOX-x Human-Art",
                       f"{_YOLOX}/yolox_x_8xb8-300e_humanart-a39d44ed.zip", (640, 640),
                       "yolox-end2end", 0.613, "OpenMMLab mmpose", member=_E2E),
    ]
}  # fmt: skip

#: What ``Wholebody()`` and ``demo.py`` use when not told.
DEFAULT_POSE_MODEL = "rtmw-x-384x288"
DEFAULT_DETECTOR = "yolox-m-humanart"


def published_pose_model(name: str) -> PublishedModel:
    """The pose model called ``name``; a ConfigError listing the names otherwise."""
    return _lookup(POSE_MODELS, name, "pose model")


def published_detector_model(name: str) -> PublishedModel:
    """The person detector called ``name``; a ConfigError listing the names otherwise."""
    return _lookup(DETECTORS, name, "person detector")


def _lookup(table: dict[str, PublishedModel], name: str, what: str) -> PublishedModel:
    if name not in table:
        raise ConfigError(f"{name!r} is neither a file nor a published {what}; published: "
                          f"{', '.join(table)}")  # fmt: skip
    return table[name]
