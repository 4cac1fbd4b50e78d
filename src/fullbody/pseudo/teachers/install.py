"""Install the MediaPipe teacher models: ``python -m fullbody.pseudo.teachers.install``.

MediaPipe's landmark models ship as ``.tflite`` files inside its PyPI wheels. Installing the
``mediapipe`` Python package itself would pin protobuf < 5 (which breaks wandb), so this step
downloads one fixed wheel with pip (``--no-deps``; the same bytes on every machine, whatever its
Python or platform, since the files inside are platform-independent), extracts only the three
model files, checks their sizes and SHA-256 (:mod:`fullbody.utils.wheels`) and stores them in the teacher model folder
(``--dir``, else $FULLBODY_TEACHER_DIR, else ``~/.cache/fullbody/teachers``). Run time reads
only those local files. dlib's face model comes with ``pip install -e '.[teachers]'``
(``face_recognition_models``) and needs no step here.
"""

from __future__ import annotations

from fullbody.pseudo.teachers.base import model_dir
from fullbody.utils.wheels import install_main

MEDIAPIPE_VERSION = "0.10.21"
#: The wheel the files are taken from (CPython 3.11, manylinux x86-64; any would do).
WHEEL_TAGS = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
              "--implementation", "cp", "--abi", "cp311")  # fmt: skip
#: name -> (path inside the wheel, size in bytes, SHA-256).
MODELS = {
    "hand_landmark_full.tflite": (
        "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        5478917,
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
    ),
    "face_landmark.tflite": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        1242398,
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        6440512,
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m fullbody.pseudo.teachers.install [--dir D] [--wheel W] [--force]``."""
    return install_main(argv, description=__doc__.splitlines()[0], what="teacher models",
                        requirement=f"mediapipe=={MEDIAPIPE_VERSION}", models=MODELS,
                        folder=model_dir, tags=WHEEL_TAGS)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
