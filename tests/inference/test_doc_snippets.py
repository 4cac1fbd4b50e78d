"""The README's and docs/inference.md's Python snippets run as written, on tiny stand-ins of the
published files in their layouts (a pre-filled model cache, no network); the README's picture
and Models table stay in step with the registry."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from fullbody.inference.published import DETECTORS, POSE_MODELS

from ._published import fill_cache, rectangle

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "inference.md"]
FENCE = re.compile(r"```python\n(.*?)```", re.S)


def snippets() -> list[tuple[str, str]]:
    """(file:index, code) of every fenced Python block that uses the package."""
    out = []
    for doc in DOCS:
        for i, code in enumerate(FENCE.findall(doc.read_text())):
            if "fullbody" in code:
                out.append((f"{doc.name}:{i}", code))
    return out


@pytest.fixture(scope="module")
def every_published_file(tmp_path_factory) -> Path:
    return fill_cache(tmp_path_factory.mktemp("models"), tuple(POSE_MODELS), tuple(DETECTORS))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_the_snippet_runs(where, code, every_published_file, tmp_path, monkeypatch):
    monkeypatch.setenv("FULLBODY_MODEL_DIR", str(every_published_file))
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("people.jpg", cv2.cvtColor(rectangle(), cv2.COLOR_RGB2BGR))
    scope: dict = {}
    exec(compile(code, where, "exec"), scope)
    if "keypoints" in scope and "scores" in scope:
        assert scope["keypoints"].shape[1:] == (133, 2) and scope["scores"].shape[1:] == (133,)
        assert len(scope["keypoints"]) == 1  # the one person of the picture


def test_the_three_line_snippet_is_at_the_top_of_the_readme():
    readme = (ROOT / "README.md").read_text()
    first = FENCE.search(readme)
    assert first and "from fullbody import Wholebody" in first.group(1)
    assert len([line for line in first.group(1).splitlines() if line.strip()]) == 3
    assert readme.index("docs/images/wholebody_example.png") < first.start()
    assert (ROOT / "docs" / "images" / "wholebody_example.png").stat().st_size < 300_000


def test_the_readme_models_table_has_every_published_name_with_its_facts():
    readme = (ROOT / "README.md").read_text()
    for m in [*POSE_MODELS.values(), *DETECTORS.values()]:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{m.name}`")),
                   None)  # fmt: skip
        assert row is not None, m.name
        h, w = m.input_size
        assert f"{h}×{w}" in row and f"{100 * m.ap:.1f}" in row and m.licence in row, row
