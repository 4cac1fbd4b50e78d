"""The one way images are read and normalised: training, inference, pseudo-labelling, analysis.

COCO (and COCO-WholeBody) labels are in the pixel frame the file stores, so EXIF orientation is
ignored; a truncated or otherwise undecodable file is refused (``cv2.imdecode`` returns nothing
for it, where ``cv2.imread`` would return a half-grey picture); and when the image has a COCO
record, the decoded size is checked against the record's ``width``/``height`` — a mismatch means
the labels belong to other pixels. :class:`ImageNormalizer` turns uint8 RGB into the float
tensor layout every network of the project takes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fullbody.errors import InputNotFoundError, UserError
from fullbody.jsonio import AnnotationError, read_json

#: ImageNet statistics of RGB images scaled to [0, 1] (what timm backbones expect).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Size factors the decoder can shrink by while decoding (JPEG DCT scaling).
DECODE_FACTORS = (1, 2, 4, 8)
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip
#: Decoding flags by size factor: RGB, pixels as stored (COCO labels ignore EXIF orientation).
DECODE_FLAGS = {
    f: (flag & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    for f, flag in _REDUCED.items()
}


class ImageReadError(UserError, ValueError):
    """An image file is empty, truncated, corrupt or not an image; the message names it."""


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """An image file is missing or cannot be opened; the message names it."""


class ImageFolderError(UserError, NotADirectoryError):
    """An image folder option names a file (an archive, a single image); the message says so."""


def image_folder(path: str | os.PathLike) -> Path:
    """``path`` as a folder of images; raises :class:`InputNotFoundError` when nothing is there
    and :class:`ImageFolderError` when it is a file (a zip of the images, say), not "not found"."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder
    if folder.exists():
        raise ImageFolderError(
            f"{folder}: is a file, not a folder of images (an archive? extract it and give the "
            "folder)"
        )
    raise InputNotFoundError(f"{folder}: image folder not found")


def read_image(
    path: str | os.PathLike,
    *,
    factor: int = 1,
    record: Mapping[str, Any] | None = None,
    source: str | os.PathLike | None = None,
) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, at 1/``factor`` size, EXIF ignored.

    With ``record`` (the COCO image record: ``id``, ``width``, ``height``) the decoded size must
    match the record's (rounded up at reduced sizes), else :class:`AnnotationError` names
    ``source`` (the annotation file), the image and ``width/height``. A missing file raises
    :class:`ImageNotFoundError`, an undecodable one :class:`ImageReadError`.
    """
    if factor not in DECODE_FLAGS:
        raise ValueError(f"factor must be one of {DECODE_FACTORS}, got {factor}")
    path = Path(path)
    where = "" if record is None else f" (image {record.get('id')} of {source or 'its record'})"
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageNotFoundError(
            f"{path}: image file not found{where}; is the image folder right?"
        ) from None
    except OSError as e:
        raise ImageNotFoundError(
            f"{path}: cannot read the file{where} ({e.strerror or e})"
        ) from None
    image = cv2.imdecode(buf, DECODE_FLAGS[factor]) if buf.size else None
    if image is None:
        raise ImageReadError(
            f"{path}: cannot decode the image{where} (empty, truncated, corrupt or not an image)"
        )
    if record is not None:
        check_size(image, record, path, source, factor)
    return image


def check_size(
    image: np.ndarray,
    record: Mapping[str, Any],
    path: str | os.PathLike,
    source: str | os.PathLike | None = None,
    factor: int = 1,
) -> None:
    """Raise :class:`AnnotationError` unless ``image`` (decoded at 1/``factor``) has the
    record's ``width`` x ``height`` (at a reduced size JPEG rounds up, other formats down)."""
    width, height = int(record["width"]), int(record["height"])
    h, w = image.shape[:2]
    if not (
        h in (height // factor, -(-height // factor))
        and w in (width // factor, -(-width // factor))
    ):
        raise AnnotationError(
            source if source is not None else path, f"image {record.get('id')}", "width/height",
            f"the file {path} is {image.shape[1] * factor}x{image.shape[0] * factor} "
            f"but the annotation says {width}x{height}",
        )  # fmt: skip


def read_image_records(path: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """The ``images`` records (id -> record) of any COCO JSON file (annotations, image info)."""
    path = Path(path)
    data = read_json(path, "ann_file")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise AnnotationError(path, "top level", "images", "missing or not a list")
    out = {}
    for k, rec in enumerate(images):
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), int):
            raise AnnotationError(path, f"image #{k}", "id", "missing or not an integer")
        if not isinstance(rec.get("file_name"), str):
            raise AnnotationError(
                path, f"image {rec['id']}", "file_name", "missing or not a string"
            )
        out[rec["id"]] = rec
    return out


class ImageNormalizer:
    """uint8 RGB (H, W, 3) -> float32 (3, H, W) ``(x / 255 - mean) / std`` in one table lookup
    per channel (what ``ToTensor`` + ``Normalize`` do, without float intermediates)."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        v = np.arange(256, dtype=np.float64) / 255.0
        self.luts = [((v - m) / s).astype(np.float32) for m, s in zip(mean, std)]

    def __call__(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The normalised planes, written into ``out`` (a float32 (3, H, W) array, e.g. one
        row of a batch) when given."""
        h, w = image.shape[:2]
        if out is None:
            out = np.empty((3, h, w), dtype=np.float32)
        elif out.shape != (3, h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
            # OpenCV would silently write elsewhere
            raise ValueError(f"out must be a contiguous float32 (3, {h}, {w}) array")
        for c, plane in enumerate(cv2.split(image)):
            cv2.LUT(plane, self.luts[c], dst=out[c])
        return out
