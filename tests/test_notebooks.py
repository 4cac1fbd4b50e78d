"""The notebooks run top to bottom (in a kernel of this interpreter) and are stored clean."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from helpers.checkpoints import trainer_checkpoint

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


_CHECK = "import os, sys\nassert X == 2, X\nprint(os.getcwd(), sys.executable)"


def _tiny(path: Path, tagged: bool = True) -> Path:
    cells = [
        nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"] if tagged else []}),
        nbformat.v4.new_code_cell(_CHECK),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_parameters_are_injected_after_the_tagged_cell(tmp_path):
    from fullbody.notebooks import inject_parameters

    nb = nbformat.read(_tiny(tmp_path / "t.ipynb"), as_version=4)
    inject_parameters(nb, {"X": 2, "NAME": "a b"})
    assert nb.cells[1].source == "X = 2\nNAME = 'a b'"
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    untagged = nbformat.read(_tiny(tmp_path / "u.ipynb", tagged=False), as_version=4)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        inject_parameters(untagged, {"X": 2})


@pytest.mark.slow
def test_execute_notebook_runs_in_this_interpreter_and_reports_failures(tmp_path):
    from nbclient.exceptions import CellExecutionError

    from fullbody.notebooks import execute_notebook

    path = _tiny(tmp_path / "t.ipynb")
    (tmp_path / "work").mkdir()
    nb = execute_notebook(path, {"X": 2}, cwd=tmp_path / "work")
    cwd, python = nb.cells[2].outputs[0]["text"].split()
    assert cwd == str(tmp_path / "work") and python == sys.executable
    assert nbformat.read(path, as_version=4).cells[1].source == _CHECK  # the file is untouched
    with pytest.raises(CellExecutionError, match=r"assert X == 2(.|\n)*AssertionError"):
        execute_notebook(path, {"X": 3})


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
    no_runs = tmp_path / "runs"  # no training run there: the notebook falls back to the stand-in
    params = {"CACHE_DIR": str(tmp_path), "RUNS_DIR": str(no_runs)}
    nb = execute_notebook(HANDS, params, pythonpath=[ROOT / "src"])
    elapsed = time.perf_counter() - start
    text, figures = _outputs(nb)
    assert "NO TRAINING RUN FOUND" in text and "falling back" in text
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


def _tiny_run(runs: Path) -> Path:
    """A run folder as `python train.py` leaves it, with an untrained small student's checkpoint."""
    from fullbody.codecs.spec import TopDownSpec
    from fullbody.models.module import PoseModule

    run = runs / "2026-01-01_00-00-00"
    torch.manual_seed(0)
    model = PoseModule(backbone="resnet18", head="deconv", spec=TopDownSpec.standard((128, 96)),
                       lr=1e-3, head_channels=32)  # fmt: skip
    trainer_checkpoint(model, run / "checkpoints" / "last.ckpt")
    return run


@pytest.mark.slow
def test_the_hand_notebook_studies_the_latest_training_run(tmp_path):
    from fullbody.notebooks import execute_notebook

    run = _tiny_run(tmp_path / "runs")
    params = {"CACHE_DIR": str(tmp_path / "cache"), "RUNS_DIR": str(tmp_path / "runs"),
              "NUM_IMAGES": 4, "N_WORST": 2}  # fmt: skip
    nb = execute_notebook(HANDS, params, pythonpath=[ROOT / "src"])
    text, figures = _outputs(nb)
    assert f"student: the run {run}" in text and "falling back" not in text
    results = list((tmp_path / "cache").glob("run-2026-01-01_00-00-00-last-4-seed1000.json"))
    assert len(results) == 1 and str(results[0]) in text  # the checkpoint's own predictions
    assert "wholebody" in text and figures >= 2
