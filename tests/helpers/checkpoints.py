"""Tiny PoseModules and their checkpoints, built in the test (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn

from fullbody.codecs.spec import TopDownSpec
from fullbody.models.module import PoseModule

#: Small crops keep the tests fast; heatmaps are a quarter of them, as the heads produce.
INPUT_SIZE = (96, 64)
HEATMAP_SIZE = (24, 16)
#: The spec of these models (the standard values at INPUT_SIZE), heatmaps and SimCC.
SPEC = TopDownSpec.standard(INPUT_SIZE, "heatmap")
SIMCC_SPEC = TopDownSpec.standard(INPUT_SIZE, "simcc")


def tiny_module(**kwargs) -> PoseModule:
    """A real PoseModule with timm's smallest ResNet and a narrow deconv head, its head
    re-drawn so that heatmaps are of order 1 (the head's small initialisation gives ~1e-9,
    which would make any parity check pass)."""
    torch.manual_seed(0)
    args = dict(
        backbone="test_resnet",
        head="deconv",
        head_channels=32,
        spec=TopDownSpec.standard(INPUT_SIZE),
        lr=1e-3,
        channels_last=False,
    )
    module = PoseModule(**{**args, **kwargs})
    for m in module.net.head.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight)
    return module


def save_checkpoint(module: PoseModule, path: Path) -> Path:
    """What Lightning's checkpoint holds for loading: weights, hyper-parameters, version."""
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": L.__version__,
        },
        path,
    )
    return path


def trainer_checkpoint(module: L.LightningModule, path: Path) -> Path:
    """A checkpoint as the Lightning Trainer writes it (what train.py saves), without training."""
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path
