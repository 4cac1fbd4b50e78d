"""Shared fixtures: the COCO-WholeBody sample (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fullbody.utils.sample import (
    SAMPLE_ANNOTATIONS,
    missing_sample_reason,
    sample_available,
)
from fullbody.utils.sample import sample_dir as _sample_dir


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shared real-data sample folder (images/, annotations/)."""
    if not sample_available():
        pytest.skip(missing_sample_reason())
    return _sample_dir()


@pytest.fixture(scope="session")
def sample_ann_file(sample_dir: Path) -> Path:
    """The sample's human whole-body labels."""
    return sample_dir / SAMPLE_ANNOTATIONS
