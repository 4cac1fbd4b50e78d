"""Shared fixtures: the COCO-WholeBody sample (skipped with a reason when absent), and writers
of the bad JPEGs every image path is tested with (EXIF-rotated, truncated)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

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
