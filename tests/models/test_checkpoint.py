"""One loader for use: a checkpoint loads with its own weights wherever the files it was trained
from are gone, and anything that is not such a checkpoint gets one error naming the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import lightning as L
import pytest
import timm
import torch
from helpers.checkpoints import trainer_checkpoint
from torch import nn

from fullbody.codecs.spec import TopDownSpec
from fullbody.models.checkpoint import CheckpointError, read_checkpoint
from fullbody.models.module import PoseModule, load_pose_model
from fullbody.models.stn import STNPoseNet

SMALL = {
    "backbone": "test_resnet",
    "head": "deconv",
    "head_channels": 16,
    "spec": TopDownSpec.standard((64, 64)),
    "lr": 1e-3,
    "channels_last": False,
}


def _scrambled(module: nn.Module) -> nn.Module:
    """Weights unlike any initialisation, so that a load that fell back to one would show."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))
    return module


def test_checkpoint_loads_without_the_files_it_was_trained_from(tmp_path: Path) -> None:
    """A student trained from a backbone file, with a KD teacher and a parallel SPPE from
    checkpoints: once all three files are gone, its checkpoint still loads, with its weights."""
    backbone = tmp_path / "backbone.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), backbone)
    teacher = trainer_checkpoint(PoseModule(**SMALL), tmp_path / "teacher.ckpt")
    sppe = trainer_checkpoint(PoseModule(**SMALL), tmp_path / "sppe.ckpt")
    student = PoseModule(**SMALL, pretrained=str(backbone), teacher_ckpt=str(teacher),
                         kd_weight=0.5, stn=True, parallel_sppe=True,
                         parallel_sppe_ckpt=str(sppe))  # fmt: skip
    assert student._teacher is not None and student.parallel_sppe.reference is not None
    ckpt = trainer_checkpoint(_scrambled(student), tmp_path / "student.ckpt")
    for used in (backbone, teacher, sppe):
        used.unlink()

    loaded = load_pose_model(ckpt)
    assert isinstance(loaded.net, STNPoseNet) and not loaded.training
    assert loaded._teacher is None and loaded.parallel_sppe.reference is None
    mine, theirs = student.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert loaded.hparams.backbone == "test_resnet" and loaded.hparams.stn is True
    assert loaded.hparams.kd_weight == 0.0  # for use: no teacher, so no KD term (FOR_USE)


def test_the_kd_teacher_and_parallel_sppe_use_the_same_loader(tmp_path: Path) -> None:
    """Frozen networks come from the checkpoint's weights, whatever that checkpoint was itself
    trained from; one taking other crops than the student is refused, naming the file."""
    backbone = tmp_path / "backbone.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), backbone)
    source = _scrambled(PoseModule(**SMALL, pretrained=str(backbone)))
    teacher = trainer_checkpoint(source, tmp_path / "teacher.ckpt")
    backbone.unlink()
    student = PoseModule(**SMALL, teacher_ckpt=str(teacher), kd_weight=1.0)
    frozen = student._teacher.state_dict()
    assert all(torch.equal(v, frozen[k]) for k, v in source.net.state_dict().items())
    assert not any(p.requires_grad for p in student._teacher.parameters())
    other = {**SMALL, "spec": TopDownSpec.standard((96, 64))}
    with pytest.raises(CheckpointError, match=r"teacher\.ckpt \(model\.teacher_ckpt\): its input"):
        PoseModule(**other, teacher_ckpt=str(teacher), kd_weight=1.0)


class _OtherModule(L.LightningModule):
    """Another project's LightningModule."""

    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(hidden, 2)


def test_files_that_are_not_checkpoints_of_train_py_are_named(tmp_path: Path) -> None:
    module = PoseModule(**SMALL)
    cases = {
        "bare.pth": (module.state_dict(), "bare state dict"),
        "tensor.pt": (torch.zeros(3), "holds a Tensor"),
        "other.ckpt": (None, "not a checkpoint of a PoseModule"),
        "text.ckpt": (b"epoch=3 loss=0.1\n", "not a PyTorch file"),
        "empty.ckpt": (b"", "the file is empty"),
        "cut.ckpt": (None, "cut short or corrupt"),
        "arch.ckpt": (None, "weights do not fit"),
    }
    for name, (content, _) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            torch.save(content, path)
    trainer_checkpoint(_OtherModule(), tmp_path / "other.ckpt")
    whole = trainer_checkpoint(module, tmp_path / "whole.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    # Hyper-parameters of one network, weights of another (e.g. an edited checkpoint).
    arch = torch.load(trainer_checkpoint(module, tmp_path / "arch.ckpt"), weights_only=True)
    arch["hyper_parameters"]["head_channels"] = 32
    torch.save(arch, tmp_path / "arch.ckpt")
    for name, (_, what) in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_pose_model(tmp_path / name)
        msg = str(info.value)
        assert msg.startswith(f"{tmp_path / name} (ckpt_path): ") and what in msg, msg
        assert len(msg) < 400 and info.value.__cause__ is None
        assert str(pickle.loads(pickle.dumps(info.value))) == msg  # crosses processes
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt: checkpoint not found \(key\)"):
        load_pose_model(tmp_path / "missing.ckpt", "key")


def test_arbitrary_objects_are_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "hook": _OtherModule}, path)
    with pytest.raises(
        CheckpointError, match=r"evil\.ckpt \(ckpt_path\): .*objects other than tensors"
    ):
        read_checkpoint(path)


def test_resume_needs_a_trainer_checkpoint(tmp_path: Path) -> None:
    module = PoseModule(**SMALL)
    path = tmp_path / "hand.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    assert read_checkpoint(path)["hyper_parameters"]["backbone"] == "test_resnet"
    with pytest.raises(
        CheckpointError, match=r"hand\.ckpt \(ckpt_path\): not saved by the Lightning Trainer"
    ):
        read_checkpoint(path, trainer_state=True)


def test_a_full_disk_at_checkpoint_time_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Lightning's writer staged the file in /tmp and copied it over the final name: a full
    disk left a truncated checkpoint there. Ours leaves the previous file and no temporary."""
    import errno
    import os

    from fullbody import jsonio
    from fullbody.errors import OutputError
    from fullbody.models.checkpoint import AtomicCheckpointIO

    module = PoseModule(**SMALL)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        plugins=[AtomicCheckpointIO()])  # fmt: skip
    trainer.strategy.connect(module)
    path = tmp_path / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(path)
    before = path.read_bytes()
    assert read_checkpoint(path, trainer_state=True)["state_dict"].keys()

    def full(fd: int) -> None:  # the data went out, the disk could not hold it
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jsonio.os, "fsync", full)
    with pytest.raises(OutputError, match=r"last\.ckpt: cannot write the checkpoint \(No space"):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before and os.listdir(path.parent) == ["last.ckpt"]
