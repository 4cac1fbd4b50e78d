"""A throw-away virtualenv holding the reference implementation (xtcocotools, numpy<2).

xtcocotools' wheels are built against numpy 1.x, so the reference cannot live in the project's
environment (numpy 2). :func:`reference_python` returns the python of a separate venv
(``$XTCOCOTOOLS_VENV``, default ``/tmp/xtvenv``), creating it with ``pip install "numpy<2"
xtcocotools`` when needed, or ``None`` with the reason printed when that is impossible.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("XTCOCOTOOLS_VENV", "/tmp/xtvenv"))
REFERENCE_SCRIPT = Path(__file__).resolve().with_name("xtcocotools_reference.py")
PACKAGES = ("numpy<2", "xtcocotools")


def _works(python: Path) -> bool:
    probe = "import numpy, xtcocotools.cocoeval; assert numpy.__version__ < '2'"
    return (
        python.exists()
        and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    )


def reference_python(create: bool = True) -> Path | None:
    """The venv's python if xtcocotools imports there (built on demand), else ``None``."""
    python = VENV / "bin" / "python"
    if _works(python):
        return python
    if not create:
        print(
            f"reference venv {VENV} not usable (create it with {' '.join(PACKAGES)})",
            file=sys.stderr,
        )
        return None
    print(f"building the reference venv {VENV} ({', '.join(PACKAGES)}) ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *PACKAGES],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(
                f"cannot build the reference venv: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}",
                file=sys.stderr,
            )
            return None
    return python if _works(python) else None


def run_reference(gt_file: Path, results_file: Path, sigmas: str = "official") -> dict:
    """Run ``xtcocotools_reference.py`` in the venv; its JSON (stats, seconds, load_seconds)."""
    import json

    python = reference_python()
    if python is None:
        raise RuntimeError("xtcocotools reference venv unavailable")
    cmd = [str(python), str(REFERENCE_SCRIPT), str(gt_file), str(results_file), "--sigmas", sigmas]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"reference failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
