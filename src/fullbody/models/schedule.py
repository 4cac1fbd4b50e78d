"""Training schedule and exact-resume helpers: the learning-rate factor per optimiser step, the
number of steps of a run, and the RNG states a checkpoint carries."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch


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


@dataclass
class Schedule:
    """:func:`lr_factor` of one run, called per optimiser step (``LambdaLR``'s function).

    ``total_steps`` may stay None after the run started, until its length is fixed (the time
    budget, :mod:`fullbody.models.budget`): the warm-up, and the ``step`` and ``constant``
    policies altogether, do not depend on it, so the run then follows the schedule built for
    the length it gets, from its first step.
    """

    total_steps: int | None
    warmup_steps: int = 0
    warmup_factor: float = 0.001
    policy: str = "step"
    milestones: Sequence[int] = field(default_factory=list)
    gamma: float = 0.1
    min_factor: float = 0.0

    def free_steps(self) -> float:
        """Steps (0 to this, inclusive) whose factor is the same whatever ``total_steps``."""
        return self.warmup_steps if self.policy == "cosine" else math.inf

    def __call__(self, step: int) -> float:
        if self.total_steps is None and step > self.free_steps():
            raise RuntimeError(
                f"the learning-rate schedule reached step {step} before the run's length was "
                "fixed (trainer.max_steps, or the time budget's measurement)"
            )
        return lr_factor(
            step,
            self.total_steps or 0,
            self.warmup_steps,
            self.warmup_factor,
            self.policy,
            self.milestones,
            self.gamma,
            self.min_factor,
        )


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


def stepping_batches(trainer: L.Trainer) -> int | None:
    """Optimizer steps of the whole run, as ``trainer.estimated_stepping_batches`` counts them
    (see :func:`epoch_steps`). Without an epoch limit (``max_epochs=-1``) ``max_steps`` sizes
    the run; with neither, None: the time budget fixes it once the run has started."""
    per_epoch = epoch_steps(trainer)
    if per_epoch is None:
        return int(trainer.estimated_stepping_batches)
    epochs = trainer.max_epochs
    if epochs is None or epochs < 0:
        return trainer.max_steps if trainer.max_steps >= 0 else None
    total = per_epoch * epochs
    return min(total, trainer.max_steps) if trainer.max_steps != -1 else total


def rng_states() -> dict[str, Any]:
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


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` saved."""
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
