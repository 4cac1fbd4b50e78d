from __future__ import annotations

import json
import os
import pickle

import pytest

from fullbody import jsonio
from fullbody.jsonio import (
    AnnotationError,
    json_number,
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
