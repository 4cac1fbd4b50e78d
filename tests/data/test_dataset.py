"""Top-down samples: targets follow the pixels, weights follow the rules, errors name the file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tinydata import dot_colour, person, write_set
from torch.utils.data import DataLoader, default_collate

from fullbody.annotations import WholeBodySet
from fullbody.codecs.heatmap import HeatmapCodec, encode_reference
from fullbody.codecs.spec import TopDownSpec
from fullbody.data.batch import Batch
from fullbody.data.dataset import (
    TopDownDataset,
    default_photometric,
    keypoint_weights,
)
from fullbody.data.detections import PersonDetections
from fullbody.data.sampler import ImageGroupedSampler
from fullbody.errors import ConfigError
from fullbody.images import IMAGENET_MEAN, IMAGENET_STD, ImageNormalizer, ImageReadError
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import FLIP_INDEX, NUM_KEYPOINTS, PART_SLICES

#: The crop of these tests: 256x192, the standard padding.
SPEC = TopDownSpec.standard((256, 192))
NO_AUG = dict(
    flip_prob=0.0, half_body_prob=0.0, scale_factor=0.0, rotation_prob=0.0, photometric=None
)


def _rgb(sample) -> np.ndarray:
    """The uint8 RGB crop back from a normalised sample image."""
    img = sample["image"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def _dots(crop: np.ndarray, ks, near: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Centres of the dots of keypoints ``ks`` in a crop, found by colour; with ``near``, only a
    dot within 3 px of ``near[k]`` counts (other people have dots of the same colour)."""
    out = {}
    for k in ks:
        hit = np.all(np.abs(crop.astype(int) - dot_colour(k)) <= 6, axis=-1).astype(np.uint8)
        n, _, stats, centres = cv2.connectedComponentsWithStats(hit)
        big = [j for j in range(1, n) if stats[j, cv2.CC_STAT_AREA] >= 4]
        if not big:
            continue
        if near is not None:  # the dot within 3 px of where it should be, if any
            big = [j for j in big if np.hypot(*(centres[j] - near[k])) < 3]
        if len(big) == 1:
            out[int(k)] = centres[big[0]]
    return out


# ---------------------------------------------------------------------------- weights
def test_weights_of_human_labels():
    v = np.array([[0, 1, 2, 0.5] + [0] * (NUM_KEYPOINTS - 4)])
    w = keypoint_weights(
        v, np.ones_like(v), pseudo=False, conf_floor=0.9, pseudo_part_weights={"body": 3}
    )
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w[0, :4], [0, 1, 1, 1])  # floor and part weights: pseudo only
    assert w.sum() == 3


def test_weights_of_pseudo_labels():
    v = np.full(NUM_KEYPOINTS, 2.0)
    v[0] = 0
    conf = np.full(NUM_KEYPOINTS, 0.8)
    conf[1], conf[2] = 0.2, 0.3
    face = PART_SLICES["face"]
    w = keypoint_weights(v, conf, pseudo=True, conf_floor=0.3, pseudo_part_weights={"face": 0.5})
    assert w[0] == 0  # unlabelled
    assert w[1] == 0  # below the floor
    assert w[2] == pytest.approx(0.3)  # at the floor: kept
    assert w[3] == pytest.approx(0.8)
    np.testing.assert_allclose(w[face], 0.4)
    np.testing.assert_allclose(w[PART_SLICES["righthand"]], 0.8)
    with pytest.raises(ConfigError, match="pseudo_part_weights: unknown part"):
        keypoint_weights(v, conf, pseudo=True, pseudo_part_weights={"hands": 1})


def test_unweighted_pseudo_labels_weigh_one_at_or_above_the_floor():
    v = np.full(NUM_KEYPOINTS, 2.0)
    v[0] = 0
    conf = np.full(NUM_KEYPOINTS, 0.8)
    conf[1], conf[2] = 0.2, 0.3
    w = keypoint_weights(v, conf, pseudo=True, conf_floor=0.3, conf_weighting=False,
                         pseudo_part_weights={"face": 0.5})  # fmt: skip
    assert (w[0], w[1], w[2], w[3]) == (0, 0, 1, 1)  # unlabelled, below, at, above the floor
    np.testing.assert_array_equal(w[PART_SLICES["face"]], 0.5)
    weighted = keypoint_weights(v, conf, pseudo=True, conf_floor=0.3)
    np.testing.assert_array_equal(w > 0, weighted > 0)  # the same points, other weights


