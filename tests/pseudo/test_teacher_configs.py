"""Every teacher config composes and matches its class's constructor (no model files needed)."""

import inspect
from pathlib import Path

import pytest
from helpers.configs import compose_config
from hydra.utils import get_class
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"
CHOICES = [("hand", "mediapipe"), ("hand", "mediapipe_plain"), ("face", "mediapipe"),
           ("face", "dlib"), ("foot", "mediapipe_pose"), ("wholebody", "onnx"),
           ("wholebody", "checkpoint")]  # fmt: skip


@pytest.mark.parametrize(("slot", "choice"), CHOICES)
def test_teacher_configs_bind_to_their_classes(slot, choice):
    prefix = "+" if slot == "wholebody" else ""
    overrides = ["ann_file=a.json", "image_dir=imgs", "out_file=o.json",
                 f"{prefix}teacher/{slot}={choice}"]  # fmt: skip
    cfg = compose_config("pseudo_label", overrides)
    spec = OmegaConf.to_container(cfg.teacher[slot], resolve=False)
    cls = get_class(spec.pop("_target_"))
    inspect.signature(cls.__init__).bind(None, **spec)  # every key is a constructor argument
    assert {"hand", "face", "foot"} <= set(cfg.teacher)  # the default part teachers
    assert cfg.part_boxes == "proposals" and cfg.min_conf == 0.5 and cfg.overwrite is False
