"""Run a Jupyter notebook top to bottom in a kernel of *this* interpreter (tests, benchmarks).

The kernel is started as ``sys.executable -m ipykernel_launcher``, so no kernelspec needs to be
installed and a "python3" kernelspec of another Python on the machine is never picked up.
Parameters are injected the way papermill does it: a cell after the one tagged ``parameters``.
Needs the ``dev`` extra (nbclient, nbformat, ipykernel).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

PARAMETERS_TAG = "parameters"


class _ThisInterpreter(KernelSpecManager):
    """Every kernel name resolves to an IPython kernel of the running interpreter."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python {sys.version_info.major} ({sys.executable})",
            language="python",
        )


class _Manager(AsyncKernelManager):
    """A kernel manager of this interpreter's kernels (nbclient creates it, and so shuts the
    kernel down when the notebook is done)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(kernel_spec_manager=_ThisInterpreter(), **kw)


def inject_parameters(nb: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> None:
    """Insert ``NAME = repr(value)`` lines after the cell tagged ``parameters`` (in place)."""
    tagged = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.metadata.get("tags", [])]
    if not tagged:
        raise ValueError(f"the notebook has no cell tagged {PARAMETERS_TAG!r}")
    source = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(tagged[0] + 1, cell)


def execute_notebook(
    path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike | None = None,
    pythonpath: Sequence[str | os.PathLike] = (),
    timeout: int = 600,
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` and return it with its outputs (the file is untouched).

    ``cwd``: the kernel's working folder (default: the notebook's); ``pythonpath``: folders put
    first on the kernel's ``PYTHONPATH`` (e.g. a checkout's ``src``); ``timeout``: seconds per
    cell. A failing cell raises :class:`nbclient.exceptions.CellExecutionError` with its
    traceback.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    env = dict(os.environ)
    paths = [str(p) for p in pythonpath] + [p for p in [env.get("PYTHONPATH")] if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        kernel_manager_class=_Manager,
        timeout=timeout,
        resources={"metadata": {"path": str(Path(cwd) if cwd else path.parent)}},
    )
    client.execute(env=env)
    return nb
