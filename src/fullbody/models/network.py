"""The pose network: a timm backbone plus a heatmap or SimCC head.

The backbone is any timm model that supports ``features_only``. A heatmap head turns its
features into one map per keypoint at the heatmap stride (4: a 256x192 input gives 64x48
heatmaps) in one of three ways:

* ``deconv``: SimpleBaseline (Xiao et al. 2018) — the last stage (stride 32 for CNNs, 16 for
  plain ViTs), transposed 4x4 convolutions, BN, ReLU;
* ``duc``: AlphaPose FastPose — a pixel shuffle of the last stage, then dense upsampling
  convolutions (3x3 conv, BN, ReLU, pixel shuffle), then a 3x3 output convolution;
* ``fpn``: every stage from the heatmap stride down, merged top-down as in FPN.

``pretrained=True`` starts the backbone from timm's published ImageNet weights, fetched from the
Hugging Face hub once and cached as timm does; a path loads a local timm checkpoint file instead.

The ``simcc`` head (RTMPose-like, without its GAU) classifies coordinates instead: a conv to K
channels, each channel flattened, a shared linear layer, then linear classifiers over the
``W*r`` x bins and ``H*r`` y bins (:mod:`fullbody.codecs.simcc`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from huggingface_hub import constants as hf_constants
from torch import Tensor, nn

from fullbody.errors import ConfigError, UserError
from fullbody.keypoints import NUM_KEYPOINTS

#: The heads by name, each with the codec kind its outputs are decoded by: the one place that
#: knows which head is which (everything else asks :func:`head_codec` or the model's spec).
HEADS: dict[str, str] = {"deconv": "heatmap", "duc": "heatmap", "fpn": "heatmap", "simcc": "simcc"}


def head_codec(head: str) -> str:
    """The codec kind (``fullbody.codecs.spec.KINDS``) of ``head``'s outputs."""
    if head not in HEADS:
        raise ConfigError(f"model.head={head}: unknown head; expected one of {list(HEADS)}")
    return HEADS[head]


def _num_doublings(stride: int, out_stride: int) -> int:
    """How many x2 upsamplings take a map from ``stride`` to ``out_stride``."""
    n = math.log2(stride / out_stride)
    if n < 0 or n != int(n):
        raise ValueError(
            f"backbone stride {stride} cannot be upsampled to stride {out_stride} by doublings"
        )
    return int(n)


class DeconvHead(nn.Module):
    """SimpleBaseline head: ``n`` x (ConvTranspose 4x4 s2, BN, ReLU), then a conv to K maps.

    ``channels``: one width for every deconvolution (SimpleBaseline: 256), or one per layer.
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int = NUM_KEYPOINTS,
        num_upsample: int = 3,
        channels: int | Sequence[int] = 256,
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        widths = [channels] * num_upsample if isinstance(channels, int) else list(channels)
        if len(widths) != num_upsample:
            raise ValueError(
                f"deconv head needs {num_upsample} widths (one per upsampling) or one int, "
                f"got channels={list(widths)}"
            )
        layers: list[nn.Module] = []
        c = in_channels
        for width in widths:
            layers += [
                nn.ConvTranspose2d(c, width, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            c = width
        self.upsample = nn.Sequential(*layers)
        self.final = nn.Conv2d(c, num_keypoints, final_kernel, padding=final_kernel // 2)
        _init_head(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.final(self.upsample(x))


class DUC(nn.Module):
    """Dense upsampling convolution: 3x3 conv to ``out_channels``, BN, ReLU, pixel shuffle x2.

    The output has ``out_channels / 4`` channels at twice the resolution.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"DUC out_channels must be divisible by 4, got {out_channels}")
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.relu(self.bn(self.conv(x))))


