"""The DataModule from each conf/data config, on tiny data; config errors name their key."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from helpers.configs import compose_config
from hydra.utils import instantiate

from fullbody.annotations import WholeBodySet
from fullbody.codecs.spec import TopDownSpec
from fullbody.data.batch import Batch
from fullbody.data.datamodule import DataConfigError, SyntheticDataModule, WholeBodyDataModule
from fullbody.data.sampler import ImageGroupedSampler

CONF = Path(__file__).resolve().parents[2] / "conf"
SPEC = TopDownSpec.standard((256, 192))


@functools.cache
def _data_key() -> str:
    """``data`` once conf/train.yaml has a data default, ``+data`` before."""
    return "data" if "data" in compose_config("train") else "+data"


def data_config(name: str, *overrides: str):
    """The composed ``data`` node of conf/train.yaml with ``data=name`` and overrides."""
    return compose_config("train", [f"{_data_key()}={name}", *overrides]).data


def check_batch(batch: dict, size: tuple[int, int] = (256, 192)) -> None:
    assert set(batch) == set(Batch.__annotations__)
    b = len(batch["image"])
    assert batch["image"].shape == (b, 3, *size) and batch["image"].dtype == torch.float32
    assert batch["target_xy"].shape == (b, 133, 2) and batch["target_weight"].shape == (b, 133)
    assert batch["crop_to_image"].dtype == torch.float64 and batch["flipped"].dtype == torch.bool
    assert len(set(batch["person_id"].tolist())) == b


@pytest.mark.needs_sample
def test_sample_config(sample_dir):
    over = ("model.spec.input_size=[256,192]", "model.spec.padding=1.5")  # the data reads them
    cfg = data_config("sample", f"paths.sample_dir={sample_dir}", *over)
    dm = instantiate(cfg)
    assert type(dm) is WholeBodyDataModule
    assert dm.spec.input_size == (256, 192) and dm.spec.padding == 1.5
    dm.setup("fit")
    assert isinstance(dm.val_annotations, WholeBodySet) and len(dm.val_annotations) == 14
    loader = dm.train_dataloader()
    assert loader.batch_size == 8 and loader.num_workers == 0
    assert isinstance(loader.sampler, ImageGroupedSampler)
    check_batch(next(iter(loader)))
    val = next(iter(dm.val_dataloader()))
    check_batch(val)
    assert not val["flipped"].any() and (val["box_score"] == 1).all()
    dm.setup("test")
    assert dm.test_annotations is not None and len(dm.test_annotations) == 14
    assert len(next(iter(dm.predict_dataloader()))["image"]) == 8


def _coco_overrides(ann_file: Path, image_dir: Path, *extra: str) -> list[str]:
    return [
        f"data.train.ann_file={ann_file}",
        f"data.train.image_dir={image_dir}",
        f"data.val.ann_file={ann_file}",
        f"data.val.image_dir={image_dir}",
        "data.batch_size=2",
        *extra,
    ]


def test_coco_wholebody_config_with_detections_and_workers(tiny_set, tmp_path):
    ann_file, image_dir = tiny_set
    dets = [{"image_id": 2, "category_id": 1, "bbox": [20, 30, 100, 200], "score": 0.9},
            {"image_id": 3, "category_id": 1, "bbox": [60, 40, 110, 240], "score": 0.2}]  # fmt: skip
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    cfg = data_config(
        "coco_wholebody",
        *_coco_overrides(ann_file, image_dir, f"data.val.det_file={det_file}"),
        "data.val.det_score_threshold=0.5",
        "data.num_workers=1",
        "model.spec.input_size=[128,96]",
        "data/jitter=uniform",
    )
    dm = instantiate(cfg)
    dm.setup("fit")
    assert len(dm.val_dataset) == 1  # one detection above 0.5
    assert type(dm.train_dataset.jitter).__name__ == "UniformJitter"
    loader = dm.train_dataloader()
    assert loader.num_workers == 1 and loader.persistent_workers
    assert loader.pin_memory == torch.cuda.is_available()
    batch = next(iter(loader))
    check_batch(batch, (128, 96))
    labelled = batch["target_weight"] > 0
    assert batch["target_xy"][..., 0][labelled].max() < 95.5  # pixels of the 128x96 crop
    val = next(iter(dm.val_dataloader()))
    assert val["image_id"].tolist() == [2] and val["person_id"].tolist() == [0]


def test_config_errors_name_the_key(tiny_set, tmp_path):
    ann_file, image_dir = tiny_set
    dm = instantiate(data_config("coco_wholebody", f"paths.data_dir={tmp_path}"))
    with pytest.raises(FileNotFoundError, match=r"^data\.train\.ann_file: .* does not exist"):
        dm.setup("fit")
    over = _coco_overrides(ann_file, image_dir)
    dm = instantiate(data_config("coco_wholebody", *over, "data.train.ann_file=null"))
    with pytest.raises(DataConfigError, match=r"data\.train\.ann_file is not set"):
        dm.setup("fit")
    dm = instantiate(data_config("coco_wholebody", *over, f"data.val.image_dir={tmp_path}/x"))
    with pytest.raises(FileNotFoundError, match=r"data\.val\.image_dir"):
        dm.setup("fit")
    dm = instantiate(data_config("coco_wholebody", *over, f"data.val.det_file={tmp_path}/d.json"))
    with pytest.raises(FileNotFoundError, match=r"data\.val\.det_file"):
        dm.setup("validate")
    with pytest.raises(DataConfigError, match=r"data\.train\.rotation: unknown setting"):
        WholeBodyDataModule(train={"rotation": 3}, spec=SPEC)
    with pytest.raises(RuntimeError, match="setup"):
        WholeBodyDataModule(spec=SPEC).val_dataloader()


def test_sampler_follows_the_trainers_ranks(tiny_set):
    ann_file, image_dir = tiny_set
    dm = instantiate(data_config("coco_wholebody", *_coco_overrides(ann_file, image_dir)))
    dm.setup("fit")
    dm.trainer = SimpleNamespace(distributed_sampler_kwargs={"num_replicas": 2, "rank": 1})
    sampler = dm.train_dataloader().sampler
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (2, 1, 2)


class _Tiny(L.LightningModule):
    """Just enough of a model to drive the DataModule through a Trainer."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def training_step(self, batch, _):
        self.seen += batch["person_id"].tolist()
        return (batch["image"].mean() - self.w) ** 2 + batch["target_weight"].sum() * 0

    def validation_step(self, batch, _):
        self.log("val/loss", batch["image"].mean(), batch_size=len(batch["image"]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_runs_epochs_over_the_datamodule(tiny_set):
    ann_file, image_dir = tiny_set
    over = _coco_overrides(ann_file, image_dir, "data.num_workers=0")
    dm = instantiate(data_config("coco_wholebody", *over))
    model = _Tiny()
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    ids = WholeBodySet.load(ann_file).ann_ids.tolist()
    first, second = model.seen[:4], model.seen[4:]
    assert sorted(first) == sorted(ids) and sorted(second) == sorted(ids)
    assert first != second  # Lightning set the sampler's epoch


@pytest.mark.slow
def test_synthetic_config(tmp_path):
    over = [f"data.root={tmp_path}", "data.train_images=3", "data.val_images=2",
            "data.num_workers=0", "data.batch_size=2"]  # fmt: skip
    dm = instantiate(data_config("synthetic", *over))
    assert isinstance(dm, SyntheticDataModule)
    with pytest.raises(FileNotFoundError, match="not generated yet"):
        dm.setup("fit")
    dm.prepare_data()
    ann_file = dm.train_dir / "annotations.json"
    stamp = ann_file.stat().st_mtime_ns
    dm.prepare_data()  # found: not generated again
    assert ann_file.stat().st_mtime_ns == stamp
    assert dm.train_dir != dm.val_dir and dm.train_dir.parent == dm.val_dir.parent == tmp_path
    dm.setup("fit")
    assert (dm.spec.input_size, dm.spec.heatmap_size) == ((128, 96), (64, 48))  # CPU: stride 2
    check_batch(next(iter(dm.train_dataloader())), dm.spec.input_size)
    check_batch(next(iter(dm.val_dataloader())), dm.spec.input_size)
    train_imgs = {im["file_name"] for im in WholeBodySet.load(ann_file).images.values()}
    assert len(train_imgs) == 3 and len(dm.val_annotations.images) == 2
    assert not dm.train_dataset.has_conf

    pseudo = instantiate(data_config("synthetic", *over, "data.train_labels=pseudo"))
    pseudo.prepare_data()
    pseudo.setup("fit")
    assert pseudo.train_dataset.has_conf
    w = pseudo.train_dataset.weights
    assert ((w > 0) & (w < 1)).any()  # teacher confidences, not ones
    with pytest.raises(DataConfigError, match="train_labels must be 'exact' or 'pseudo'"):
        SyntheticDataModule(tmp_path, train_labels="teacher", spec=SPEC)
    with pytest.raises(DataConfigError, match="data.generator: .*colour"):
        SyntheticDataModule(tmp_path / "other", generator={"colour": 1}, spec=SPEC).prepare_data()


def test_default_jitter_is_alphaposes_dpg_with_the_published_numbers():
    """The COCO data configs train with AlphaPose's DPG jitter unless a detector fit is given;
    the synthetic scenes (scored on their labels' boxes) with none unless asked."""
    from fullbody.data.jitter import DPGJitter

    assert data_config("synthetic").train.get("jitter") is None
    assert data_config("synthetic").train.photometric is None
    assert isinstance(
        instantiate(data_config("synthetic", "data/jitter=dpg").train.jitter), DPGJitter
    )
    for name in ("coco_wholebody", "sample"):
        jitter = instantiate(data_config(name).train.jitter)
        assert isinstance(jitter, DPGJitter)
        assert (jitter.crop_prob, jitter.crop_range) == (0.15, (0.85, 1.0))
        assert jitter.edge_mean.tolist() == [-0.0142, 0.0043, 0.0154, -0.0013]
        assert jitter.edge_std.tolist() == [0.1158, 0.0680, 0.1337, 0.0711]
    learned = data_config("sample", "data/jitter=learned").train.jitter
    assert learned._target_.endswith("LearnedJitter") and learned.path is None  # the example


def test_every_data_config_composes_with_every_jitter():
    names = sorted(p.stem for p in (CONF / "data").glob("*.yaml") if not p.stem.startswith("_"))
    assert names == ["coco_wholebody", "sample", "synthetic"]
    for name in names:
        cfg = data_config(name, "data/jitter=dpg")
        assert cfg.batch_size > 0 and cfg.train.jitter._target_.endswith("DPGJitter")
        assert np.isclose(cfg.spec.input_size[1] / cfg.spec.input_size[0], 0.75)
    kinds = {p.stem for p in (CONF / "data" / "jitter").glob("*.yaml")}
    assert kinds == {"learned", "uniform", "dpg"}
    for kind in kinds:
        jitter = instantiate(data_config("sample", f"data/jitter={kind}").train.jitter)
        box = jitter(np.array([10, 10, 50, 100.0]), np.random.default_rng(0), None)
        assert box.shape == (4,) and not np.allclose(box, [10, 10, 50, 100])
    assert data_config("sample", "~data/jitter").train.get("jitter") is None


def test_synthetic_pseudo_options(tmp_path):
    """data.pseudo: null by default; a preset or mapping gives the pseudo-labels of that
    config, derived once into their own file and trained on; wrong or ignored settings refused."""
    over = [f"data.root={tmp_path}", "data.train_images=2", "data.val_images=1",
            "data.num_workers=0", "data.batch_size=2"]  # fmt: skip
    assert data_config("synthetic").pseudo is None
    preset = data_config("synthetic", "data/pseudo=teachers_measured").pseudo
    assert set(preset.part_noise) == {"foot", "face", "lefthand", "righthand"}
    dm = instantiate(data_config("synthetic", *over, "data.train_labels=pseudo",
                                 "data/pseudo=teachers_measured"))  # fmt: skip
    assert dm.pseudo.part_noise == dict(preset.part_noise) and dm.pseudo.p_small_toe_missing == 0
    dm.prepare_data()
    ann_file = Path(dm.sections["train"]["ann_file"])
    assert ann_file.parent == dm.train_dir and ann_file.name.startswith("pseudo_annotations_")
    stamp = ann_file.stat().st_mtime_ns
    dm.prepare_data()  # found: not derived again
    assert ann_file.stat().st_mtime_ns == stamp
    dm.setup("fit")
    assert dm.train_dataset.has_conf
    other = SyntheticDataModule(tmp_path, 2, 1, train_labels="pseudo", pseudo={"noise": 0.1},
                                spec=SPEC)  # fmt: skip
    assert other.sections["train"]["ann_file"] != str(ann_file)

    refusals = {
        "data.pseudo is set but data.train_labels='exact'": {"pseudo": {"noise": 0.1}},
        "data.pseudo.nosie: unknown field": {"pseudo": {"nosie": 0.1}, "train_labels": "pseudo"},
        r"data.pseudo.noise: must be > 0": {"pseudo": {"noise": -1}, "train_labels": "pseudo"},
        "data.pseudo.part_noise.hand: unknown part": {
            "pseudo": {"part_noise": {"hand": 0.1}}, "train_labels": "pseudo"},
    }  # fmt: skip
    for message, kwargs in refusals.items():
        with pytest.raises(DataConfigError, match=message):
            SyntheticDataModule(tmp_path, spec=SPEC, **kwargs)


def test_pseudo_with_exact_labels_stops_train_py_with_one_line(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root / "src"), WANDB_MODE="offline")
    args = ["+experiment=smoke", "data/pseudo=teachers_measured",
            f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}"]  # fmt: skip
    proc = subprocess.run([sys.executable, str(root / "train.py"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "data.pseudo is set" in lines[0] and "data.train_labels" in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_synthetic_held_out_test_set(tmp_path):
    """test_images adds generated scenes of another seed as the test set, with their own boxes
    under a simulated detector; overlapping seeds and a second test set are refused."""
    from fullbody.data.jitter import UniformJitter
    from fullbody.data.simulated_detections import SimulatedDetectorDataModule

    over = [f"data.root={tmp_path}", "data.train_images=2", "data.val_images=2",
            "data.num_workers=0", "data.batch_size=2", "data.test_images=3"]  # fmt: skip
    dm = instantiate(data_config("synthetic", *over))
    dm.prepare_data()
    dm.setup("test")
    assert dm.test_dir == tmp_path / "val_n3_s8"  # data_seed + 8
    assert len(dm.test_annotations.images) == 3 and dm.val_annotations is None
    dm.setup("fit")
    boxes = [tuple(np.round(b, 3)) for b in dm.test_annotations.bboxes]
    assert not set(boxes) & {tuple(np.round(b, 3)) for b in dm.val_annotations.bboxes}

    sim = SimulatedDetectorDataModule(
        tmp_path, 2, 2, test_images=3, det_jitter=UniformJitter(), spec=SPEC, num_workers=0
    )
    sim.setup("test")
    assert Path(sim.sections["test"]["det_file"]).parent == tmp_path / "val_n3_s8"
    assert Path(sim.sections["val"]["det_file"]).parent == tmp_path / "val_n2_s1"

    with pytest.raises(DataConfigError, match="data.test_seed=1 is the seed of the training"):
        SyntheticDataModule(tmp_path, test_images=3, test_seed=1, spec=SPEC)
    with pytest.raises(DataConfigError, match="data.test_images and data.test are both set"):
        SyntheticDataModule(tmp_path, test_images=3, test={"ann_file": "x"}, spec=SPEC)