def test_normalizer_matches_float_arithmetic():
    img = np.random.default_rng(0).integers(0, 256, (31, 17, 3), dtype=np.uint8)
    ref = (img.astype(np.float64) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    out = ImageNormalizer()(img)
    assert out.shape == (3, 31, 17) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref.transpose(2, 0, 1), atol=1e-6)


def test_normalizer_writes_into_a_batch_row_and_refuses_other_buffers():
    img = np.random.default_rng(1).integers(0, 256, (31, 17, 3), dtype=np.uint8)
    norm = ImageNormalizer()
    batch = np.zeros((2, 3, 31, 17), np.float32)
    assert np.shares_memory(norm(img, out=batch[1]), batch[1])
    np.testing.assert_array_equal(batch[1], norm(img))
    assert not batch[0].any()
    strided = np.empty((3, 31, 34), np.float32)[..., ::2]
    for bad in (np.empty((3, 31, 17)), np.empty((3, 17, 31), np.float32), strided):
        with pytest.raises(ValueError, match="out must be a contiguous float32"):
            norm(img, out=bad)


# ---------------------------------------------------------------------------- geometry
def test_eval_sample_targets_land_on_the_dots_and_map_back(tiny_set):
    ann_file, image_dir = tiny_set
    ann = WholeBodySet.load(ann_file)
    ds = TopDownDataset(ann, image_dir, train=False, spec=SPEC)
    assert len(ds) == 4
    for i in range(len(ds)):
        s = ds[i]
        kp = ann.keypoints[ds.rows[i]]
        lab = np.flatnonzero(s["target_weight"] > 0)
        assert set(lab) == set(np.flatnonzero(kp[:, 2] > 0))  # all inside the padded box
        xy_in = s["target_xy"].astype(np.float64)
        # crop -> image through crop_to_image recovers the labels exactly
        back = xy_in @ s["crop_to_image"][:, :2].T + s["crop_to_image"][:, 2]
        np.testing.assert_allclose(back[lab], kp[lab, :2], atol=1e-4)
        # and the painted dots sit where the targets say
        dots = _dots(_rgb(s), range(17), xy_in)
        assert len(dots) >= 15
        for k, c in dots.items():
            np.testing.assert_allclose(c, xy_in[k], atol=0.75)
        assert s["box_score"] == 1 and not s["flipped"]
        assert s["person_id"] == ann.ann_ids[ds.rows[i]]


@pytest.mark.parametrize("seed", [0, 1])
def test_augmented_targets_follow_pixels_and_sides(tiny_set, seed):
    """Rotation, scale, mirror and half-body: each label still lies on its own dot — after a
    mirror, the left wrist label lies on the dot painted for the right wrist."""
    ann_file, image_dir = tiny_set
    ds = TopDownDataset(
        WholeBodySet.load(ann_file), image_dir, train=True, spec=SPEC, photometric=None,
        flip_prob=0.5, half_body_prob=0.5, rotation_prob=1.0, rotation_factor=40, scale_factor=0.3,
        seed=seed,
    )  # fmt: skip
    flips = checked = missing = 0
    for key in [(i, epoch) for epoch in range(3) for i in range(len(ds))]:
        s = ds[key]
        flips += bool(s["flipped"])
        xy_in = s["target_xy"].astype(np.float64)
        near = xy_in[FLIP_INDEX] if s["flipped"] else xy_in
        dots = _dots(_rgb(s), range(17), near)
        for k in np.flatnonzero(s["target_weight"][:17] > 0):
            painted = int(FLIP_INDEX[k]) if s["flipped"] else int(k)
            x, y = xy_in[k]
            if not (4 <= x <= 187 and 4 <= y <= 251):
                continue  # a dot cut by the crop border has a shifted centre
            if painted not in dots:
                missing += 1  # covered by another dot, or not where the label says
                continue
            np.testing.assert_allclose(dots[painted], xy_in[k], atol=1.0)
            checked += 1
    assert checked > 100 and missing < 0.1 * checked
    assert 0 < flips < 12


def test_half_body_crops_one_half(tiny_set):
    ann_file, image_dir = tiny_set
    ds = TopDownDataset(
        WholeBodySet.load(ann_file), image_dir, train=True, spec=SPEC,
        **{**NO_AUG, "half_body_prob": 1.0},
    )  # fmt: skip
    halves = set()
    for epoch in range(10):
        w = ds[0, epoch]["target_weight"]
        upper, lower = w[:11] > 0, w[11:17] > 0
        assert upper.all() or lower.all()  # the chosen half is whole in the crop
        halves.add("upper" if upper.all() and not lower.all() else "lower")
    assert halves == {"upper", "lower"}


