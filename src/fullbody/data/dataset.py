"""Top-down samples: one person crop per item, with keypoint targets and weights for the loss.

Each item is one person of a COCO-WholeBody (or pseudo-label) file, boxed either by its label
(training, and validation on ground-truth boxes) or by a person detection (validation/test as
COCO evaluation runs it). Training items go through box jitter, half-body, random scale,
rotation and mirror, all folded into one affine so that a single ``cv2.warpAffine`` makes the
crop, and the keypoints follow the same matrix. Photometric augmentation (albumentations) runs
on the small uint8 crop, then one lookup-table pass converts it to the normalised float tensor.

Targets are not rendered here: an item carries its keypoints in input-crop pixels and a weight
per keypoint, and the model's codec (:mod:`fullbody.codecs`) turns the whole batch into its
targets (heatmaps, SimCC vectors) on the training device.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fullbody.annotations import WholeBodySet
from fullbody.codecs.spec import TopDownSpec
from fullbody.data.detections import PersonDetections
from fullbody.data.transforms import half_body_box, inside, truncated_normal
from fullbody.geometry import (
    affine_matrix,
    box_to_center_scale,
    compose_affine,
    flip_index_points,
    invert_affine,
    person_affines,
    reduced_to_full,
    transform_points,
    warp,
)
from fullbody.images import ImageNormalizer, image_folder, read_image
from fullbody.jsonio import AnnotationError
from fullbody.keypoints import NUM_KEYPOINTS, part_factors

# albumentations checks PyPI for a newer version when imported; a training run makes no such
# network calls (set NO_ALBUMENTATIONS_UPDATE=0 to have it back).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def default_photometric(p: float = 0.5) -> Callable[..., Mapping[str, Any]]:
    """The default photometric augmentation of training crops (albumentations, uint8 RGB):
    brightness/contrast, hue/saturation/value and a light blur, each applied with probability
    ``p`` (colour jitter as in most top-down recipes; blur as in RTMPose's)."""
    import albumentations as A

    return A.Compose(
        [
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=p),
            A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=20, val_shift_limit=0, p=p),
            A.Blur(blur_limit=(3, 3), p=p * 0.2),
        ]
    )


