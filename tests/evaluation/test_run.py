"""The one evaluation pass both eval.py and the callback use: files, notes, write errors."""

from __future__ import annotations

import json

import pytest
from helpers.poses import random_case

from fullbody.evaluation.nms import nms_per_image
from fullbody.evaluation.run import run_evaluation
from fullbody.evaluation.wholebody import evaluate
from fullbody.utils.cli import OutputError


def test_writes_metrics_with_notes_and_breakdowns(tmp_path) -> None:
    gt, preds = random_case()
    out = tmp_path / "m.json"
    run = run_evaluation(gt, preds, nms="oks", breakdowns=True, metrics_file=out, notes=["n"])
    written = json.loads(out.read_text())
    assert written.pop("notes") == ["n"]
    assert written == evaluate(gt, nms_per_image(preds, "oks")) == run.metrics
    assert run.written == [out, tmp_path / "breakdown.json"]
    assert set(json.loads((tmp_path / "breakdown.json").read_text())) == {"size", "occlusion"}


def test_a_failed_write_is_one_line_naming_metrics_file(tmp_path) -> None:
    gt, preds = random_case()
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "m.json"
    with pytest.raises(OutputError, match=rf"^metrics_file={bad}: cannot write"):
        run_evaluation(gt, preds, metrics_file=bad)
