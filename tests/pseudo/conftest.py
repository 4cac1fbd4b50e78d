"""Fixtures of the pseudo-labelling tests; this folder goes on sys.path so that the tests and
worker processes import ``pseudo_data`` and ``fake_teachers`` by name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from pseudo_data import make_dataset  # noqa: E402


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A small COCO person file with noise images (see :func:`pseudo_data.make_dataset`)."""
    return make_dataset(tmp_path / "data")
