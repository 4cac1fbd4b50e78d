"""PoseModule: schedule, re-scoring, flip-test symmetry, decoding to image pixels, steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.checkpoints import trainer_checkpoint
from torch import nn

from fullbody.codecs import person_score
from fullbody.codecs.heatmap import HeatmapCodec
from fullbody.codecs.spec import TopDownSpec
from fullbody.errors import ConfigError
from fullbody.keypoints import FLIP_INDEX, NUM_KEYPOINTS
from fullbody.models.module import PoseModule
from fullbody.models.schedule import lr_factor

K = NUM_KEYPOINTS
SMALL = {"backbone": "resnet18", "head": "deconv", "head_channels": 32, "lr": 1e-3}


def _module(**kw) -> PoseModule:
    """A small module at 128x96, stride 4; decoding settings of the spec among ``kw``."""
    decoding = {k: kw.pop(k) for k in ("flip_test", "dark", "score_threshold") if k in kw}
    args = {**SMALL, "spec": TopDownSpec.standard((128, 96), **decoding), **kw}
    return PoseModule(**args)


def _batch(b: int = 2, size=(128, 96), seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h, w = size
    a = torch.tensor([[2.0, 0.0, 30.0], [0.0, 2.0, 40.0]], dtype=torch.float64)
    return {
        "image": torch.randn(b, 3, h, w, generator=g),
        "target_xy": torch.rand(b, K, 2, generator=g) * torch.tensor([w - 1.0, h - 1.0]),
        "target_weight": torch.ones(b, K),
        "crop_to_image": a.expand(b, 2, 3).clone(),
        "bbox": torch.tensor([[30.0, 40.0, 192.0, 256.0]]).expand(b, 4).clone(),
        "box_score": torch.full((b,), 0.9),
        "image_id": torch.arange(b, dtype=torch.int64),
        "person_id": torch.arange(100, 100 + b, dtype=torch.int64),
        "flipped": torch.zeros(b, dtype=torch.bool),
    }


def test_lr_factor_warmup_step_and_cosine() -> None:
    assert lr_factor(0, 100, warmup_steps=10, warmup_factor=0.1) == pytest.approx(0.1)
    assert lr_factor(5, 100, warmup_steps=10, warmup_factor=0.1) == pytest.approx(0.55)
    assert lr_factor(10, 100, warmup_steps=10, milestones=[50, 80]) == 1.0
    assert lr_factor(50, 100, milestones=[50, 80], gamma=0.1) == pytest.approx(0.1)
    assert lr_factor(99, 100, milestones=[50, 80], gamma=0.1) == pytest.approx(0.01)
    assert lr_factor(10, 110, warmup_steps=10, policy="cosine") == pytest.approx(1.0)
    assert lr_factor(60, 110, warmup_steps=10, policy="cosine") == pytest.approx(0.5)
    assert lr_factor(110, 110, warmup_steps=10, policy="cosine", min_factor=0.01) == pytest.approx(
        0.01
    )
    with pytest.raises(ValueError, match="unknown lr policy"):
        lr_factor(0, 10, policy="exp")


def test_person_score_is_box_score_times_mean_confident_score() -> None:
    scores = torch.tensor([[0.9, 0.5, 0.1, 0.0], [0.1, 0.1, 0.1, 0.1]])
    out = person_score(scores, torch.tensor([0.8, 1.0]), threshold=0.2)
    torch.testing.assert_close(out, torch.tensor([0.8 * 0.7, 0.0]))


class _Fixed(nn.Module):
    """A stand-in network that returns given heatmaps whatever the input."""

    def __init__(self, heatmaps: torch.Tensor) -> None:
        super().__init__()
        self.heatmaps = heatmaps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heatmaps


@pytest.mark.parametrize("dark", [False, True])
def test_decode_to_image_pixels_through_inverse_affine(dark: bool) -> None:
    """Points encoded in the crop come back in image pixels through crop_to_image."""
    m = _module(flip_test=False, dark=dark).eval()
    codec = HeatmapCodec((128, 96), (32, 24), 2.0, dark=True)
    batch = _batch()
    g = torch.Generator().manual_seed(1)
    # At least 2 sigma (4 heatmap px = 16 crop px) inside the border, where DARK is exact.
    xy_in = 16 + torch.rand(2, K, 2, generator=g) * torch.tensor([96 - 32.0, 128 - 32.0])
    heatmaps, _ = codec.encode(codec.input_to_heatmap(xy_in), torch.ones(2, K))
    m._forward = _Fixed(heatmaps)
    with torch.no_grad():
        preds = m.predict_step(batch, 0)["preds"]
    expected = xy_in * 2.0 + torch.tensor([30.0, 40.0])  # the batch's affine: scale 2, shift
    err = (preds["keypoints"][..., :2] - expected).abs().max()
    # Image px = 2 crop px = 8 heatmap px: DARK ~0.05 hm px, the quarter-pixel shift ~0.25.
    assert err < (0.5 if dark else 2.2)
    # Scores are the peak pixel's value: 1 at the centre, >= exp(-0.5^2/(2 sigma^2)) off it.
    assert preds["keypoints"][..., 2].min() > 0.88
    assert ((preds["score"] > 0.9 * 0.88) & (preds["score"] <= 0.9)).all()
    assert preds["person_id"].tolist() == [100, 101]
    assert preds["keypoints"].shape == (2, K, 3)


@pytest.mark.parametrize("dark", [False, True])
def test_flip_test_is_exactly_mirror_symmetric(dark: bool) -> None:
    """With flip testing, predicting on a mirrored crop gives the mirrored, left/right-swapped
    points of the original crop: for any network, trained or not."""
    torch.manual_seed(0)
    m = _module(flip_test=True, dark=dark).eval()
    batch = _batch(b=2, seed=3)
    mirrored = dict(batch, image=batch["image"].flip(-1))
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    batch["crop_to_image"] = mirrored["crop_to_image"] = eye.expand(2, 2, 3).clone()
    with torch.no_grad():
        a = m.predict_step(batch, 0)["preds"]["keypoints"]
        b = m.predict_step(mirrored, 0)["preds"]["keypoints"]
    w_in = 96
    b_back = b[:, torch.as_tensor(np.array(FLIP_INDEX))].clone()
    b_back[..., 0] = (w_in - 1) - b_back[..., 0]
    # Exact up to float32 rounding (DARK's blur sums in a different order when mirrored).
    torch.testing.assert_close(b_back, a, atol=1e-3 if dark else 1e-5, rtol=0)


def test_training_loss_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    m = _module()
    batch = _batch(b=2)
    out = m._loss(batch, m(batch["image"]), batch["image"])
    out.loss.backward()
    assert out.loss.item() > 0 and out.kd is None
    assert set(out.parts) == {"body", "foot", "face", "lefthand", "righthand"}
    # timm zero-initialises each residual block's last BN, so inside the blocks gradients start
    # at exactly zero; the stem and the whole head must receive them from the first step.
    grads = {n: p.grad for n, p in m.named_parameters()}
    checked = ["net.backbone.conv1.weight"] + [n for n in grads if n.startswith("net.head.")]
    assert [n for n in checked if grads[n] is None or not grads[n].abs().sum() > 0] == []


def test_sizes_are_checked() -> None:
    """Bad sizes are the user's to fix: a ConfigError naming the model.* key (exit 2)."""
    with pytest.raises(ConfigError, match="model.spec.stride must be one of"):  # not a doubling
        _module(spec=TopDownSpec.standard((128, 96), stride=3))
    with pytest.raises(ConfigError, match="multiples of the heatmap stride 8"):
        _module(spec=TopDownSpec.standard((132, 96), stride=8))
    fine = _module(head="fpn", spec=TopDownSpec.standard((128, 96), stride=2))  # uses the stem
    assert fine(torch.zeros(1, 3, 128, 96)).shape == (1, K, 64, 48)
    with pytest.raises(
        ConfigError, match=r"model\.spec\.input_size=\[192, 144\] must be multiples of 32"
    ):
        _module(spec=TopDownSpec.standard((192, 144)))
    with pytest.raises(ConfigError, match=r"model\.head=hrnet: unknown head"):
        _module(head="hrnet")


