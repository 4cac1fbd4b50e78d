"""The one image reader: EXIF orientation ignored, truncated files refused, sizes checked."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from fullbody.images import (
    ImageFolderError,
    ImageNotFoundError,
    ImageReadError,
    image_folder,
    read_image,
    read_image_records,
)
from fullbody.jsonio import AnnotationError


def _picture(h: int = 48, w: int = 64) -> np.ndarray:
    """A picture whose top and bottom differ (so a 180-degree turn shows)."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 2] = (230, 40, 40)
    rgb[h // 2 :] = (20, 60, 210)
    return rgb


def test_the_exif_fixture_is_one_that_imread_turns(tmp_path, bad_jpegs):
    # The test image really is turned by readers that apply EXIF (so the tests below can fail).
    path = bad_jpegs.exif_rotated(tmp_path / "turned.jpg", _picture())
    applied = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    stored = bad_jpegs.decoded_as_stored(path)
    np.testing.assert_array_equal(applied, stored[::-1, ::-1])
    assert not np.array_equal(applied, stored)


def test_read_image_ignores_exif_orientation(tmp_path, bad_jpegs):
    path = bad_jpegs.exif_rotated(tmp_path / "turned.jpg", _picture())
    image = read_image(path, record={"id": 7, "width": 64, "height": 48})
    np.testing.assert_array_equal(image, bad_jpegs.decoded_as_stored(path))
    assert image[0, 0, 0] > 200 and image[-1, 0, 2] > 200  # red on top, as stored


def test_a_quarter_turn_tag_does_not_swap_the_size(tmp_path, bad_jpegs):
    path = bad_jpegs.exif_rotated(tmp_path / "side.jpg", _picture(), orientation=6)
    assert read_image(path, record={"id": 1, "width": 64, "height": 48}).shape == (48, 64, 3)


def test_truncated_and_unreadable_files_are_refused_by_name(tmp_path, bad_jpegs):
    path = bad_jpegs.truncated(tmp_path / "cut.jpg", _picture(240, 320))
    assert cv2.imread(str(path)) is not None  # what the old readers accepted, half grey
    with pytest.raises(ImageReadError, match=r"cut\.jpg: cannot decode the image.*truncated"):
        read_image(path)
    for factor in (2, 4, 8):
        with pytest.raises(ImageReadError, match=r"cut\.jpg"):
            read_image(path, factor=factor)
    with pytest.raises(ImageNotFoundError, match=r"gone\.jpg: image file not found \(image 3 of"):
        read_image(tmp_path / "gone.jpg", record={"id": 3, "width": 1, "height": 1})
    with pytest.raises(FileNotFoundError):  # also an ImageReadError and a FileNotFoundError
        read_image(tmp_path / "gone.jpg")
    with pytest.raises(ValueError, match="factor"):
        read_image(path, factor=3)


def test_size_is_checked_against_the_record_at_every_factor(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((30, 41, 3), np.uint8))
    assert read_image(path, factor=4, record={"id": 1, "width": 41, "height": 30}).shape[2] == 3
    _, buf = cv2.imencode(".jpg", np.zeros((30, 41, 3), np.uint8))
    (tmp_path / "a.jpg").write_bytes(buf.tobytes())
    small = read_image(tmp_path / "a.jpg", factor=4, record={"id": 1, "width": 41, "height": 30})
    assert small.shape == (8, 11, 3)  # JPEG's DCT scaling rounds up
    with pytest.raises(AnnotationError, match="is 44x32 but the annotation says 41x40"):
        read_image(tmp_path / "a.jpg", factor=4, record={"id": 1, "width": 41, "height": 40})
    with pytest.raises(
        AnnotationError,
        match=r"ann\.json: image 1: field 'width/height'.*a\.png is 41x30 but the annotation says 40x30",
    ):
        read_image(path, record={"id": 1, "width": 40, "height": 30}, source="ann.json")


def test_image_records_name_the_bad_field(tmp_path):
    f = tmp_path / "a.json"
    f.write_text('{"images": [{"id": 1, "file_name": "x.jpg"}, {"id": 2}]}')
    with pytest.raises(AnnotationError, match="image 2: field 'file_name'"):
        read_image_records(f)
    f.write_text('{"images": [{"id": 1, "file_name": "x.jpg"}]}')
    assert read_image_records(f) == {1: {"id": 1, "file_name": "x.jpg"}}


def test_read_errors_survive_pickling(tmp_path):
    for e in (ImageReadError("a.jpg: bad"), ImageNotFoundError("b.jpg: gone")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)


def test_an_image_folder_that_is_a_file_says_so(tmp_path):
    """``image_dir=val2017.zip`` said "image folder not found"."""
    archive = tmp_path / "val2017.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(ImageFolderError, match=r"val2017\.zip: is a file, not a folder of images"):
        image_folder(archive)
    with pytest.raises(FileNotFoundError, match="nowhere: image folder not found"):
        image_folder(tmp_path / "nowhere")
    assert image_folder(tmp_path) == tmp_path
    err = ImageFolderError("x: is a file")
    assert str(pickle.loads(pickle.dumps(err))) == "x: is a file"
