"""The notebooks run top to bottom (in a kernel of this interpreter) and are stored clean."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HANDS = ROOT / "notebooks" / "hand_error_analysis.ipynb"


def _outputs(nb) -> tuple[str, int]:
    """All text the cells printed, and the number of figures they showed."""
    text, figures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("name") == "stdout":
                text.append(out["text"])
            data = out.get("data", {})
            figures += "image/png" in data
            text.append(data.get("text/plain", ""))
    return "".join(text), figures


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
        assert not cell.get("attachments"), path.name
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_the_hand_notebook_has_its_parameters_first():
    nb = json.loads(HANDS.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"]["tags"] == ["parameters"]
    source = "".join(code[0]["source"])
    for name in ("GT_FILE", "RESULTS_FILE", "PSEUDO_FILE", "IMAGE_DIR", "PART"):
        assert f"{name} = " in source


@pytest.mark.slow
def test_the_hand_notebook_runs_on_the_builtin_default(tmp_path):
    from fullbody.notebooks import execute_notebook

    start = time.perf_counter()
    nb = execute_notebook(HANDS, {"CACHE_DIR": str(tmp_path)}, pythonpath=[ROOT / "src"])
    elapsed = time.perf_counter() - start
    text, figures = _outputs(nb)
    assert figures >= 15, figures  # sections 1-5 (9 figures) and the face (7)
    for expected in ("lefthand 0-16", "fingertips", "checked hands swapped",
                     "copies teacher mistake", "mouth"):  # fmt: skip
        assert expected in text, expected
    assert (tmp_path / "synthetic-60-seed0" / "annotations.json").is_file()
    print(f"notebook executed in {elapsed:.1f} s")


@pytest.mark.slow
@pytest.mark.needs_sample
def test_the_hand_notebook_runs_on_real_files_without_a_teacher(
    tmp_path, sample_dir, sample_ann_file
):
    from fullbody.annotations import WholeBodySet
    from fullbody.evaluation.simulate import simulate_predictions
    from fullbody.notebooks import execute_notebook

    results = tmp_path / "results.json"
    simulate_predictions(WholeBodySet.load(sample_ann_file), seed=1).save(results)
    params = {"GT_FILE": str(sample_ann_file), "RESULTS_FILE": str(results), "N_WORST": 4}
    nb = execute_notebook(HANDS, params, cwd=tmp_path, pythonpath=[ROOT / "src"])
    text, figures = _outputs(nb)
    assert "no PSEUDO_FILE" in text and str(sample_ann_file) in text
    assert figures >= 10  # no teacher figures; galleries from the sample's images/
    assert not (tmp_path / "outputs").exists()  # nothing written for real inputs