def test_teacher_checkpoint_gives_kd_term(tmp_path) -> None:
    trainer_checkpoint(_module(), tmp_path / "teacher.ckpt")
    student = _module(teacher_ckpt=str(tmp_path / "teacher.ckpt"), kd_weight=0.5)
    assert student._teacher is not None and not student._teacher.training
    assert not any(k.startswith("_teacher") for k in student.state_dict())
    batch = _batch()
    out = student._loss(batch, student(batch["image"]), batch["image"])
    assert out.kd is not None and math.isfinite(out.kd.item())
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        _module(teacher_ckpt=str(tmp_path / "missing.ckpt"), kd_weight=0.5)


@pytest.mark.parametrize("teacher", [None, ""])
def test_a_kd_weight_without_a_teacher_is_refused(teacher) -> None:
    """It trained a plain student with a KD weight that did nothing."""
    with pytest.raises(ConfigError, match=r"model\.kd_weight=0\.5 needs a teacher"):
        _module(teacher_ckpt=teacher, kd_weight=0.5)


# ---------------------------------------------------------------------------- SimCC head
def test_simcc_module_decodes_to_image_pixels_and_is_flip_symmetric() -> None:
    from fullbody.codecs import SimCCCodec

    torch.manual_seed(0)
    m = _module(head="simcc", flip_test=False).eval()
    assert isinstance(m.codec, SimCCCodec) and m.codec.bins == (192, 256)
    batch = _batch()
    g = torch.Generator().manual_seed(1)
    xy_in = 2 + torch.rand(2, K, 2, generator=g) * torch.tensor([92.0, 124.0])
    m._forward = _Fixed(m.codec.encode(xy_in))
    with torch.no_grad():
        preds = m.predict_step(batch, 0)["preds"]
    expected = xy_in * 2.0 + torch.tensor([30.0, 40.0])  # the batch's affine
    assert (preds["keypoints"][..., :2] - expected).abs().max() < 0.2  # 0.1 crop px
    # flip test: predicting on the mirrored crop gives the mirrored, swapped points
    m = _module(head="simcc", flip_test=True).eval()
    batch = _batch(b=2, seed=3)
    mirrored = dict(batch, image=batch["image"].flip(-1))
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    batch["crop_to_image"] = mirrored["crop_to_image"] = eye.expand(2, 2, 3).clone()
    with torch.no_grad():
        a = m.predict_step(batch, 0)["preds"]["keypoints"]
        b = m.predict_step(mirrored, 0)["preds"]["keypoints"]
    b_back = b[:, torch.as_tensor(np.array(FLIP_INDEX))].clone()
    b_back[..., 0] = 95 - b_back[..., 0]
    # the edge bin of x has no mirror partner (one of 192), so compare away from it
    inner = (a[..., 0] > 1) & (a[..., 0] < 94)
    torch.testing.assert_close(b_back[inner], a[inner], atol=1e-4, rtol=0)


