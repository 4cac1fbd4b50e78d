"""The synthetic scene generator: determinism, label rules, rendering, pseudo-labels, caching."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fullbody.annotations import BOX_PARTS, PARTS, WholeBodySet
from fullbody.keypoints import FLIP_INDEX, NAME_TO_INDEX, PART_SLICES
from fullbody.synthetic import (
    SceneConfig,
    drawing,
    figure,
    generate,
    generate_labels,
    perturb_labels,
    scenes,
    store,
)

N_LABELS = 160  # images in the shared label set (about 0.6 s to make)


@pytest.fixture(scope="module")
def labels() -> WholeBodySet:
    return generate_labels(N_LABELS, seed=11)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A written data set of 20 images with pseudo-labels (one worker)."""
    out = tmp_path_factory.mktemp("synthetic") / "set"
    return generate(out, 20, seed=5, pseudo=True, progress=False)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------ configuration
def test_config_accepts_lists_and_rejects_bad_values() -> None:
    cfg = SceneConfig(image_size=[320, 240], people=[2, 3])
    assert cfg.image_size == (320, 240) and cfg.people == (2, 3)
    assert SceneConfig(**cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="people"):
        SceneConfig(people=(0, 3))
    with pytest.raises(ValueError, match="p_overlap"):
        SceneConfig(p_overlap=1.5)
    with pytest.raises(ValueError, match="height_range"):
        SceneConfig(height_range=(100, 50))
    with pytest.raises(ValueError, match="seed"):
        generate_labels(3, seed=-1)
    with pytest.raises(ValueError, match="num_images"):
        generate_labels(0)


def test_face_template_is_mirror_symmetric_under_the_flip_pairs() -> None:
    """The drawn face uses the iBUG order that keypoints.FLIP_PAIRS assumes."""
    face = figure._FACE_T
    flip = FLIP_INDEX[PART_SLICES["face"]] - PART_SLICES["face"].start
    mirrored = face[flip] * [-1, 1]
    np.testing.assert_allclose(mirrored, face, atol=1e-9)
    assert face[36:42, 0].mean() < 0 < face[42:48, 0].mean()  # subject's right eye on image left


# ------------------------------------------------------------------------------ determinism
def test_labels_are_deterministic_and_seed_dependent() -> None:
    a = json.dumps(generate_labels(12, seed=3).to_json())
    assert a == json.dumps(generate_labels(12, seed=3).to_json())
    assert a != json.dumps(generate_labels(12, seed=4).to_json())


def test_an_image_does_not_depend_on_how_many_are_generated(labels: WholeBodySet) -> None:
    few = generate_labels(5, seed=11)
    rows = labels.image_ids <= 5
    np.testing.assert_array_equal(few.keypoints, labels.keypoints[rows])
    scene = scenes.sample_scene(21, 11, SceneConfig())
    np.testing.assert_array_equal(scene.keypoints, labels.keypoints[labels.image_ids == 22])


def test_generate_is_identical_for_any_worker_count(tmp_path: Path, small_set: Path) -> None:
    other = generate(tmp_path / "w2", 20, seed=5, pseudo=True, workers=2, progress=False)
    assert _digest(other) == _digest(small_set)


def test_written_labels_equal_generate_labels(small_set: Path) -> None:
    written = (small_set / "annotations.json").read_text()
    assert json.loads(written) == generate_labels(20, seed=5).to_json()
    gt = WholeBodySet.load(small_set / "annotations.json")
    assert sorted(gt.images) == list(range(1, 21))
    for image_id, rec in gt.images.items():
        img = cv2.imread(str(gt.image_path(image_id, small_set / "images")))
        assert img is not None and img.shape == (rec["height"], rec["width"], 3)
    manifest = json.loads((small_set / "manifest.json").read_text())
    assert manifest["counts"]["people"] == len(gt)
    assert manifest["params"]["config"] == SceneConfig().to_json()


