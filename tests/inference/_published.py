"""Tiny ONNX files in exactly the published layouts, and a model cache pre-filled with them.

* an RTMW-like pose model: input ``input`` (1, 3, H, W), outputs ``simcc_x`` (1, 133, 2W) and
  ``simcc_y`` (1, 133, 2H) -- every point at the brightness centroid of the crop
  (:class:`._models.DotNet`), so the right answer is known;
* a YOLOX-like end-to-end detector: input (1, 3, S, S) BGR 0-255, outputs ``dets`` (1, N, 5)
  x1, y1, x2, y2, score and ``labels`` (1, N): one person box (label 0, score 0.9) around the
  pixels brighter than 127 (in ``channel`` when given), and a decoy of label 1.

:func:`fill_cache` writes them under the names the registry's URLs give, at the registry's input
sizes, so that the published names resolve offline, in this process and in subprocesses
($FULLBODY_MODEL_DIR).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch
from torch import Tensor, nn

from fullbody.inference.published import DETECTORS, POSE_MODELS
from fullbody.utils.fetch import cached_name

from ._models import DotNet, bright_box, rectangle_image


class EndToEndBoxFinder(nn.Module):
    """The fake YOLOX end-to-end detector of the module docstring."""

    def __init__(self, channel: int | None = None, threshold: float = 127.0) -> None:
        super().__init__()
        self.channel, self.threshold = channel, threshold

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x0, y0, x1, y1, found = bright_box(x, self.threshold, self.channel)
        person = torch.stack([x0, y0, x1, y1, 0.9 * found])
        decoy = torch.tensor([5.0, 5.0, 30.0, 40.0, 0.8], dtype=x.dtype)
        return torch.stack([person, decoy])[None], torch.tensor([[0, 1]], dtype=torch.int64)


def export_simcc_model(path: Path, input_size: tuple[int, int]) -> Path:
    """The RTMW-layout pose model (fixed batch 1, as OpenMMLab's files) at ``input_size``."""
    net = DotNet(input_size, (input_size[0] // 4, input_size[1] // 4), simcc=True).eval()
    torch.onnx.export(net, (torch.zeros(1, 3, *input_size),), str(path), dynamo=False,
                      input_names=["input"], output_names=["simcc_x", "simcc_y"],
                      opset_version=17)  # fmt: skip
    return path


def export_end2end_detector(path: Path, size: int, channel: int | None = None) -> Path:
    """The YOLOX end-to-end layout detector with an (1, 3, size, size) input."""
    torch.onnx.export(EndToEndBoxFinder(channel).eval(), (torch.zeros(1, 3, size, size),),
                      str(path), dynamo=False, input_names=["input"],
                      output_names=["dets", "labels"], opset_version=17)  # fmt: skip
    return path


def sdk_zip(model: Path, out: Path) -> Path:
    """``model`` packed as mmdeploy's onnx_sdk zips are: ``<dir>/end2end.onnx`` + json files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(model, "sdk/end2end.onnx")
        z.writestr("sdk/pipeline.json", "{}")
        z.writestr("sdk/deploy.json", "{}")
    out.write_bytes(buf.getvalue())
    return out


def fill_cache(cache: Path, pose: tuple[str, ...] = ("rtmw-x-384x288",),
               detectors: tuple[str, ...] = ("yolox-m-humanart",),
               channel: int | None = None) -> Path:  # fmt: skip
    """The named published files as tiny stand-ins under their cache names."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in pose:
        m = POSE_MODELS[name]
        export_simcc_model(cache / cached_name(m.url), m.input_size)
    for name in detectors:
        m = DETECTORS[name]
        export_end2end_detector(cache / cached_name(m.url), m.input_size[0], channel)
    return cache


def rectangle(h: int = 240, w: int = 320, box=(100, 40, 60, 150), rgb=(255, 255, 255)):
    """Black RGB image with one filled rectangle (x, y, w, h); its centre is the answer."""
    return rectangle_image(h, w, box, rgb)
