"""A checkpoint travels: trained from a local backbone file that is then deleted (as on any other
machine), it still evaluates, exports, runs the demo and pseudo-labels. Files that are not
checkpoints, and ImageNet weights that cannot be fetched, end every command line with one line
and exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), WANDB_MODE="offline", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", **env_vars)  # fmt: skip
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.mark.slow
def test_a_checkpoint_works_after_its_backbone_file_is_gone(tmp_path: Path) -> None:
    weights = tmp_path / "weights" / "resnet18.pth"
    weights.parent.mkdir()
    torch.save(timm.create_model("resnet18").state_dict(), weights)
    data, run = tmp_path / "data", tmp_path / "run"
    _ok(_run("train.py", "+experiment=smoke", f"model.pretrained={weights}", "test=false",
             f"hydra.run.dir={run}", f"paths.data_dir={data}"))  # fmt: skip
    ckpt = run / "checkpoints" / "last.ckpt"
    weights.unlink()  # another machine

    ev = tmp_path / "eval"
    _ok(_run("eval.py", f"ckpt_path={ckpt}", "data.train_images=8", "data.val_images=3",
             "data.num_workers=0", f"paths.data_dir={data}", f"hydra.run.dir={ev}"))  # fmt: skip
    assert "wholebody/AP" in json.loads((ev / "metrics.json").read_text())

    onnx = tmp_path / "model.onnx"
    out = _ok(_run("export.py", f"ckpt_path={ckpt}", f"out_file={onnx}", "check.crops=2",
                   "check.batch_sizes=[1,2]", f"hydra.run.dir={tmp_path / 'export'}"))  # fmt: skip
    assert onnx.is_file() and "OK" in out

    val = data / "synthetic" / "val_n3_s1"
    gt = json.loads((val / "annotations.json").read_text())
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"],
                                 "score": 0.9} for a in gt["annotations"]]))  # fmt: skip
    demo = tmp_path / "demo"
    out = _ok(_run("demo.py", f"input={val / 'images'}", f"ckpt_path={ckpt}", "detector=file",
                   f"detector.path={dets}", f"ann_file={val / 'annotations.json'}",
                   "predictor.device=cpu", "progress=false", f"hydra.run.dir={demo}"))  # fmt: skip
    assert f"{len(gt['annotations'])} people" in out and (demo / "results.json").is_file()

    labels = tmp_path / "pseudo.json"
    _ok(_run("pseudo_label.py", f"ann_file={val / 'annotations.json'}",
             f"image_dir={val / 'images'}", f"out_file={labels}", "~teacher/hand",
             "~teacher/face", "~teacher/foot", "+teacher/wholebody=checkpoint",
             f"teacher.wholebody.path={ckpt}", "workers=0", "progress=false",
             f"hydra.run.dir={tmp_path / 'pseudo'}"))  # fmt: skip
    people = json.loads(labels.read_text())["annotations"]
    assert len(people) == len(gt["annotations"]) and "face_conf" in people[0]


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


@pytest.mark.slow
def test_every_command_line_names_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    from fullbody.codecs.spec import TopDownSpec
    from fullbody.models.module import PoseModule

    bare = tmp_path / "bare.pth"  # a bare state dict (KeyError('pytorch-lightning_version') before)
    torch.save(PoseModule(backbone="test_resnet", head="duc", spec=TopDownSpec.standard((64, 64)),
                          lr=1e-3).state_dict(), bare)  # fmt: skip
    commands = {
        "export.py": [f"ckpt_path={bare}"],
        "eval.py": [f"ckpt_path={bare}"],
        "demo.py": [
            f"input={tmp_path}",
            f"ckpt_path={bare}",
            "detector=file",
            f"detector.path={tmp_path / 'dets.json'}",
        ],
        "train.py": ["+experiment=smoke", f"ckpt_path={bare}", f"paths.data_dir={tmp_path}"],
    }
    for script, args in commands.items():
        line = _one_line_error(_run(script, *args, f"hydra.run.dir={tmp_path / script}"))
        assert f"{bare} (ckpt_path): not a checkpoint of train.py" in line, (script, line)
        assert "bare state dict" in line


@pytest.mark.slow
def test_imagenet_weights_offline_end_train_with_one_line(tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 and an empty cache: the error names the backbone, the hub, the cache
    and the local-file option."""
    home = tmp_path / "hf"
    done = _run("train.py", "+experiment=smoke", "model.pretrained=true",
                f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}",
                HF_HOME=str(home))  # fmt: skip
    line = _one_line_error(done)
    assert line.startswith("error: resnet18: the ImageNet weights could not be fetched from the ")
    assert "Hugging Face hub (timm/resnet18.a1_in1k)" in line and str(home / "hub") in line
    assert "model.pretrained=/path/to/file" in line and "HF_HUB_OFFLINE" in line
