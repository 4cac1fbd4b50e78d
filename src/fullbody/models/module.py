"""``PoseModule``: the student as a LightningModule (train, validate, test, predict).

Training: targets are rendered from the batch's keypoints by :class:`HeatmapCodec` on the
training device, the loss is :class:`DistillationLoss` (optionally against a frozen teacher).
Evaluation: flip test, argmax/DARK decoding, inverse affine to image pixels; every evaluation
step returns ``{"preds": {...}}`` as in CONTRACTS.md, which the evaluation callback gathers.

Precision (bf16 autocast on GPU) is the Trainer's ``precision`` setting; channels-last and
``torch.compile`` are options here. Checkpoints also carry the RNG states so that a resumed run
draws the same batches as an uninterrupted one (exact resume).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from fullbody.codecs.heatmap import HeatmapCodec, crop_to_image_points, flip_heatmaps
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.loss import DistillationLoss
from fullbody.models.network import PoseNet
from fullbody.models.stn import ParallelSPPE, STNOutput, STNPoseNet, stn_statistics


def person_score(keypoint_scores: Tensor, box_score: Tensor, threshold: float = 0.2) -> Tensor:
    """Box score x mean of the keypoint scores above ``threshold`` (0 when none is).

    (B,K), (B,) -> (B,). The re-scoring of mmpose/AlphaPose top-down pipelines.
    """
    confident = keypoint_scores > threshold
    n = confident.sum(-1)
    mean = (keypoint_scores * confident).sum(-1) / n.clamp_min(1)
    return box_score.to(mean.dtype) * torch.where(n > 0, mean, torch.zeros_like(mean))


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_factor: float = 0.001,
    policy: str = "step",
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up from ``warmup_factor`` to 1 over ``warmup_steps``, then ``policy``:
    ``step`` multiplies by ``gamma`` at each milestone (in steps), ``cosine`` anneals from 1 to
    ``min_factor`` over the remaining steps, ``constant`` keeps 1.
    """
    if warmup_steps > 0 and step < warmup_steps:
        alpha = step / warmup_steps
        return warmup_factor + (1.0 - warmup_factor) * alpha
    if policy == "step":
        return gamma ** sum(step >= m for m in milestones)
    if policy == "cosine":
        span = max(1, total_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if policy == "constant":
        return 1.0
    raise ValueError(f"unknown lr policy {policy!r}; expected 'step', 'cosine' or 'constant'")


def epoch_steps(trainer: L.Trainer) -> int | None:
    """Optimizer steps of one training epoch, from the length of a fresh training DataLoader
    of the data module (None without a data module).

    Lightning's ``estimated_stepping_batches`` builds the training iterator when it is first
    asked, before a checkpoint is restored; on resume that iterator would serve the order of
    epoch 0.
    """
    dm = getattr(trainer, "datamodule", None)
    if dm is None:
        return None
    batches = len(dm.train_dataloader())
    limit = trainer.limit_train_batches
    batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    return math.ceil(batches / trainer.accumulate_grad_batches)


def stepping_batches(trainer: L.Trainer) -> int:
    """Optimizer steps of the whole run, as ``trainer.estimated_stepping_batches`` counts them
    (see :func:`epoch_steps`). Without an epoch limit (``max_epochs=-1``) ``max_steps`` sizes
    the run; with neither there is no schedule to size (ValueError)."""
    per_epoch = epoch_steps(trainer)
    if per_epoch is None:
        return int(trainer.estimated_stepping_batches)
    epochs = trainer.max_epochs
    if epochs is None or epochs < 0:
        if trainer.max_steps < 0:
            raise ValueError(
                "trainer.max_epochs=-1 (no limit) needs trainer.max_steps (the run's length)"
            )
        return trainer.max_steps
    total = per_epoch * epochs
    return min(total, trainer.max_steps) if trainer.max_steps != -1 else total


def _rng_states() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states, as types ``torch.load(weights_only=True)``
    accepts (so checkpoints stay loadable without unpickling arbitrary objects)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


class PoseModule(L.LightningModule):
    """Top-down whole-body student: timm backbone + heatmap head, trained by distillation.

    Args:
        backbone, head, pretrained, head_channels, final_kernel, backbone_kwargs: the network
            (see :class:`fullbody.models.network.PoseNet`); ``pretrained`` is ``False`` or a
            local timm checkpoint file.
        input_size, heatmap_size, sigma: the codec, (height, width); heatmaps are 1/4 of input.
        part_weights: loss weight of each part, e.g. ``{"face": 1.0, "lefthand": 2.0}``.
        foreground_weight: heatmap pixels weigh ``1 + foreground_weight * target`` in the loss
            (0: plain MSE), to leave the all-zero plateau of training from scratch quickly.
        teacher_ckpt: a checkpoint of this project (a ``PoseModule``, e.g. a larger student)
            whose heatmaps are soft targets; ``kd_weight`` weighs that term and ``kd_decay``
            ('none' or 'linear' to zero at the end of training, as DWPose) schedules it.
        lr, weight_decay, betas: Adam; ``lr`` is per run, not per GPU (see docs/training.md).
        lr_policy, milestones (epochs), gamma, min_lr_factor, warmup_epochs, warmup_factor:
            the schedule (updated every optimiser step).
        flip_test, dark, score_threshold: evaluation decoding and person re-scoring.
        stn, stn_kwargs: RMPE's symmetric spatial transformer around the network
            (:class:`fullbody.models.stn.STNPoseNet` and its bounds); heatmaps stay in the
            input crop's frame, so decoding and evaluation are unchanged (docs/rmpe.md).
        parallel_sppe, parallel_sppe_weight, parallel_sppe_ckpt, parallel_sppe_recentre:
            RMPE's frozen parallel SPPE (training only; needs ``stn``): a heatmap loss on the
            transformed crop against the labels re-centred there, times the weight; the frozen
            network is the current one, detached, or the SPPE of a checkpoint of this project.
        channels_last, compile, compile_mode: speed options.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        head: str = "duc",
        pretrained: bool | str = False,
        head_channels: int | Sequence[int] | None = None,
        final_kernel: int | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
        input_size: Sequence[int] = (256, 192),
        heatmap_size: Sequence[int] = (64, 48),
        sigma: float = 2.0,
        part_weights: Mapping[str, float] | None = None,
        foreground_weight: float = 0.0,
        teacher_ckpt: str | None = None,
        kd_weight: float = 0.0,
        kd_decay: str = "none",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        betas: Sequence[float] = (0.9, 0.999),
        lr_policy: str = "step",
        milestones: Sequence[float] = (170, 200),
        gamma: float = 0.1,
        min_lr_factor: float = 0.0,
        warmup_epochs: float = 0.0,
        warmup_factor: float = 0.001,
        flip_test: bool = True,
        dark: bool = True,
        score_threshold: float = 0.2,
        channels_last: bool = True,
        compile: bool = False,
        compile_mode: str | None = None,
        num_keypoints: int = NUM_KEYPOINTS,
        stn: bool = False,
        stn_kwargs: Mapping[str, Any] | None = None,
        parallel_sppe: bool = False,
        parallel_sppe_weight: float = 1.0,
        parallel_sppe_ckpt: str | None = None,
        parallel_sppe_recentre: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        input_size, heatmap_size = tuple(input_size), tuple(heatmap_size)
        if heatmap_size != (input_size[0] // 4, input_size[1] // 4):
            raise ValueError(
                f"heatmap_size {heatmap_size} must be input_size {input_size} / 4 (the heads "
                "upsample to stride 4)"
            )
        if kd_decay not in ("none", "linear"):
            raise ValueError(f"kd_decay must be 'none' or 'linear', got {kd_decay!r}")
        if parallel_sppe and not stn:
            raise ValueError("model.parallel_sppe=true needs model.stn=true (it trains the SSTN)")
        self.net = PoseNet(
            backbone=backbone,
            head=head,
            num_keypoints=num_keypoints,
            pretrained=pretrained,
            head_channels=head_channels,
            final_kernel=final_kernel,
            backbone_kwargs=backbone_kwargs,
        )
        stride = self.net.backbone.feature_info.reduction()[-1]
        if input_size[0] % stride or input_size[1] % stride:
            raise ValueError(
                f"input_size {input_size} must be multiples of {stride}, the stride of "
                f"{backbone}'s last stage (e.g. 256x192, 128x96, 384x288)"
            )
        if stn:
            self.net = STNPoseNet(self.net, **(stn_kwargs or {}))
        self.codec = HeatmapCodec(input_size, heatmap_size, sigma)
        self.parallel_sppe: ParallelSPPE | None = None
        if parallel_sppe:
            ref = None
            if parallel_sppe_ckpt:
                ref = self._load_frozen(parallel_sppe_ckpt, "model.parallel_sppe_ckpt")
                ref = ref.pose_net if isinstance(ref, STNPoseNet) else ref  # the SPPE alone
            self.parallel_sppe = ParallelSPPE(self.codec, ref, parallel_sppe_recentre)
        self.loss = DistillationLoss(part_weights, kd_weight, num_keypoints, foreground_weight)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        # Neither the teacher nor the compiled wrapper is a registered submodule: they must not
        # enter the state dict (the compiled one shares the net's parameters anyway).
        teacher = (
            self._load_frozen(teacher_ckpt, "model.teacher_ckpt")
            if teacher_ckpt and kd_weight > 0
            else None
        )
        forward = torch.compile(self.net, mode=compile_mode) if compile else self.net
        object.__setattr__(self, "_teacher", teacher)
        object.__setattr__(self, "_forward", forward)
        self._resume_rng: dict[str, Any] | None = None

    # ------------------------------------------------------------------ network
    @staticmethod
    def _load_frozen(path: str, key: str) -> nn.Module:
        """The network of a checkpoint of this project, frozen (``key``: the setting naming it)."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"{file}: checkpoint not found ({key})")
        teacher = PoseModule.load_from_checkpoint(
            file, map_location="cpu", teacher_ckpt=None, parallel_sppe_ckpt=None, compile=False
        ).net
        teacher.eval().requires_grad_(False)
        return teacher

    def forward(self, image: Tensor) -> Tensor:
        """(B,3,H,W) normalised crops -> (B,K,H/4,W/4) heatmaps."""
        return self._forward(image.contiguous(memory_format=self.memory_format))

    def predict_heatmaps(self, image: Tensor, flip_test: bool | None = None) -> Tensor:
        """Heatmaps in float32, averaged with those of the mirrored crop when flip testing."""
        flip = self.hparams.flip_test if flip_test is None else flip_test
        heatmaps = self(image).float()
        if flip:
            heatmaps = 0.5 * (heatmaps + flip_heatmaps(self(image.flip(-1)).float()))
        return heatmaps

    def decode(self, heatmaps: Tensor, crop_to_image: Tensor) -> tuple[Tensor, Tensor]:
        """(B,K,h,w) heatmaps -> (B,K,2) image pixels and (B,K) keypoint scores."""
        xy_hm, scores = self.codec.decode(heatmaps, dark=self.hparams.dark)
        xy_img = crop_to_image_points(self.codec.heatmap_to_input(xy_hm), crop_to_image)
        return xy_img, scores

    # ------------------------------------------------------------------ steps
    def _kd_weight(self) -> float:
        w = self.hparams.kd_weight
        if self.hparams.kd_decay == "linear" and self._trainer is not None:
            total = max(1.0, float(self.trainer.estimated_stepping_batches))
            w *= max(0.0, 1.0 - self.global_step / total)
        return w

    def _loss(self, batch: Mapping[str, Tensor], heatmaps: Tensor, image: Tensor | None = None):
        target, weight = self.codec.encode(batch["target_xy"], batch["target_weight"])
        teacher = None
        if self._teacher is not None and image is not None:
            with torch.no_grad():
                teacher = self._teacher(image.contiguous(memory_format=self.memory_format))
        return self.loss(heatmaps, target, weight, teacher, kd_weight=self._kd_weight())

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        image = batch["image"]
        bs = image.shape[0]
        if isinstance(self.net, STNPoseNet):
            stn = self.net.forward_detailed(image.contiguous(memory_format=self.memory_format))
            out = self._loss(batch, stn.heatmaps, image)
            loss = out.loss + self._parallel_sppe_loss(batch, stn)
            for name, value in stn_statistics(stn.theta, image.shape[-2:]).items():
                self.log(f"train/stn/{name}", value, batch_size=bs)
        else:
            out = self._loss(batch, self(image), image)
            loss = out.loss
        # No prog_bar: Lightning turns progress-bar metrics into Python numbers every step, a
        # device synchronisation that measurably slows GPU training (benchmarks/bench_train.py).
        self.log("train/loss", loss, batch_size=bs)
        for part, value in out.parts.items():
            self.log(f"train/loss/{part}", value, batch_size=bs)
        if out.kd is not None:
            self.log("train/loss_hard", out.hard, batch_size=bs)
            self.log("train/loss_kd", out.kd, batch_size=bs)
            self.log("train/kd_weight", self._kd_weight(), batch_size=bs)
        return loss

    def _parallel_sppe_loss(self, batch: Mapping[str, Tensor], stn: STNOutput) -> Tensor | float:
        """RMPE's parallel SPPE term (weighted; 0 when the option is off)."""
        if self.parallel_sppe is None:
            return 0.0
        xy, weight = batch["target_xy"], batch["target_weight"]
        branch = self.loss(*self.parallel_sppe(self.net.pose_net, stn, xy, weight)).loss
        self.log("train/loss_parallel_sppe", branch.detach(), batch_size=xy.shape[0])
        return self.hparams.parallel_sppe_weight * branch

    def _evaluate(self, batch: Mapping[str, Tensor], stage: str | None) -> dict[str, Any]:
        image = batch["image"]
        heatmaps = self.predict_heatmaps(image)
        if stage is not None and "target_xy" in batch:
            # Loss on the flip-averaged heatmaps: what the decoder sees.
            out = self._loss(batch, heatmaps)
            self.log(f"{stage}/loss", out.hard, batch_size=image.shape[0], sync_dist=True)
        xy, scores = self.decode(heatmaps, batch["crop_to_image"])
        box_score = batch["box_score"].to(scores.dtype)
        return {
            "preds": {
                "image_id": batch["image_id"],
                "person_id": batch["person_id"],
                "keypoints": torch.cat([xy, scores.unsqueeze(-1)], -1),
                "score": person_score(scores, box_score, self.hparams.score_threshold),
                "bbox": batch["bbox"],
            }
        }

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._evaluate(batch, "val")

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Any]:
        return self._evaluate(batch, None)

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer else None
        for name in ("input_size", "heatmap_size"):
            theirs = getattr(dm, name, None)
            ours = tuple(self.hparams[name])
            if theirs is not None and tuple(theirs) != ours:
                raise ValueError(
                    f"model.{name}={list(ours)} but the data module's {name} is {list(theirs)}"
                )

    def on_fit_start(self) -> None:
        if self._teacher is not None:
            self._teacher.to(self.device)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.Adam(
            self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, betas=tuple(hp.betas)
        )
        total = stepping_batches(self.trainer)
        epochs = self.trainer.max_epochs
        per_epoch = epoch_steps(self.trainer) or (
            total / epochs if epochs and epochs > 0 else float(total)
        )
        warmup = round(hp.warmup_epochs * per_epoch)
        milestones = [round(m * per_epoch) for m in hp.milestones]

        def factor(step: int) -> float:
            return lr_factor(
                step,
                total,
                warmup,
                hp.warmup_factor,
                hp.lr_policy,
                milestones,
                hp.gamma,
                hp.min_lr_factor,
            )

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"},
        }

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = _rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Restored now (the training iterator is created before any later hook), and again
        # after a sanity check if one runs, since its data loader draws from the RNG too.
        self._resume_rng = checkpoint.get("rng_states")
        if self._resume_rng is not None:
            _set_rng_states(self._resume_rng)

    def on_validation_end(self) -> None:
        if self._resume_rng is not None and self.trainer.sanity_checking:
            _set_rng_states(self._resume_rng)

    def on_train_start(self) -> None:
        self._resume_rng = None
