"""The record of a resumable job: what it was asked to do, which shards are done, when it finished.

A long job (generating a data set, pseudo-labelling a folder of images) writes into a folder and
may be killed at any point. :class:`JobManifest` keeps, in that folder:

* ``manifest.partial.json`` — ``{key: config}``, written when the job starts (:meth:`begin`);
* ``shard-NNNNN.json`` — one file per finished shard (:meth:`write_shard`), for jobs whose
  pieces are not files of their own (jobs that write one output file per item skip these and
  test their own files);
* ``manifest.json`` — ``{**header, key: config, **summary}``, written last (:meth:`finish`),
  after which the partial record is removed.

``config`` is any JSON-able mapping that fixes the job's result (seed, sizes, the input file's
:func:`file_sha256`, the image folder, teacher settings, the list of item ids per shard); two
runs with equal configs must produce the same output, so a run that finds its own config may
resume and one that finds another must not. Every file is written atomically
(:func:`fullbody.jsonio.write_json_atomic`). Typical use::

    m = JobManifest(out_dir, {"image_dir": str(image_dir), "ann_sha256": file_sha256(ann),
                              "shards": [[1, 2], [3, 4]]})
    if m.check(overwrite) != FINISHED:           # refuses a different job (ManifestMismatchError)
        m.begin()
        for i in m.missing_shards(2):            # a resumed run skips finished shards
            m.write_shard(i, label(shards[i]))
        rows = [m.read_shard(i) for i in range(2)]
        m.finish({"counts": {...}})

:meth:`state` and :meth:`difference` give the parts of :meth:`check` to jobs with their own
refusal rules (the synthetic generator also guards files it did not write).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fullbody.errors import UserError
from fullbody.jsonio import read_json, write_json_atomic

MANIFEST = "manifest.json"
PARTIAL = "manifest.partial.json"
#: States of a job folder, as :meth:`JobManifest.state` reports them.
NEW, UNFINISHED, FINISHED, DIFFERENT = "new", "unfinished", "finished", "different"
_SHARD = re.compile(r"^shard-\d{5}\.json$")
_UNREADABLE = object()


class ManifestMismatchError(UserError, FileExistsError):
    """The folder holds a job with another config (or an unreadable record)."""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes: the identity of an input file in a config."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class JobManifest:
    """The manifest of one job folder (see the module docstring).

    ``key`` names the config's field in the records (``"params"`` for the synthetic generator);
    ``header`` is written before it in the final record (e.g. the generator's name).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        config: Mapping[str, Any],
        *,
        key: str = "config",
        header: Mapping[str, Any] | None = None,
    ):
        self.folder = Path(folder)
        # Through JSON once, so tuples compare equal to the lists read back from disk.
        self.config: dict[str, Any] = json.loads(json.dumps(dict(config), allow_nan=False))
        self.key, self.header = key, dict(header or {})
        self.path, self.partial_path = self.folder / MANIFEST, self.folder / PARTIAL

    # ------------------------------------------------------------------ records
    def _read(self, path: Path) -> Any:
        """The stored config of a record: None when absent, ``_UNREADABLE`` when damaged."""
        if not path.is_file():
            return None
        try:
            record = read_json(path)
        except (OSError, ValueError):
            return _UNREADABLE
        if not isinstance(record, dict) or self.key not in record:
            return _UNREADABLE
        return record[self.key]

    def stored_config(self) -> Any:
        """The config of the finished record if any, else of the partial one; None if neither."""
        final = self._read(self.path)
        found = final if final is not None else self._read(self.partial_path)
        return None if found is _UNREADABLE else found

    def state(self) -> str:
        """``new`` (no record), ``finished``/``unfinished`` (this config) or ``different``."""
        final, partial = self._read(self.path), self._read(self.partial_path)
        if final is not None:
            return FINISHED if final == self.config else DIFFERENT
        if partial is not None:
            return UNFINISHED if partial == self.config else DIFFERENT
        return NEW

    def finished_record(self) -> bool:
        """True when the final record exists (readable or not)."""
        return self.path.is_file()

    def difference(self) -> str:
        """What differs between the stored config and this one, as ``field: old -> new; ...``."""
        final = self._read(self.path)
        old = final if final is not None else self._read(self.partial_path)
        if old is None:
            return "no manifest"
        if old is _UNREADABLE or not isinstance(old, dict):
            return "unreadable manifest"
        flat_old, flat_new = _flatten(old), _flatten(self.config)
        diffs = [
            f"{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}"
            for k in dict.fromkeys([*flat_new, *flat_old])
            if flat_old.get(k) != flat_new.get(k)
        ]
        return "; ".join(diffs) or "manifest incomplete"

    def check(self, overwrite: bool = False) -> str:
        """The state a run starts from; a different job is refused, or cleared with ``overwrite``.

        Raises :class:`ManifestMismatchError` (naming the folder and what differs) when the folder
        holds another job's records and ``overwrite`` is false.
        """
        state = self.state()
        if state != DIFFERENT:
            return state
        if not overwrite:
            what = "a finished" if self.finished_record() else "an unfinished"
            raise ManifestMismatchError(
                f"{self.folder}: holds {what} job with a different config "
                f"({self.difference()}); delete it or pass overwrite"
            )
        self.clear()
        return NEW

    def begin(self) -> None:
        """Record that this config is running (creates the folder)."""
        write_json_atomic({self.key: self.config}, self.partial_path)

    def finish(self, summary: Mapping[str, Any] | None = None) -> Path:
        """Write the final record ``{**header, key: config, **summary}``; drop the partial one."""
        write_json_atomic({**self.header, self.key: self.config, **(summary or {})}, self.path)
        self.partial_path.unlink(missing_ok=True)
        return self.path

    def clear(self) -> None:
        """Remove the records and shard files (the final record first); nothing else."""
        for path in (self.path, self.partial_path):
            path.unlink(missing_ok=True)
        if self.folder.is_dir():
            for e in self.folder.iterdir():
                if e.is_file() and (_SHARD.match(e.name) or _is_tmp_of_own(e.name)):
                    e.unlink()

    # ------------------------------------------------------------------ shards
    def shard_path(self, index: int) -> Path:
        """Where shard ``index`` is stored."""
        return self.folder / f"shard-{index:05d}.json"

    def finished_shards(self, count: int) -> list[int]:
        """Indices in ``range(count)`` whose shard file is written (atomically, so whole)."""
        return [i for i in range(count) if self.shard_path(i).is_file()]

    def missing_shards(self, count: int) -> list[int]:
        """Indices in ``range(count)`` still to do."""
        done = set(self.finished_shards(count))
        return [i for i in range(count) if i not in done]

    def write_shard(self, index: int, data: Any) -> Path:
        """Store one finished shard's JSON atomically."""
        return write_json_atomic(data, self.shard_path(index))

    def read_shard(self, index: int) -> Any:
        """Load one shard; a damaged one raises an error naming its file."""
        return read_json(self.shard_path(index), "shard")


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys, so a difference names the innermost field."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _is_tmp_of_own(name: str) -> bool:
    """Temporary files :func:`write_json_atomic` leaves when killed mid-write."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    return name.startswith((f".{MANIFEST}.", f".{PARTIAL}.", ".shard-"))
