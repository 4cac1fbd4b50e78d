from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from fullbody.manifest import (
    DIFFERENT,
    FINISHED,
    NEW,
    UNFINISHED,
    JobManifest,
    ManifestMismatchError,
    file_sha256,
)

CONFIG = {"image_dir": "/data/images", "seed": 3, "sizes": (2, 2), "shards": [[1, 2], [3, 4]]}


def test_a_job_runs_resumes_and_finishes(tmp_path: Path) -> None:
    m = JobManifest(tmp_path / "job", CONFIG)
    assert m.check() == NEW and m.missing_shards(2) == [0, 1]
    m.begin()
    m.write_shard(0, {"ann_ids": [1, 2]})
    # A second run of the same job (tuples and lists alike) resumes with shard 1 only.
    again = JobManifest(tmp_path / "job", {**CONFIG, "sizes": [2, 2]})
    assert again.check() == UNFINISHED
    assert again.finished_shards(2) == [0] and again.missing_shards(2) == [1]
    again.write_shard(1, {"ann_ids": [3, 4]})
    assert [again.read_shard(i)["ann_ids"] for i in range(2)] == [[1, 2], [3, 4]]
    again.finish({"counts": {"people": 4}})
    record = json.loads((tmp_path / "job" / "manifest.json").read_text())
    assert record == {"config": {**CONFIG, "sizes": [2, 2]}, "counts": {"people": 4}}
    assert not (tmp_path / "job" / "manifest.partial.json").exists()
    assert JobManifest(tmp_path / "job", CONFIG).check() == FINISHED


def test_a_different_config_is_refused_naming_the_field(tmp_path: Path) -> None:
    JobManifest(tmp_path, CONFIG).begin()
    other = JobManifest(tmp_path, {**CONFIG, "image_dir": "/elsewhere"})
    assert other.state() == DIFFERENT
    with pytest.raises(
        ManifestMismatchError, match="unfinished.*image_dir: '/data/images' -> '/else"
    ):
        other.check()
    err = pickle.loads(pickle.dumps(ManifestMismatchError("x: differs")))
    assert isinstance(err, FileExistsError) and str(err) == "x: differs"


def test_overwrite_clears_only_the_jobs_own_files(tmp_path: Path) -> None:
    m = JobManifest(tmp_path, CONFIG)
    m.begin()
    m.write_shard(0, [1])
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / ".shard-00001.json.abc.tmp").write_text("half")
    other = JobManifest(tmp_path, {**CONFIG, "seed": 4})
    assert other.check(overwrite=True) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_nested_differences_and_unreadable_records(tmp_path: Path) -> None:
    JobManifest(tmp_path, {"config": {"people": 2}, "seed": 1}, key="params").finish()
    m = JobManifest(tmp_path, {"config": {"people": 3}, "seed": 1}, key="params")
    assert m.difference() == "config.people: 2 -> 3"
    with pytest.raises(ManifestMismatchError, match="a finished job"):
        m.check()
    (tmp_path / "manifest.json").write_text("{half")
    assert m.state() == DIFFERENT and m.difference() == "unreadable manifest"
    assert m.stored_config() is None


def test_header_comes_first_in_the_final_record(tmp_path: Path) -> None:
    m = JobManifest(tmp_path, {"seed": 1}, key="params", header={"generator": "g"})
    m.finish({"files": {}})
    assert (tmp_path / "manifest.json").read_text() == (
        '{"generator": "g", "params": {"seed": 1}, "files": {}}'
    )


def test_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    assert file_sha256(tmp_path / "a") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