def test_jitter_moves_the_box(tiny_set):
    ann_file, image_dir = tiny_set

    def shift(box, rng, keypoints):
        assert keypoints.shape == (NUM_KEYPOINTS, 3)
        return box + np.array([10.0, -5.0, 0.0, 0.0])

    ann = WholeBodySet.load(ann_file)
    plain = TopDownDataset(ann, image_dir, train=True, spec=SPEC, **NO_AUG)[0]
    moved = TopDownDataset(ann, image_dir, train=True, spec=SPEC, jitter=shift, **NO_AUG)[0]
    np.testing.assert_allclose(moved["bbox"], ann.bboxes[0] + [10, -5, 0, 0], atol=1e-4)
    np.testing.assert_allclose(
        moved["crop_to_image"][:, 2] - plain["crop_to_image"][:, 2], [10, -5]
    )


def test_albumentations_is_its_mit_line():
    """The photometric transforms come from albumentations' MIT releases (< 2.1, pinned in
    pyproject.toml); AlbumentationsX, its AGPL successor, installs the same module."""
    from importlib.metadata import packages_distributions, version

    assert packages_distributions()["albumentations"] == ["albumentations"]
    major, minor = (int(v) for v in version("albumentations").split(".")[:2])
    assert (1, 4) <= (major, minor) < (2, 1)


def test_photometric_changes_pixels_not_targets(tiny_set):
    ann_file, image_dir = tiny_set
    ann = WholeBodySet.load(ann_file)
    plain = TopDownDataset(ann, image_dir, train=True, spec=SPEC, **NO_AUG)
    aug = TopDownDataset(
        ann, image_dir, train=True, spec=SPEC, **{**NO_AUG, "photometric": default_photometric(1.0)}
    )
    a, b = plain[1], aug[1]
    np.testing.assert_array_equal(a["target_xy"], b["target_xy"])
    assert not torch.equal(a["image"], b["image"])


def test_augmentation_is_a_function_of_seed_epoch_and_index(tiny_set):
    """Not of the worker that draws it, nor of what was drawn before: resumed runs and runs
    with other worker counts see the same crops."""
    ann_file, image_dir = tiny_set
    ann = WholeBodySet.load(ann_file)
    aug = {"photometric": default_photometric(1.0), "rotation_prob": 1.0}
    ds = TopDownDataset(ann, image_dir, train=True, spec=SPEC, **aug)
    again = TopDownDataset(ann, image_dir, train=True, spec=SPEC, **aug)
    other = TopDownDataset(ann, image_dir, train=True, spec=SPEC, seed=1, **aug)
    keys = [(i, e) for e in range(2) for i in range(len(ds))]
    a = [ds[k] for k in keys]
    b = [again[k] for k in reversed(keys)][::-1]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["target_xy"], y["target_xy"])
    assert not torch.equal(a[0]["image"], a[len(ds)]["image"])  # epoch 1 differs from epoch 0
    assert not torch.equal(a[0]["image"], other[keys[0]]["image"])  # so does another seed

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = ImageGroupedSampler(ds.image_ids, group_size=2, seed=3)
        sampler.set_epoch(5)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers)
        return [b["image"] for b in loader]

    for x, y in zip(batches(0), batches(2), strict=True):
        assert torch.equal(x, y)


def test_targets_outside_the_crop_weigh_zero(tiny_set):
    ann_file, image_dir = tiny_set
    ann = WholeBodySet.load(ann_file)

    def shrink(box, rng, keypoints):  # upper part of the box only
        return np.array([box[0], box[1], box[2], box[3] * 0.3])

    s = TopDownDataset(ann, image_dir, train=True, spec=SPEC, jitter=shrink, **NO_AUG)[0]
    legs = s["target_weight"][13:17]
    assert (legs == 0).all() and s["target_weight"][0] == 1
    assert (s["target_xy"][13:17, 1] > 255.5).all()


