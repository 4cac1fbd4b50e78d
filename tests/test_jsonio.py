from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import pickle
import re

import numpy as np
import pytest

from fullbody import jsonio
from fullbody.jsonio import (
    JSON_ARRAYS,
    JSON_OBJECTS,
    AnnotationError,
    float_table,
    json_number,
    number_bytes,
    plain,
    read_json,
    write_atomic,
    write_json_atomic,
)


def test_write_json_atomic_fsyncs_the_temporary_file_before_the_rename(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(jsonio.os, "fsync", fsync)
    monkeypatch.setattr(jsonio.os, "replace", replace)
    write_json_atomic({"a": [1, 2]}, tmp_path / "out.json")
    kinds = [k for k, _ in events]
    assert kinds == ["fsync", "replace"], events
    assert events[0][1] == events[1][1]  # the file synced is the one renamed into place
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": [1, 2]}


def test_write_atomic_writes_text_and_bytes_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    assert write_atomic("a,b\n", tmp_path / "t.csv").read_text() == "a,b\n"
    assert write_atomic(b"\x89PNG", tmp_path / "p.png").read_bytes() == b"\x89PNG"

    def fail(src, dst) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jsonio.os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomic("new", tmp_path / "t.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "t.csv"]
    assert (tmp_path / "t.csv").read_text() == "a,b\n"


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json: results file not found"):
        read_json(tmp_path / "missing.json", "results file")
    (tmp_path / "bad.json").write_text('{"a":\n  nope}')
    with pytest.raises(AnnotationError, match=r"bad.json: line 2: field '\(json\)'"):
        read_json(tmp_path / "bad.json")


def test_annotation_error_survives_pickling():
    e = AnnotationError("a.json", "annotation 3", "bbox", "negative width")
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, AnnotationError) and str(back) == str(e)
    assert (back.file, back.record, back.field, back.problem) == (
        "a.json", "annotation 3", "bbox", "negative width",
    )  # fmt: skip


def test_json_number_keeps_integral_values_as_ints():
    assert json_number(2.0) == 2 and isinstance(json_number(2.0), int)
    assert json_number(0.5) == 0.5


def test_lazy_read_gives_views_that_read_like_plain_json(tmp_path):
    data = {"a": [1, 2.5, -3], "b": {"c": [[1, 2], [3, 4]], "s": "x"}, "t": True, "n": None}
    (tmp_path / "d.json").write_text(json.dumps(data))
    doc = read_json(tmp_path / "d.json", lazy=True)
    assert isinstance(doc, JSON_OBJECTS) and not isinstance(doc, dict)
    assert isinstance(doc["a"], JSON_ARRAYS) and len(doc["a"]) == 3
    assert "a" in doc and "zz" not in doc and list(doc) == ["a", "b", "t", "n"]
    assert doc["t"] is True and doc["n"] is None and doc["b"]["s"] == "x"
    assert plain(doc) == data == read_json(tmp_path / "d.json")
    (tmp_path / "nan.json").write_text('{"a": [NaN, 1]}')  # Python's json extension: plain
    back = read_json(tmp_path / "nan.json", lazy=True)
    assert isinstance(back, dict) and np.isnan(back["a"][0])


@pytest.mark.parametrize("lazy", [False, True])
def test_number_bytes_takes_flat_number_arrays_of_the_length_only(tmp_path, lazy):
    cases = {"ok": [1, 2.5, -3], "short": [1, 2], "bool": [1, True, 3], "null": [1, None, 3],
             "text": [1, "2", 3], "nested": [[1, 2, 3], 4, 5], "flat_nested": [[1], [2], [3]]}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(cases))
    doc = read_json(tmp_path / "c.json", lazy=lazy)
    got = {k: number_bytes(doc[k], 3) for k in cases}
    assert np.frombuffer(got.pop("ok"), dtype=np.float64).tolist() == [1.0, 2.5, -3.0]
    flat = got.pop("flat_nested")  # lazily read flat (documented); plain lists are refused
    assert flat is None if not lazy else np.frombuffer(flat).tolist() == [1.0, 2.0, 3.0]
    assert got == dict.fromkeys(got)  # every other one refused (None)
    assert number_bytes("123", 3) is None and number_bytes(7, 1) is None


def test_float_table_takes_chunks_at_byte_offsets():
    a, raw = float_table(2, 4)
    raw[32 + 8 : 32 + 24] = number_bytes([5.0, 6], 2)
    assert a.tolist() == [[0, 0, 0, 0], [0, 5, 6, 0]]
    empty, _ = float_table(0, 399)
    assert empty.shape == (0, 399)


@pytest.mark.parametrize(
    ("pack", "what"),
    [(gzip.compress, "a gzip file, not JSON: decompress it first (gunzip)"),
     (bz2.compress, "a bzip2 file"), (lzma.compress, "an xz file")],
)  # fmt: skip
def test_a_compressed_json_file_says_what_it_is(tmp_path, pack, what):
    """It said only "malformed JSON: not UTF-8"."""
    path = tmp_path / "person_keypoints_val2017.json.gz"
    path.write_bytes(pack(b'{"images": []}'))
    with pytest.raises(AnnotationError, match=re.escape(f"{path}: (file)")) as raised:
        read_json(path)
    assert what in str(raised.value)
