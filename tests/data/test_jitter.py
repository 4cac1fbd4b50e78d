"""PGPG box jitter: offsets, matching, mixtures, atomic poses, fitting, sampling, CLI; fallbacks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from tinydata import BODY, person

from fullbody.annotations import WholeBodySet
from fullbody.data.detections import PersonDetections, box_iou
from fullbody.data.jitter import (
    DPGJitter,
    GaussianMixture,
    LearnedJitter,
    UniformJitter,
    apply_offsets,
    box_offsets,
    pose_descriptor,
)
from fullbody.data.jitter.fit import (
    TooLittleDataWarning,
    fit_jitter,
    fit_mixture,
    kmeans_poses,
    main,
    match_detections,
)
from fullbody.keypoints import NUM_KEYPOINTS


def test_offsets_round_trip():
    rng = np.random.default_rng(0)
    gt = np.column_stack([rng.uniform(0, 100, (20, 2)), rng.uniform(10, 200, (20, 2))])
    det = np.column_stack([rng.uniform(0, 100, (20, 2)), rng.uniform(10, 200, (20, 2))])
    np.testing.assert_allclose(apply_offsets(gt, box_offsets(gt, det)), det)
    np.testing.assert_allclose(box_offsets(gt, gt), 0, atol=1e-12)
    off = box_offsets([0, 0, 100, 50], [10, -5, 200, 50])
    np.testing.assert_allclose(off, [0.6, -0.1, np.log(2), 0])


def _set(boxes, image_ids, crowd=None, kpts=None):
    n = len(boxes)
    images = [
        {"id": i, "file_name": f"{i}.jpg", "width": 1000, "height": 1000} for i in set(image_ids)
    ]
    k = np.zeros((n, NUM_KEYPOINTS, 3)) if kpts is None else np.asarray(kpts)
    return WholeBodySet.from_arrays(
        images, np.array(image_ids), k, np.array(boxes, float), iscrowd=crowd
    )


def test_match_is_greedy_by_score_one_to_one_and_skips_crowds():
    gt = _set([[0, 0, 100, 100], [50, 0, 100, 100], [500, 500, 50, 50]], [1, 1, 1], crowd=[0, 0, 1])
    dets = PersonDetections(
        np.array([1, 1, 1, 2]),
        np.array(
            [[40, 0, 100, 100], [0, 0, 100, 100], [500, 500, 50, 50], [0, 0, 100, 100]], float
        ),
        np.array([0.5, 0.9, 0.99, 0.9]),
    )
    g, d = match_detections(gt, dets, 0.5)
    # det 1 (score .9) takes gt 0 (IoU 1); det 0 then takes gt 1 (IoU .82); det 2 only overlaps
    # the crowd; det 3 is on an image without ground truth.
    assert sorted(zip(g.tolist(), d.tolist())) == [(0, 1), (1, 0)]
    g, d = match_detections(gt, dets, 0.95)
    assert g.tolist() == [0] and d.tolist() == [1]


def test_box_iou():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 0.0]])


def test_mixture_fit_recovers_a_gaussian():
    rng = np.random.default_rng(1)
    mean = np.array([0.02, -0.01, 0.05, -0.03])
    a = rng.normal(size=(4, 4)) * 0.05
    cov = a @ a.T + np.eye(4) * 1e-3
    x = rng.multivariate_normal(mean, cov, 20000)
    gm = fit_mixture(x, 1, rng)
    np.testing.assert_allclose(gm.means[0], mean, atol=3e-3)
    np.testing.assert_allclose(gm.covariances[0], cov, atol=5e-4)
    draws = gm.sample(rng, 20000)
    np.testing.assert_allclose(draws.mean(0), mean, atol=3e-3)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), cov, atol=5e-4)


def test_mixture_fit_separates_two_components():
    rng = np.random.default_rng(2)
    x = np.concatenate(
        [
            rng.normal([-0.3, 0, 0, 0], 0.02, (3000, 4)),
            rng.normal([0.3, 0.1, 0, 0], 0.02, (1000, 4)),
        ]
    )
    gm = fit_mixture(x, 2, rng)
    order = np.argsort(gm.means[:, 0])
    np.testing.assert_allclose(gm.means[order, 0], [-0.3, 0.3], atol=0.01)
    np.testing.assert_allclose(gm.weights[order], [0.75, 0.25], atol=0.02)
    one = fit_mixture(x, 1, rng)
    assert gm.log_likelihood(x).mean() > one.log_likelihood(x).mean() + 1
    back = GaussianMixture.from_json(json.loads(json.dumps(gm.to_json())))
    np.testing.assert_allclose(back.log_likelihood(x), gm.log_likelihood(x))


def test_mixture_from_json_rejects_bad_parameters():
    good = {"weights": [1.0], "means": [[0, 0, 0, 0]], "covariances": [np.eye(4).tolist()]}
    GaussianMixture.from_json(good)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture.from_json({**good, "weights": [0.5]})
    with pytest.raises(np.linalg.LinAlgError):
        GaussianMixture.from_json({**good, "covariances": [(-np.eye(4)).tolist()]})


def _lying(x0, y0, s=1.0):
    """A person lying on the side: the standing pose turned by 90 degrees."""
    kp = np.zeros((NUM_KEYPOINTS, 3))
    kp[:17, 0] = x0 + BODY[:, 1] * s
    kp[:17, 1] = y0 + BODY[:, 0] * s
    kp[:17, 2] = 2
    return kp


def test_kmeans_separates_standing_and_lying_poses_with_missing_points():
    rng = np.random.default_rng(3)
    kps, boxes = [], []
    for i in range(30):
        lie = i % 3 == 0
        kp = _lying(0, 0) if lie else person(0, 0, whole=False)
        kp[:17, :2] += rng.normal(0, 2, (17, 2))
        kp[rng.choice(17, 4, replace=False), 2] = 0  # some points unlabelled
        kps.append(kp)
        boxes.append([0, 0, 200, 100] if lie else [0, 0, 100, 200])
    desc, mask = pose_descriptor(np.array(kps), np.array(boxes))
    assert desc.shape == (30, 17, 2) and mask.sum() == 30 * 13
    centres = kmeans_poses(desc, mask, 2, rng)
    assert centres.shape == (2, 17, 2)
    # the bigger cluster (standing) is first: nose above ankles; lying: nose left of ankles
    assert centres[0, 0, 1] < centres[0, 15, 1] - 0.5
    assert centres[1, 0, 0] < centres[1, 15, 0] - 0.5


def _scene(rng, n_images=40):
    """Ground truth of standing and lying people, and detections whose error depends on pose:
    standing people get boxes shifted right by 10 %, lying ones boxes 20 % too tall."""
    kps, boxes, ids, dets, det_ids = [], [], [], [], []
    for img in range(1, n_images + 1):
        for j in range(3):
            lie = j == 0
            x0, y0 = 300 * j + 10, 100
            kp = _lying(x0, y0) if lie else person(x0, y0, whole=False)
            box = np.array([x0, y0, 200, 100] if lie else [x0, y0, 100, 200], float)
            off = [0, 0, 0, np.log(1.2)] if lie else [0.1, 0, 0, 0]
            off = np.array(off) + rng.normal(0, 0.01, 4)
            kps.append(kp)
            boxes.append(box)
            ids.append(img)
            dets.append(apply_offsets(box, off))
            det_ids.append(img)
        dets.append([900, 900, 30, 30])  # a false positive
        det_ids.append(img)
    gt = _set(boxes, ids, kpts=kps)
    scores = rng.uniform(0.3, 1.0, len(dets))
    return gt, PersonDetections(np.array(det_ids), np.array(dets, float), scores)


def test_fit_learns_pose_dependent_errors_and_samples_them():
    rng = np.random.default_rng(4)
    gt, dets = _scene(rng)
    with pytest.warns(TooLittleDataWarning, match=r"cluster sizes \[80, 40\]"):
        model = fit_jitter(gt, dets, clusters=2, seed=0)
    assert model["num_matched"] == 120
    assert model["clusters"]["sizes"] == [80, 40]
    jit = LearnedJitter.from_model(json.loads(json.dumps(model)))
    stand, lie = person(0, 0, whole=False), _lying(0, 0)
    c_stand = jit.cluster_of(stand, np.array([0, 0, 100, 200.0]))
    c_lie = jit.cluster_of(lie, np.array([0, 0, 200, 100.0]))
    assert {c_stand, c_lie} == {0, 1}
    off_stand = jit.sample_offsets(rng, 4000, c_stand)
    off_lie = jit.sample_offsets(rng, 4000, c_lie)
    np.testing.assert_allclose(off_stand.mean(0), [0.1, 0, 0, 0], atol=0.005)
    np.testing.assert_allclose(off_lie.mean(0), [0, 0, 0, np.log(1.2)], atol=0.005)
    np.testing.assert_allclose(off_lie.std(0), 0.01, rtol=0.2)
    # A jittered box of a lying person is taller, of a standing one shifted right.
    box = np.array([0, 0, 200, 100.0])
    out = np.array([jit(box, rng, lie) for _ in range(500)])
    np.testing.assert_allclose(out[:, 3].mean(), 120, rtol=0.02)
    out = np.array([jit(np.array([0, 0, 100, 200.0]), rng, stand) for _ in range(500)])
    np.testing.assert_allclose(out[:, 0].mean(), 10, atol=0.5)
    # Without keypoints (or too few), the global mixture: a blend of both.
    glob = jit.sample_offsets(rng, 6000, None)
    np.testing.assert_allclose(glob[:, 0].mean(), 0.1 * 2 / 3, atol=0.01)
    assert jit.cluster_of(np.zeros((NUM_KEYPOINTS, 3)), box) is None


def test_scale_and_clip():
    rng = np.random.default_rng(5)
    gt, dets = _scene(rng, 10)
    with pytest.warns(TooLittleDataWarning, match="only 30 matched boxes"):
        model = fit_jitter(gt, dets, clusters=1)
    assert model["clusters"]["mixtures"] == [None]  # one cluster = the global mixture
    mean = np.array(model["global"]["means"][0])
    still = LearnedJitter.from_model(model, scale=0.0)
    np.testing.assert_allclose(still.sample_offsets(rng, 5), np.tile(mean, (5, 1)))
    wild = LearnedJitter.from_model(model, scale=50.0).sample_offsets(rng, 2000)
    assert (wild >= np.array(model["clip"]["low"]) - 1e-12).all()
    assert (wild <= np.array(model["clip"]["high"]) + 1e-12).all()


def test_fit_needs_matches():
    gt = _set([[0, 0, 100, 100]], [1])
    dets = PersonDetections(np.array([1]), np.array([[500, 500, 10, 10.0]]), np.array([0.9]))
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_jitter(gt, dets)


def test_fit_warns_with_counts_only_when_data_are_too_few():
    rng = np.random.default_rng(9)
    gt, dets = _scene(rng, 40)  # 120 matched boxes: 80 standing, 40 lying
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough for one Gaussian over all boxes: no warning
        fit_jitter(gt, dets, clusters=1, components=1)
    with pytest.warns(TooLittleDataWarning) as record:
        fit_jitter(gt, dets, clusters=3, components=2)
    text = [str(w.message) for w in record]
    assert len(text) == 2
    assert "only 120 matched boxes for a 2-Gaussian mixture" in text[0] and ">= 200" in text[0]
    assert "3 atomic poses asked for, 120 matched people" in text[1]
    assert "3 of 3 clusters have fewer than 200 matches" in text[1]


def test_default_asset_loads_and_jitters():
    jit = LearnedJitter()
    assert jit.model["num_matched"] >= 10
    rng = np.random.default_rng(6)
    box = np.array([100, 50, 80, 200.0])
    out = np.array([jit(box, rng, person(100, 50, whole=False)) for _ in range(300)])
    assert (out[:, 2:] > 0).all()
    assert 0.5 < np.median(out[:, 2] / 80) < 1.5
    assert not np.allclose(out[0], out[1])


def test_bad_jitter_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="jitter file"):
        LearnedJitter(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a fullbody-pgpg-jitter"):
        LearnedJitter(bad)
    model = json.loads(LearnedJitter().path.read_text())
    del model["global"]
    bad.write_text(json.dumps(model))
    with pytest.raises(ValueError, match="malformed jitter model"):
        LearnedJitter(bad)


def test_uniform_jitter_bounds():
    jit = UniformJitter(shift=0.1, scale=(0.8, 1.2))
    rng = np.random.default_rng(7)
    box = np.array([0, 0, 100, 200.0])
    out = np.array([jit(box, rng) for _ in range(2000)])
    off = box_offsets(box, out)
    assert np.abs(off[:, :2]).max() <= 0.1 + 1e-12
    assert off[:, :2].std(0).min() > 0.05  # uniform, not constant
    assert np.exp(off[:, 2:]).min() >= 0.8 - 1e-9 and np.exp(off[:, 2:]).max() <= 1.2 + 1e-9
    with pytest.raises(ValueError):
        UniformJitter(scale=(1.2, 0.8))


def _edges(out, box):
    x, y, w, h = box
    x1, y1 = out[:, 0], out[:, 1]
    x2, y2 = x1 + out[:, 2], y1 + out[:, 3]
    return np.column_stack([(x1 - x) / w, (y1 - y) / h, (x2 - x - w) / w, (y2 - y - h) / h])


def test_dpg_jitter_statistics():
    rng = np.random.default_rng(8)
    box = np.array([10, 20, 100, 200.0])
    gauss = np.array([DPGJitter(crop_prob=0.0)(box, rng) for _ in range(20000)])
    e = _edges(gauss, box)
    np.testing.assert_allclose(e.mean(0), [-0.0142, 0.0043, 0.0154, -0.0013], atol=0.003)
    np.testing.assert_allclose(e.std(0), [0.1158, 0.0680, 0.1337, 0.0711], rtol=0.05)
    crops = np.array([DPGJitter(crop_prob=1.0)(box, rng) for _ in range(2000)])
    e = _edges(crops, box)
    assert (e[:, :2] >= 0).all() and (e[:, 2:] <= 0).all()  # inside the box
    frac = crops[:, 2:] / box[2:]
    assert frac.min() >= 0.85 and frac.max() <= 1.0 and frac.std() > 0.03

    def sub_crop(out):  # what the crop branch always gives
        e, f = _edges(out, box), out[:, 2:] / box[2:]
        return (e[:, :2] >= 0).all(1) & (e[:, 2:] <= 0).all(1) & (f >= 0.85).all(1)

    mixed = np.array([DPGJitter()(box, rng) for _ in range(8000)])
    expect = 0.15 + 0.85 * sub_crop(gauss).mean()
    np.testing.assert_allclose(sub_crop(mixed).mean(), expect, atol=0.015)


@pytest.mark.needs_sample
def test_cli_fit_show_and_shipped_default_is_reproducible(sample_dir, tmp_path, capsys):
    ann = sample_dir / "annotations"
    out = tmp_path / "jitter.json"
    args = ["fit", "--annotations", str(ann / "coco_wholebody_sample.json"),
            "--detections", str(ann / "person_detections.json"), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "matched 14 of 14" in printed.out
    assert "warning: " in printed.err and "only 14 matched boxes" in printed.err
    # The shipped default is exactly what the documented command writes.
    assert json.loads(out.read_text()) == json.loads(LearnedJitter().path.read_text())
    assert main(args) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--force", "--clusters", "2"]) == 0
    assert main(["show", str(out)]) == 0
    assert "atomic poses: 2" in capsys.readouterr().out


@pytest.mark.needs_sample
@pytest.mark.parametrize(
    ("detections", "says"),
    [('[{"image_id": 40083, "bbox": [1, 2, 3], "score": 1}]', "field 'bbox'"),
     ("{not json", "malformed JSON"), (None, "not found")],
)  # fmt: skip
def test_cli_on_bad_detections_is_one_line(sample_dir, tmp_path, capsys, detections, says):
    """It ended in an AnnotationError traceback."""
    dets = tmp_path / "dets.json"
    if detections is not None:
        dets.write_text(detections)
    ann = sample_dir / "annotations" / "coco_wholebody_sample.json"
    args = ["fit", "--annotations", str(ann), "--detections", str(dets),
            "--out", str(tmp_path / "j.json")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {dets}") and says in err[0], err
    assert not (tmp_path / "j.json").exists()
