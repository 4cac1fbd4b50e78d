"""The time budget: its arithmetic, the schedule it sizes, its switches (the budgeted run and its
exact repeat: tests/test_train.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from fullbody.errors import ConfigError
from fullbody.models.budget import TimeBudget, budget_steps, record_in_job_file, run_is_sized
from fullbody.models.schedule import Schedule, lr_factor


def test_budget_steps_fill_the_time_left_in_multiples_of_the_validations() -> None:
    # 540 s in all, 60 s spent: 480 s at 0.25 s/step = 1,920 more steps; 30 s set aside: 1,800.
    assert budget_steps(540, 60, 0.25, 40) == 1960
    assert budget_steps(540, 60, 0.25, 40, after_s=30) == 1840
    assert budget_steps(540, 60, 0.25, 40, after_s=30, multiple=7) == 1834  # 262 x 7
    # Twice the step time: half the steps left.
    assert budget_steps(540, 60, 0.5, 40, after_s=30) == 940
    # Time already spent: never fewer than the steps done, rounded up to the multiple.
    assert budget_steps(60, 90, 0.25, 41, multiple=4) == 44
    assert budget_steps(60, 90, 0.25, 40, multiple=4) == 40
    with pytest.raises(ValueError):
        budget_steps(60, 0, 0.0, 0)


def test_run_is_sized_by_epochs_or_steps() -> None:
    assert not run_is_sized(-1, -1) and not run_is_sized(None, -1)
    assert run_is_sized(3, -1) and run_is_sized(-1, 100) and run_is_sized(0, -1)


def test_schedule_runs_its_warm_up_before_its_length_is_known() -> None:
    """Up to the end of the warm-up the factor is the same whatever the length (what lets the
    budget time those steps and a max_steps run repeat them); past it the length is needed."""
    s = Schedule(None, warmup_steps=40, policy="cosine")
    assert s.free_steps() == 40
    for n in (100, 1000):
        full = Schedule(n, warmup_steps=40, policy="cosine")
        assert [s(i) for i in range(41)] == [full(i) for i in range(41)]
    with pytest.raises(RuntimeError, match="max_steps"):
        s(41)
    s.total_steps = 100
    assert s(99) == pytest.approx(lr_factor(99, 100, 40, policy="cosine"))
    assert Schedule(None, policy="constant")(10**6) == 1.0  # no length needed


def _trainer(max_epochs: int | None, max_steps: int, epoch: int = 0, every: int | None = 8):
    return SimpleNamespace(
        max_epochs=max_epochs,
        max_steps=max_steps,
        current_epoch=epoch,
        check_val_every_n_epoch=every,
    )


def test_an_explicit_length_turns_the_budget_off_and_says_so(caplog) -> None:
    cb = TimeBudget(minutes=9)
    with caplog.at_level(logging.INFO, logger="fullbody.models.budget"):
        cb.setup(_trainer(15, -1), None, "fit")
        cb.setup(_trainer(-1, 1750), None, "fit")
    assert "time budget off: trainer.max_epochs=15" in caplog.text
    assert "time budget off: trainer.max_steps=1750" in caplog.text
    assert not cb._budgeted
    cb.setup(_trainer(-1, -1), None, "fit")
    assert cb._budgeted
    with pytest.raises(ConfigError, match="callbacks.budget.minutes"):
        TimeBudget(minutes=None).setup(_trainer(-1, -1), None, "fit")
    with pytest.raises(ConfigError, match="callbacks.budget.minutes"):
        TimeBudget(minutes=0)


def test_a_run_sized_in_epochs_validates_at_its_last_epoch() -> None:
    cb = TimeBudget()
    trainer = _trainer(15, -1, epoch=13)
    cb.on_train_epoch_start(trainer, None)
    assert trainer.check_val_every_n_epoch == 8
    trainer.current_epoch = 14
    cb.on_train_epoch_start(trainer, None)
    assert trainer.check_val_every_n_epoch == 1


def test_the_length_is_added_to_job_json(tmp_path: Path) -> None:
    assert not record_in_job_file(tmp_path, {"max_steps": 8})  # no job.json: nothing written
    (tmp_path / "job.json").write_text(json.dumps({"status": "running", "overrides": []}))
    assert record_in_job_file(tmp_path, {"max_steps": 8})
    info = json.loads((tmp_path / "job.json").read_text())
    assert info == {"status": "running", "overrides": [], "max_steps": 8}
