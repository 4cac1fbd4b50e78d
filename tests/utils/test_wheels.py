import hashlib
import zipfile

import pytest

from fullbody.utils.wheels import extract, installed


def _wheel(tmp_path, payload: bytes):
    path = tmp_path / "some-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mediapipe/modules/x/model.tflite", payload)
        zf.writestr("mediapipe/other.py", "pass")
    return path


def test_other_wheels_and_models_by_argument(tmp_path):
    data = b"onnx bytes"
    models = {
        "det.onnx": (
            "mediapipe/modules/x/model.tflite",
            len(data),
            hashlib.sha256(data).hexdigest(),
        )
    }
    wheel = _wheel(tmp_path, data)
    assert extract(wheel, tmp_path / "d", models) == [tmp_path / "d" / "det.onnx"]
    assert installed(tmp_path / "d", models) == {"det.onnx": True}
    with pytest.raises(RuntimeError, match="no nothing/here inside"):
        extract(wheel, tmp_path / "d", {"x": ("nothing/here", 1, "0" * 64)})