# ------------------------------------------------------------------------------ label rules
def test_people_per_image_and_visibility_semantics(labels: WholeBodySet) -> None:
    W, H = SceneConfig().image_size
    counts = np.bincount(labels.image_ids, minlength=N_LABELS + 1)[1:]
    assert counts.min() >= 1 and counts.max() <= 6 and len(set(counts)) == 6
    v = labels.keypoints[..., 2]
    xy = labels.keypoints[..., :2]
    assert set(np.unique(v)) == {0.0, 1.0, 2.0}
    assert (xy[v == 0] == 0).all()
    lab = v > 0
    assert (xy[lab] >= 0).all() and (xy[lab, 0] <= W - 1).all() and (xy[lab, 1] <= H - 1).all()
    occluded = (v == 1).sum() / lab.sum()
    assert 0.03 < occluded < 0.5, occluded
    np.testing.assert_array_equal(labels.conf, lab)


def test_parts_boxes_and_areas_are_consistent(labels: WholeBodySet) -> None:
    W, H = SceneConfig().image_size
    lab = labels.keypoints[..., 2] > 0
    for i, p in enumerate(PARTS):
        np.testing.assert_array_equal(labels.valid[:, i], lab[:, PART_SLICES[p]].any(1))
    # Some faces and hands are unlabelled (too small, seen from behind, at random), most not.
    assert 0.5 < labels.valid[:, 2:].mean() < 0.97
    for b, p in enumerate(BOX_PARTS):
        box = labels.part_boxes[:, b]
        pts = labels.keypoints[:, PART_SLICES[p]]
        for r in np.flatnonzero(labels.valid[:, PARTS.index(p)]):
            q = pts[r, pts[r, :, 2] > 0, :2]
            np.testing.assert_allclose(q.min(0), box[r, :2], atol=0.011)
            np.testing.assert_allclose(q.max(0), box[r, :2] + box[r, 2:], atol=0.011)
    x, y, w, h = labels.bboxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= W - 1 + 1e-6).all()
    assert (y + h <= H - 1 + 1e-6).all() and (w > 0).all() and (h > 0).all()
    assert (labels.areas > 0).all() and (labels.areas <= (w + 1) * (h + 1)).all()
    ratio = np.median(labels.areas / (w * h))
    assert 0.15 < ratio < 0.6, ratio  # a silhouette, not the box
    # Every labelled point lies in its person's box.
    for r in range(len(labels)):
        q = labels.keypoints[r, lab[r], :2]
        assert (q >= labels.bboxes[r, :2] - 0.5).all()
        assert (q <= labels.bboxes[r, :2] + labels.bboxes[r, 2:] + 0.5).all()


def test_truncation_overlap_and_scale_range(labels: WholeBodySet) -> None:
    W, H = SceneConfig().image_size
    body = labels.keypoints[:, PART_SLICES["body"], 2]
    x, y, w, h = labels.bboxes.T
    at_edge = (x <= 0.01) | (y <= 0.01) | (x + w >= W - 1.01) | (y + h >= H - 1.01)
    truncated = at_edge & (body == 0).any(1) & (body > 0).any(1)
    assert truncated.mean() > 0.05
    # People overlap: some pairs in an image have intersecting boxes.
    overlaps = 0
    for rows in labels.by_image().values():
        b = labels.bboxes[rows]
        ix = np.minimum(b[:, None, 0] + b[:, None, 2], b[None, :, 0] + b[None, :, 2])
        ix -= np.maximum(b[:, None, 0], b[None, :, 0])
        iy = np.minimum(b[:, None, 1] + b[:, None, 3], b[None, :, 1] + b[None, :, 3])
        iy -= np.maximum(b[:, None, 1], b[None, :, 1])
        overlaps += int(np.triu((ix > 0) & (iy > 0), 1).sum())
    assert overlaps > N_LABELS // 2
    # Faces and hands from 8 to more than 40 pixels.
    for b in range(3):
        box = labels.part_boxes[:, b]
        side = box[box[:, 2] > 0, 2:].max(1)
        assert ((side >= 8) & (side < 16)).sum() > 10
        assert (side > 40).sum() > 10


def test_left_and_right_are_distinguishable(labels: WholeBodySet) -> None:
    """Front-facing people (face labelled) have their left side on the image's right, so a
    flip that forgets to swap the labels is wrong, not harmless."""
    k = NAME_TO_INDEX
    kp = labels.keypoints
    both = (kp[:, k["left_shoulder"], 2] > 0) & (kp[:, k["right_shoulder"], 2] > 0)
    front = both & labels.valid[:, PARTS.index("face")]
    dx = kp[front, k["left_shoulder"], 0] - kp[front, k["right_shoulder"], 0]
    assert (dx > 0).mean() > 0.9
    eyes = (kp[:, k["left_eye"], 2] > 0) & (kp[:, k["right_eye"], 2] > 0)
    dx = kp[eyes, k["left_eye"], 0] - kp[eyes, k["right_eye"], 0]
    assert (dx > 0).mean() > 0.9


