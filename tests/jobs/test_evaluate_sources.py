"""eval.py reads predictions from exactly one source; an option of another source is refused,
never silently ignored."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from fullbody.errors import ConfigError
from fullbody.jobs.evaluate import check_source

NONE = {"results_file": None, "ckpt_path": None, "pose_model": None, "ann_file": None,
        "image_dir": None, "det_file": None}  # fmt: skip


def source(**given):
    return check_source(OmegaConf.create({**NONE, **given}))


def test_each_source_with_its_own_options():
    assert source(results_file="r.json", ann_file="gt.json") == "results_file"
    assert source(ckpt_path="last.ckpt") == "ckpt_path"
    assert source(pose_model="rtmw-x-384x288", ann_file="gt.json", image_dir="val2017",
                  det_file="dets.json") == "pose_model"  # fmt: skip


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({}, "give exactly one of results_file=..., ckpt_path=..., pose_model=...; got none"),
        ({"ckpt_path": "a.ckpt", "results_file": "r.json"}, "give one mode, not both"),
        ({"pose_model": "rtmw-x-384x288", "ckpt_path": "a.ckpt"}, "got ckpt_path and pose_model"),
        ({"ckpt_path": "a.ckpt", "ann_file": "gt.json"}, "ckpt_path=a.ckpt and ann_file=gt"),
        ({"pose_model": "rtmw-x-384x288", "results_file": "r.json"}, "got results_file and pose"),
        ({"results_file": "r.json", "image_dir": "val2017"}, "image_dir: not read with results"),
        ({"results_file": "r.json", "det_file": "d.json"}, "det_file: not read with results"),
    ],
)
def test_none_several_or_a_stray_option_is_refused(given, match):
    with pytest.raises(ConfigError, match=match):
        source(**given)
