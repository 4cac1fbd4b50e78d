"""A training run sized to the machine it lands on: a time budget for the whole command.

``python train.py`` gives no number of epochs or steps (``trainer.max_epochs: -1``); instead
``callbacks.budget.minutes`` is what the whole command may take, counted from the start of the
process (imports, data generated on first use, the final test and writing included). The
:class:`TimeBudget` callback times the first optimiser steps (after a few that are not
representative: allocation, oneDNN's first kernels), then fixes the number of steps
(:func:`budget_steps`) and the learning-rate schedule for that length, and prints it::

    this CPU: float32, 0.30 s/step -> 1,748 steps in 9 min (trainer.max_steps=1748 repeats it)

The steps timed fall inside the warm-up, whose factor does not depend on the run's length, so
``trainer.max_steps=N`` (no budget: the schedule sized from the first step) repeats the run step
for step. A run sized in steps (either way) validates ``validations`` times at equal intervals,
the last at its last step, and one sized in epochs validates at its last epoch too, so that the
best checkpoint can be the last one.
An explicit ``trainer.max_epochs`` or ``trainer.max_steps`` turns the budget off (logged).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from fullbody.errors import ConfigError
from fullbody.jsonio import write_json_atomic
from fullbody.models.schedule import Schedule
from fullbody.utils.machine import process_age_s

log = logging.getLogger(__name__)

#: Validation every this many steps = never (Lightning's batch-count test).
_NEVER = sys.maxsize


def budget_steps(
    budget_s: float,
    elapsed_s: float,
    s_per_step: float,
    steps_done: int,
    after_s: float = 0.0,
    multiple: int = 1,
) -> int:
    """Optimiser steps of a run that may take ``budget_s`` in all: the ``steps_done`` in the
    ``elapsed_s`` so far, plus what the rest holds at ``s_per_step`` once ``after_s`` (work after
    or between the steps: evaluations, writing) is set aside; a multiple of ``multiple``, and
    never fewer than the steps done (rounded up to that multiple)."""
    if s_per_step <= 0 or multiple < 1:
        raise ValueError(f"s_per_step must be > 0 and multiple >= 1, got {s_per_step}, {multiple}")
    left = budget_s - elapsed_s - after_s
    total = steps_done + max(0, math.floor(left / s_per_step))
    return max(total // multiple, math.ceil(steps_done / multiple)) * multiple


def run_is_sized(max_epochs: int | None, max_steps: int | None) -> bool:
    """Whether the trainer's settings give the run a length (else the budget sizes it)."""
    return (max_epochs is not None and max_epochs >= 0) or (
        max_steps is not None and max_steps >= 0
    )


def describe(
    device: torch.device, precision: str, s_per_step: float, steps: int, minutes: float
) -> str:
    """The line a budgeted run prints once it has fixed its length."""
    if device.type == "cuda":
        where = f"this GPU ({torch.cuda.get_device_name(device)})"
    else:
        where = f"this {device.type.upper()}"
    kind = {"32-true": "float32", "32": "float32", "bf16-mixed": "bf16", "16-mixed": "float16"}
    return (
        f"{where}: {kind.get(precision, precision)}, {s_per_step:.3f} s/step -> "
        f"{steps:,} steps in {minutes:g} min (trainer.max_steps={steps} repeats it)"
    )


