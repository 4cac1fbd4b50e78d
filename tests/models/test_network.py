"""PoseNet: timm backbones by name, both heads, stride-4 heatmaps, ImageNet weights from timm's
hub cache (offline, in a temporary cache) or a local file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file
from torch import nn

from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.network import (
    DeconvHead,
    DUCHead,
    FPNHead,
    PoseNet,
    PretrainedWeightsError,
    count_parameters,
    create_backbone,
    create_pose_net,
)


@pytest.mark.parametrize("head", ["deconv", "duc", "fpn"])
@pytest.mark.parametrize(
    "backbone", ["resnet18", "mobilenetv3_small_050", "efficientnet_b0", "convnext_atto"]
)
def test_forward_shapes(backbone: str, head: str) -> None:
    widths = [64, 32] if head == "duc" else 32  # narrow heads keep the test fast
    net = create_pose_net(backbone, head, head_channels=widths).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 128, 96))
    assert out.shape == (2, NUM_KEYPOINTS, 32, 24)
    assert torch.isfinite(out).all()


def test_stride16_backbone_gets_two_upsamplings() -> None:
    net = PoseNet(
        "vit_tiny_patch16_224", "duc", head_channels=[64], backbone_kwargs={"img_size": (128, 96)}
    )
    assert net.backbone.feature_info.reduction()[-1] == 16
    assert len(net.head.upsample) == 2  # pixel shuffle + one DUC block
    with torch.no_grad():
        assert net(torch.randn(1, 3, 128, 96)).shape == (1, NUM_KEYPOINTS, 32, 24)


def test_duc_head_has_fastpose_shape_on_resnet50_width() -> None:
    head = DUCHead(2048, NUM_KEYPOINTS, num_upsample=3)
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (512, 1024, (3, 3)),
        (256, 512, (3, 3)),
        (128, NUM_KEYPOINTS, (3, 3)),
    ]
    assert head(torch.randn(1, 2048, 8, 6)).shape == (1, NUM_KEYPOINTS, 64, 48)


def test_deconv_head_is_simplebaseline() -> None:
    head = DeconvHead(2048, NUM_KEYPOINTS, num_upsample=3, channels=256)
    deconvs = [m for m in head.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(d.in_channels, d.out_channels, d.kernel_size, d.stride) for d in deconvs] == [
        (2048, 256, (4, 4), (2, 2)),
        (256, 256, (4, 4), (2, 2)),
        (256, 256, (4, 4), (2, 2)),
    ]
    assert head.final.kernel_size == (1, 1)


def test_missing_backbone_file_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        create_backbone("resnet18", pretrained=tmp_path / "nope.pth")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache in ``tmp_path``, offline (as with HF_HUB_OFFLINE=1):
    nothing here may reach the network."""
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return cache


def test_pretrained_true_offline_names_backbone_hub_cache_and_local_file(hub_cache) -> None:
    with pytest.raises(PretrainedWeightsError) as info:
        create_backbone("test_resnet", pretrained=True)
    msg = str(info.value)
    assert msg.startswith("test_resnet: the ImageNet weights could not be fetched")
    assert "Hugging Face hub (timm/test_resnet.r160_in1k)" in msg and "HF_HUB_OFFLINE" in msg
    assert str(hub_cache) in msg and "model.pretrained=/path/to/file" in msg
    assert "\n" not in msg and info.value.__cause__ is None
    again = pickle.loads(pickle.dumps(info.value))  # crosses process boundaries intact
    assert type(again) is PretrainedWeightsError and str(again) == msg


def test_pretrained_true_loads_timm_weights_from_the_hub_cache(hub_cache) -> None:
    """The weights timm publishes, as huggingface_hub caches them (a snapshot named by a commit,
    ``refs/main`` pointing at it), load offline into the backbone."""
    source = timm.create_model("test_resnet")  # the classification model, as published
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)  # unlike any random initialisation
    repo = hub_cache / "models--timm--test_resnet.r160_in1k"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file(source.state_dict(), repo / "snapshots" / commit / "model.safetensors")
    net = PoseNet("test_resnet", "deconv", head_channels=16, pretrained=True)
    assert torch.equal(net.backbone.conv1[0].weight, source.conv1[0].weight)
    assert torch.equal(net.backbone.layer4[0].conv2.weight, source.layer4[0].conv2.weight)
    assert not torch.equal(PoseNet("test_resnet").backbone.conv1[0].weight, source.conv1[0].weight)


def test_pretrained_true_for_a_backbone_timm_has_no_weights_for(hub_cache) -> None:
    with pytest.raises(PretrainedWeightsError, match="botnet50ts_256: timm publishes no"):
        create_backbone("botnet50ts_256", pretrained=True)


