"""Throw-away virtualenvs holding the reference implementations (numpy<2 in both).

* xtcocotools (the official COCO-WholeBody metric): its wheels are built against numpy 1.x, so
  it cannot live in the project's environment (numpy 2). :func:`reference_python` returns the
  python of ``$XTCOCOTOOLS_VENV`` (default ``/tmp/xtvenv``), creating it with ``pip install
  "numpy<2" xtcocotools`` when needed, or ``None`` with the reason printed.
* mmpose 1.3.2 (its top-down training pipeline, for ``bench_data.py``): :func:`mmpose_python`
  returns the python of ``$MMPOSE_VENV`` (default ``/tmp/mmposevenv``). Everything comes from
  wheels or pure-Python sources (``mmcv-lite``, no compiled mmcv ops; ``mmpose`` without its
  dependency list, which names ``chumpy``, a broken source package the data pipeline does not
  use); torch, too large to install twice, is taken from the project's environment through a
  ``.pth`` file placed after the venv's own packages, so numpy<2 wins.
* rtmlib 0.0.16 (RTMPose's lightweight inference library, for ``bench_infer.py``):
  :func:`rtmlib_python` returns the python of ``$RTMLIB_VENV`` (default ``/tmp/rtmlibvenv``).
  rtmlib alone is installed there (``--no-deps``); numpy, onnxruntime and OpenCV are the
  project's own, through a ``.pth`` file, so both sides of the comparison run the same builds
  of the libraries that do the work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("XTCOCOTOOLS_VENV", "/tmp/xtvenv"))
REFERENCE_SCRIPT = Path(__file__).resolve().with_name("xtcocotools_reference.py")
PACKAGES = ("numpy<2", "xtcocotools")

MMPOSE_VENV = Path(os.environ.get("MMPOSE_VENV", "/tmp/mmposevenv"))
MMPOSE_SCRIPT = Path(__file__).resolve().with_name("mmpose_reference.py")
MMPOSE_PACKAGES = (
    "numpy<2", "mmcv-lite==2.1.0", "mmengine", "opencv-python-headless", "scipy",
    "json_tricks", "munkres", "pillow", "matplotlib", "xtcocotools",
)  # fmt: skip


RTMLIB_VENV = Path(os.environ.get("RTMLIB_VENV", "/tmp/rtmlibvenv"))
RTMLIB_SCRIPT = Path(__file__).resolve().with_name("rtmlib_reference.py")
RTMLIB_PACKAGE = "rtmlib==0.0.16"


def _works(python: Path, probe: str) -> bool:
    return (
        python.exists()
        and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    )


def _build(venv: Path, steps: list[list[str]], python: Path, probe: str) -> Path | None:
    print(f"building the reference venv {venv} ...", file=sys.stderr)
    for cmd in [[sys.executable, "-m", "venv", str(venv)], *steps]:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(
                f"cannot build the reference venv: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}",
                file=sys.stderr,
            )
            return None
    return python if _works(python, probe) else None


_XT_PROBE = "import numpy, xtcocotools.cocoeval; assert numpy.__version__ < '2'"


def reference_python(create: bool = True) -> Path | None:
    """The xtcocotools venv's python if it works (built on demand), else ``None``."""
    python = VENV / "bin" / "python"
    if _works(python, _XT_PROBE):
        return python
    if not create:
        print(f"reference venv {VENV} not usable (create it with {' '.join(PACKAGES)})",
              file=sys.stderr)  # fmt: skip
        return None
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    return _build(VENV, [[*pip, *PACKAGES]], python, _XT_PROBE)


_MMPOSE_PROBE = (
    "import numpy, mmpose, mmpose.datasets.transforms; "
    "assert numpy.__version__ < '2' and mmpose.__version__ == '1.3.2'"
)


def mmpose_python(create: bool = True) -> Path | None:
    """The mmpose venv's python if mmpose 1.3.2 imports there (built on demand), else ``None``."""
    python = MMPOSE_VENV / "bin" / "python"
    if _works(python, _MMPOSE_PROBE):
        return python
    if not create:
        print(f"mmpose venv {MMPOSE_VENV} not usable (see benchmarks/reference_venv.py)",
              file=sys.stderr)  # fmt: skip
        return None
    pip = [str(python), "-m", "pip", "install", "--quiet", "--only-binary", "numpy,scipy"]
    steps = [
        [*pip, *MMPOSE_PACKAGES],
        [*pip, "--no-deps", "mmpose==1.3.2"],
        _link_project_packages(python, "torch", "zz_project_torch.pth"),
    ]
    return _build(MMPOSE_VENV, steps, python, _MMPOSE_PROBE)


def _link_project_packages(python: Path, module: str, pth_name: str) -> list[str]:
    """The command that makes the venv of ``python`` see the project's site-packages (the
    folder holding ``module``) after its own packages, through a ``.pth`` file."""
    site_dir = Path(__import__(module).__file__).parents[1]
    link = (
        f"from pathlib import Path; import site; "
        f"Path(site.getsitepackages()[0], {pth_name!r}).write_text({str(site_dir)!r})"
    )
    return [str(python), "-c", link]


_RTMLIB_PROBE = (
    "import importlib.metadata, onnxruntime, cv2; from rtmlib import RTMPose; "
    f"assert importlib.metadata.version('rtmlib') == {RTMLIB_PACKAGE.split('==')[1]!r}"
)


def rtmlib_python(create: bool = True) -> Path | None:
    """The rtmlib venv's python if rtmlib's ``RTMPose`` imports there (built on demand), else
    ``None``."""
    python = RTMLIB_VENV / "bin" / "python"
    if _works(python, _RTMLIB_PROBE):
        return python
    if not create:
        print(f"rtmlib venv {RTMLIB_VENV} not usable (see benchmarks/reference_venv.py)",
              file=sys.stderr)  # fmt: skip
        return None
    steps = [
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", RTMLIB_PACKAGE],
        _link_project_packages(python, "onnxruntime", "zz_project_packages.pth"),
    ]
    return _build(RTMLIB_VENV, steps, python, _RTMLIB_PROBE)


def run_reference(gt_file: Path, results_file: Path, sigmas: str = "official") -> dict:
    """Run ``xtcocotools_reference.py`` in the venv; its JSON (stats, seconds, load_seconds)."""
    python = reference_python()
    if python is None:
        raise RuntimeError("xtcocotools reference venv unavailable")
    cmd = [str(python), str(REFERENCE_SCRIPT), str(gt_file), str(results_file), "--sigmas", sigmas]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"reference failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
