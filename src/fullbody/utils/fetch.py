"""Published model files, fetched once into a cache and checked by length and SHA-256.

:func:`fetch_model` returns the local path of a file given by URL. When the cache holds it, the
file is checked against the pinned checksum, or against the one recorded beside it
(``<file>.sha256``) the first time it was used. Otherwise it is downloaded (progress on a
terminal) into a temporary file in the cache folder, compared byte for byte with the server's
``Content-Length``, unpacked when it is a ``.zip`` (the archive's ``member``, else its one
``.onnx``: OpenMMLab publishes RTMW and YOLOX as mmdeploy zips holding ``end2end.onnx``),
optionally opened by ``validate`` (e.g. an ONNX session), made world-readable (0644) and only
then renamed to its final name. The checksum is recorded only for a file that loads, and
atomically, so a truncated or broken download is never cached or pinned.

Several processes of one job (pseudo-label workers, DDP ranks) share one download: the first
takes a lock beside the file and the others wait for it and then read the cached file. A cache
folder the user cannot write to still serves the files placed there by hand (nothing is
recorded). Offline (``HF_HUB_OFFLINE=1`` or ``FULLBODY_OFFLINE=1``), or when the download fails,
the error is one line naming the URL and the exact path to place the file at by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from fullbody.errors import UserError
from fullbody.jsonio import write_atomic

log = logging.getLogger(__name__)

OFFLINE_ENV = ("HF_HUB_OFFLINE", "FULLBODY_OFFLINE")
#: Environment variable naming the cache folder of fetched model files.
MODEL_DIR_ENV = "FULLBODY_MODEL_DIR"
#: Suffix of the file recording a fetched file's SHA-256 when no checksum is pinned.
RECORD_SUFFIX = ".sha256"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class FetchError(UserError, RuntimeError):
    """A published file cannot be fetched or does not match; the message names the URL, the
    file and the fix."""


def model_cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Cache folder of fetched model files: ``override``, else $FULLBODY_MODEL_DIR, else
    ``~/.cache/fullbody/models``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(MODEL_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fullbody" / "models"


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


def record_path(path: Path) -> Path:
    """The file recording ``path``'s SHA-256 on first use."""
    return path.with_name(path.name + RECORD_SUFFIX)


def offline() -> bool:
    """Whether this run must not touch the network (see the module docstring)."""
    return any(os.environ.get(v, "") not in ("", "0") for v in OFFLINE_ENV)


def fetch_model(
    url: str,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    member: str | None = None,
    validate: Callable[[Path], object] | None = None,
) -> Path:
    """Local path of the file published at ``url`` (see the module docstring).

    ``member``: the file to take out of a ``.zip`` (matched by its base name); ``validate``:
    called on a new file before it is cached or its checksum recorded; any exception it raises
    refuses the file.
    """
    path = model_cache_dir(cache_dir) / cached_name(url)
    what = "the .onnx inside it" if _is_zip(url) else "it"
    place = f"download {url} yourself and place {what} at {path}"
    fresh = False
    if not path.is_file():
        if offline():
            raise FetchError(f"{path.name} is not cached and this run is offline; {place}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FetchError(f"cannot create the model cache {path.parent} ({e.strerror}); "
                             f"set ${MODEL_DIR_ENV} to a writable folder, or {place}") from None  # fmt: skip
        with _lock(path):
            if not path.is_file():  # another process of the job may have fetched it meanwhile
                _download(url, path, member, validate, place)
                fresh = True
    _check(path, sha256, url, None if fresh else validate)
    return path


def _is_zip(url: str) -> bool:
    return url.split("?")[0].endswith(".zip")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<file>.lock`` beside ``path`` (none where locks are unavailable:
    then concurrent fetches each download, and the last rename wins with an identical file)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _download(
    url: str, dest: Path, member: str | None, validate: Callable | None, place: str
) -> None:
    """Download, check the length, unpack, validate and rename into place (see the module)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise FetchError(f"cannot write to the model cache {dest.parent} ({e.strerror}); "
                         f"set ${MODEL_DIR_ENV} to a writable folder, or {place}") from None  # fmt: skip
    unpacked = tmp + ".onnx"
    try:
        print(f"fetching {url} -> {dest}", file=sys.stderr)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as src:
                expected = src.headers.get("Content-Length")
                got = _copy(src, out, int(expected) if expected else None, dest.name)
        except OSError as e:
            raise FetchError(f"could not fetch {url} ({e}); {place}") from e
        if expected and got != int(expected):
            raise FetchError(f"could not fetch {url}: the download stopped after {got} of "
                             f"{expected} bytes (nothing was cached); try again, or {place}")  # fmt: skip
        final = tmp
        if _is_zip(url):
            _unzip(tmp, unpacked, member, url, place)
            final = unpacked
        if validate is not None:
            try:
                validate(Path(final))
            except Exception as e:
                raise FetchError(f"{url} does not load ({e}); nothing was cached; {place}") from e
        os.chmod(final, 0o644)  # mkstemp makes 0600: a shared cache must stay readable
        os.replace(final, dest)
    finally:
        for leftover in (tmp, unpacked):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _copy(src, out, total: int | None, name: str) -> int:
    """Copy a response to a file with a progress bar on a terminal; the bytes copied."""
    from tqdm import tqdm

    n = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=None) as bar:
        for block in iter(lambda: src.read(1 << 20), b""):
            out.write(block)
            n += len(block)
            bar.update(len(block))
    return n


def _unzip(archive: str, out: str, member: str | None, url: str, place: str) -> None:
    try:
        with zipfile.ZipFile(archive) as z:
            names = [m for m in z.namelist() if not m.endswith("/")]
            if member is not None:
                found = [m for m in names if m.rsplit("/", 1)[-1] == member]
            else:
                found = [m for m in names if m.endswith(".onnx")]
            if len(found) != 1:
                want = member or "one .onnx file"
                raise FetchError(f"{url}: expected {want} in the archive, found {names}; {place}")
            with z.open(found[0]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as e:
        raise FetchError(f"{url}: not a zip archive ({e}); nothing was cached; {place}") from e


def _check(path: Path, sha256: str | None, url: str, validate: Callable | None) -> None:
    """Compare with the pinned or recorded SHA-256; record it (after ``validate``) if neither."""
    record = record_path(path)
    recorded = None
    if sha256 is None and record.is_file():
        text = record.read_text().strip().lower()
        recorded = text if _SHA256.fullmatch(text) else None  # an unreadable record is redone
    expected = (sha256 or recorded or "").lower() or None
    got = file_sha256(path)
    if expected is None:
        if validate is not None:
            try:
                validate(path)
            except Exception as e:
                raise FetchError(f"{path} does not load ({e}); delete it to fetch {url} "
                                 "again") from e  # fmt: skip
        try:
            write_atomic(got + "\n", record)  # trust on first use; later runs must match
        except OSError as e:
            log.warning("%s: cannot record the SHA-256 of %s (%s); it is not checked on later "
                        "runs", record, path.name, e.strerror)  # fmt: skip
    elif got != expected:
        source = "the checksum pinned for it" if sha256 else f"the record file {record}"
        fix = f"delete {path}" + ("" if sha256 else f" and {record}")
        raise FetchError(f"{path}: SHA-256 {got} does not match {expected} from {source}; "
                         f"{fix} to fetch {url} again")  # fmt: skip