# ---------------------------------------------------------------------------- batches
def test_batch_contract_and_heatmap_rendering(tiny_set):
    ann_file, image_dir = tiny_set
    ds = TopDownDataset(WholeBodySet.load(ann_file), image_dir, train=True, spec=SPEC)
    batch = default_collate([ds[i] for i in range(len(ds))])
    assert set(batch) == set(Batch.__annotations__)
    b = len(ds)
    shapes = {
        "image": ((b, 3, 256, 192), torch.float32), "target_xy": ((b, 133, 2), torch.float32),
        "target_weight": ((b, 133), torch.float32), "crop_to_image": ((b, 2, 3), torch.float64),
        "bbox": ((b, 4), torch.float32), "box_score": ((b,), torch.float32),
        "image_id": ((b,), torch.int64), "person_id": ((b,), torch.int64),
        "flipped": ((b,), torch.bool),
    }  # fmt: skip
    for k, (shape, dtype) in shapes.items():
        assert tuple(batch[k].shape) == shape and batch[k].dtype == dtype, k
    # Batched rendering on the device equals the per-sample CPU reference.
    codec = HeatmapCodec((256, 192), (64, 48), 2.0, dark=False)
    heatmaps, weights = codec.targets(batch["target_xy"], batch["target_weight"])
    for i in range(b):
        ref_h, ref_w = encode_reference(
            codec.input_to_heatmap(batch["target_xy"][i].numpy()),
            batch["target_weight"][i].numpy(),
            (64, 48),
            2.0,
        )
        np.testing.assert_allclose(heatmaps[i].numpy(), ref_h, atol=1e-6)
        np.testing.assert_allclose(weights[i].numpy(), ref_w, atol=1e-6)


def test_detection_boxes_give_one_item_per_detection(tiny_set, tmp_path):
    ann_file, image_dir = tiny_set
    ann = WholeBodySet.load(ann_file)
    dets = [
        {"image_id": 2, "category_id": 1, "bbox": [20, 30, 100, 200], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [180, 40, 80, 180], "score": 0.4},
        {"image_id": 1, "category_id": 1, "bbox": [40, 20, 90, 190], "score": 0.05},
        {"image_id": 1, "category_id": 3, "bbox": [0, 0, 50, 50], "score": 0.99},  # a car
    ]
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(dets))
    boxes = PersonDetections.load(det_file, images=ann.images)
    assert len(boxes) == 3
    ds = TopDownDataset(
        ann, image_dir, train=False, spec=SPEC, boxes=boxes, det_score_threshold=0.1
    )
    assert len(ds) == 2
    batch = default_collate([ds[0], ds[1]])
    np.testing.assert_array_equal(batch["image_id"], [2, 2])
    np.testing.assert_array_equal(batch["person_id"], [0, 1])
    np.testing.assert_allclose(batch["box_score"], [0.9, 0.4])
    assert (batch["target_weight"] == 0).all()
    np.testing.assert_allclose(batch["bbox"][1], [180, 40, 80, 180])


