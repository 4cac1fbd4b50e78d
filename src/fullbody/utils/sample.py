"""Where the shared COCO-WholeBody sample lives: one answer for the tests and the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that points at the sample folder (``images/``, ``annotations/``).
SAMPLE_ENV = "FULLBODY_SAMPLE_DIR"
#: The sample's human whole-body labels, relative to the sample folder.
SAMPLE_ANNOTATIONS = Path("annotations") / "coco_wholebody_sample.json"
#: The source checkout holding ``src/fullbody`` (the sample sits beside it, in ``../shared``).
_CHECKOUT = Path(__file__).resolve().parents[3]


def sample_dir() -> Path:
    """``$FULLBODY_SAMPLE_DIR`` when set, else ``../shared/data/coco_wholebody_sample`` beside
    the source checkout. The folder may not exist: see :func:`sample_available`."""
    env = os.environ.get(SAMPLE_ENV)
    if env:
        return Path(env)
    return _CHECKOUT.parent / "shared" / "data" / "coco_wholebody_sample"


def sample_available(folder: Path | None = None) -> bool:
    """Whether ``folder`` (default :func:`sample_dir`) holds the sample's annotation file."""
    return ((folder or sample_dir()) / SAMPLE_ANNOTATIONS).is_file()


def missing_sample_reason(folder: Path | None = None) -> str:
    """Why the sample cannot be used: for skips and error messages."""
    return (
        f"COCO-WholeBody sample not found at {folder or sample_dir()} "
        f"(set {SAMPLE_ENV} or check out ../shared beside the repo)"
    )
