"""Shared fixtures: the COCO-WholeBody sample (skipped with a reason when absent), and writers
of the bad JPEGs every image path is tested with (EXIF-rotated, truncated)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

# Tests never touch the network: timm's weights come from local files or a temporary hub cache.
# Set before anything imports huggingface_hub (it reads the variable once); subprocesses inherit.
os.environ["HF_HUB_OFFLINE"] = "1"
# W&B logs offline into the run folder, whoever runs the tests is logged in or not (the tests
# that need another mode set it for themselves).
os.environ["WANDB_MODE"] = "offline"

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


# ---------------------------------------------------------------------------- bad image files
def _exif_orientation_segment(orientation: int) -> bytes:
    """A JPEG APP1 segment holding only an EXIF Orientation tag (big-endian TIFF, one IFD)."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    payload = b"Exif\x00\x00" + b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


class BadJpegs:
    """Writers of the JPEGs every image path must handle (see :mod:`fullbody.images`)."""

    @staticmethod
    def exif_rotated(path: Path, rgb: np.ndarray, orientation: int = 3) -> Path:
        """``rgb`` stored as is, tagged EXIF Orientation ``orientation`` (3: turn by 180°);
        COCO labels are in the stored frame, so readers must ignore the tag."""
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        assert ok
        data = buf.tobytes()
        path.write_bytes(data[:2] + _exif_orientation_segment(orientation) + data[2:])
        return path

    @staticmethod
    def truncated(path: Path, rgb: np.ndarray, keep: float = 0.6) -> Path:
        """The first ``keep`` of the bytes of ``rgb`` as a JPEG (a download cut short)."""
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        data = buf.tobytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    @staticmethod
    def decoded_as_stored(path: Path) -> np.ndarray:
        """The file's RGB pixels in their stored frame (for comparisons)."""
        flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
        return cv2.imdecode(np.fromfile(path, np.uint8), flags)


@pytest.fixture
def bad_jpegs() -> type[BadJpegs]:
    """Writers of EXIF-rotated and truncated JPEGs (:class:`BadJpegs`)."""
    return BadJpegs