def test_local_timm_checkpoint_is_loaded(tmp_path) -> None:
    source = timm.create_model("resnet18")
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    net = PoseNet("resnet18", "deconv", pretrained=str(tmp_path / "r18.pth"))
    assert torch.equal(net.backbone.conv1.weight, source.conv1.weight)
    assert torch.equal(net.backbone.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    fresh = PoseNet("resnet18", "deconv")
    assert not torch.equal(fresh.backbone.conv1.weight, source.conv1.weight)


def test_bad_head_and_widths() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        PoseNet("resnet18", "hourglass")
    with pytest.raises(ValueError, match="block widths"):
        DUCHead(512, NUM_KEYPOINTS, num_upsample=3, channels=[256])
    with pytest.raises(ValueError, match="one per upsampling"):
        DeconvHead(512, NUM_KEYPOINTS, num_upsample=3, channels=[256, 128])
    assert DeconvHead(512, NUM_KEYPOINTS, 3, channels=[64, 32, 16]).final.in_channels == 16
    with pytest.raises(ValueError, match="divisible by 4"):
        DUCHead(510, NUM_KEYPOINTS)


def test_head_output_starts_near_zero() -> None:
    """Small init: the untrained net predicts near-empty heatmaps (loss starts at the target's
    energy, not above it)."""
    net = PoseNet("resnet18", "duc", head_channels=[64, 32]).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 128, 96))
    assert out.abs().max() < 0.5


def test_simcc_head_outputs_x_and_y_bins() -> None:
    net = PoseNet("resnet18", "simcc", input_size=(128, 96), split_ratio=2.0, final_kernel=3)
    x, y = net(torch.randn(2, 3, 128, 96))
    assert x.shape == (2, NUM_KEYPOINTS, 192) and y.shape == (2, NUM_KEYPOINTS, 256)
    assert net.head.mlp[1].in_features == 4 * 3  # the stride-32 map, flattened
    with pytest.raises(ValueError, match="input_size"):
        PoseNet("resnet18", "simcc")


def test_fpn_head_merges_every_stage_from_stride_4() -> None:
    """ResNet-18's stride 4, 8, 16 and 32 stages each get a lateral 1x1 conv (the stride-2 stem
    is dropped); a stride-2 output takes the stem too, and its heatmaps are input / 2."""
    net = PoseNet("resnet18", "fpn", head_channels=32)
    assert isinstance(net.head, FPNHead)
    assert [c.in_channels for c in net.head.lateral] == [64, 128, 256, 512]
    assert net.head.final.out_channels == NUM_KEYPOINTS
    fine = PoseNet("resnet18", "fpn", head_channels=32, out_stride=2)
    assert [c.in_channels for c in fine.head.lateral] == [64, 64, 128, 256, 512]
    with torch.no_grad():
        assert fine(torch.randn(1, 3, 128, 96)).shape == (1, NUM_KEYPOINTS, 64, 48)
        assert net(torch.randn(1, 3, 128, 96)).abs().max() < 0.5  # small init, as the others
    with pytest.raises(ValueError, match="stage at stride 1"):
        PoseNet("resnet18", "fpn", out_stride=1)


def test_out_indices_build_a_shallower_backbone_for_every_head() -> None:
    """``backbone_kwargs.out_indices`` picks the stages built (the CPU default stops ResNet-18 at
    stride 16): the fpn head merges those from its stride, the others take the deepest."""
    stages = {"out_indices": [0, 1, 2, 3]}
    fpn = PoseNet("resnet18", "fpn", head_channels=32, out_stride=2, backbone_kwargs=stages)
    assert fpn.backbone.feature_info.reduction() == [2, 4, 8, 16]
    assert [c.in_channels for c in fpn.head.lateral] == [64, 64, 128, 256]
    assert not any("layer4" in name for name, _ in fpn.named_parameters())
    whole = PoseNet("resnet18", "fpn", head_channels=32, out_stride=2)
    assert count_parameters(fpn) < count_parameters(whole) / 3
    deconv = PoseNet("resnet18", "deconv", head_channels=32, out_stride=2, backbone_kwargs=stages)
    with torch.no_grad():
        assert fpn(torch.randn(1, 3, 128, 96)).shape == (1, NUM_KEYPOINTS, 64, 48)
        assert deconv(torch.randn(1, 3, 128, 96)).shape == (1, NUM_KEYPOINTS, 64, 48)


def test_duc_default_widths_follow_the_number_of_upsamplings() -> None:
    """Without widths the DUC head takes FastPose's for its upsamplings: (1024, 512) for three
    (stride 32 -> 4), (512,) for two (the CPU default's stride-16 ResNet-18 -> 4)."""
    assert [m.conv.out_channels for m in DUCHead(2048, num_upsample=3).upsample[1:]] == [1024, 512]
    assert [m.conv.out_channels for m in DUCHead(256, num_upsample=2).upsample[1:]] == [512]
    net = PoseNet("resnet18", "duc", backbone_kwargs={"out_indices": [0, 1, 2, 3]})
    with torch.no_grad():
        assert net(torch.randn(1, 3, 128, 96)).shape == (1, NUM_KEYPOINTS, 32, 24)
