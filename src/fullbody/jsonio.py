"""JSON files: read with errors that name the file and field, write atomically and durably.

The lowest floor of the package (it imports nothing from it), so annotation files, results,
manifests, metrics and reports all read and write JSON the same way. :class:`AnnotationError`
lives here because reading a file is where malformed content is first met; it names the file,
the record and the field, and survives pickling (it crosses worker-process boundaries).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson


class AnnotationError(ValueError):
    """A malformed annotation or results file; the message names file, record and field."""

    def __init__(self, file: str | os.PathLike | None, record: str, field: str, problem: str):
        self.file, self.record, self.field, self.problem = str(file), record, field, problem
        super().__init__(f"{file}: {record}: field '{field}': {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        return type(self), (self.file, self.record, self.field, self.problem)


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Load a JSON file; a missing file or malformed JSON gets an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    data = path.read_bytes()
    try:
        return orjson.loads(data)  # ~3x faster than json on files of 100 MB
    except orjson.JSONDecodeError:
        pass  # json names the line of the error (and reads NaN, which orjson rejects)
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise AnnotationError(path, f"line {e.lineno}", "(json)", f"malformed JSON: {e.msg}") from e


def write_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Dump ``obj`` as JSON to ``path`` atomically (:func:`write_atomic`)."""
    return write_atomic(json.dumps(obj), path)


def write_atomic(data: str | bytes, path: str | os.PathLike) -> Path:
    """Write text or bytes to ``path`` through a temporary file in the same folder.

    The temporary file is flushed and fsynced before the rename, so after a crash ``path``
    holds either the old content or the whole new one, never a renamed empty file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_number(v: float) -> int | float:
    """A JSON number: integral values as ints (flags, zeros of unlabelled points)."""
    f = float(v)
    return int(f) if f.is_integer() else f
