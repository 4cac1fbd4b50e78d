"""DistillationLoss: confidence weighting, part weights, per-part values, the KD term."""

from __future__ import annotations

import pytest
import torch

from fullbody.codecs import is_channels_last
from fullbody.errors import ConfigError
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES
from fullbody.models.loss import DistillationLoss, SimCCLoss, part_weight_vector

K = NUM_KEYPOINTS


def _maps(seed: int, b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, K, 8, 6, generator=g), torch.rand(b, K, 8, 6, generator=g)


def test_matches_hand_computed_weighted_mse() -> None:
    pred, target = _maps(0)
    w = torch.rand(2, K)
    out = DistillationLoss()(pred, target, w)
    expected = (((pred - target) ** 2).mean((2, 3)) * w).mean()
    torch.testing.assert_close(out.loss, expected)
    assert out.kd is None


def test_zero_weight_points_do_not_contribute_or_get_gradients() -> None:
    pred, target = _maps(1)
    pred.requires_grad_(True)
    w = torch.ones(2, K)
    w[0, 5] = 0.0
    w[1, PART_SLICES["face"]] = 0.0
    DistillationLoss()(pred, target, w).loss.backward()
    assert pred.grad[0, 5].abs().sum() == 0
    assert pred.grad[1, PART_SLICES["face"]].abs().sum() == 0
    assert pred.grad[0, 6].abs().sum() > 0


def test_confidence_scales_a_point_linearly() -> None:
    pred, target = _maps(2, b=1)
    loss = DistillationLoss()
    w = torch.zeros(1, K)
    w[0, 3] = 1.0
    full = loss(pred, target, w).loss
    w[0, 3] = 0.25
    torch.testing.assert_close(loss(pred, target, w).loss, 0.25 * full)


def test_part_weights_and_per_part_values() -> None:
    pred, target = _maps(3)
    w = torch.rand(2, K)
    pw = {"face": 0.5, "lefthand": 2.0, "righthand": 2.0}
    out = DistillationLoss(part_weights=pw)(pred, target, w)
    err = ((pred - target) ** 2).mean((2, 3)) * w
    for part, s in PART_SLICES.items():
        torch.testing.assert_close(out.parts[part], err[:, s].mean())
    recombined = sum(
        pw.get(p, 1.0) * (s.stop - s.start) / K * out.parts[p] for p, s in PART_SLICES.items()
    )
    torch.testing.assert_close(out.loss, recombined)
    vec = part_weight_vector(pw)
    assert vec[PART_SLICES["body"]].eq(1).all() and vec[PART_SLICES["face"]].eq(0.5).all()


