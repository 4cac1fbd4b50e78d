"""Fixtures of the data tests: tiny data sets written into tmp_path (helpers in tinydata.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tinydata import person, write_set


@pytest.fixture
def tiny_set(tmp_path: Path) -> tuple[Path, Path]:
    """Three images, four whole-body people (PNG, so dot colours stay exact)."""
    scenes = [
        ((240, 200), [person(40, 20)]),
        ((260, 320), [person(20, 30, 1.0), person(190, 40, 0.9)]),
        ((300, 220), [person(60, 40, 1.2)]),
    ]
    return write_set(tmp_path, scenes)
