"""Simulated detector boxes: deterministic, COCO-results shaped, used as the eval boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.codecs.spec import TopDownSpec
from fullbody.data.detections import PersonDetections
from fullbody.data.jitter import LearnedJitter
from fullbody.data.simulated_detections import (
    SimulatedDetectorDataModule,
    simulate_detections,
    write_simulated_detections,
)


def test_one_box_per_person_deterministic_and_jittered(tiny_set):
    ann_file, _ = tiny_set
    ann = WholeBodySet.load(ann_file)
    jitter = LearnedJitter(scale=3.0)
    a = simulate_detections(ann, jitter, seed=0)
    assert a == simulate_detections(ann, jitter, seed=0)
    assert a != simulate_detections(ann, jitter, seed=1)
    assert [d["image_id"] for d in a] == ann.image_ids.tolist()
    dets = PersonDetections.from_json(a, images=ann.images)
    assert len(dets) == len(ann.bboxes)
    assert not np.allclose(dets.boxes, ann.bboxes, atol=0.5)
    assert (dets.boxes[:, 2:] > 0).all() and (dets.scores == 1.0).all()
    # An identity "jitter" gives the labels' boxes back.
    same = simulate_detections(ann, lambda box, rng, kp: box, seed=0)
    assert np.allclose(PersonDetections.from_json(same).boxes, ann.bboxes, atol=0.006)


def test_written_file_is_named_by_its_content(tiny_set, tmp_path):
    ann_file, _ = tiny_set
    jitter = LearnedJitter(scale=3.0)
    p0 = write_simulated_detections(ann_file, jitter, seed=0, out_dir=tmp_path)
    stamp = p0.stat().st_mtime_ns
    assert write_simulated_detections(ann_file, jitter, seed=0, out_dir=tmp_path) == p0
    assert p0.stat().st_mtime_ns == stamp  # found, not rewritten
    p1 = write_simulated_detections(ann_file, jitter, seed=1, out_dir=tmp_path)
    assert p1 != p0 and p0.is_file()
    assert json.loads(p0.read_text()) == simulate_detections(WholeBodySet.load(ann_file), jitter, 0)


def test_datamodule_evaluates_on_the_simulated_boxes(tmp_path):
    dm = SimulatedDetectorDataModule(
        tmp_path, train_images=2, val_images=2, det_jitter=LearnedJitter(scale=3.0),
        num_workers=0, batch_size=2, spec=TopDownSpec.standard((256, 192)),
    )  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    det_file = dm.sections["val"]["det_file"]
    assert det_file.startswith(str(dm.val_dir))
    ann = dm.val_annotations
    dets = PersonDetections.load(det_file)
    assert len(dm.val_dataset) == len(dets) == int((~ann.iscrowd).sum())
    assert np.allclose(dm.val_dataset.boxes, dets.boxes)
    dm.setup("test")
    assert np.allclose(dm.test_dataset.boxes, dets.boxes)
    with pytest.raises(ValueError, match="both set"):
        SimulatedDetectorDataModule(
            tmp_path,
            det_jitter=LearnedJitter(),
            val={"det_file": det_file},
            spec=TopDownSpec.standard((256, 192)),
        )
