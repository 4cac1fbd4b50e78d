"""Fetching published model files into the cache, against a local HTTP server a test runs on
127.0.0.1 (and file:// URLs): length, load check before pinning, atomic records, a read-only
cache, one download per job, readable files, and the one-line offline/unreachable errors."""

from __future__ import annotations

import http.server
import io
import stat
import threading
import time
import zipfile
from pathlib import Path

import pytest

from fullbody.errors import UserError
from fullbody.utils import fetch
from fullbody.utils.fetch import (
    RECORD_SUFFIX,
    FetchError,
    cached_name,
    fetch_model,
    file_sha256,
    record_path,
)

BODY = b"model bytes " * 1000


class Server:
    """An HTTP server on 127.0.0.1 in a thread: ``files`` by path; ``lie`` adds to the
    Content-Length it announces (a connection cut short); ``delay`` slows every answer; ``hits``
    counts the GETs of each path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.lie = 0
        self.delay = 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                time.sleep(server.delay)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) + server.lie))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server(monkeypatch):
    for var in fetch.OFFLINE_ENV:  # the suite runs offline (conftest); this server is local
        monkeypatch.delenv(var, raising=False)
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_a_download_is_cached_readable_and_its_checksum_recorded(server, tmp_path):
    server.files["/m.onnx"] = BODY
    path = fetch_model(server.url("/m.onnx"), cache_dir=tmp_path)
    assert path == tmp_path / "m.onnx" and path.read_bytes() == BODY
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600: caches are shared
    assert record_path(path).read_text().strip() == file_sha256(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.lock",
                                                          "m.onnx.sha256"]  # fmt: skip
    fetch_model(server.url("/m.onnx"), cache_dir=tmp_path)
    assert server.hits["/m.onnx"] == 1  # the second call reads the cache


def test_a_truncated_download_is_neither_cached_nor_pinned(server, tmp_path):
    server.files["/m.onnx"] = BODY
    server.lie = 100  # announces 100 bytes more than it sends, then closes
    with pytest.raises(FetchError, match=f"stopped after {len(BODY)} of {len(BODY) + 100} bytes"):
        fetch_model(server.url("/m.onnx"), cache_dir=tmp_path)
    assert not any(p.suffix in (".onnx", ".sha256", ".part") for p in tmp_path.iterdir())
    server.lie = 0  # the complete file is then accepted
    assert fetch_model(server.url("/m.onnx"), cache_dir=tmp_path).read_bytes() == BODY


def test_the_checksum_is_recorded_only_for_a_file_that_loads(server, tmp_path):
    server.files["/m.onnx"] = BODY

    def refuse(path: Path) -> None:
        raise ValueError("not a loadable ONNX model")

    with pytest.raises(FetchError, match="does not load .*not a loadable ONNX model"):
        fetch_model(server.url("/m.onnx"), cache_dir=tmp_path, validate=refuse)
    assert not (tmp_path / "m.onnx").exists() and not record_path(tmp_path / "m.onnx").exists()
    # A file placed by hand is checked the same way before its checksum is recorded.
    (tmp_path / "m.onnx").write_bytes(b"junk")
    with pytest.raises(FetchError, match="does not load"):
        fetch_model(server.url("/m.onnx"), cache_dir=tmp_path, validate=refuse)
    assert not record_path(tmp_path / "m.onnx").exists()


def test_mismatches_name_the_record_file_and_an_empty_record_is_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a cached file never touches the network
    url = "https://example.invalid/models/m.onnx"
    path = tmp_path / "m.onnx"
    path.write_bytes(BODY)
    record = record_path(path)
    record.write_text("")  # what a reader saw while a non-atomic writer was half-way
    fetch_model(url, cache_dir=tmp_path)
    assert record.read_text().strip() == file_sha256(path)
    path.write_bytes(BODY + b"x")
    with pytest.raises(FetchError, match=f"from the record file {record}; delete {path} and "
                                         f"{record} to fetch {url}"):  # fmt: skip
        fetch_model(url, cache_dir=tmp_path)
    with pytest.raises(FetchError, match="does not match 00ff from the checksum pinned for it"):
        fetch_model(url, "00ff", tmp_path)
    assert fetch_model(url, file_sha256(path), tmp_path) == path


def test_a_read_only_cache_still_serves_what_was_placed_in_it(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    url = "https://example.invalid/m.onnx"
    (tmp_path / "m.onnx").write_bytes(BODY)

    def read_only(data, path):
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(fetch, "write_atomic", read_only)
    assert fetch_model(url, cache_dir=tmp_path) == tmp_path / "m.onnx"
    assert "cannot record the SHA-256" in caplog.text
    blocked = tmp_path / "m.onnx" / "sub"  # a cache folder that cannot be created
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(FetchError, match=r"cannot create the model cache .*FULLBODY_MODEL_DIR"):
        fetch_model(url, cache_dir=blocked)


def test_concurrent_fetches_of_one_job_download_once(server, tmp_path):
    """Four workers ask at once for a file that takes a while to serve: one downloads, the
    others wait on the lock and read the cached file."""
    server.files["/m.onnx"] = BODY
    server.delay = 0.5
    paths, errors = [], []

    def worker():
        try:
            paths.append(fetch_model(server.url("/m.onnx"), cache_dir=tmp_path))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(paths) == 4 and server.hits["/m.onnx"] == 1


def test_a_zip_gives_its_member_and_nothing_partial_is_left(tmp_path, monkeypatch):
    for var in fetch.OFFLINE_ENV:
        monkeypatch.delenv(var, raising=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("rtmw_sdk/end2end.onnx", BODY)
        z.writestr("rtmw_sdk/other.onnx", b"not this one")
        z.writestr("rtmw_sdk/pipeline.json", "{}")
    archive = tmp_path / "served" / "rtmw-x_simcc-test.zip"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match=r"expected one .onnx file in the archive"):
        fetch_model(archive.as_uri(), cache_dir=cache)
    got = fetch_model(archive.as_uri(), cache_dir=cache, member="end2end.onnx")
    assert got == cache / "rtmw-x_simcc-test.onnx" and got.read_bytes() == BODY
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [
        got.name, got.name + RECORD_SUFFIX]  # fmt: skip
    assert cached_name(archive.as_uri()) == got.name


def test_offline_or_unreachable_is_one_line_naming_the_url_and_where_to_place_it(
    tmp_path, monkeypatch
):
    for var in fetch.OFFLINE_ENV:
        monkeypatch.delenv(var, raising=False)
    url = "http://127.0.0.1:9/dw-ll_ucoco_384.onnx"  # discard port: refused at once
    with pytest.raises(FetchError, match=r"could not fetch http://127.0.0.1:9/.*place it at") as e:
        fetch_model(url, cache_dir=tmp_path)
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)
    monkeypatch.setenv("FULLBODY_OFFLINE", "1")
    with pytest.raises(FetchError, match=r"offline; download .* place it at .*dw-ll_ucoco"):
        fetch_model(url, cache_dir=tmp_path)
