"""A pose model over the images of a COCO file: the predictions ``eval.py`` scores when it is
given a model to run (``pose_model=``) instead of a results file.

Unlike ``eval.py ckpt_path=...``, which predicts through the training data pipeline, this runs
the inference path (:class:`~fullbody.inference.predictor.PosePredictor`) image by image, so any
model the predictor runs — a published ONNX file, an export, a checkpoint — is scored the same
way, with person boxes from a detection results file (the usual protocol: mmpose's published
COCO-WholeBody APs use a 56.4-AP person detector's file) or, without one, the ground truth's
person boxes (an upper bound of the detector's part).
"""

from __future__ import annotations

import os

import numpy as np
from tqdm import tqdm

from fullbody.annotations import WholeBodySet
from fullbody.images import read_image
from fullbody.inference.detectors import PersonDetector
from fullbody.inference.predictor import PosePredictor
from fullbody.results import Predictions


def predict_annotated_images(
    predictor: PosePredictor,
    gt: WholeBodySet,
    image_dir: str | os.PathLike,
    detector: PersonDetector | None = None,
    progress: bool = True,
) -> Predictions:
    """Poses on every image of ``gt`` (its ``file_name`` under ``image_dir``, size checked
    against its record). Person boxes: ``detector(image, image_id)`` (a
    :class:`~fullbody.inference.detectors.DetectionFileDetector` looks them up by id), or when
    None the ground truth's non-crowd person boxes with score 1."""
    people = gt.by_image()
    parts = []
    for image_id in tqdm(sorted(gt.images), desc="images", disable=not progress):
        image = read_image(gt.image_path(image_id, image_dir), record=gt.images[image_id],
                           source=gt.path)  # fmt: skip
        if detector is None:
            rows = people[image_id][~gt.iscrowd[people[image_id]]]
            boxes, scores = gt.bboxes[rows], np.ones(len(rows))
        else:
            boxes, scores = detector(image, image_id)
        parts.append(predictor(image, boxes, scores).to_predictions(image_id))
    return Predictions.concatenate(parts)
