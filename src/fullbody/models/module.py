"""``PoseModule``: the student as a LightningModule (train, validate, test, predict).

Training: targets are rendered from the batch's keypoints by the head's codec
(the model's :class:`fullbody.codecs.spec.TopDownSpec`: heatmaps, or SimCC vectors) on the
training device; the loss is :class:`DistillationLoss` or :class:`SimCCLoss` (optionally against
a frozen teacher). Evaluation: flip test, decoding and the inverse affine to image pixels, by
:mod:`fullbody.codecs.topdown`; every evaluation step returns ``{"preds": {...}}`` as in
CONTRACTS.md, which the evaluation callback gathers.

Precision (bf16 autocast on GPU) is the Trainer's ``precision`` setting; channels-last and
``torch.compile`` are options here. Checkpoints also carry the RNG states so that a resumed run
draws the same batches as an uninterrupted one (exact resume).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from fullbody.codecs.spec import TopDownSpec, spec_of
from fullbody.codecs.topdown import (
    Outputs,
    as_float,
    decode_to_image,
    flip_merge,
    is_channels_last,
    person_score,
)
from fullbody.errors import ConfigError
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.checkpoint import CheckpointError, restore
from fullbody.models.loss import DistillationLoss, SimCCLoss
from fullbody.models.network import PoseNet, head_codec
from fullbody.models.schedule import (
    Schedule,
    epoch_steps,
    rng_states,
    set_rng_states,
    stepping_batches,
)
from fullbody.models.stn import (
    LOC_LR_MULT,
    ParallelSPPE,
    STNOutput,
    STNPoseNet,
    stn_statistics,
)


def adam(
    params: Iterable[nn.Parameter] | Iterable[dict[str, Any]],
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Adam:
    """Adam as the student trains with it: the fused kernel (one pass over all parameters)
    where the parameters live on the CPU or a CUDA GPU: on a CPU an order of magnitude faster
    than the per-tensor loop PyTorch picks off CUDA (docs/results.md). ``params``: parameters
    or parameter groups (a group's own ``lr`` wins over ``lr``)."""
    params = list(params)
    tensors = [t for g in params for t in (g["params"] if isinstance(g, dict) else [g])]
    fused = all(p.device.type in ("cpu", "cuda") for p in tensors)
    return torch.optim.Adam(
        params, lr=lr, weight_decay=weight_decay, betas=betas, fused=True if fused else None
    )


class PoseModule(L.LightningModule):
    """Top-down whole-body student: timm backbone + heatmap or SimCC head, trained by distillation.

    Args:
        backbone, head, pretrained, head_channels, final_kernel, backbone_kwargs: the network
            (see :class:`fullbody.models.network.PoseNet`); ``pretrained`` is ``False`` or a
            local timm checkpoint file; ``head``: one of :data:`fullbody.models.network.HEADS`.
        spec: the top-down settings (:class:`fullbody.codecs.spec.TopDownSpec`, or the
            ``model.spec`` config block): input crop, codec, decoding; its codec kind is the
            head's (:data:`fullbody.models.network.HEADS`). Saved whole as the ``spec``
            hyper-parameter.
        simcc_beta: the SimCC loss's temperature (RTMPose: 10).
        part_weights: loss weight of each part, e.g. ``{"face": 1.0, "lefthand": 2.0}``.
        foreground_weight: heatmap pixels weigh ``1 + foreground_weight * target`` in the loss
            (0: plain MSE), to leave the all-zero plateau of training from scratch quickly.
        teacher_ckpt: a checkpoint of this project (a ``PoseModule``, e.g. a larger student)
            whose heatmaps are soft targets; ``kd_weight`` weighs that term and ``kd_decay``
            ('none' or 'linear' to zero at the end of training, as DWPose) schedules it.
        lr, weight_decay, betas: Adam; ``lr`` is per run, not per GPU (see docs/training.md).
        lr_policy, milestones (epochs), gamma, min_lr_factor, warmup_epochs, warmup_factor:
            the schedule (updated every optimiser step).
        stn, stn_kwargs: RMPE's symmetric spatial transformer around the network
            (:class:`fullbody.models.stn.STNPoseNet` and its bounds); heatmaps stay in the
            input crop's frame, so decoding and evaluation are unchanged (docs/rmpe.md).
            ``stn_kwargs.lr_mult`` scales the localisation network's learning rate
            (default :data:`fullbody.models.stn.LOC_LR_MULT`).
        parallel_sppe, parallel_sppe_weight, parallel_sppe_ckpt, parallel_sppe_recentre:
            RMPE's frozen parallel SPPE (training only; needs ``stn``): a heatmap loss on the
            transformed crop against the labels re-centred there, times the weight; the frozen
            network is the current one, detached, or the SPPE of a checkpoint of this project.
        channels_last, compile, compile_mode: speed options.
    """

    def __init__(
        self,
        backbone: str,
        head: str,
        spec: TopDownSpec | Mapping[str, Any],
        lr: float,
        pretrained: bool | str = False,
        head_channels: int | Sequence[int] | None = None,
        final_kernel: int | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
        simcc_beta: float = 10.0,
        part_weights: Mapping[str, float] | None = None,
        foreground_weight: float = 0.0,
        teacher_ckpt: str | None = None,
        kd_weight: float = 0.0,
        kd_decay: str = "none",
        weight_decay: float = 0.0,
        betas: Sequence[float] = (0.9, 0.999),
        lr_policy: str = "step",
        milestones: Sequence[float] = (170, 200),
        gamma: float = 0.1,
        min_lr_factor: float = 0.0,
        warmup_epochs: float = 0.0,
        warmup_factor: float = 0.001,
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
        #: The top-down settings, the codec kind resolved from the head; saved whole (plain
        #: values) as the ``spec`` hyper-parameter, which every reader of a checkpoint uses.
        self.spec = spec_of(spec).for_kind(head_codec(head), f"model.head={head}")
        self.save_hyperparameters(ignore=["spec"])
        self.hparams["spec"] = self.spec.to_dict()
        simcc = self.spec.kind == "simcc"
        input_size = self.spec.input_size
        if kd_decay not in ("none", "linear"):
            raise ConfigError(f"model.kd_decay={kd_decay}: must be 'none' or 'linear'")
        if kd_weight > 0 and not teacher_ckpt:
            raise ConfigError(
                f"model.kd_weight={kd_weight} needs a teacher: set model.teacher_ckpt=CKPT "
                "(+model.teacher_ckpt=CKPT outside +experiment=distill), or model.kd_weight=0"
            )
        if parallel_sppe and not stn:
            raise ConfigError("model.parallel_sppe=true needs model.stn=true (it trains the SSTN)")
        if stn and simcc:
            raise ConfigError("model.stn=true needs a heatmap head (it warps heatmaps back)")
        self.net = PoseNet(
            backbone=backbone,
            head=head,
            num_keypoints=num_keypoints,
            pretrained=pretrained,
            head_channels=head_channels,
            final_kernel=final_kernel,
            backbone_kwargs=backbone_kwargs,
            input_size=input_size,
            split_ratio=self.spec.split_ratio,
            out_stride=self.spec.stride,
        )
        stride = self.net.backbone.feature_info.reduction()[-1]
        if input_size[0] % stride or input_size[1] % stride:
            raise ConfigError(
                f"model.spec.input_size={list(input_size)} must be multiples of {stride}, the "
                f"stride of "
                f"{backbone}'s last stage (e.g. 256x192, 128x96, 384x288)"
            )
        stn_kwargs = dict(stn_kwargs or {})
        lr_mult = stn_kwargs.pop("lr_mult", LOC_LR_MULT)
        if isinstance(lr_mult, bool) or not isinstance(lr_mult, int | float) or not lr_mult > 0:
            raise ConfigError(f"model.stn_kwargs.lr_mult={lr_mult!r}: must be a number > 0")
        self.stn_lr_mult = float(lr_mult)
        if stn:
            self.net = STNPoseNet(self.net, **stn_kwargs)
        self.codec = self.spec.codec()
        self.parallel_sppe: ParallelSPPE | None = None
        if parallel_sppe:
            ref = None
            if parallel_sppe_ckpt:
                ref = self._load_frozen(parallel_sppe_ckpt, "model.parallel_sppe_ckpt")
                ref = ref.pose_net if isinstance(ref, STNPoseNet) else ref  # the SPPE alone
            self.parallel_sppe = ParallelSPPE(self.codec, ref, parallel_sppe_recentre)
        self.loss = (
            SimCCLoss(part_weights, kd_weight, num_keypoints, simcc_beta)
            if simcc
            else DistillationLoss(part_weights, kd_weight, num_keypoints, foreground_weight)
        )
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
    def _load_frozen(self, path: str, key: str) -> nn.Module:
        """The network of a checkpoint of this project, frozen (``key``: the setting naming it);
        it must take this module's crops and give its heatmaps."""
        other = load_pose_model(path, key)
        outputs = "split_ratio" if self.spec.kind == "simcc" else "heatmap_size"
        for name in ("input_size", "kind", outputs, "num_keypoints"):
            theirs, ours = (
                getattr(m.spec, name) if name != "num_keypoints" else m.hparams[name]
                for m in (other, self)
            )
            if theirs != ours:
                raise CheckpointError(
                    f"{Path(path).expanduser()} ({key}): its {name} is {theirs}, this model's "
                    f"is {ours}; the frozen network must take the same crops and heatmaps"
                )
        return other.net.requires_grad_(False)

    def forward(self, image: Tensor) -> Outputs:
        """(B,3,H,W) normalised crops -> (B,K,H/s,W/s) heatmaps (s: the spec's heatmap stride)
        or (simcc_x, simcc_y)."""
        return self._forward(image.contiguous(memory_format=self.memory_format))

    def predict_outputs(self, image: Tensor, flip_test: bool | None = None) -> Outputs:
        """Outputs in float32, merged with those of the mirrored crop when flip testing."""
        flip = self.spec.flip_test if flip_test is None else flip_test
        if flip:
            return flip_merge(self.codec, self(image), self(image.flip(-1)))
        return as_float(self(image))

    # ------------------------------------------------------------------ steps
    def _kd_weight(self) -> float:
        w = self.hparams.kd_weight
        if self.hparams.kd_decay == "linear" and self._trainer is not None:
            total = max(1.0, float(self.trainer.estimated_stepping_batches))
            w *= max(0.0, 1.0 - self.global_step / total)
        return w

    def _loss(self, batch: Mapping[str, Tensor], outputs: Outputs, image: Tensor | None = None):
        target, weight = self.codec.targets(
            batch["target_xy"], batch["target_weight"], is_channels_last(outputs)
        )
        teacher = None
        if self._teacher is not None and image is not None:
            with torch.no_grad():
                teacher = self._teacher(image.contiguous(memory_format=self.memory_format))
        return self.loss(outputs, target, weight, teacher, kd_weight=self._kd_weight())

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
        outputs = self.predict_outputs(image)
        if stage is not None and "target_xy" in batch:
            # Loss on the flip-averaged outputs: what the decoder sees.
            out = self._loss(batch, outputs)
            self.log(f"{stage}/loss", out.hard, batch_size=image.shape[0], sync_dist=True)
        xy, scores = decode_to_image(self.codec, outputs, batch["crop_to_image"])
        xy = xy.to(scores.dtype)
        box_score = batch["box_score"].to(scores.dtype)
        return {
            "preds": {
                "image_id": batch["image_id"],
                "person_id": batch["person_id"],
                "keypoints": torch.cat([xy, scores.unsqueeze(-1)], -1),
                "score": person_score(scores, box_score, self.spec.score_threshold),
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
        theirs = getattr(dm, "spec", None)
        for name in ("input_size", "padding"):
            if theirs is not None and getattr(theirs, name) != getattr(self.spec, name):
                raise ConfigError(
                    f"model.spec.{name}={getattr(self.spec, name)} but the data module crops "
                    f"with {name}={getattr(theirs, name)} (data.spec must be the model's)"
                )

    def on_fit_start(self) -> None:
        if self._teacher is not None:
            self._teacher.to(self.device)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        params: list[Any] = list(self.parameters())
        if isinstance(self.net, STNPoseNet):
            loc = list(self.net.localisation.parameters())
            ids = {id(p) for p in loc}
            params = [
                {"params": [p for p in params if id(p) not in ids]},
                {"params": loc, "lr": hp.lr * self.stn_lr_mult},
            ]
        optimizer = adam(params, hp.lr, hp.weight_decay, tuple(hp.betas))
        total = stepping_batches(self.trainer)  # None: the time budget fixes it later
        epochs = self.trainer.max_epochs
        per_epoch = epoch_steps(self.trainer) or (
            total / epochs if total and epochs and epochs > 0 else float(total or 0)
        )
        #: The run's schedule; :class:`fullbody.models.budget.TimeBudget` sets its length.
        self.lr_schedule = Schedule(
            total,
            round(hp.warmup_epochs * per_epoch),
            hp.warmup_factor,
            hp.lr_policy,
            [round(m * per_epoch) for m in hp.milestones],
            hp.gamma,
            hp.min_lr_factor,
        )

        def factor(step: int) -> float:  # a function: LambdaLR keeps no state of it
            return self.lr_schedule(step)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"},
        }

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Restored now (the training iterator is created before any later hook), and again
        # after a sanity check if one runs, since its data loader draws from the RNG too.
        self._resume_rng = checkpoint.get("rng_states")
        if self._resume_rng is not None:
            set_rng_states(self._resume_rng)

    def on_validation_end(self) -> None:
        if self._resume_rng is not None and self.trainer.sanity_checking:
            set_rng_states(self._resume_rng)

    def on_train_start(self) -> None:
        self._resume_rng = None


def load_pose_model(path: str | Path, key: str = "ckpt_path", **overrides: Any) -> PoseModule:
    """A ``train.py`` checkpoint as a :class:`PoseModule` for use, in eval mode on the CPU: the
    one loader of eval, the predictor, export, the checkpoint teacher, the KD teacher and the
    parallel SPPE. Its weights all come from the file; the backbone file, KD teacher and
    parallel-SPPE checkpoints it was trained with are not read (``checkpoint.FOR_USE``).

    ``key`` names the setting the path came from, for the messages; ``overrides`` replace
    hyper-parameters. The model's top-down settings are ``model.spec``; a checkpoint written
    before they were saved with it is read with the values then fixed in code (a log line
    says which). Raises ``FileNotFoundError`` or
    :class:`fullbody.models.checkpoint.CheckpointError` naming the file.
    """
    return restore(PoseModule, path, key, upgrade=_with_spec, **overrides)


#: The hyper-parameters that checkpoints written before the spec existed hold instead of it.
_PRE_SPEC_KEYS = (
    "input_size", "heatmap_size", "sigma", "split_ratio", "simcc_sigma", "dark", "flip_test",
    "score_threshold",
)  # fmt: skip


def _with_spec(hparams: dict[str, Any], source: str) -> dict[str, Any]:
    """Hyper-parameters with a ``spec``: those of a checkpoint written before the spec existed
    have theirs gathered into one, with the values then fixed in code for the rest (logged)."""
    if "spec" in hparams or "head" not in hparams:  # current, or not a PoseModule's at all
        return hparams
    old = {k: hparams.pop(k) for k in _PRE_SPEC_KEYS if k in hparams}
    kind = head_codec(str(hparams.get("head")))
    return {**hparams, "spec": TopDownSpec.legacy(old, kind, source).to_dict()}
