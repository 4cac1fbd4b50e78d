import hashlib
import zipfile

import pytest

from fullbody.pseudo.teachers import install
from fullbody.pseudo.teachers.base import MODEL_DIR_ENV, TeacherError, model_dir, model_file
from fullbody.utils.wheels import extract, installed


def _wheel(tmp_path, payload: bytes):
    path = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mediapipe/modules/x/model.tflite", payload)
        zf.writestr("mediapipe/other.py", "pass")
    return path


def test_extract_verifies_and_installs_only_the_models(tmp_path, monkeypatch):
    data = b"tflite bytes"
    monkeypatch.setattr(install, "MODELS", {
        "model.tflite": ("mediapipe/modules/x/model.tflite", len(data), hashlib.sha256(data).hexdigest())
    })  # fmt: skip
    target = tmp_path / "models"
    assert installed(target, install.MODELS) == {"model.tflite": False}
    assert install.main(["--dir", str(target), "--wheel", str(_wheel(tmp_path, data))]) == 0
    assert sorted(p.name for p in target.iterdir()) == ["model.tflite"]
    assert installed(target, install.MODELS) == {"model.tflite": True}
    assert model_file("model.tflite", target).read_bytes() == data
    (target / "model.tflite").write_bytes(b"tampered")
    assert installed(target, install.MODELS) == {"model.tflite": False}


def test_extract_rejects_a_wheel_with_other_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(install, "MODELS", {
        "model.tflite": ("mediapipe/modules/x/model.tflite", 3, "0" * 64)
    })  # fmt: skip
    with pytest.raises(RuntimeError, match="differ from the expected"):
        extract(_wheel(tmp_path, b"abc"), tmp_path / "models", install.MODELS)
    assert not (tmp_path / "models" / "model.tflite").exists()


def test_model_dir_resolution_and_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "env"))
    assert model_dir() == tmp_path / "env"
    assert model_dir(tmp_path / "cfg") == tmp_path / "cfg"
    with pytest.raises(TeacherError, match=r"make teachers"):
        model_file("hand_landmark_full.tflite")


def test_pinned_files_match_the_teachers():
    from fullbody.pseudo.teachers import mediapipe_face, mediapipe_hand, mediapipe_pose_feet

    names = {m.MODEL_FILE for m in (mediapipe_face, mediapipe_hand, mediapipe_pose_feet)}
    assert names == set(install.MODELS)