class DUCHead(nn.Module):
    """FastPose head: PixelShuffle(2), then ``n - 1`` DUC blocks, then a 3x3 conv to K maps.

    With a ResNet-50 (2048 channels) and the defaults this is FastPose's head exactly in shape:
    2048 -> shuffle -> 512 -> DUC(1024) -> 256 -> DUC(512) -> 128 -> conv -> K. ``channels``
    None: FastPose's widths for any number of upsamplings, halving down to 512 in the last block
    (one block of 512 for two, 2048, 1024, 512 for four).
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int = NUM_KEYPOINTS,
        num_upsample: int = 3,
        channels: int | Sequence[int] | None = None,
        final_kernel: int = 3,
    ) -> None:
        super().__init__()
        if num_upsample < 1:
            raise ValueError("the DUC head needs at least one upsampling")
        if in_channels % 4:
            raise ValueError(f"DUC head input channels must be divisible by 4, got {in_channels}")
        if channels is None:
            channels = [512 * 2 ** (num_upsample - 2 - i) for i in range(num_upsample - 1)]
        channels = [channels] if isinstance(channels, int) else list(channels)
        if len(channels) != num_upsample - 1:
            raise ValueError(
                f"DUC head needs {num_upsample - 1} block widths for {num_upsample} upsamplings, "
                f"got channels={channels}"
            )
        blocks: list[nn.Module] = [nn.PixelShuffle(2)]
        c = in_channels // 4
        for width in channels:
            blocks.append(DUC(c, width))
            c = width // 4
        self.upsample = nn.Sequential(*blocks)
        self.final = nn.Conv2d(c, num_keypoints, final_kernel, padding=final_kernel // 2)
        _init_head(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.final(self.upsample(x))


class FPNHead(nn.Module):
    """Multi-scale heatmap head: the backbone's maps from stride ``out_stride`` up, each
    projected to ``channels`` (1x1 conv), merged top-down (nearest x2 upsampling + sum, as
    FPN), then a 3x3 conv, BN, ReLU and a conv to K maps at ``out_stride``.

    The stride-4 and stride-8 maps carry local appearance straight to the output, so a
    network trained from scratch localises keypoints long before its deepest stage has
    learned to (the deconv head must rebuild every position from the stride-32 map).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_keypoints: int = NUM_KEYPOINTS,
        channels: int = 64,
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.final = nn.Conv2d(channels, num_keypoints, final_kernel, padding=final_kernel // 2)
        _init_head(self.final)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.lateral[-1](features[-1])
        for lateral, f in zip(self.lateral[-2::-1], features[-2::-1], strict=True):
            x = nn.functional.interpolate(x, size=f.shape[-2:], mode="nearest") + lateral(f)
        return self.final(self.fuse(x))


class ScaleNorm(nn.Module):
    """RTMPose's normalisation: ``x / ||x|| * sqrt(d) * g`` with one learnt scalar ``g``."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp_min(self.eps) * self.g


class SimCCHead(nn.Module):
    """SimCC head: conv to K maps, flatten each, ScaleNorm + linear to ``hidden``, then
    linear classifiers to ``bins`` (x, y). (B,C,h,w) -> ((B,K,bins_x), (B,K,bins_y))."""

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        bins: tuple[int, int],
        num_keypoints: int = NUM_KEYPOINTS,
        hidden: int = 256,
        final_kernel: int = 7,
    ) -> None:
        super().__init__()
        flat = feature_size[0] * feature_size[1]
        self.final = nn.Conv2d(in_channels, num_keypoints, final_kernel, padding=final_kernel // 2)
        self.mlp = nn.Sequential(ScaleNorm(flat), nn.Linear(flat, hidden, bias=False))
        self.cls_x = nn.Linear(hidden, bins[0], bias=False)
        self.cls_y = nn.Linear(hidden, bins[1], bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.mlp(self.final(x).flatten(2))
        return self.cls_x(f), self.cls_y(f)


def _init_head(head: nn.Module) -> None:
    """Small-normal init of the head (as SimpleBaseline/FastPose), zero output bias."""
    for m in head.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PretrainedWeightsError(UserError, FileNotFoundError):
    """The backbone's starting weights are not available: a local file is missing, or the
    published weights cannot be fetched (offline) and are not in the cache."""


def _hub_weights(name: str) -> tuple[str, str]:
    """Where timm fetches ``name``'s published weights from, and the cache they land in."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return "", ""  # an unknown model: timm.create_model names it
    if cfg.hf_hub_id:
        return f"the Hugging Face hub ({cfg.hf_hub_id})", hf_constants.HF_HUB_CACHE
    if cfg.url:
        import torch.hub

        return cfg.url, str(Path(torch.hub.get_dir()) / "checkpoints")
    raise PretrainedWeightsError(
        f"{name}: timm publishes no pretrained weights for this backbone; use "
        "model.pretrained=false or a local file (model.pretrained=/path/to/file)"
    )


def create_backbone(
    name: str,
    pretrained: bool | str | Path = False,
    out_indices: Sequence[int] | None = (-1,),
    **kwargs: Any,
) -> nn.Module:
    """A timm ``features_only`` backbone returning the feature maps ``out_indices`` (by
    default its deepest only; ``None``: every stage, finest first).

    ``pretrained``: ``False`` (random init); ``True``: timm's published ImageNet weights,
    fetched once into the Hugging Face hub cache (``HF_HOME``/``HF_HUB_CACHE``; with
    ``HF_HUB_OFFLINE=1`` only the cache is read); or the path of a local timm checkpoint file
    (a ``state_dict`` of the classification model, e.g. saved from ``timm.create_model``).
    Raises :class:`PretrainedWeightsError` when the weights are not available.
    """
    features: dict[str, Any] = {"features_only": True}
    if out_indices is not None:
        features["out_indices"] = tuple(out_indices)
    if pretrained is True:
        source, cache = _hub_weights(name)
        try:
            return timm.create_model(name, pretrained=True, **features, **kwargs)
        except OSError as e:  # huggingface_hub's offline and HTTP errors, urllib's URLError
            offline = " (HF_HUB_OFFLINE is set)" if hf_constants.HF_HUB_OFFLINE else ""
            raise PretrainedWeightsError(
                f"{name}: the ImageNet weights could not be fetched from {source}{offline} "
                f"and are not in the cache {cache} ({type(e).__name__}); fetch them once "
                "where there is network and copy the cache here, or give a local file: "
                "model.pretrained=/path/to/file"
            ) from None
    extra: dict[str, Any] = {}
    if pretrained:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise PretrainedWeightsError(f"{path}: backbone checkpoint file not found")
        extra = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    return timm.create_model(name, **features, **extra, **kwargs)


class PoseNet(nn.Module):
    """Backbone (deepest feature map) + head: (B,3,H,W) -> (B,K,H/4,W/4) heatmaps, or for
    ``head="simcc"`` ``(simcc_x (B,K,W*r), simcc_y (B,K,H*r))``, which needs ``input_size``
    (H, W) and the ``split_ratio`` r; ``head_channels`` is then its hidden width (256)."""

    def __init__(
        self,
        backbone: str = "resnet18",
        head: str = "duc",
        num_keypoints: int = NUM_KEYPOINTS,
        pretrained: bool | str | Path = False,
        head_channels: int | Sequence[int] | None = None,
        final_kernel: int | None = None,
        out_stride: int = 4,
        backbone_kwargs: dict[str, Any] | None = None,
        input_size: Sequence[int] | None = None,
        split_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        simcc = head_codec(head) == "simcc"
        self.multiscale = head == "fpn"
        kwargs = dict(backbone_kwargs or {})
        # The stages to build: every one for the fpn head (or those of backbone_kwargs'
        # out_indices: a shallower network), the deepest for the others.
        out_indices = kwargs.pop("out_indices", None if self.multiscale else (-1,))
        self.backbone = create_backbone(backbone, pretrained, out_indices=out_indices, **kwargs)
        info = self.backbone.feature_info
        in_channels, stride = info.channels()[-1], info.reduction()[-1]
        # The fpn head merges every stage from out_stride down (finer stages are dropped).
        self.first_level = 0
        if self.multiscale:
            strides = info.reduction()
            if out_stride not in strides:
                raise ValueError(
                    f"the fpn head needs a {backbone} stage at stride {out_stride}; its strides "
                    f"are {strides}"
                )
            self.first_level = strides.index(out_stride)
        head_kwargs: dict[str, Any] = {}
        if head_channels is not None:
            head_kwargs["hidden" if simcc else "channels"] = head_channels
        if final_kernel is not None:
            head_kwargs["final_kernel"] = final_kernel
        if simcc:
            if input_size is None:
                raise ValueError("the simcc head needs input_size (height, width)")
            h, w = int(input_size[0]), int(input_size[1])
            bins = (round(w * split_ratio), round(h * split_ratio))
            feature = (math.ceil(h / stride), math.ceil(w / stride))
            self.head: nn.Module = SimCCHead(
                in_channels, feature, bins, num_keypoints, **head_kwargs
            )
        elif head == "deconv":
            n_up = _num_doublings(stride, out_stride)
            self.head = DeconvHead(in_channels, num_keypoints, n_up, **head_kwargs)
        elif head == "duc":
            n_up = _num_doublings(stride, out_stride)
            self.head = DUCHead(in_channels, num_keypoints, n_up, **head_kwargs)
        else:
            channels = info.channels()[self.first_level :]
            self.head = FPNHead(channels, num_keypoints, **head_kwargs)
        self.num_keypoints = num_keypoints
        self.stride = out_stride

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        features = self.backbone(x)
        return self.head(features[self.first_level :] if self.multiscale else features[-1])


def create_pose_net(backbone: str = "resnet18", head: str = "duc", **kwargs: Any) -> PoseNet:
    """Factory by name: ``create_pose_net("resnet50", "duc")`` is FastPose-R50 in shape."""
    return PoseNet(backbone=backbone, head=head, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
