"""The learning curve: the validation history a run writes, drawn per part against minutes and
steps."""

from __future__ import annotations

import json

import pytest

from fullbody.analysis.curve import main, plot_learning_curve, read_history
from fullbody.keypoints import EVAL_PARTS


def _history(path, aps):
    rows = [
        {
            "epoch": i,
            "step": 10 * i,
            "wall_min": 1.5 * i,
            "metrics": {f"{p}/AP": ap for p in EVAL_PARTS},
        }
        for i, ap in enumerate(aps)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_reads_a_run_folder_and_draws_one_line_per_part(tmp_path):
    rows = _history(tmp_path / "val_history.jsonl", [0.0, 0.2, 0.4])
    assert read_history(tmp_path) == rows
    fig = plot_learning_curve(rows)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == list(EVAL_PARTS)
    assert list(lines[0].get_xdata()) == [0.0, 1.5, 3.0]
    assert list(lines[0].get_ydata()) == [0.0, 0.2, 0.4]
    by_step = fig.axes[1].get_lines()  # the same lines against the optimiser step
    assert [line.get_label() for line in by_step] == list(EVAL_PARTS)
    assert list(by_step[-1].get_xdata()) == [0, 10, 20]
    assert list(by_step[-1].get_ydata()) == [0.0, 0.2, 0.4]


def test_command_line_writes_the_png_and_reports_bad_input(tmp_path, capsys):
    _history(tmp_path / "val_history.jsonl", [0.1, 0.3])
    out = tmp_path / "curve.png"
    assert main([str(tmp_path), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main([str(tmp_path / "nothing"), "-o", str(out)]) == 2
    assert "no validation history" in capsys.readouterr().err
    (tmp_path / "val_history.jsonl").write_text('{"epoch": 0}\n')
    with pytest.raises(ValueError, match=r"val_history.jsonl:1"):
        read_history(tmp_path)