def keypoint_weights(
    visibility: np.ndarray,
    conf: np.ndarray,
    *,
    pseudo: bool,
    conf_floor: float = 0.0,
    conf_weighting: bool = True,
    pseudo_part_weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Per-keypoint loss weights (..., 133) float32.

    Unlabelled points (v == 0) weigh 0. Human labels weigh 1. Pseudo-labels weigh the teacher's
    confidence (1 without ``conf_weighting``), 0 below ``conf_floor``, times their part's factor
    in ``pseudo_part_weights`` (keys from :data:`fullbody.keypoints.PART_SLICES`; missing parts
    weigh 1).
    """
    labelled = np.asarray(visibility) > 0
    if not pseudo:
        return labelled.astype(np.float32)
    conf = np.asarray(conf, dtype=np.float64)
    w = np.where(labelled & (conf >= conf_floor), conf if conf_weighting else 1.0, 0.0)
    if pseudo_part_weights:
        w = w * part_factors(pseudo_part_weights, "data.train.pseudo_part_weights")
    return w.astype(np.float32)


class TopDownDataset(Dataset):
    """One item per person (training, or ground-truth boxes) or per detection (evaluation).

    Args:
        ann: the people and images (human labels, or pseudo-labels with confidences).
        image_dir: folder holding the images' ``file_name``.
        train: augment (jitter, half-body, scale, rotation, mirror, photometric) or not.
        boxes: ``"gt"`` for the labels' boxes, or person detections (one item per detection
            with ``score >= det_score_threshold``; those items carry no targets).
        spec: the model's top-down settings: the crop's ``input_size`` (h, w; targets are in
            its pixels) and ``padding`` (crop size over box size).
        jitter: training-box jitter ``f(box, rng, keypoints) -> box`` (see
            :mod:`fullbody.data.jitter`), or ``None``.
        flip_prob, half_body_prob, half_body_padding: mirror and half-body probabilities.
        scale_factor: crop scale drawn from N(1, scale_factor²) clipped to 1 ± scale_factor.
        rotation_factor, rotation_prob: rotation in degrees, N(0, factor²) clipped to ±2 factor,
            applied with ``rotation_prob``.
        photometric: an albumentations transform applied to the uint8 RGB crop, or ``None``.
        conf_floor, conf_weighting, pseudo_part_weights: pseudo-label weight rules
            (:func:`keypoint_weights`).
        min_keypoints: training people need at least this many points of positive weight.
        reduced_decode: decode large images at 1/2-1/8 size when the crop cannot show more.
        seed: with the epoch and the index, the seed of an item's augmentation.

    Items are indexed by ``i`` or by ``(i, epoch)``, as :class:`~fullbody.data.sampler.ImageGroupedSampler` yields
    them. A training item's augmentation is drawn from a generator seeded by
    ``(seed, epoch, i)`` alone (``epoch`` 0 for a bare index), so it does not depend on the
    number of workers or ranks, and a resumed run sees exactly the crops of an uninterrupted one.
    """

    def __init__(
        self,
        ann: WholeBodySet,
        image_dir: str | os.PathLike,
        *,
        train: bool,
        boxes: str | PersonDetections = "gt",
        det_score_threshold: float = 0.0,
        spec: TopDownSpec,
        jitter: Callable[..., np.ndarray] | None = None,
        flip_prob: float = 0.5,
        half_body_prob: float = 0.3,
        half_body_padding: float = 1.5,
        scale_factor: float = 0.25,
        rotation_factor: float = 40.0,
        rotation_prob: float = 0.6,
        photometric: Callable[..., Mapping[str, Any]] | None = None,
        conf_floor: float = 0.0,
        conf_weighting: bool = True,
        pseudo_part_weights: Mapping[str, float] | None = None,
        min_keypoints: int = 1,
        reduced_decode: bool = True,
        seed: int = 0,
    ) -> None:
        self.image_dir = Path(image_dir)
        self.train = train
        self.spec = spec
        self.input_size = spec.input_size
        self.aspect_ratio = spec.aspect_ratio
        self.jitter = jitter
        self.flip_prob, self.half_body_prob = flip_prob, half_body_prob
        self.half_body_padding = half_body_padding
        self.scale_factor = scale_factor
        self.rotation_factor, self.rotation_prob = rotation_factor, rotation_prob
        self.photometric = photometric
        self.reduced_decode = reduced_decode
        self.seed = int(seed)
        self.normalize = ImageNormalizer()
        weights = keypoint_weights(
            ann.keypoints[..., 2],
            ann.conf,
            pseudo=ann.has_conf,
            conf_floor=conf_floor,
            conf_weighting=conf_weighting,
            pseudo_part_weights=pseudo_part_weights,
        )
        self.source = ann.path
        self.has_conf = ann.has_conf
        src = str(ann.path or "<annotations>")
        image_folder(self.image_dir)
        if isinstance(boxes, PersonDetections):
            dets = boxes.above(det_score_threshold)
            dets = PersonDetections(*_drop_empty(dets), path=dets.path)
            unknown = ~np.isin(dets.image_ids, list(ann.images))
            if unknown.any():
                raise AnnotationError(
                    dets.path, "detections", "image_id",
                    f"image {dets.image_ids[unknown][0]} is not in {src}",
                )  # fmt: skip
            self.rows = np.full(len(dets), -1, dtype=np.int64)
            self.image_ids = dets.image_ids
            self.boxes = dets.boxes
            self.scores = dets.scores.astype(np.float32)
            self.person_ids = np.arange(len(dets), dtype=np.int64)
            what = f"detections with score >= {det_score_threshold} in {dets.path}"
        elif boxes == "gt":
            keep = ~ann.iscrowd & (ann.bboxes[:, 2] > 1) & (ann.bboxes[:, 3] > 1)
            if train:
                keep &= (weights > 0).sum(1) >= min_keypoints
            self.rows = np.flatnonzero(keep)
            self.image_ids = ann.image_ids[self.rows]
            self.boxes = ann.bboxes[self.rows]
            self.scores = np.ones(len(self.rows), dtype=np.float32)
            self.person_ids = ann.ann_ids[self.rows].astype(np.int64)
            what = "non-crowd people" + (
                f" with >= {min_keypoints} weighted keypoints" if train else ""
            )
        else:
            raise ValueError(f"boxes must be 'gt' or PersonDetections, got {boxes!r}")
        if not len(self.rows):
            raise ValueError(f"{src}: no samples: the file has no {what}")
        # Only NumPy arrays from here on (no per-person Python objects): DataLoader workers
        # share them copy-on-write, where Python lists and dicts would be copied into every
        # worker as soon as they are touched.
        labelled = self.rows >= 0
        self.keypoints = np.zeros((len(self.rows), NUM_KEYPOINTS, 3), np.float32)
        self.keypoints[labelled] = ann.keypoints[self.rows[labelled]]
        self.weights = np.zeros((len(self.rows), NUM_KEYPOINTS), np.float32)
        self.weights[labelled] = weights[self.rows[labelled]]
        self._image_table = np.array(sorted(ann.images), dtype=np.int64)
        self._file_names = np.array(
            [str(ann.images[i]["file_name"]) for i in self._image_table.tolist()]
        )
        self._image_sizes = np.array(
            [(int(ann.images[i]["height"]), int(ann.images[i]["width"]))
             for i in self._image_table.tolist()],
            dtype=np.int64,
        ).reshape(-1, 2)  # fmt: skip
        self._cache: tuple[int, dict[int, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ randomness
    def item_rng(self, i: int, epoch: int = 0) -> np.random.Generator:
        """The generator of item ``i``'s augmentation in ``epoch`` (a function of the seed,
        the epoch and the index only); it also seeds the photometric transform."""
        rng = np.random.default_rng((self.seed, epoch, i))
        if self.photometric is not None and hasattr(self.photometric, "set_random_seed"):
            self.photometric.set_random_seed(int(rng.integers(2**32)))
        return rng

    # ------------------------------------------------------------------ geometry
    def crop_params(
        self, i: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, bool, np.ndarray]:
        """Affine (image -> crop px), mirror flag and the (jittered) box of item ``i``; training
        draws from ``rng`` (default: :meth:`item_rng` of epoch 0)."""
        box = self.boxes[i]
        if not self.train:
            return person_affines(box, self.input_size, self.spec.padding)[0], False, box
        rng = self.item_rng(i) if rng is None else rng
        kpts = self.keypoints[i]
        if self.jitter is not None:
            box = self.jitter(box, rng, kpts)
        half = half_body_box(kpts, rng) if rng.random() < self.half_body_prob else None
        if half is not None:
            c, s = box_to_center_scale(half, self.aspect_ratio, self.half_body_padding)
        else:
            c, s = box_to_center_scale(box, self.aspect_ratio, self.spec.padding)
        s = s * (1.0 + truncated_normal(rng, self.scale_factor, self.scale_factor))
        rot = 0.0
        if rng.random() < self.rotation_prob:
            rot = truncated_normal(rng, self.rotation_factor, 2 * self.rotation_factor)
        flip = bool(rng.random() < self.flip_prob)
        return affine_matrix(c, s, rot, self.input_size, flip), flip, box

    def decode_factor(self, matrix: np.ndarray) -> int:
        """Largest of 1, 2, 4, 8 not above the image-px-per-crop-px ratio of ``matrix``."""
        if not self.reduced_decode:
            return 1
        # Image pixels per crop pixel (geometric mean of the two axes).
        (a, b, _), (c, d, _) = matrix.tolist()
        ratio = 1.0 / math.sqrt(abs(a * d - b * c))
        for f in (8, 4, 2):
            if ratio >= f:
                return f
        return 1

    def image_path(self, image_id: int) -> Path:
        """The file of an image (by COCO image id)."""
        return self.image_dir / str(self._file_names[self._image_index(image_id)])

    def _image_index(self, image_id: int) -> int:
        return int(np.searchsorted(self._image_table, image_id))

    def load_image(self, image_id: int, factor: int = 1) -> np.ndarray:
        """RGB uint8 image, decoded at 1/``factor`` size (checked against the record's size)."""
        j = self._image_index(image_id)
        height, width = self._image_sizes[j].tolist()
        record = {"id": image_id, "width": width, "height": height}
        path = self.image_dir / str(self._file_names[j])
        return read_image(path, factor=factor, record=record, source=self.source)

    # ------------------------------------------------------------------ items
    def cached_image(self, image_id: int, factor: int) -> np.ndarray:
        """The RGB image at 1/``factor`` size, decoding only when the last image
        this process decoded was another one or at another size: people of one image in a row
        (see :class:`~fullbody.data.sampler.ImageGroupedSampler`) share a decode. Never a finer cached copy instead, so
        an item's pixels do not depend on what the process decoded before."""
        if self._cache is None or self._cache[0] != image_id:
            self._cache = (image_id, {})
        sizes = self._cache[1]
        if factor not in sizes:
            sizes[factor] = self.load_image(image_id, factor)
        return sizes[factor]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        i, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), 0)
        rng = self.item_rng(i, epoch) if self.train else None
        matrix, flip, box = self.crop_params(i, rng)
        factor = self.decode_factor(matrix)
        image = self.cached_image(int(self.image_ids[i]), factor)
        to_crop = matrix if factor == 1 else compose_affine(matrix, reduced_to_full(factor))
        # (RGB straight: warping RGBA, once faster in OpenCV, now costs a conversion each way
        # for the same pixels, and a fresh 1.2 MB image per decode)
        crop = warp(image, to_crop, self.input_size)
        if self.train and self.photometric is not None:
            crop = self.photometric(image=crop)["image"]
        if self.rows[i] >= 0:
            weight = self.weights[i]
            xy = transform_points(self.keypoints[i, :, :2], matrix)
            if flip:
                xy, weight = flip_index_points(xy), flip_index_points(weight[:, None])[:, 0]
            weight = weight * inside(xy, self.input_size)
        else:
            xy = np.zeros((NUM_KEYPOINTS, 2))
            weight = np.zeros(NUM_KEYPOINTS, dtype=np.float32)
        # Scalars as NumPy scalars: default_collate turns each field into one tensor a batch.
        return {
            "image": torch.from_numpy(self.normalize(crop)),
            "target_xy": xy.astype(np.float32),
            "target_weight": np.asarray(weight, dtype=np.float32),
            "crop_to_image": invert_affine(matrix),
            "bbox": np.asarray(box, dtype=np.float32),
            "box_score": np.float32(self.scores[i]),
            "image_id": np.int64(self.image_ids[i]),
            "person_id": np.int64(self.person_ids[i]),
            "flipped": np.bool_(flip),
        }


def _drop_empty(d: PersonDetections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = (d.boxes[:, 2] > 1) & (d.boxes[:, 3] > 1)
    return d.image_ids[keep], d.boxes[keep], d.scores[keep]
