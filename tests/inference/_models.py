"""Models the inference tests build themselves: fake networks and a fake YOLO-style detector
exported to ONNX (nothing is downloaded; the tiny PoseModule is :mod:`helpers.checkpoints`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from helpers.checkpoints import HEATMAP_SIZE, INPUT_SIZE
from torch import Tensor, nn

from fullbody.codecs import HeatmapCodec, SimCCCodec
from fullbody.keypoints import NUM_KEYPOINTS


def strip_metadata(path: Path) -> Path:
    """Remove every metadata entry of an ONNX file: a file as other tools write them."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    return path


class DotNet(nn.Module):
    """A fake pose network: every keypoint is the brightness centroid of the crop.

    Renders, for all 133 channels, the codec's Gaussian at the centroid of the pixels brighter
    than the crop's mean, so a predictor fed a black image with one white dot must return the
    dot's image position whatever the crop geometry, batching and flip test. ``simcc``: the
    SimCC codec's label vectors (x, y) instead of heatmaps.
    """

    def __init__(self, input_size=INPUT_SIZE, heatmap_size=HEATMAP_SIZE, simcc=False) -> None:
        super().__init__()
        self.codec = HeatmapCodec(input_size, heatmap_size, 2.0, dark=False)
        self.simcc = SimCCCodec(input_size, 2.0) if simcc else None

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        b, _, h, w = x.shape
        v = x.sum(1)
        wgt = (v - v.mean((1, 2), keepdim=True)).clamp_min(0)
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=x.dtype, device=x.device),
            torch.arange(w, dtype=x.dtype, device=x.device),
            indexing="ij",
        )
        total = wgt.sum((1, 2)).clamp_min(1e-9)
        cx = (wgt * xs).sum((1, 2)) / total
        cy = (wgt * ys).sum((1, 2)) / total
        xy_in = torch.stack([cx, cy], -1)
        if self.simcc is not None:
            return self.simcc.encode(xy_in[:, None].expand(b, NUM_KEYPOINTS, 2))
        xy_hm = self.codec.input_to_heatmap(xy_in)
        xy = xy_hm[:, None].expand(b, NUM_KEYPOINTS, 2)
        heatmaps, _ = self.codec.encode(xy, torch.ones(b, NUM_KEYPOINTS, device=x.device))
        return heatmaps


def bright_box(x: Tensor, threshold: float, channel: int | None = None) -> tuple[Tensor, ...]:
    """x0, y0, x1, y1 of the pixels of image 0 of ``x`` (B, C, H, W) above ``threshold`` (the
    channel mean, or ``channel``), as continuous coordinates in which pixel i spans [i, i + 1),
    and whether any pixel is above it (1.0 or 0.0); traceable for the ONNX export."""
    _, _, h, w = x.shape
    v = x.mean(1)[0] if channel is None else x[0, channel]
    m = (v > threshold).to(x.dtype)  # (h, w)
    xs = torch.arange(w, dtype=x.dtype)[None, :] * torch.ones(h, 1)
    ys = torch.arange(h, dtype=x.dtype)[:, None] * torch.ones(1, w)
    big = 1e6
    x0 = (xs * m + big * (1 - m)).amin()
    x1 = (xs * m - big * (1 - m)).amax() + 1
    y0 = (ys * m + big * (1 - m)).amin()
    y1 = (ys * m - big * (1 - m)).amax() + 1
    return x0, y0, x1, y1, (m.sum() > 0).to(x.dtype)


class BoxFinder(nn.Module):
    """A fake YOLO detector: one box around the pixels above ``threshold`` (channel mean) with
    person score 0.9, a decoy box of another class and empty rows (score 0) up to N = 8; the
    output in YOLOv8 (1, 4 + C, N) or YOLOv5 (1, N, 5 + C) layout, in input pixels. Exported
    to ONNX by the tests."""

    def __init__(self, layout: str = "yolov8", threshold: float = 0.5, channel: int | None = None):
        super().__init__()
        self.layout = layout
        self.threshold = threshold
        self.channel = channel

    def forward(self, x: Tensor) -> Tensor:
        x0, y0, x1, y1, _ = bright_box(x, self.threshold, self.channel)
        one = torch.ones((), dtype=x.dtype)
        zero = torch.zeros((), dtype=x.dtype)
        person = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
        decoy = torch.stack([one * 20, one * 20, one * 10, one * 10])
        if self.layout == "yolov8":
            rows = [
                torch.cat([person, torch.stack([0.9 * one, zero])]),
                torch.cat([decoy, torch.stack([zero, 0.8 * one])]),
            ]
            rows += [torch.zeros(6, dtype=x.dtype)] * 6
            return torch.stack(rows, 1)[None]  # (1, 6, 8)
        rows = [
            torch.cat([person, torch.stack([one, 0.9 * one, zero])]),
            torch.cat([decoy, torch.stack([one, zero, 0.8 * one])]),
        ]
        rows += [torch.zeros(7, dtype=x.dtype)] * 6
        return torch.stack(rows, 0)[None]  # (1, 8, 7)


def export_box_finder(path: Path, layout: str = "yolov8", threshold: float = 0.5,
                      size: tuple[int, int] = (96, 128), channel: int | None = None) -> Path:  # fmt: skip
    torch.onnx.export(
        BoxFinder(layout, threshold, channel).eval(),
        (torch.zeros(1, 3, *size),),
        str(path),
        dynamo=False,
        input_names=["images"],
        output_names=["output0"],
        opset_version=17,
    )
    return path


def rectangle_image(h: int = 120, w: int = 200, box=(50, 30, 40, 70), rgb=(255, 255, 255)):
    """Black RGB image with a filled rectangle (x, y, w, h: whole pixels) of colour ``rgb``."""
    img = np.zeros((h, w, 3), np.uint8)
    x, y, bw, bh = box
    img[y : y + bh, x : x + bw] = rgb
    return img
