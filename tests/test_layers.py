"""The floor plan: the ground-floor modules import no room, and no room imports a higher layer.

Imports are read with :mod:`ast` from the source (nothing is imported), so a lazy import inside a
function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fullbody"

#: Shared structures every room may import; they import only each other.
FLOOR = ("errors", "keypoints", "jsonio", "annotations", "images", "geometry", "results",
         "manifest", "draw")  # fmt: skip
#: The rooms, lowest first; a room may import the floor, its own layer and the layers below.
LAYERS = (
    ("codecs", "synthetic", "utils", "compare", "notebooks"),
    ("data",),
    ("models", "evaluation"),
    ("inference", "pseudo", "analysis"),
    ("jobs",),
)
LEVEL = {name: 0 for name in FLOOR} | {
    name: i + 1 for i, layer in enumerate(LAYERS) for name in layer
}


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_rooms(source: str, depth: int) -> set[str]:
    """Top-level subpackages/modules of ``fullbody`` that ``source`` imports (absolute, or
    relative from a module ``depth`` folders below ``fullbody/``)."""
    rooms = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "fullbody":
            names = [f"fullbody.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.ImportFrom):
            if node.level <= depth:  # stays inside this module's own room
                continue
            names = ["fullbody." + (node.module or node.names[0].name)]
        else:
            continue
        rooms |= {n.split(".")[1] for n in names if n.startswith("fullbody.") and "." in n}
    return rooms - {"__init__"}


def _imports_of(path: Path) -> set[str]:
    return _imported_rooms(path.read_text(), len(path.relative_to(PACKAGE).parts) - 1)


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_place_in_the_plan():
    unplaced = {_room(p) for p in SOURCES} - set(LEVEL)
    assert not unplaced, f"rooms missing from the floor plan (tests/test_layers.py): {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    room = _room(path)
    upward = {r for r in _imports_of(path) - {room} if LEVEL.get(r, 99) > LEVEL[room]}
    assert not upward, f"{path.relative_to(PACKAGE)} ({room}) imports upward: {sorted(upward)}"


def test_the_floor_imports_no_room():
    for name in FLOOR:
        path = PACKAGE / f"{name}.py"
        assert path.is_file(), f"floor module {name} is not a module of its own"
        rooms = _imports_of(path) - {name}
        assert rooms <= set(FLOOR), f"{name} imports the rooms {sorted(rooms - set(FLOOR))}"


def test_the_reader_sees_every_kind_of_import():
    src = ("from fullbody.data.dataset import TopDownDataset\nimport fullbody.jobs.train\n"
           "def f():\n    from ..models import module\n    from . import sibling\n")  # fmt: skip
    assert _imported_rooms(src, depth=1) == {"data", "jobs", "models"}
    assert _imported_rooms("from .keypoints import NUM_KEYPOINTS\n", depth=0) == {"keypoints"}
    assert _imported_rooms("from fullbody import geometry\n", depth=0) == {"geometry"}