# ------------------------------------------------------------------------------ rendering
def _rendered(indices: range, seed: int = 2):
    cfg = SceneConfig()
    for i in indices:
        scene, img = drawing.render_image(i, seed, cfg)
        bg = drawing.render_background(np.random.default_rng([seed, i, 1]), cfg)  # same stream
        yield scene, img, bg


def test_visible_points_lie_on_their_marks_and_occluded_ones_do_not() -> None:
    on_drawn, on_mark, hidden_on_mark, n_vis, n_occ = 0, 0, 0, 0, 0
    for scene, img, bg in _rendered(range(16)):
        kp = scene.keypoints
        px = np.round(kp[..., :2]).astype(int)
        diff = np.abs(img.astype(int) - bg.astype(int)).sum(-1)
        for r in range(len(kp)):
            for part in ("lefthand", "righthand", "face"):
                for k in range(PART_SLICES[part].start, PART_SLICES[part].stop):
                    x, y = px[r, k]
                    colour_err = np.abs(img[y, x].astype(int) - figure._MARK_COLOR[k]).max()
                    if kp[r, k, 2] == 2:
                        n_vis += 1
                        on_drawn += diff[y, x] > 20
                        on_mark += colour_err < 70
                    elif kp[r, k, 2] == 1:
                        n_occ += 1
                        hidden_on_mark += colour_err < 70
    assert n_vis > 500 and n_occ > 50
    assert on_drawn / n_vis > 0.99
    assert on_mark / n_vis > 0.7, on_mark / n_vis
    assert hidden_on_mark / n_occ < 0.2, hidden_on_mark / n_occ


def test_marks_are_centred_on_the_labels() -> None:
    """A lone mark's intensity centroid matches its float label to a fraction of a pixel."""
    img = np.zeros((40, 40, 3), np.uint8)
    rng = np.random.default_rng(0)
    k = NAME_TO_INDEX["left_forefinger4"]
    errors = []
    for _ in range(50):
        img[:] = 0
        p = rng.uniform(10, 30, 2)
        drawing._draw_marks(img, {k: scenes._fp(p).tolist()}, 1.0, [k], 1.0)
        w = img.max(-1).astype(float)
        ys, xs = np.mgrid[:40, :40]
        errors.append(np.hypot((w * xs).sum() / w.sum() - p[0], (w * ys).sum() / w.sum() - p[1]))
    assert np.mean(errors) < 0.15


# ------------------------------------------------------------------------------ pseudo-labels
def test_pseudo_labels_look_like_a_teacher(labels: WholeBodySet) -> None:
    ps = perturb_labels(labels, seed=1)
    again = perturb_labels(labels, seed=1)
    np.testing.assert_array_equal(ps.keypoints, again.keypoints)
    np.testing.assert_array_equal(ps.conf, again.conf)
    assert not np.array_equal(ps.keypoints, perturb_labels(labels, seed=2).keypoints)
    assert ps.has_conf and ps.ann_ids.tolist() == labels.ann_ids.tolist()
    body = PART_SLICES["body"]
    np.testing.assert_array_equal(ps.keypoints[:, body], labels.keypoints[:, body])
    np.testing.assert_array_equal(ps.conf[:, body], labels.keypoints[:, body, 2] > 0)
    assert ((ps.conf >= 0) & (ps.conf <= 1)).all()
    np.testing.assert_array_equal(ps.conf > 0, ps.keypoints[..., 2] > 0)

    rest = np.r_[PART_SLICES["foot"].start : 133]
    gt_lab = labels.keypoints[:, rest, 2] > 0
    ps_lab = ps.keypoints[:, rest, 2] > 0
    # The teacher answers only where humans labelled, except for swapped hands.
    extra = (ps_lab & ~gt_lab).any(1)
    lh, rh = (labels.valid[:, PARTS.index(p)] for p in ("lefthand", "righthand"))
    assert extra.mean() < 0.05 and (lh ^ rh)[extra].all()
    dropped = (gt_lab & ~ps_lab).sum() / gt_lab.sum()
    assert 0.03 < dropped < 0.3, dropped
    k = NAME_TO_INDEX
    kept = ps.keypoints[..., 2] > 0
    toe = labels.keypoints[:, k["left_small_toe"], 2] > 0
    big = labels.keypoints[:, k["left_big_toe"], 2] > 0
    assert kept[toe, k["left_small_toe"]].mean() < kept[big, k["left_big_toe"]].mean() - 0.3

    # Errors are real and confidences rank them (imperfectly): Spearman correlation < 0.
    both = kept[:, rest] & gt_lab
    err = np.hypot(*(ps.keypoints[:, rest, :2] - labels.keypoints[:, rest, :2])[both].T)
    conf = ps.conf[:, rest][both]
    assert np.median(err) > 0.1
    rank_e, rank_c = np.argsort(np.argsort(err)), np.argsort(np.argsort(conf))
    rho = np.corrcoef(rank_e, rank_c)[0, 1]
    assert -0.9 < rho < -0.2, rho
    # Some gross errors: outliers, displaced or swapped hands.
    size = np.sqrt(labels.areas)[:, None].repeat(len(rest), 1)[both]
    assert (err > 0.1 * size).mean() > 0.01


