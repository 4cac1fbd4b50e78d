"""RMPE options of PoseModule: SSTN wrapper, parallel SPPE loss, and both in a fast_dev_run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.configs import compose_config, run_config

from fullbody.codecs.spec import TopDownSpec
from fullbody.keypoints import NUM_KEYPOINTS
from fullbody.models.module import PoseModule
from fullbody.models.stn import LOC_LR_MULT, STNPoseNet

K = NUM_KEYPOINTS
SMALL = {
    "backbone": "resnet18",
    "head": "deconv",
    "head_channels": 32,
    "spec": TopDownSpec.standard((128, 96)),
    "lr": 1e-3,
    "channels_last": False,
}
CONF = Path(__file__).resolve().parents[2] / "conf"


def _batch(b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(b, 3, 128, 96, generator=g),
        "target_xy": torch.rand(b, K, 2, generator=g) * torch.tensor([95.0, 127.0]),
        "target_weight": torch.ones(b, K),
        "crop_to_image": torch.tensor([[2.0, 0, 30], [0, 2.0, 40]], dtype=torch.float64)
        .expand(b, 2, 3)
        .clone(),
        "bbox": torch.tensor([[30.0, 40.0, 192.0, 256.0]]).expand(b, 4).clone(),
        "box_score": torch.full((b,), 0.9),
        "image_id": torch.arange(b, dtype=torch.int64),
        "person_id": torch.arange(100, 100 + b, dtype=torch.int64),
        "flipped": torch.zeros(b, dtype=torch.bool),
    }


def test_stn_module_predicts_what_the_plain_one_does_at_initialisation():
    torch.manual_seed(0)
    plain = PoseModule(**SMALL).eval()
    stn = PoseModule(**SMALL, stn=True).eval()
    assert isinstance(stn.net, STNPoseNet)
    stn.net.pose_net.load_state_dict(plain.net.state_dict())
    batch = _batch()
    with torch.no_grad():
        ha, hb = plain.predict_outputs(batch["image"]), stn.predict_outputs(batch["image"])
        a = plain.predict_step(batch, 0)["preds"]
        b = stn.predict_step(batch, 0)["preds"]
    assert (ha - hb).abs().max() <= 1e-4 * ha.abs().max()
    assert (a["keypoints"][..., :2] - b["keypoints"][..., :2]).abs().max() < 0.01  # image px
    # The localisation network is part of the checkpoint; nothing else changes name but the
    # pose network's prefix.
    keys = set(stn.state_dict())
    assert any(k.startswith("net.localisation.") for k in keys)
    assert {k.replace("net.pose_net.", "net.") for k in keys if "pose_net" in k} == set(
        plain.state_dict()
    )


def test_training_step_adds_the_parallel_sppe_loss_and_trains_the_transformer():
    torch.manual_seed(0)
    batch = _batch(4)
    logged: dict[str, float] = {}
    losses = {}
    for psppe in (False, True):
        torch.manual_seed(0)
        m = PoseModule(**SMALL, stn=True, parallel_sppe=psppe, parallel_sppe_weight=2.0).train()
        m.log = lambda name, value, **kw: logged.__setitem__(name, float(value))  # type: ignore[method-assign]
        loss = m.training_step(batch, 0)
        loss.backward()
        losses[psppe] = float(loss)
        assert m.net.localisation.out.weight.grad.abs().sum() > 0
    assert losses[True] > losses[False]  # the branch's loss is added (x2), not replacing
    assert logged["train/loss"] == pytest.approx(losses[True])
    assert logged["train/loss_parallel_sppe"] > 0
    assert logged["train/stn/scale"] == pytest.approx(1.0)
    assert logged["train/stn/shift"] == pytest.approx(0.0)


def test_parallel_sppe_needs_the_transformer():
    with pytest.raises(ValueError, match="model.stn"):
        PoseModule(**SMALL, parallel_sppe=True)


def test_parallel_sppe_reference_from_a_checkpoint_stays_frozen(tmp_path):
    torch.manual_seed(0)
    ref = PoseModule(**SMALL, stn=True)
    ckpt = tmp_path / "ref.ckpt"
    torch.save(
        {"state_dict": ref.state_dict(), "hyper_parameters": dict(ref.hparams),
         "pytorch-lightning_version": "2.6.0"},
        ckpt,
    )  # fmt: skip
    m = PoseModule(**SMALL, stn=True, parallel_sppe=True, parallel_sppe_ckpt=str(ckpt)).train()
    frozen = m.parallel_sppe.reference
    assert frozen is not None and not isinstance(frozen, STNPoseNet)
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert not any(k.startswith("parallel_sppe") for k in m.state_dict())
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        m.training_step(_batch(4), 0).backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items())
    with pytest.raises(FileNotFoundError, match="model.parallel_sppe_ckpt"):
        PoseModule(**SMALL, stn=True, parallel_sppe=True, parallel_sppe_ckpt=str(tmp_path / "x"))


@pytest.mark.slow
def test_both_options_run_in_a_fast_dev_run_of_the_ablation(tmp_path):
    """The ablation experiment with the SSTN and the parallel SPPE, on tiny synthetic data."""

    from fullbody.jobs.train import train

    overrides = ["+ablation/rmpe=sstn_psppe", "+experiment=ablation_rmpe", "debug=fast_dev_run",
                 "data.train_images=3", "data.val_images=2", "data.test_images=2",
                 "data.batch_size=4",
                 "data.num_workers=0", "model.head_channels=32"]  # fmt: skip
    cfg = run_config("train", overrides, output_dir=tmp_path / "run", data_dir=tmp_path / "data")
    assert cfg.model.stn and cfg.model.parallel_sppe
    metrics = train(cfg)
    assert "test/wholebody/AP" in metrics
    assert metrics["train/loss_parallel_sppe"] > 0 and "train/stn/scale" in metrics
    dets = sorted((tmp_path / "data").glob("synthetic/val_*/simulated_detections_*.json"))
    # validated and tested (held-out scenes) on the simulated detector's boxes
    assert [d.parent.name for d in dets] == ["val_n2_s1", "val_n2_s8"]


def test_ablation_sweeps_baseline_against_rmpe(tmp_path):
    """Its variants build the plain network, SSTN + parallel SPPE, and SSTN alone."""
    from hydra.utils import instantiate

    for variant, stn, psppe in (("plain", False, False), ("sstn_psppe", True, True),
                                ("sstn", True, False)):  # fmt: skip
        overrides = [f"+ablation/rmpe={variant}", "+experiment=ablation_rmpe"]
        cfg = compose_config("train", overrides, output_dir=tmp_path)
        assert (cfg.model.stn, cfg.model.parallel_sppe) == (stn, psppe)
        assert cfg.data._target_.endswith("SimulatedDetectorDataModule")
        assert cfg.data.train.jitter.scale == cfg.data.det_jitter.scale > 1
        model = instantiate(cfg.model, _convert_="all")
        assert isinstance(model.net, STNPoseNet) is stn
        assert (model.parallel_sppe is not None) is psppe


def test_localisation_network_learns_at_its_own_rate() -> None:
    """``stn_kwargs.lr_mult`` puts the localisation network in a parameter group of its own at
    that fraction of the learning rate (the schedule scales both); every parameter is in one
    group; a rate that is not a positive number is refused."""
    from types import SimpleNamespace

    from fullbody.errors import ConfigError

    m = PoseModule(**SMALL, stn=True, stn_kwargs={"lr_mult": 0.1, "max_rotation": 20.0})
    dm = SimpleNamespace(train_dataloader=lambda: list(range(4)))
    trainer = SimpleNamespace(datamodule=dm, limit_train_batches=1.0, accumulate_grad_batches=1,
                              max_epochs=2, max_steps=-1)  # fmt: skip
    object.__setattr__(m, "_trainer", trainer)
    conf = m.configure_optimizers()
    rest, loc = conf["optimizer"].param_groups
    assert {id(p) for p in loc["params"]} == {id(p) for p in m.net.localisation.parameters()}
    assert len(rest["params"]) + len(loc["params"]) == len(list(m.parameters()))
    assert loc["lr"] == pytest.approx(0.1 * rest["lr"])
    conf["lr_scheduler"]["scheduler"].step()
    rest, loc = conf["optimizer"].param_groups
    assert loc["lr"] == pytest.approx(0.1 * rest["lr"]) and rest["lr"] > 0
    assert m.net.affine.max_rotation == pytest.approx(torch.pi / 9)  # the other kwargs still apply
    assert PoseModule(**SMALL, stn=True).stn_lr_mult == LOC_LR_MULT < 1
    for bad in (0.0, -1.0, "fast", None, True):
        with pytest.raises(ConfigError, match="model.stn_kwargs.lr_mult"):
            PoseModule(**SMALL, stn=True, stn_kwargs={"lr_mult": bad})
