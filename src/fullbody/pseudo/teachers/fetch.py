"""Published teacher model files, fetched once into the teacher cache and checked by SHA-256.

:func:`fetch_model` returns the local path of a model given by URL: the cached file when it is
there (checked against the configured checksum, or against the one recorded when it was first
fetched), else it downloads the file (or the one ``.onnx`` inside a ``.zip``, as OpenMMLab
publishes RTMW) to the cache atomically. Offline (``HF_HUB_OFFLINE=1`` or
``FULLBODY_OFFLINE=1``), or when the download fails, the error names the URL and the exact path
to place the file at by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from fullbody.pseudo.teachers.base import TeacherError, model_dir

OFFLINE_ENV = ("HF_HUB_OFFLINE", "FULLBODY_OFFLINE")
#: Suffix of the file recording a fetched file's SHA-256 when no checksum was configured.
RECORD_SUFFIX = ".sha256"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_name(url: str) -> str:
    """The cache file name of a URL: its last part, ``.zip`` archives stored as ``.onnx``."""
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    return name[: -len(".zip")] + ".onnx" if name.endswith(".zip") else name


def _check(path: Path, sha256: str | None, url: str) -> None:
    record = path.with_name(path.name + RECORD_SUFFIX)
    expected = sha256 or (record.read_text().strip() if record.is_file() else None)
    got = file_sha256(path)
    if expected is None:
        record.write_text(got + "\n")  # trust on first use; later runs must match
    elif got != expected.lower():
        raise TeacherError(
            f"{path}: SHA-256 {got} does not match the expected {expected} (from "
            f"{'the teacher config' if sha256 else record}); delete it to fetch {url} again"
        )


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as src:
            shutil.copyfileobj(src, out)
        if url.split("?")[0].endswith(".zip"):
            with zipfile.ZipFile(tmp) as z:
                members = [m for m in z.namelist() if m.endswith(".onnx")]
                if len(members) != 1:
                    raise TeacherError(f"{url}: expected one .onnx in the archive, got {members}")
                with z.open(members[0]) as src, open(tmp + ".onnx", "wb") as out:
                    shutil.copyfileobj(src, out)
            os.replace(tmp + ".onnx", dest)
        else:
            os.replace(tmp, dest)
    finally:
        for leftover in (tmp, tmp + ".onnx"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def fetch_model(
    url: str, sha256: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Local path of the model published at ``url`` (see the module docstring)."""
    path = model_dir(cache_dir) / cached_name(url)
    if not path.is_file():
        what = "the .onnx inside it" if url.endswith(".zip") else "it"
        place = f"download {url} yourself and place {what} at {path}"
        if any(os.environ.get(v, "") not in ("", "0") for v in OFFLINE_ENV):
            raise TeacherError(f"teacher model {path.name} is not cached and this run is offline; "
                               f"{place}")  # fmt: skip
        try:
            _download(url, path)
        except (OSError, zipfile.BadZipFile) as e:
            raise TeacherError(f"could not fetch {url} ({e}); {place}") from e
    _check(path, sha256, url)
    return path