def test_pseudo_file_from_generate(small_set: Path) -> None:
    ps = WholeBodySet.load(small_set / "pseudo_annotations.json")
    gt = WholeBodySet.load(small_set / "annotations.json")
    assert ps.has_conf and len(ps) == len(gt)
    assert (
        json.loads((small_set / "pseudo_annotations.json").read_text())
        == perturb_labels(gt, seed=5).to_json()
    )


# ------------------------------------------------------------------------------ cache rules
def test_cache_reuse_refusal_and_overwrite(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "set"
    generate(out, 4, seed=1, progress=False)
    before = _digest(out)

    def boom(*args, **kwargs):
        raise AssertionError("should not draw anything")

    with monkeypatch.context() as m:
        m.setattr(store, "_make_batch", boom)
        assert generate(out, 4, seed=1, progress=False) == out  # same parameters: no work
    assert _digest(out) == before
    with pytest.raises(FileExistsError, match="different parameters.*seed"):
        generate(out, 4, seed=2, progress=False)
    assert _digest(out) == before
    generate(out, 3, seed=2, overwrite=True, progress=False)
    assert _digest(out) == _digest(generate(tmp_path / "fresh", 3, seed=2, progress=False))
    assert len(list((out / "images").iterdir())) == 3


def test_refuses_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match=r"notes\.txt"):
        generate(out, 2, progress=False)
    (out / "images").mkdir()
    (out / "images" / "holiday.png").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="holiday"):
        generate(out, 2, progress=False)
    generate(out, 2, overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "precious"
    assert (out / "images" / "holiday.png").exists()
    assert WholeBodySet.load(out / "annotations.json").images
    # Our own files without a manifest (unknown origin) are not silently replaced either.
    (out / "manifest.json").unlink()
    (out / "notes.txt").unlink()
    (out / "images" / "holiday.png").unlink()
    with pytest.raises(FileExistsError, match="no manifest"):
        generate(out, 2, progress=False)


def test_interrupted_run_resumes_to_the_same_result(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "set"
    real = store._make_batch
    calls = []

    def flaky(args):
        if calls:
            raise KeyboardInterrupt
        calls.append(args)
        return real(args)

    with monkeypatch.context() as m:
        m.setattr(store, "_make_batch", flaky)
        with pytest.raises(KeyboardInterrupt):
            generate(out, 20, seed=9, progress=False)
    assert not (out / "manifest.json").exists() and (out / "manifest.partial.json").exists()
    assert len(list((out / "images").glob("*.jpg"))) == scenes.BATCH
    generate(out, 20, seed=9, progress=False)
    assert not (out / "manifest.partial.json").exists()
    assert _digest(out) == _digest(generate(tmp_path / "fresh", 20, seed=9, progress=False))


# ------------------------------------------------------------------------------ command line
def test_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    assert (
        store.main(["--out", str(out), "--images", "3", "--seed", "4", "--pseudo", "--quiet"]) == 0
    )
    assert "3 images" in capsys.readouterr().out
    assert (out / "pseudo_annotations.json").is_file()
    assert store.main(["--out", str(out), "--images", "3", "--seed", "5", "--quiet"]) == 2
    assert "different parameters" in capsys.readouterr().err