# ---------------------------------------------------------------------------- bad input
def test_missing_and_corrupt_images_are_named(tiny_set):
    ann_file, image_dir = tiny_set
    ann = WholeBodySet.load(ann_file)
    ds = TopDownDataset(ann, image_dir, train=False, spec=SPEC)
    (image_dir / "0000.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"0000\.png: image file not found"):
        ds[0]
    (image_dir / "0002.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"0002\.png: cannot decode"):
        ds[3]
    cv2.imwrite(str(image_dir / "0002.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(AnnotationError, match=r"image 3: field 'width/height'.*220x300"):
        ds[3]


def test_empty_and_bad_datasets(tmp_path):
    nobody = np.zeros((NUM_KEYPOINTS, 3))
    nobody[0] = [50, 50, 0]
    ann_file, image_dir = write_set(tmp_path, [((100, 100), [nobody])])
    with pytest.raises(ValueError, match="no samples"):
        TopDownDataset(WholeBodySet.load(ann_file), image_dir, train=True, spec=SPEC)
    with pytest.raises(FileNotFoundError, match="image folder"):
        TopDownDataset(WholeBodySet.load(ann_file), tmp_path / "nope", train=False, spec=SPEC)
    with pytest.raises(AnnotationError, match="image_id"):
        PersonDetections.from_json(
            [{"image_id": 7, "bbox": [0, 0, 1, 1], "score": 1}], "d.json", images=[1]
        )
    with pytest.raises(AnnotationError, match="d.json: detection #0: field 'bbox'"):
        PersonDetections.from_json([{"image_id": 1, "bbox": [0, 0, 1], "score": 1}], "d.json")


def test_unlabelled_people_are_not_training_samples(tmp_path):
    empty = np.zeros((NUM_KEYPOINTS, 3))
    empty[0] = [60, 60, 0]
    ann_file, image_dir = write_set(tmp_path, [((240, 200), [person(10, 10), empty])])
    ann = WholeBodySet.load(ann_file)
    assert len(TopDownDataset(ann, image_dir, train=True, spec=SPEC)) == 1
    assert (
        len(TopDownDataset(ann, image_dir, train=False, spec=SPEC)) == 2
    )  # evaluation keeps everyone


def test_pseudo_labels_weigh_their_confidence(tmp_path):
    kp = person(40, 20)
    conf = np.where(kp[:, 2] > 0, 0.7, 0.0)
    conf[0] = 0.1
    ann_file, image_dir = write_set(tmp_path, [((240, 200), [kp])], conf=[conf])
    ann = WholeBodySet.load(ann_file)
    assert ann.has_conf
    s = TopDownDataset(
        ann, image_dir, train=False, spec=SPEC, conf_floor=0.2, pseudo_part_weights={"foot": 0.5}
    )[0]
    assert s["target_weight"][0] == 0
    assert s["target_weight"][5] == pytest.approx(0.7)
    assert s["target_weight"][17] == pytest.approx(0.35)


# ---------------------------------------------------------------------------- decoding
def test_reduced_decoding_matches_full_decoding(tmp_path):
    rng = np.random.default_rng(0)
    big = cv2.resize(
        rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), (1600, 1200), cv2.INTER_CUBIC
    )
    big = cv2.GaussianBlur(big, (0, 0), 8)
    kp = person(300, 100, 5.0, whole=False)
    ann_file, image_dir = write_set(tmp_path, [((1200, 1600), [kp])], ext=".jpg")
    cv2.imwrite(str(image_dir / "0000.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    ann = WholeBodySet.load(ann_file)
    fast = TopDownDataset(ann, image_dir, train=False, spec=SPEC)
    slow = TopDownDataset(ann, image_dir, train=False, spec=SPEC, reduced_decode=False)
    matrix = fast.crop_params(0)[0]
    assert fast.decode_factor(matrix) == 4  # a 1025-px-tall box into a 256-px crop
    assert slow.decode_factor(matrix) == 1
    a, b = fast[0], slow[0]
    np.testing.assert_array_equal(a["target_xy"], b["target_xy"])
    np.testing.assert_array_equal(a["crop_to_image"], b["crop_to_image"])
    diff = np.abs(_rgb(a).astype(int) - _rgb(b).astype(int))
    assert diff.mean() < 2.0


def test_people_of_one_image_share_a_decode(tiny_set, monkeypatch):
    ann_file, image_dir = tiny_set
    ds = TopDownDataset(WholeBodySet.load(ann_file), image_dir, train=True, spec=SPEC)
    calls = []
    real = ds.load_image
    monkeypatch.setattr(ds, "load_image", lambda i, f=1: calls.append(i) or real(i, f))
    for key in ImageGroupedSampler(ds.image_ids, group_size=4, seed=0):
        ds[key]
    assert len(calls) == 3  # three images, four people
    calls.clear()
    for i in [1, 0, 2]:  # image 2, image 1, image 2: no longer in a row
        ds[i]
    assert len(calls) == 3


@pytest.mark.needs_sample
def test_sample_people_and_detections(sample_dir: Path, sample_ann_file: Path):
    ann = WholeBodySet.load(sample_ann_file)
    train = TopDownDataset(ann, sample_dir / "images", train=True, spec=SPEC)
    assert len(train) == 12  # 14 people, two without any labelled point
    dets = PersonDetections.load(sample_dir / "annotations" / "person_detections.json", ann.images)
    val = TopDownDataset(
        ann, sample_dir / "images", train=False, spec=SPEC, boxes=dets, det_score_threshold=0.5
    )
    assert len(val) == int((dets.scores >= 0.5).sum())
    s = train[0]
    assert s["image"].shape == (3, 256, 192) and (s["target_weight"] > 0).sum() > 20


def test_exif_rotated_and_truncated_jpegs(tiny_set, bad_jpegs):
    # Pixels as stored (COCO labels ignore EXIF orientation); a cut-short file is refused by
    # name at every decode size.
    ann_file, image_dir = tiny_set
    ds = TopDownDataset(WholeBodySet.load(ann_file), image_dir, train=False, spec=SPEC)
    rgb = ds.load_image(1)
    turned = bad_jpegs.exif_rotated(image_dir / "0000.png", rgb)
    np.testing.assert_array_equal(ds.load_image(1), bad_jpegs.decoded_as_stored(turned))
    assert np.abs(ds.load_image(1).astype(int) - rgb).mean() < 3  # the JPEG of the same picture
    bad_jpegs.truncated(image_dir / "0002.png", ds.load_image(3))
    for factor in (1, 2):
        with pytest.raises(ImageReadError, match=r"0002\.png: cannot decode the image.*truncated"):
            ds.load_image(3, factor)
    with pytest.raises(ImageReadError, match=r"0002\.png"):
        ds[3]
