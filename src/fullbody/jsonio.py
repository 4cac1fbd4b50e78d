"""JSON files: read with errors that name the file and field, write atomically and durably.

The lowest floor of the package (it imports nothing from it), so annotation files, results,
manifests, metrics and reports all read and write JSON the same way. Reading uses simdjson:
:func:`read_json` returns plain dicts and lists, or (``lazy=True``, for files of 100 MB) read-only
views into the parsed file whose number arrays :func:`number_bytes` hands over as float64 bytes
without making a Python object per number (what ``eval.py``'s whole-process speed rests on). :class:`AnnotationError`
lives here because reading a file is where malformed content is first met; it names the file,
the record and the field, and survives pickling (it crosses worker-process boundaries).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import simdjson

from fullbody.errors import InputNotFoundError, UserError


class AnnotationError(UserError, ValueError):
    """A malformed annotation or results file; the message names file, record and field."""

    def __init__(self, file: str | os.PathLike | None, record: str, field: str, problem: str):
        self.file, self.record, self.field, self.problem = str(file), record, field, problem
        super().__init__(f"{file}: {record}: field '{field}': {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        return type(self), (self.file, self.record, self.field, self.problem)


#: What a JSON object / array is in a document from :func:`read_json` (``lazy=True`` gives
#: simdjson's read-only views; both kinds answer ``in``, ``[]``, ``get``, ``len`` and iteration).
JSON_OBJECTS = (dict, simdjson.Object)
JSON_ARRAYS = (list, simdjson.Array)
#: What JSON numbers parse to (``bool`` is not one, though a subclass of ``int``).
NUMBER_TYPES = frozenset((int, float))


def read_json(path: str | os.PathLike, what: str = "JSON file", *, lazy: bool = False) -> Any:
    """Load a JSON file; a missing file or malformed JSON gets an error naming the file.

    ``lazy=True`` returns simdjson's views into the parsed file (see :data:`JSON_OBJECTS`; turn
    a part into plain Python with :func:`plain`) unless the file needs Python's ``json`` (NaN or
    Infinity, which JSON has not but Python writes), which then gives plain values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: {what} not found")
    try:
        doc = simdjson.Parser().load(str(path))  # a fresh parser: the views keep it alive
        return doc if lazy else plain(doc)
    except ValueError:
        pass  # json names the line of the error (and reads NaN, which simdjson rejects)
    data = path.read_bytes()
    for magic, what, tool in _ARCHIVES:
        if data.startswith(magic):
            raise AnnotationError(
                path, "(file)", "(json)", f"{what}, not JSON: decompress it first ({tool})"
            )
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        line = f"line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "(encoding)"
        msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise AnnotationError(path, line, "(json)", f"malformed JSON: {msg}") from e


#: Leading bytes of compressed files a JSON path may be given by mistake, and what they are.
_ARCHIVES = (
    (b"\x1f\x8b", "a gzip file", "gunzip"),
    (b"PK\x03\x04", "a zip archive", "unzip"),
    (b"BZh", "a bzip2 file", "bunzip2"),
    (b"\xfd7zXZ\x00", "an xz file", "unxz"),
)


def plain(v: Any) -> Any:
    """A value of a lazy document as plain Python (dicts and lists all the way down)."""
    if isinstance(v, simdjson.Object):
        return v.as_dict()
    if isinstance(v, simdjson.Array):
        return v.as_list()
    return v


def number_bytes(v: Any, n: int) -> memoryview | None:
    """The float64 bytes (native order, a byte view) of ``v`` when it is a flat JSON array of exactly ``n`` numbers (no
    booleans, nulls, strings or nested arrays); ``None`` otherwise, for the caller to name the
    problem. Finiteness is the caller's to check (only Python's ``json`` reads NaN). From a lazy
    document, an array holding one-number arrays in place of some numbers (``[[1], 2, 3]``) is
    read flat, as its numbers add up to ``n``: telling it apart costs a Python object per number.
    """
    if isinstance(v, simdjson.Array):
        if len(v) != n:
            return None
        try:
            buf = v.as_buffer(of_type="d")  # flattens nested arrays: the length tells them
        except TypeError:
            return None
        view = memoryview(buf)
        return view if view.nbytes == 8 * n else None
    if isinstance(v, list) and len(v) == n and NUMBER_TYPES.issuperset(map(type, v)):
        return memoryview(np.asarray(v, dtype=np.float64).view(np.uint8))
    return None


def float_table(n: int, width: int) -> tuple[np.ndarray, memoryview]:
    """A zero (n, width) float64 array and its bytes, for :func:`number_bytes` chunks to be
    copied straight in (``table[o : o + chunk.nbytes] = chunk``, ``o`` in bytes): one copy of
    each number from the parsed file into NumPy's memory."""
    a = np.zeros((n, width))
    return a, memoryview(a.reshape(-1).view(np.uint8))


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


def write_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Render a Matplotlib figure to PNG and write it to ``path`` atomically (as
    :func:`write_atomic`); the figure is closed either way, so loops free its memory."""
    import matplotlib.pyplot as plt

    png = io.BytesIO()
    try:
        fig.savefig(png, format="png")
    finally:
        plt.close(fig)
    return write_atomic(png.getvalue(), path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_number(v: float) -> int | float:
    """A JSON number: integral values as ints (flags, zeros of unlabelled points)."""
    f = float(v)
    return int(f) if f.is_integer() else f


# ----------------------------------------------------- checked numbers of JSON records
def is_number(v: Any) -> bool:
    """A JSON number (int or float, not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def checked_number(v: Any, src: str, rec: str, fld: str) -> float:
    """``v`` as a float, or an :class:`AnnotationError` naming file, record and field."""
    if not is_number(v) or not math.isfinite(v):
        raise AnnotationError(src, rec, fld, f"expected a finite number, got {v!r}")
    return float(v)


def checked_numbers(v: Any, n: int, src: str, rec: str, fld: str) -> np.ndarray:
    """``v`` as ``n`` finite float64s, or an :class:`AnnotationError` naming file, record, field."""
    v = plain(v)
    if not isinstance(v, list) or len(v) != n:
        got = f"{len(v)} values" if isinstance(v, list) else type(v).__name__
        raise AnnotationError(src, rec, fld, f"expected a list of {n} numbers, got {got}")
    if not NUMBER_TYPES.issuperset(map(type, v)):  # exact types: one C-level pass
        raise AnnotationError(src, rec, fld, "holds a value that is not a number")
    arr = np.asarray(v, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise AnnotationError(
            src, rec, fld, f"NaN or infinity at position {int(np.argmin(np.isfinite(arr)))}"
        )
    return arr


def numbers_of(v: Any, n: int, src: str, rec: str, fld: str) -> memoryview:
    """The float64 bytes of a JSON array of ``n`` numbers (:func:`number_bytes`:
    no Python object per number), or :func:`checked_numbers`' error naming file, record, field.
    Finiteness is left to a check over all records (only Python's ``json`` reads NaN)."""
    got = number_bytes(v, n)
    return (
        got if got is not None else memoryview(checked_numbers(v, n, src, rec, fld).view(np.uint8))
    )
