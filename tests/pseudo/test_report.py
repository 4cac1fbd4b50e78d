import json

import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.data.calibration import read_calibration_map
from fullbody.jsonio import AnnotationError
from fullbody.pseudo.report import coverage, quality_report


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
def test_report_feeds_the_metric_and_measures_proposals(sample_ann_file, monkeypatch):
    human = WholeBodySet.load(sample_ann_file)
    calls = []

    def metric(gt, preds):
        calls.append((gt, preds))
        return {"foot/AP": float(len(calls))}

    import fullbody.pseudo.report as report

    monkeypatch.setattr(report, "as_predictions", lambda labels: ("preds", len(labels)))
    labels = _copy(human)
    labels.keypoints[:, [18, 21]] = 0  # small toes never labelled: left out of the second call
    table = quality_report(labels, human, metric)
    assert table["metrics"] == {"foot/AP": 1.0} and table["metrics_predicted_points"] == {
        "foot/AP": 2.0
    }
    assert table["never_predicted"] == [18, 21]
    assert calls[0][0] is human and (calls[1][0].keypoints[:, [18, 21]] == 0).all()
    assert (calls[1][0].keypoints[:, 17] == human.keypoints[:, 17]).all()
    assert table["proposals"]["face"]["n"] == 4


def test_runner_refuses_report_without_human_whole_body_labels(dataset, tmp_path):
    from fullbody.pseudo.runner import PseudoLabeller

    job = PseudoLabeller(dataset, dataset.parent / "images", tmp_path / "p.json",
                         {"fake": {"_target_": "fake_teachers.RegionTeacher"}}, workers=0,
                         report=True, progress=False)  # fmt: skip
    with pytest.raises(AnnotationError, match="report=true needs human whole-body labels"):
        job.run()
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "p.shards").exists()


def test_report_needs_human_whole_body_labels(tmp_path):
    kpts = np.zeros((1, 133, 3))
    kpts[0, :17] = [10, 10, 2]
    body_only = WholeBodySet.from_arrays(
        [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 50}], [1], kpts, [[0, 0, 20, 20]]
    )
    with pytest.raises(AnnotationError, match="needs human whole-body labels"):
        quality_report(body_only, body_only, metric=lambda g, p: {})


@pytest.mark.needs_sample
def test_human_labels_score_perfectly_and_perturbed_ones_do_not(sample_ann_file):
    human = WholeBodySet.load(sample_ann_file)
    perfect = quality_report(_copy(human), human)["metrics"]
    for part in ("body", "foot", "face", "lefthand", "righthand", "wholebody"):
        assert perfect[f"{part}/AP"] == pytest.approx(1.0), part
    moved = _copy(human)
    face = slice(23, 91)
    moved.keypoints[:, face, :2] += np.where(moved.keypoints[:, face, 2:] > 0, 6.0, 0.0)
    worse = quality_report(moved, human)["metrics"]
    assert worse["face/AP"] < 0.9 and worse["body/AP"] == pytest.approx(1.0)
    assert worse["lefthand/AP"] == pytest.approx(1.0)


@pytest.mark.needs_sample
def test_job_and_cli_write_the_report(sample_dir, sample_ann_file, tmp_path, capsys):
    from fullbody.pseudo.report import main
    from fullbody.pseudo.runner import PseudoLabeller

    out = tmp_path / "pseudo.json"
    job = PseudoLabeller(sample_ann_file, sample_dir / "images", out,
                         {"fake": {"_target_": "fake_teachers.RegionTeacher"}}, workers=0,
                         report=True, progress=False)  # fmt: skip
    job.run()
    written = job.report_file
    assert written == tmp_path / "pseudo.report.json" and written.is_file()
    table = job.report_table
    assert table["metrics"]["body/AP"] == pytest.approx(1.0)
    assert 0.0 <= table["metrics"]["face/AP"] < 0.5  # ring points are no face
    assert table["coverage"]["lefthand"]["labelled"] == 0  # the fake's hands are unconfident
    assert table["calibration"]["face"]["n"] > 0 and "body" not in table["calibration"]
    assert job.calibration_plot == tmp_path / "pseudo.calibration.png"
    assert job.calibration_plot.is_file()
    assert job.calibration_map_file == tmp_path / "pseudo.calibration_map.json"
    fitted = read_calibration_map(job.calibration_map_file, "test")
    assert fitted.parts["face"].n == table["calibration"]["face"]["n"] >= 50
    assert set(fitted.parts) <= set(table["calibration"])
    cli_out = tmp_path / "cli.report.json"
    assert main([str(out), str(sample_ann_file), "--out", str(cli_out)]) == 0
    assert json.loads(cli_out.read_text()) == json.loads(written.read_text())
    cli_map = tmp_path / "cli.calibration_map.json"
    assert json.loads(cli_map.read_text()) == json.loads(job.calibration_map_file.read_text())
    assert "wholebody" in capsys.readouterr().out