def test_part_weight_errors() -> None:
    with pytest.raises(ConfigError, match="model.part_weights: unknown part 'hands'"):
        part_weight_vector({"hands": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        part_weight_vector({"face": -1.0})


def test_kd_term_against_teacher_heatmaps() -> None:
    pred, target = _maps(4)
    teacher = torch.rand(2, K, 8, 6)
    w = torch.ones(2, K)
    loss = DistillationLoss(kd_weight=0.5)
    out = loss(pred, target, w, teacher)
    kd = ((pred - teacher) ** 2).mean()
    torch.testing.assert_close(out.kd, kd)
    torch.testing.assert_close(out.loss, out.hard + 0.5 * kd)
    # Per-call override (a decaying schedule) and a teacher at another resolution.
    torch.testing.assert_close(loss(pred, target, w, teacher, kd_weight=0.0).loss, out.hard)
    big = torch.nn.functional.interpolate(teacher, size=(16, 12), mode="bilinear")
    assert loss(pred, target, w, big).kd is not None
    # The teacher receives no gradient.
    pred.requires_grad_(True)
    teacher.requires_grad_(True)
    loss(pred, target, w, teacher).loss.backward()
    assert teacher.grad is None and pred.grad is not None


def test_shape_errors() -> None:
    pred, target = _maps(5)
    with pytest.raises(ValueError, match="target_weight"):
        DistillationLoss()(pred, target, torch.ones(2, K - 1))
    with pytest.raises(ValueError, match="shapes differ"):
        DistillationLoss()(pred, target[..., :4], torch.ones(2, K))


# ---------------------------------------------------------------------------- SimCC
def _vectors(seed: int, b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, K, 24, generator=g), torch.randn(b, K, 32, generator=g)


def _kl(pred, target, beta=10.0):
    p = torch.log_softmax(pred * beta, -1)
    t = torch.softmax(target * beta, -1)
    return (t * (t.log() - p)).sum(-1)


def test_simcc_loss_is_the_weighted_kl_of_both_axes() -> None:
    pred, target = _vectors(0), _vectors(1)
    w = torch.rand(2, K)
    out = SimCCLoss(beta=10.0)(pred, target, w)
    per_point = _kl(pred[0], target[0]) + _kl(pred[1], target[1])
    torch.testing.assert_close(out.loss, (per_point * w).mean())
    assert out.kd is None and set(out.parts) == set(PART_SLICES)
    # KL is zero when the prediction is the label
    assert SimCCLoss()(target, target, w).loss.abs() < 1e-5


def test_simcc_loss_honours_point_and_part_weights() -> None:
    pred, target = _vectors(2), _vectors(3)
    pred = tuple(p.requires_grad_(True) for p in pred)
    w = torch.ones(2, K)
    w[0, 5] = 0.0
    w[1, 7] = 0.5
    loss = SimCCLoss(part_weights={"face": 0.0})
    loss(pred, target, w).loss.backward()
    gx = pred[0].grad
    assert gx[0, 5].abs().sum() == 0 and gx[:, PART_SLICES["face"]].abs().sum() == 0
    assert gx[0, 6].abs().sum() > 0
    # half the confidence, half the pull
    full = SimCCLoss()(_vectors(2), target, torch.ones(2, K)).parts["body"]
    half = SimCCLoss()(_vectors(2), target, torch.full((2, K), 0.5)).parts["body"]
    torch.testing.assert_close(half, 0.5 * full)


def test_simcc_kd_term_against_a_teacher() -> None:
    pred, target, teacher = _vectors(4), _vectors(5), _vectors(6)
    w = torch.ones(2, K)
    out = SimCCLoss(kd_weight=0.5)(pred, target, w, teacher)
    kd = (_kl(pred[0], teacher[0]) + _kl(pred[1], teacher[1])).mean()
    torch.testing.assert_close(out.kd, kd)
    torch.testing.assert_close(out.loss, out.hard + 0.5 * kd)
    with pytest.raises(ValueError, match="beta"):
        SimCCLoss(beta=0)


def test_foreground_weight_scales_each_pixel_by_one_plus_weight_times_target() -> None:
    pred, target = _maps(5)
    w = torch.rand(2, K)
    out = DistillationLoss(foreground_weight=4.0)(pred, target, w)
    expected = ((((pred - target) ** 2) * (1 + 4.0 * target)).mean((2, 3)) * w).mean()
    torch.testing.assert_close(out.loss, expected)
    # a miss on a peak costs more than the same miss on the background
    flat = torch.zeros(1, K, 8, 6)
    peak = flat.clone()
    peak[0, :, 4, 3] = 1.0
    loss = DistillationLoss(foreground_weight=10.0)
    on_peak = loss(flat, peak, torch.ones(1, K)).loss  # predicted nothing where the peak is
    off_peak = loss(peak, flat, torch.ones(1, K)).loss  # predicted a peak on the background
    torch.testing.assert_close(on_peak, 11.0 * off_peak)
    with pytest.raises(ValueError, match="foreground_weight"):
        DistillationLoss(foreground_weight=-1.0)


def test_channels_last_bf16_maps_give_the_same_loss_and_gradients() -> None:
    """A channels-last bf16 network's maps against standard-layout or channels-last targets
    (the loss works in the prediction's layout): the same loss and gradients as from standard
    float32 maps, and the gradient keeps the prediction's layout."""
    pred, target = _maps(7)
    pred = pred.bfloat16().float()  # values a bf16 network can give
    w = torch.rand(2, K)
    a = pred.clone().requires_grad_(True)
    b = pred.bfloat16().to(memory_format=torch.channels_last).requires_grad_(True)
    c = b.detach().clone().requires_grad_(True)
    target_cl = target.contiguous(memory_format=torch.channels_last)
    la, lb = DistillationLoss()(a, target, w).loss, DistillationLoss()(b, target, w).loss
    lc = DistillationLoss(foreground_weight=0.0)(c, target_cl, w).loss
    for loss in (la, lb, lc):
        loss.backward()
    torch.testing.assert_close(la, lb)
    torch.testing.assert_close(la, lc)
    torch.testing.assert_close(a.grad, b.grad.float(), rtol=1e-2, atol=1e-7)
    torch.testing.assert_close(a.grad, c.grad.float(), rtol=1e-2, atol=1e-7)
    assert is_channels_last(b.grad) and is_channels_last(c.grad)
