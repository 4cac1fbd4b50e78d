"""The top-down spec a model is trained with is the one every reader crops with: a smoke run
with a box padding of 1.5 (not the standard 1.25) is cropped at 1.5 by the predictor on its
checkpoint, by the predictor on its exported ONNX file and by both teachers; files written
before the spec existed are read with the values then fixed in code, and say so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from hydra.utils import instantiate
from test_train import compose_train

from fullbody.codecs.spec import TopDownSpec
from fullbody.geometry import invert_affine
from fullbody.inference.predictor import PosePredictor
from fullbody.jobs.train import train
from fullbody.models.module import load_pose_model
from fullbody.pseudo.proposals import propose
from fullbody.pseudo.teachers.base import People
from fullbody.pseudo.teachers.checkpoint import CheckpointTeacher
from fullbody.pseudo.teachers.onnx_model import OnnxTopDown

ROOT = Path(__file__).resolve().parents[1]
#: A person box of the smoke run's crop aspect (96 / 128 = 0.75): padding scales it alone.
BOX = np.array([[100.0, 50.0, 72.0, 96.0]])
#: The box at 1.5 x its size around its centre (136, 98): the crop's outer edges in the image.
EDGES_AT_1_5 = [[82.0, 26.0], [190.0, 170.0]]


def crop_edges(crop_to_image: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Image positions (2, 2) of a crop's outer corners (top-left, bottom-right)."""
    h, w = input_size
    corners = np.array([[-0.5, -0.5, 1.0], [w - 0.5, h - 0.5, 1.0]])
    return corners @ np.asarray(crop_to_image).reshape(2, 3).T


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory) -> Path:
    """The checkpoint of a smoke run trained with model.spec.padding=1.5."""
    tmp = tmp_path_factory.mktemp("padded")
    over = ["+experiment=smoke", "model.spec.padding=1.5", "test=false"]
    cfg = compose_train([*over, "trainer.limit_train_batches=1"], tmp / "run")
    assert instantiate(cfg.data).spec.padding == 1.5  # the training crops
    train(cfg)
    return tmp / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_a_padding_trained_with_travels_to_every_reader(padded_run: Path, tmp_path: Path) -> None:
    saved = torch.load(padded_run, weights_only=True)["hyper_parameters"]["spec"]
    assert saved["padding"] == 1.5 and saved["kind"] == "heatmap"
    image = np.zeros((240, 320, 3), np.uint8)

    predictor = PosePredictor.from_checkpoint(padded_run, "cpu")
    assert predictor.spec == load_pose_model(padded_run).spec == TopDownSpec.from_dict(saved)
    _, to_image = predictor.crops(image, BOX)
    np.testing.assert_allclose(crop_edges(to_image[0], predictor.input_size), EDGES_AT_1_5)

    teacher = CheckpointTeacher(padded_run)
    _, to_image = teacher.predictor.crops(image, BOX)
    np.testing.assert_allclose(crop_edges(to_image[0], teacher.predictor.input_size), EDGES_AT_1_5)

    onnx_file = tmp_path / "padded.onnx"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "export.py", f"ckpt_path={padded_run}", f"out_file={onnx_file}",
           "check.crops=2", "check.batch_sizes=[2]", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = ort.InferenceSession(str(onnx_file)).get_modelmeta().custom_metadata_map
    assert TopDownSpec.from_metadata(meta, str(onnx_file), 1) == predictor.spec

    from_onnx = PosePredictor.from_onnx(onnx_file, ["CPUExecutionProvider"])
    _, to_image = from_onnx.crops(image, BOX)
    np.testing.assert_allclose(crop_edges(to_image[0], from_onnx.input_size), EDGES_AT_1_5)

    onnx_teacher = OnnxTopDown(onnx_file)
    body = np.zeros((1, 17, 3))
    rows, to_crop = onnx_teacher._crops(People(body, BOX, propose(body)), "person")
    assert rows.tolist() == [0]
    edges = crop_edges(invert_affine(to_crop[0]), onnx_teacher.input_hw)
    np.testing.assert_allclose(edges, EDGES_AT_1_5)


@pytest.mark.slow
def test_a_checkpoint_without_a_spec_is_read_with_the_old_values(
    padded_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint of an earlier version: the settings as loose hyper-parameters, no padding
    (it was fixed at 1.25 then)."""
    ckpt = torch.load(padded_run, weights_only=True)
    spec = ckpt["hyper_parameters"].pop("spec")
    ckpt["hyper_parameters"].update(
        input_size=spec["input_size"], heatmap_size=[32, 24], sigma=2.0, dark=False,
        flip_test=True, score_threshold=0.3, split_ratio=2.0, simcc_sigma=None,
    )  # fmt: skip
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with caplog.at_level(logging.WARNING, logger="fullbody.codecs.spec"):
        module = load_pose_model(old)
    assert module.spec == TopDownSpec.standard(
        (128, 96), "heatmap", dark=False, score_threshold=0.3
    )
    assert "written before the top-down spec" in caplog.text and "padding=1.25" in caplog.text


def test_an_onnx_file_of_an_earlier_export_is_read_with_the_old_values(caplog) -> None:
    meta = {"input_size": "96,64", "heatmap_size": "48,32", "head": "deconv", "dark": "false"}
    with caplog.at_level(logging.WARNING, logger="fullbody.codecs.spec"):
        spec = TopDownSpec.from_metadata(meta, "old.onnx", 1)
    assert spec == TopDownSpec.standard((96, 64), "heatmap", stride=2, dark=False)
    assert "old.onnx: written before" in caplog.text and "padding=1.25" in caplog.text
    simcc = {"input_size": "96,64", "head": "simcc", "split_ratio": "3.0"}
    assert TopDownSpec.from_metadata(simcc, "old.onnx", 2) == TopDownSpec.standard(
        (96, 64), "simcc", split_ratio=3.0
    )  # two outputs: SimCC
    assert TopDownSpec.from_metadata({}, "elsewhere.onnx", 1) is None  # derived from its shapes