def test_simcc_teacher_gives_kd_term_and_heads_must_match(tmp_path) -> None:
    trainer_checkpoint(_module(head="simcc"), tmp_path / "simcc.ckpt")
    student = _module(head="simcc", teacher_ckpt=str(tmp_path / "simcc.ckpt"), kd_weight=0.5)
    batch = _batch()
    out = student._loss(batch, student(batch["image"]), batch["image"])
    assert out.kd is not None and out.kd.item() > 0
    torch.testing.assert_close(out.loss, out.hard + 0.5 * out.kd)
    with pytest.raises(ValueError, match="its kind is simcc, this model's is heatmap"):
        _module(teacher_ckpt=str(tmp_path / "simcc.ckpt"), kd_weight=0.5)


def test_simcc_training_loss_reaches_the_head_and_refuses_the_stn() -> None:
    torch.manual_seed(0)
    m = _module(head="simcc")
    batch = _batch(b=2)
    out = m._loss(batch, m(batch["image"]), batch["image"])
    out.loss.backward()
    assert out.loss.item() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.net.head.parameters())
    with pytest.raises(ValueError, match="heatmap head"):
        _module(head="simcc", stn=True)


def _fake_trainer(max_epochs: int | None, max_steps: int, batches: int = 4):
    from types import SimpleNamespace

    dm = SimpleNamespace(train_dataloader=lambda: list(range(batches)))
    return SimpleNamespace(
        datamodule=dm,
        limit_train_batches=1.0,
        accumulate_grad_batches=1,
        max_epochs=max_epochs,
        max_steps=max_steps,
    )


def test_schedule_without_epoch_limit_is_sized_by_max_steps() -> None:
    """max_epochs=-1 with max_steps: the schedule spans max_steps (not one epoch, which left
    the rest of the run at learning rate 0); milestones stay in epochs of 4 steps."""
    from fullbody.models.schedule import epoch_steps, stepping_batches

    assert stepping_batches(_fake_trainer(-1, 30)) == 30
    assert epoch_steps(_fake_trainer(-1, 30)) == 4
    assert stepping_batches(_fake_trainer(3, -1)) == 12
    assert stepping_batches(_fake_trainer(3, 5)) == 5
    assert stepping_batches(_fake_trainer(-1, -1)) is None  # the time budget sizes it


def test_adam_is_the_fused_kernel_on_the_cpu() -> None:
    """One fused pass over all parameters (the per-tensor loop PyTorch picks off CUDA took a
    fifth of a CPU step), with the configured hyper-parameters."""
    m = _module(lr=3e-3, weight_decay=1e-4)
    object.__setattr__(m, "_trainer", _fake_trainer(2, -1))
    opt = m.configure_optimizers()["optimizer"]
    assert opt.defaults["fused"] is True
    assert opt.defaults["lr"] == 3e-3 and opt.defaults["weight_decay"] == 1e-4
