import numpy as np
import pytest

from fullbody.annotations import AnnotationError, WholeBodySet
from fullbody.pseudo.report import coverage, quality_report, write_report


def _copy(ws: WholeBodySet) -> WholeBodySet:
    out = ws.subset(np.arange(len(ws)))
    out.has_conf = True
    return out


@pytest.mark.needs_sample
def test_coverage_counts_labelled_missing_and_extra_parts(sample_ann_file):
    human = WholeBodySet.load(sample_ann_file)
    labels = _copy(human)
    assert all(
        c["labelled"] == c["human"] and c["extra"] == 0 for c in coverage(labels, human).values()
    )
    labels.valid[:, 2] = ~human.valid[:, 2]  # face: every answer wrong
    face = coverage(labels, human)["face"]
    assert face == {"human": 4, "labelled": 0, "extra": len(human) - 4}


@pytest.mark.needs_sample
def test_report_calls_the_metric_and_writes_next_to_the_output(
    sample_ann_file, tmp_path, monkeypatch
):
    human = WholeBodySet.load(sample_ann_file)
    seen = {}

    def metric(gt, preds):
        seen["gt"], seen["preds"] = gt, preds
        return {"face/AP": 0.5}

    import fullbody.pseudo.report as report

    monkeypatch.setattr(report, "as_predictions", lambda labels: ("preds", len(labels)))
    path, table = write_report(_copy(human), sample_ann_file, tmp_path / "p.json", metric)
    assert path == tmp_path / "p.report.json" and path.is_file()
    assert table["metrics"] == {"face/AP": 0.5} and seen["preds"] == ("preds", 14)
    assert table["proposals"]["face"]["n"] == 4


def test_report_needs_human_whole_body_labels(tmp_path):
    kpts = np.zeros((1, 133, 3))
    kpts[0, :17] = [10, 10, 2]
    body_only = WholeBodySet.from_arrays(
        [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 50}], [1], kpts, [[0, 0, 20, 20]]
    )
    with pytest.raises(AnnotationError, match="needs human whole-body labels"):
        quality_report(body_only, body_only, metric=lambda g, p: {})
