"""Reading a checkpoint of ``train.py`` for use: its own hyper-parameters and weights, nothing else.

A checkpoint must load on any machine: the network is rebuilt from the hyper-parameters it was
saved with, but without the files it was *trained* from (the backbone's starting weights, the
KD teacher's and the parallel SPPE's checkpoints, see :data:`FOR_USE`), and every weight comes
from the checkpoint's state dict. A file that is not such a checkpoint (another model's, a bare
state dict, not a PyTorch file at all) raises one :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from fullbody.errors import InputNotFoundError, OutputError, UserError
from fullbody.jsonio import write_atomic

#: Hyper-parameters replaced when a checkpoint is rebuilt for use: the files the run was trained
#: from are not needed (the state dict holds every weight) and may be absent on this machine.
FOR_USE: dict[str, Any] = {
    "pretrained": False,
    "teacher_ckpt": None,
    "kd_weight": 0.0,
    "parallel_sppe_ckpt": None,
    "compile": False,
}

M = TypeVar("M", bound=nn.Module)


class CheckpointError(UserError, ValueError):
    """A file is not a usable checkpoint of this project (the message names it and why)."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, atomic on a local disk: the file is written under a
    temporary name in its own folder, fsynced and renamed (:func:`fullbody.jsonio.write_atomic`).
    Lightning's own writer stages it in the system's temporary folder and then copies it over
    the final name when that is another disk, so a full disk left a truncated checkpoint under
    the final name. A failed write raises :class:`OutputError` naming the file; the previous
    checkpoint of that name, if any, is kept. Remote paths (``s3://...``) keep Lightning's."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if "://" in str(path) or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            write_atomic(buffer.getvalue(), path)
        except OSError as e:
            raise OutputError(
                f"{path}: cannot write the checkpoint ({e.strerror or e}); the previous file of "
                "that name, if any, is kept"
            ) from None


def read_checkpoint(
    path: str | os.PathLike, key: str = "ckpt_path", trainer_state: bool = False
) -> dict[str, Any]:
    """The checkpoint dictionary of ``path``, read without unpickling arbitrary objects.

    ``key`` names the setting the path came from, for the messages; ``trainer_state``: the
    file must also be one the Lightning Trainer restores (resume, ``trainer.test``). Raises
    ``FileNotFoundError`` when there is no such file and :class:`CheckpointError` when it is not
    a Lightning checkpoint with ``state_dict`` and ``hyper_parameters``.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputNotFoundError(f"{file}: checkpoint not found ({key})")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike: the file is not one we read
        raise CheckpointError(
            f"{file} ({key}): not a checkpoint of train.py: {_load_failure(file, e)}"
        ) from None
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(
            f"{file} ({key}): not a checkpoint of train.py: it holds a {type(ckpt).__name__}"
        )
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        what = (
            "a bare state dict"
            if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values())
            else f"a dictionary with keys {sorted(map(str, ckpt))[:6]}"
        )
        raise CheckpointError(
            f"{file} ({key}): not a checkpoint of train.py: it holds {what}, without the "
            "'state_dict' and 'hyper_parameters' that train.py saves"
        )
    if trainer_state and "pytorch-lightning_version" not in ckpt:
        raise CheckpointError(
            f"{file} ({key}): not saved by the Lightning Trainer: it has no "
            "'pytorch-lightning_version', so the run cannot be restored from it"
        )
    return dict(ckpt)


def _load_failure(file: Path, error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed on ``file``, in a few words."""
    with open(file, "rb") as f:
        head = f.read(4)
    if not head:
        return "the file is empty"
    if not zipfile.is_zipfile(file):
        if head == b"PK\x03\x04":
            return "the archive is cut short or corrupt (an interrupted copy?)"
        return "not a PyTorch file (torch.save writes a zip archive, this is none)"
    text = str(error)
    if "WeightsUnpickler error:" in text:
        detail = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the")[0].split())
        return (
            "it holds objects other than tensors and plain containers, which are not "
            f"unpickled ({detail[:120]})"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"torch.load failed: {first[:200]}"


def restore(
    cls: type[M],
    path: str | os.PathLike,
    key: str = "ckpt_path",
    upgrade: Callable[[dict[str, Any], str], dict[str, Any]] | None = None,
    **overrides: Any,
) -> M:
    """``cls`` rebuilt from the checkpoint's hyper-parameters (passed through ``upgrade``, which
    reads those of older versions, then with :data:`FOR_USE` and ``overrides``), every weight
    from its state dict, in eval mode on the CPU.

    Raises :class:`CheckpointError` when the hyper-parameters or the weights do not fit ``cls``.
    """
    file = Path(path).expanduser()
    ckpt = read_checkpoint(file, key)
    hparams = dict(ckpt["hyper_parameters"])
    try:
        if upgrade is not None:
            hparams = upgrade(hparams, f"{file} ({key})")
        model = cls(**{**hparams, **FOR_USE, **overrides})
    except TypeError as e:  # unknown hyper-parameters: another LightningModule's checkpoint
        raise CheckpointError(
            f"{file} ({key}): not a checkpoint of a {cls.__name__}: {e}"
        ) from None
    except (ValueError, RuntimeError) as e:  # settings this version refuses, unknown backbone
        raise CheckpointError(f"{file} ({key}): cannot rebuild its {cls.__name__}: {e}") from None
    load_weights(model, ckpt["state_dict"], f"{file} ({key})")
    return model.eval()


def load_weights(model: nn.Module, state_dict: Mapping[str, Any], source: str) -> None:
    """Load ``state_dict`` into ``model`` strictly, or raise one :class:`CheckpointError` that
    summarises the missing, unexpected and mis-shaped weights (``source`` names the file)."""
    check_weights_fit(model, state_dict, source, "its hyper-parameters describe")
    model.load_state_dict(state_dict, strict=True)


def check_weights_fit(
    model: nn.Module, state_dict: Mapping[str, Any], source: str, built_from: str
) -> None:
    """Raise one :class:`CheckpointError` summarising the weights of ``state_dict`` that are
    missing from, unexpected in or of another shape than ``model``'s (``source`` names the
    file, ``built_from`` says what ``model`` was built from): e.g. before a run resumes from a
    checkpoint of another architecture, where Lightning would print every mismatched key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {list(state_dict[k].shape)} vs {list(v.shape)}"
        for k, v in own.items()
        if k in state_dict
        and isinstance(state_dict[k], torch.Tensor)
        and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        problems = [
            f"{len(names)} {what} (e.g. {names[0]})"
            for names, what in (
                (missing, "weights missing"),
                (unexpected, "unexpected weights"),
                (shapes, "of another shape"),
            )
            if names
        ]
        raise CheckpointError(
            f"{source}: its weights do not fit the {type(model).__name__} {built_from} "
            f"(a checkpoint of another architecture?): {'; '.join(problems)}"
        )