class TimeBudget(L.Callback):
    """Sizes a run without ``max_epochs``/``max_steps`` to ``minutes`` of the whole command, and
    validates a run sized in steps ``validations`` times, the last at its last step.

    Args:
        minutes: the whole command's time (None: no budget; the run must then be sized).
        validations: validations of a run sized in steps, at equal intervals (the budget rounds
            its steps to a multiple of it, so the last falls on the last step).
        skip_steps: first steps not timed (memory allocation, first kernels).
        measure_steps: steps timed after them; ``skip_steps + measure_steps`` must lie within
            the learning-rate warm-up (``model.warmup_epochs``) of a cosine schedule.
        reserve_s: seconds set aside for what follows training besides evaluations (checkpoint
            writes, the test's set-up, reports, leaving the process).
        eval_step_ratio: one evaluation batch (flip test: two forward passes, DARK decoding,
            its share of the COCO evaluation) in training steps, to set aside the validations
            and the final test (about 3 on the 2-core VM: 22 batches took ~20 s at 0.4 s/step).
    """

    def __init__(
        self,
        minutes: float | None = 9.0,
        validations: int = 4,
        skip_steps: int = 10,
        measure_steps: int = 30,
        reserve_s: float = 15.0,
        eval_step_ratio: float = 3.0,
    ) -> None:
        if validations < 1 or skip_steps < 0 or measure_steps < 1:
            raise ConfigError(
                "callbacks.budget: validations and measure_steps must be >= 1, skip_steps >= 0 "
                f"(got {validations}, {measure_steps}, {skip_steps})"
            )
        if minutes is not None and minutes <= 0:
            raise ConfigError(f"callbacks.budget.minutes must be > 0 or null, got {minutes}")
        self.minutes = minutes
        self.validations = validations
        self.skip_steps = skip_steps
        self.measure_steps = measure_steps
        self.reserve_s = reserve_s
        self.eval_step_ratio = eval_step_ratio
        self.total_steps: int | None = None  # the run's length once known
        self.s_per_step: float | None = None
        self._budgeted = False
        self._t0 = 0.0
        # In a multirun, each job's budget counts from its own start (its callbacks are new).
        self._clock_offset = process_age_s() if not _in_multirun() else 0.0
        self._created = time.monotonic()

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._budgeted = False
        if run_is_sized(trainer.max_epochs, trainer.max_steps):
            if self.minutes is not None:
                given = (
                    f"trainer.max_steps={trainer.max_steps}"
                    if trainer.max_steps >= 0
                    else f"trainer.max_epochs={trainer.max_epochs}"
                )
                log.info("time budget off: %s sizes the run", given)
            return
        if self.minutes is None:
            raise ConfigError(
                "the run has no length: give trainer.max_steps=N, trainer.max_epochs=N or a "
                "time budget (callbacks.budget.minutes)"
            )
        self._budgeted = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._budgeted:
            if trainer.global_step > 0:
                raise ConfigError(
                    "a budgeted run resumes with the length it chose: add trainer.max_steps=N "
                    "(printed at its start, and in its job.json)"
                )
            schedule = _schedule(pl_module)
            timed = self.skip_steps + self.measure_steps
            if schedule.free_steps() < timed:
                raise ConfigError(
                    f"the time budget times the first {timed} steps (callbacks.budget.skip_steps"
                    f" + measure_steps), but the cosine schedule's warm-up is "
                    f"{schedule.warmup_steps} steps (model.warmup_epochs): lengthen the warm-up "
                    "or time fewer steps"
                )
            _validate_every(trainer, _NEVER)  # until the length is known
            self._t0 = time.perf_counter()  # the timing's start when no step is skipped
        elif trainer.max_epochs is None or trainer.max_epochs < 0:  # sized by max_steps alone
            self.total_steps = trainer.max_steps
            _validate_every(trainer, max(1, self.total_steps // self.validations))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run sized in epochs validates at its last epoch too, which the best checkpoint
        # (and the test) should be able to take.
        epochs = trainer.max_epochs
        if trainer.check_val_every_n_epoch and epochs and trainer.current_epoch == epochs - 1:
            trainer.check_val_every_n_epoch = 1

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        if self._budgeted and self.total_steps is None:
            if step == self.skip_steps:
                _sync(pl_module.device)
                self._t0 = time.perf_counter()
            elif step == self.skip_steps + self.measure_steps:
                _sync(pl_module.device)
                self._fix_length(
                    trainer, pl_module, (time.perf_counter() - self._t0) / self.measure_steps
                )
        if self.total_steps is not None and step >= self.total_steps:
            # The last step validates even when it is not a multiple of the interval.
            trainer.should_stop = True

    # ------------------------------------------------------------------ the length
    def elapsed_s(self) -> float:
        """Seconds the budget has spent (since the process, or the multirun job, started)."""
        return self._clock_offset + time.monotonic() - self._created

    def after_training_s(self, trainer: L.Trainer, s_per_step: float) -> float:
        """Seconds to set aside: the validations and the final test, and ``reserve_s``."""
        batches = _val_batches(trainer)
        return self.reserve_s + (self.validations + 1) * batches * self.eval_step_ratio * s_per_step

    def _fix_length(
        self, trainer: L.Trainer, pl_module: L.LightningModule, s_per_step: float
    ) -> None:
        assert self.minutes is not None
        steps = budget_steps(
            self.minutes * 60,
            self.elapsed_s(),
            s_per_step,
            trainer.global_step,
            self.after_training_s(trainer, s_per_step),
            self.validations,
        )
        # Under DDP every rank must stop at the same step: rank 0's measurement decides.
        steps, s_per_step = trainer.strategy.broadcast((steps, s_per_step), src=0)
        self.total_steps, self.s_per_step = steps, s_per_step
        _schedule(pl_module).total_steps = steps
        trainer.fit_loop.epoch_loop.max_steps = steps
        _validate_every(trainer, steps // self.validations)
        if trainer.is_global_zero:
            line = describe(
                pl_module.device, str(trainer.precision), s_per_step, steps, self.minutes
            )
            print(line, flush=True)
            log.info(line)
            record = {
                "max_steps": steps,
                "s_per_step": round(s_per_step, 4),
                "budget_min": self.minutes,
            }
            for logger in trainer.loggers:
                logger.log_hyperparams(
                    {"trainer/max_steps": steps, "budget/s_per_step": s_per_step}
                )
            record_in_job_file(Path(trainer.default_root_dir), record)


def record_in_job_file(folder: Path, record: dict[str, Any]) -> bool:
    """Add ``record`` to the run's ``job.json`` (written by the run recorder of ``train.py``),
    so that its length is kept with its overrides; False where there is none (a bare Trainer)."""
    path = folder / "job.json"
    try:
        info = json.loads(path.read_text())
        write_json_atomic({**info, **record}, path)
    except (OSError, ValueError) as e:
        log.debug("%s not updated: %s", path, e)
        return False
    return True


def _schedule(pl_module: L.LightningModule) -> Schedule:
    schedule = getattr(pl_module, "lr_schedule", None)
    if not isinstance(schedule, Schedule):
        raise ConfigError(
            f"the time budget needs a module whose learning-rate schedule it can size "
            f"({type(pl_module).__name__} has no lr_schedule): give trainer.max_steps=N"
        )
    return schedule


def _validate_every(trainer: L.Trainer, steps: int) -> None:
    """Validate every ``steps`` optimiser steps over the whole run (not per epoch)."""
    trainer.check_val_every_n_epoch = None
    trainer.val_check_batch = steps * trainer.accumulate_grad_batches if steps != _NEVER else _NEVER


def _val_batches(trainer: L.Trainer) -> int:
    dm = getattr(trainer, "datamodule", None)
    if dm is not None and hasattr(dm, "val_dataloader"):
        try:
            return len(dm.val_dataloader())
        except (TypeError, NotImplementedError):  # no length, or no validation data
            return 0
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
