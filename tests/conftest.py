"""Shared fixtures: the COCO-WholeBody sample (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the network: timm's weights come from local files or a temporary hub cache.
# Set before anything imports huggingface_hub (it reads the variable once); subprocesses inherit.
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(
    os.environ.get("FULLBODY_SAMPLE_DIR", ROOT.parent / "shared" / "data" / "coco_wholebody_sample")
)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shared real-data sample folder (images/, annotations/)."""
    if not (SAMPLE_DIR / "annotations" / "coco_wholebody_sample.json").is_file():
        pytest.skip(
            f"COCO-WholeBody sample not found at {SAMPLE_DIR} "
            "(set FULLBODY_SAMPLE_DIR or check out ../shared beside the repo)"
        )
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_ann_file(sample_dir: Path) -> Path:
    """The sample's human whole-body labels."""
    return sample_dir / "annotations" / "coco_wholebody_sample.json"
