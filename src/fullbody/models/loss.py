"""The distillation loss: confidence-weighted heatmap MSE, per-part weights, optional soft KD.

Hard term (the seed paper's): the student regresses the Gaussian heatmaps drawn at the
(pseudo-)label positions; keypoint k of sample b counts with its target weight ``w[b, k]`` —
the teacher's confidence for a pseudo-label, 1 for a human label, 0 when unlabelled — times its
part's weight::

    hard = 1/(B K) * sum_{b,k} part_w[k] * w[b,k] * mean_pixels (pred[b,k] - target[b,k])^2

The weight multiplies the squared error (not the heatmaps before squaring, as mmpose's
``KeypointMSELoss`` does), so a point labelled with confidence 0.5 pulls half as hard.

Foreground weighting (``foreground_weight`` a > 0): each pixel's squared error is multiplied by
``1 + a * target``, so the few pixels under a Gaussian outweigh the hundreds of background pixels.
From scratch a plain MSE first settles on the all-zero heatmap (on 32x24 maps with sigma 2 that
scores 0.016 per map already); weighting the peaks pulls the network off that plateau sooner
(docs/training.md).

Soft term (optional, DWPose-style logit distillation): the same MSE against a frozen teacher
network's heatmaps, every keypoint weight 1 (times its part weight)::

    total = hard + kd_weight * kd

Per-part values (for ``train/loss/<part>``) are each part's target-weighted mean without the
part weight, so ``hard = sum_p part_w[p] * (|p| / K) * part_loss[p]``.

:class:`SimCCLoss` is the same weighting for SimCC heads, with RTMPose's per-point error: the
KL divergence from the label distribution ``softmax(beta * target)`` to the prediction
``softmax(beta * logits)``, summed over the bins of each axis and over the two axes; its soft
term uses the frozen teacher's ``softmax(beta * teacher_logits)`` as labels (DWPose's logit
distillation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fullbody.codecs.topdown import is_channels_last
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES, part_factors

Pair = tuple[Tensor, Tensor]


def part_weight_vector(
    part_weights: Mapping[str, float] | None, num_keypoints: int = NUM_KEYPOINTS
) -> Tensor:
    """(K,) per-keypoint loss weights from ``{part: weight}`` (``model.part_weights``; unnamed
    parts weigh 1; the data side's ``pseudo_part_weights`` scale pseudo-label targets instead)."""
    factors = torch.from_numpy(part_factors(part_weights, "model.part_weights")).float()
    w = torch.ones(num_keypoints)
    n = min(num_keypoints, NUM_KEYPOINTS)
    w[:n] = factors[:n]
    return w


@dataclass
class LossOutput:
    """Everything the loss computed: ``loss`` to back-propagate, the rest detached for logs."""

    loss: Tensor
    hard: Tensor
    kd: Tensor | None = None
    parts: dict[str, Tensor] = field(default_factory=dict)


class DistillationLoss(nn.Module):
    """Weighted heatmap MSE (+ optional soft-target term against a teacher's heatmaps)."""

    def __init__(
        self,
        part_weights: Mapping[str, float] | None = None,
        kd_weight: float = 0.0,
        num_keypoints: int = NUM_KEYPOINTS,
        foreground_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if kd_weight < 0:
            raise ValueError(f"kd_weight must be >= 0, got {kd_weight}")
        if foreground_weight < 0:
            raise ValueError(f"foreground_weight must be >= 0, got {foreground_weight}")
        self.kd_weight = float(kd_weight)
        self.foreground_weight = float(foreground_weight)
        self.register_buffer(
            "keypoint_weight", part_weight_vector(part_weights, num_keypoints), persistent=False
        )

    @staticmethod
    def per_keypoint_mse(pred: Tensor, target: Tensor, foreground_weight: float = 0.0) -> Tensor:
        """(B,K,h,w) x2 -> (B,K) mean squared error over pixels, in float32; each pixel's error
        times ``1 + foreground_weight * target`` (the target heatmap's value there).

        Computed in the prediction's memory layout (a target in another one is copied to it):
        on a CPU, element-wise ops between a channels-last and a standard-layout map are
        several times slower, and so are copies of the maps between layouts. Written as a
        product and a sum, whose backward passes keep the layout (``pow``/``mean`` backward
        write fresh standard-layout tensors), which more than halves the loss's forward + backward
        on the CPU default's bf16 channels-last maps (docs/results.md).
        """
        if pred.shape != target.shape:
            raise ValueError(f"heatmap shapes differ: pred {pred.shape}, target {target.shape}")
        fmt = torch.channels_last if is_channels_last(pred) else torch.contiguous_format
        target = target.contiguous(memory_format=fmt)
        diff = (pred - target).float()  # float32 by type promotion against float32 targets
        err = diff * diff
        if foreground_weight > 0:
            err = err * (1.0 + foreground_weight * target.float())
        return err.sum(dim=(2, 3)) / (pred.shape[-1] * pred.shape[-2])

    def forward(
        self,
        pred: Any,
        target: Any,
        target_weight: Tensor,
        teacher: Any = None,
        kd_weight: float | None = None,
    ) -> LossOutput:
        """``pred``/``target``/``teacher``: (B,K,h,w) (pairs for :class:`SimCCLoss`);
        ``target_weight``: (B,K).

        ``kd_weight`` overrides the configured weight for this call (e.g. a decaying schedule).
        A teacher map of another size is resized bilinearly to the student's.
        """
        err = self.per_keypoint_error(pred, target)  # (B,K)
        B, K = err.shape
        if target_weight.shape != (B, K):
            raise ValueError(f"target_weight must be {(B, K)}, got {tuple(target_weight.shape)}")
        kw = self.keypoint_weight.to(err.device)
        err = err * target_weight.float()
        hard = (err * kw).mean()
        parts = {p: err[:, s].mean().detach() for p, s in PART_SLICES.items() if s.stop <= K}
        loss, kd = hard, None
        w_kd = self.kd_weight if kd_weight is None else float(kd_weight)
        if teacher is not None:
            kd = (self.per_keypoint_kd(pred, teacher) * kw).mean()
            loss = hard + w_kd * kd
            kd = kd.detach()
        return LossOutput(loss=loss, hard=hard.detach(), kd=kd, parts=parts)

    def per_keypoint_error(self, pred: Tensor, target: Tensor) -> Tensor:
        """(B,K) error of each keypoint against its label target (foreground-weighted)."""
        return self.per_keypoint_mse(pred, target, self.foreground_weight)

    def per_keypoint_kd(self, pred: Tensor, teacher: Tensor) -> Tensor:
        """(B,K) error against the teacher's outputs (resized bilinearly to the student's)."""
        if teacher.shape[-2:] != pred.shape[-2:]:
            teacher = F.interpolate(
                teacher.float(), size=pred.shape[-2:], mode="bilinear", align_corners=False
            )
        return self.per_keypoint_mse(pred, teacher.detach())


class SimCCLoss(DistillationLoss):
    """Weighted SimCC KL divergence (+ optional soft term against a teacher's SimCC logits).

    ``pred``, ``target`` and ``teacher`` are ``(x, y)`` pairs of (B,K,bins) tensors; the
    targets are the codec's Gaussian labels (peak 1), turned into distributions by a softmax at
    temperature ``1 / beta`` (RTMPose: ``beta = 10``).
    """

    def __init__(
        self,
        part_weights: Mapping[str, float] | None = None,
        kd_weight: float = 0.0,
        num_keypoints: int = NUM_KEYPOINTS,
        beta: float = 10.0,
    ) -> None:
        super().__init__(part_weights, kd_weight, num_keypoints)
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = float(beta)

    def kl(self, pred: Pair, labels: Pair) -> Tensor:
        """(B,K) KL(softmax(beta*labels) || softmax(beta*pred)), summed over bins and axes."""
        total = 0.0
        for p, t in zip(pred, labels, strict=True):
            if p.shape != t.shape:
                raise ValueError(f"SimCC shapes differ: pred {tuple(p.shape)}, target {t.shape}")
            log_p = F.log_softmax(p.float() * self.beta, -1)
            log_t = F.log_softmax(t.float() * self.beta, -1)
            total = total + (log_t.exp() * (log_t - log_p)).sum(-1)
        return total

    def per_keypoint_error(self, pred: Pair, target: Pair) -> Tensor:
        return self.kl(pred, target)

    def per_keypoint_kd(self, pred: Pair, teacher: Pair) -> Tensor:
        return self.kl(pred, tuple(t.detach() for t in teacher))
