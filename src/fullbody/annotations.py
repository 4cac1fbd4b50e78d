"""COCO-WholeBody annotation files as arrays, with validation that names the file and field.

A file holds COCO images and person annotations whose 133 points are split over five fields
(``keypoints`` 17, ``foot_kpts`` 6, ``face_kpts`` 68, ``lefthand_kpts`` 21, ``righthand_kpts``
21, each a flat ``[x, y, v, ...]`` list). Pseudo-label files add per-point teacher confidences in
``keypoints_conf``, ``foot_conf``, ``face_conf``, ``lefthand_conf`` and ``righthand_conf``.
A plain COCO person file (body only) loads too: its other parts are unlabelled.

:class:`WholeBodySet` keeps each annotation's other fields (segmentation, ...) so that
``load(path).save(out)`` writes the same JSON back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.jsonio import (
    JSON_ARRAYS,
    JSON_OBJECTS,
    AnnotationError,
    checked_number,
    checked_numbers,
    float_table,
    is_number,
    json_number,
    numbers_of,
    plain,
    read_json,
    write_json_atomic,
)
from fullbody.keypoints import (
    BODY_NAMES,
    BOX_FIELDS,
    CONF_FIELDS,
    NUM_KEYPOINTS,
    PART_FIELDS,
    PART_SLICES,
    SKELETON,
    VALID_FIELDS,
)

PARTS = tuple(PART_SLICES)
BOX_PARTS = tuple(BOX_FIELDS)
#: Pixels a box may stick out of its image before it counts as malformed (COCO rounding).
BOX_TOLERANCE = 2.0
_ARRAY_FIELDS = {"id", "image_id", "bbox", "area", "iscrowd", "num_keypoints"}
_ARRAY_FIELDS |= set(PART_FIELDS.values()) | set(CONF_FIELDS.values())
_ARRAY_FIELDS |= set(VALID_FIELDS.values()) | set(BOX_FIELDS.values())


def person_category() -> dict[str, Any]:
    """The COCO person category with its 17 body keypoint names and 1-based body skeleton."""
    body = [(a + 1, b + 1) for a, b in SKELETON if a < 17 and b < 17]
    return {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "keypoints": list(BODY_NAMES),
        "skeleton": [list(link) for link in body],
    }


@dataclass
class WholeBodySet:
    """People of one COCO-WholeBody file as arrays; row ``i`` of every array is one person.

    Coordinates are image pixels. ``keypoints[..., 2]`` is COCO visibility (0 unlabelled,
    1 labelled but occluded, 2 visible; COCO-WholeBody also has fractional values on some hands,
    which the official metric counts as labelled, v > 0); ``conf`` is 1 for human labels and the teacher's
    confidence for pseudo-labels, 0 where unlabelled. ``valid[:, p]`` is part ``p``'s validity
    in :data:`PARTS` order; ``part_boxes[:, b]`` the face/left-hand/right-hand boxes (xywh,
    zeros when absent) in :data:`BOX_PARTS` order.
    """

    images: dict[int, dict[str, Any]]
    ann_ids: np.ndarray  # (N,) int64
    image_ids: np.ndarray  # (N,) int64
    keypoints: np.ndarray  # (N, 133, 3) float64
    conf: np.ndarray  # (N, 133) float64
    bboxes: np.ndarray  # (N, 4) float64, xywh
    areas: np.ndarray  # (N,) float64
    iscrowd: np.ndarray  # (N,) bool
    valid: np.ndarray  # (N, 5) bool
    part_boxes: np.ndarray  # (N, 3, 4) float64, xywh
    has_conf: bool = False
    extras: list[dict[str, Any]] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ann_ids)

    @property
    def num_labelled(self) -> np.ndarray:
        """Labelled points (v > 0) per person and part, shape (N, 5)."""
        lab = self.keypoints[..., 2] > 0
        return np.stack([lab[:, s].sum(1) for s in PART_SLICES.values()], axis=1)

    def image_path(self, image_id: int, root: str | os.PathLike) -> Path:
        """Path of an image's file under an image folder."""
        return Path(root) / self.images[int(image_id)]["file_name"]

    def by_image(self) -> dict[int, np.ndarray]:
        """Row indices of the people of every image (images without people map to empty)."""
        order = np.argsort(self.image_ids, kind="stable")
        groups: dict[int, np.ndarray] = {i: np.zeros(0, dtype=np.int64) for i in self.images}
        ids, starts = np.unique(self.image_ids[order], return_index=True)
        for img, rows in zip(ids, np.split(order, starts[1:])):
            groups[int(img)] = rows
        return groups

    def subset(self, rows: np.ndarray | Sequence[int]) -> WholeBodySet:
        """A new set holding the given rows (and every image)."""
        rows = np.asarray(rows, dtype=np.int64)
        return WholeBodySet(
            images=dict(self.images),
            ann_ids=self.ann_ids[rows],
            image_ids=self.image_ids[rows],
            keypoints=self.keypoints[rows],
            conf=self.conf[rows],
            bboxes=self.bboxes[rows],
            areas=self.areas[rows],
            iscrowd=self.iscrowd[rows],
            valid=self.valid[rows],
            part_boxes=self.part_boxes[rows],
            has_conf=self.has_conf,
            extras=[self.extras[r] for r in rows] if self.extras else [],
            header=dict(self.header),
            path=self.path,
        )

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_arrays(
        cls,
        images: Iterable[Mapping[str, Any]],
        image_ids: np.ndarray,
        keypoints: np.ndarray,
        bboxes: np.ndarray,
        *,
        conf: np.ndarray | None = None,
        ann_ids: np.ndarray | None = None,
        areas: np.ndarray | None = None,
        iscrowd: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        part_boxes: np.ndarray | None = None,
    ) -> WholeBodySet:
        """Build a set from arrays; omitted fields get COCO-WholeBody's usual defaults.

        Defaults: ids 1..N, area = box w*h, not crowd, a part valid when it has a labelled
        point, part boxes = the labelled points' extent, conf = 1 where labelled.
        """
        kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
        n = len(kpts)
        bboxes = np.asarray(bboxes, dtype=np.float64).reshape(n, 4)
        if n == 0:  # keep the (0, ...) shapes that the reductions below need
            image_ids = np.zeros(0, np.int64)
        lab = kpts[..., 2] > 0
        if valid is None:
            valid = np.stack([lab[:, s].any(1) for s in PART_SLICES.values()], axis=1)
        if part_boxes is None:
            part_boxes = np.stack([points_box(kpts[:, PART_SLICES[p]]) for p in BOX_PARTS], 1)
        out = cls(
            images={int(im["id"]): dict(im) for im in images},
            ann_ids=np.arange(1, n + 1) if ann_ids is None else np.asarray(ann_ids),
            image_ids=np.asarray(image_ids, dtype=np.int64).reshape(n),
            keypoints=kpts,
            conf=lab.astype(np.float64) if conf is None else np.asarray(conf, np.float64),
            bboxes=bboxes,
            areas=bboxes[:, 2] * bboxes[:, 3] if areas is None else np.asarray(areas, float),
            iscrowd=np.zeros(n, bool) if iscrowd is None else np.asarray(iscrowd, bool),
            valid=np.asarray(valid, dtype=bool).reshape(n, len(PARTS)),
            part_boxes=np.asarray(part_boxes, dtype=np.float64).reshape(n, len(BOX_PARTS), 4),
            has_conf=conf is not None,
            header={"categories": [person_category()]},
        )
        out.ann_ids = out.ann_ids.astype(np.int64)
        out.validate("<arrays>")
        return out

    @classmethod
    def from_json(cls, data: Any, path: str | os.PathLike | None = None) -> WholeBodySet:
        """Parse a loaded COCO-WholeBody JSON object (plain, or a lazy document of
        :func:`~fullbody.jsonio.read_json`); ``path`` only names it in errors.

        Each record's fields are checked for presence, type and length as they are gathered;
        their values (finite, visibility >= 0, boxes inside the image, confidences in [0, 1])
        are then checked for all records at once, and the first bad record is named field by
        field by :func:`_check_values`.
        """
        src = str(path) if path is not None else "<json>"
        if not isinstance(data, JSON_OBJECTS):
            raise AnnotationError(src, "top level", "(root)", "expected a JSON object")
        for key in ("images", "annotations"):
            if not isinstance(data.get(key), JSON_ARRAYS):
                raise AnnotationError(src, "top level", key, "missing or not a list")
        images: dict[int, dict[str, Any]] = {}
        for i, im in enumerate(data["images"]):
            rec = f"image #{i}"
            if not isinstance(im, JSON_OBJECTS):
                raise AnnotationError(src, rec, "(record)", "expected an object")
            im = plain(im)
            for key in ("id", "file_name", "width", "height"):
                if key not in im:
                    raise AnnotationError(src, rec, key, "missing")
            rec = f"image {im['id']}"
            for key in ("width", "height"):
                if not is_number(im[key]) or im[key] <= 0:
                    raise AnnotationError(
                        src, rec, key, f"must be a positive number, got {im[key]!r}"
                    )
            if int(im["id"]) in images:
                raise AnnotationError(src, rec, "id", "duplicate image id")
            images[int(im["id"])] = im

        anns = data["annotations"]
        n = len(anns)
        ann_ids, image_ids = np.zeros(n, np.int64), np.zeros(n, np.int64)
        areas = np.full(n, np.nan)  # NaN: absent, the box's area (a given one is finite)
        iscrowd = np.zeros(n, bool)
        valid, valid_given = np.zeros((n, len(PARTS)), bool), np.zeros((n, len(PARTS)), bool)
        conf_given = np.zeros((n, len(PARTS)), bool)
        # numbers go straight from the parsed file into these (offsets in bytes; absent: 0)
        kpts, kpts_b = float_table(n, 3 * NUM_KEYPOINTS)
        conf, conf_b = float_table(n, NUM_KEYPOINTS)
        bboxes, bboxes_b = float_table(n, 4)
        pboxes, pboxes_b = float_table(n, 4 * len(BOX_PARTS))
        extras: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, ann in enumerate(anns):
            if not isinstance(ann, JSON_OBJECTS):
                raise AnnotationError(src, f"annotation #{i}", "(record)", "expected an object")
            keys = dict.fromkeys(ann)  # a lazy object answers a missing key slowly
            if "id" not in keys:
                raise AnnotationError(src, f"annotation #{i}", "id", "missing")
            rec = f"annotation {ann['id']}"
            for key in ("image_id", "bbox", "keypoints"):
                if key not in keys:
                    raise AnnotationError(src, rec, key, "missing")
            if ann["id"] in seen:
                raise AnnotationError(src, rec, "id", "duplicate annotation id")
            seen.add(ann["id"])
            ann_ids[i] = ann["id"]
            if ann["image_id"] not in images:
                raise AnnotationError(src, rec, "image_id", f"unknown image id {ann['image_id']!r}")
            image_ids[i] = ann["image_id"]
            bboxes_b[32 * i : 32 * i + 32] = numbers_of(ann["bbox"], 4, src, rec, "bbox")
            if "area" in keys:
                areas[i] = checked_number(ann["area"], src, rec, "area")
            iscrowd[i] = "iscrowd" in keys and bool(ann["iscrowd"])
            for j, p in enumerate(PARTS):
                k, start, fld, cfld = (
                    _PART_SIZES[j],
                    PART_SLICES[p].start,
                    PART_FIELDS[p],
                    CONF_FIELDS[p],
                )
                if fld in keys:
                    o = 8 * 3 * (NUM_KEYPOINTS * i + start)
                    kpts_b[o : o + 24 * k] = numbers_of(ann[fld], 3 * k, src, rec, fld)
                if cfld in keys:
                    o = 8 * (NUM_KEYPOINTS * i + start)
                    conf_b[o : o + 8 * k] = numbers_of(ann[cfld], k, src, rec, cfld)
                    conf_given[i, j] = True
                if p in VALID_FIELDS and VALID_FIELDS[p] in keys:
                    valid[i, j] = bool(ann[VALID_FIELDS[p]])
                    valid_given[i, j] = True
            for b, p in enumerate(BOX_PARTS):
                if BOX_FIELDS[p] in keys:
                    o = 32 * (len(BOX_PARTS) * i + b)
                    pboxes_b[o : o + 32] = numbers_of(
                        ann[BOX_FIELDS[p]], 4, src, rec, BOX_FIELDS[p]
                    )
            extras.append({k: plain(ann[k]) for k in keys if k not in _ARRAY_FIELDS})
        kpts, pboxes = kpts.reshape(n, NUM_KEYPOINTS, 3), pboxes.reshape(n, len(BOX_PARTS), 4)
        bad = _bad_values(kpts, conf, bboxes, pboxes, _image_sizes(images, image_ids))
        if bad.any():  # name the first bad record and field
            i = int(np.argmax(bad))
            _check_values(anns[i], src, f"annotation {ann_ids[i]}", images[int(image_ids[i])])
        areas = np.where(np.isnan(areas), bboxes[:, 2] * bboxes[:, 3], areas)
        labelled = kpts[..., 2] > 0
        conf = np.where(np.repeat(conf_given, _PART_SIZES, axis=1), conf, labelled)
        part_labelled = np.stack([labelled[:, PART_SLICES[p]].any(1) for p in PARTS], axis=1)
        valid = np.where(valid_given, valid, part_labelled)
        header = {k: plain(data[k]) for k in data if k not in ("images", "annotations")}
        return cls(
            images=images,
            ann_ids=ann_ids,
            image_ids=image_ids,
            keypoints=kpts,
            conf=conf,
            bboxes=bboxes,
            areas=areas,
            iscrowd=iscrowd,
            valid=valid,
            part_boxes=pboxes,
            has_conf=bool(conf_given.any()),
            extras=extras,
            header=header,
            path=Path(path) if path is not None else None,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> WholeBodySet:
        """Read and validate a COCO-WholeBody (or pseudo-label, or COCO person) JSON file."""
        return cls.from_json(read_json(path, "annotation file", lazy=True), path)

    # ---------------------------------------------------------------- output
    def validate(self, src: str = "<arrays>") -> None:
        """Check shapes and values of the arrays (what :meth:`from_json` checks per field)."""
        n = len(self)
        shapes = {
            "image_ids": (n,), "keypoints": (n, NUM_KEYPOINTS, 3), "conf": (n, NUM_KEYPOINTS),
            "bboxes": (n, 4), "areas": (n,), "iscrowd": (n,), "valid": (n, len(PARTS)),
            "part_boxes": (n, len(BOX_PARTS), 4),
        }  # fmt: skip
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise AnnotationError(
                    src, "arrays", name, f"shape {getattr(self, name).shape} != {shape}"
                )
        for name in ("keypoints", "conf", "bboxes", "areas", "part_boxes"):
            bad = (
                ~np.isfinite(getattr(self, name)).reshape(n, -1).all(1) if n else np.zeros(0, bool)
            )
            if bad.any():
                raise AnnotationError(
                    src, f"annotation {self.ann_ids[bad][0]}", name, "NaN or infinity"
                )
        bad = (self.conf < 0) | (self.conf > 1)
        if bad.any():
            raise AnnotationError(
                src, f"annotation {self.ann_ids[bad.any(1)][0]}", "conf", "outside [0, 1]"
            )
        unknown = ~np.isin(self.image_ids, list(self.images))
        if unknown.any():
            raise AnnotationError(
                src, f"annotation {self.ann_ids[unknown][0]}", "image_id", "unknown image id"
            )

    def to_json(self) -> dict[str, Any]:
        """The COCO-WholeBody JSON object; confidences are written when the set has them."""
        anns = []
        for i in range(len(self)):
            ann: dict[str, Any] = dict(self.extras[i]) if self.extras else {}
            ann.setdefault("category_id", 1)
            ann.update(id=json_number(self.ann_ids[i]), image_id=json_number(self.image_ids[i]))
            ann["bbox"] = [json_number(v) for v in self.bboxes[i]]
            ann["area"] = json_number(self.areas[i])
            ann["iscrowd"] = int(self.iscrowd[i])
            ann["num_keypoints"] = int((self.keypoints[i, PART_SLICES["body"], 2] > 0).sum())
            for p, fld in PART_FIELDS.items():
                sl = PART_SLICES[p]
                ann[fld] = [json_number(v) for v in self.keypoints[i, sl].ravel()]
                if self.has_conf:
                    ann[CONF_FIELDS[p]] = [json_number(v) for v in self.conf[i, sl]]
                if p in VALID_FIELDS:
                    ann[VALID_FIELDS[p]] = bool(self.valid[i, PARTS.index(p)])
            for b, p in enumerate(BOX_PARTS):
                ann[BOX_FIELDS[p]] = [json_number(v) for v in self.part_boxes[i, b]]
            anns.append(ann)
        header = dict(self.header)
        header.setdefault("categories", [person_category()])
        return {**header, "images": list(self.images.values()), "annotations": anns}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (temporary file + rename), so a reader never sees half."""
        return write_json_atomic(self.to_json(), path)


def points_box(points: np.ndarray) -> np.ndarray:
    """xywh extent of the labelled (v > 0) points of each row of (N, K, 3); zeros if none."""
    lab = points[..., 2] > 0
    xy = points[..., :2]
    big = np.where(lab[..., None], xy, np.inf).min(1)
    small = np.where(lab[..., None], xy, -np.inf).max(1)
    box = np.concatenate([big, small - big], axis=1)
    return np.where(lab.any(1, keepdims=True), box, 0.0)


# -------------------------------------------------------------------- field parsing
#: Points per part, in :data:`PARTS` order.
_PART_SIZES = tuple(s.stop - s.start for s in PART_SLICES.values())


def _image_sizes(images: Mapping[int, Mapping[str, Any]], image_ids: np.ndarray) -> np.ndarray:
    """(N, 2) width and height of each annotation's image."""
    keys = np.fromiter(images, np.int64, len(images))
    sizes = np.array([(im["width"], im["height"]) for im in images.values()], np.float64)
    order = np.argsort(keys)
    return sizes[order[np.searchsorted(keys[order], image_ids)]].reshape(-1, 2)


def _bad_boxes(b: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Rows of (N, B, 4) xywh boxes holding one that :func:`_box` refuses."""
    w, h = size[:, None, 0], size[:, None, 1]
    x0, y0, bw, bh = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    outside = (bw > 0) & (
        (x0 < -BOX_TOLERANCE)
        | (y0 < -BOX_TOLERANCE)
        | (x0 + bw > w + BOX_TOLERANCE)
        | (y0 + bh > h + BOX_TOLERANCE)
    )
    return (~np.isfinite(b).all(-1) | (bw < 0) | (bh < 0) | outside).any(1)


def _bad_values(
    kpts: np.ndarray, conf: np.ndarray, bboxes: np.ndarray, pboxes: np.ndarray, size: np.ndarray
) -> np.ndarray:
    """Records holding a value that :func:`_check_values` refuses, for all records at once."""
    bad = ~np.isfinite(kpts).all((1, 2)) | (kpts[..., 2] < 0).any(1)
    bad |= ~np.isfinite(conf).all(1) | ((conf < 0) | (conf > 1)).any(1)
    return bad | _bad_boxes(bboxes[:, None], size) | _bad_boxes(pboxes, size)


def _check_values(ann: Mapping[str, Any], src: str, rec: str, image: Mapping[str, Any]) -> None:
    """Raise the error of the first bad value of one annotation, field by field."""
    _box(ann["bbox"], src, rec, "bbox", image)
    for p in PARTS:
        k = PART_SLICES[p].stop - PART_SLICES[p].start
        if PART_FIELDS[p] in ann:
            _flat_points(ann[PART_FIELDS[p]], k, src, rec, PART_FIELDS[p])
        if CONF_FIELDS[p] in ann:
            _confidences(ann[CONF_FIELDS[p]], k, src, rec, CONF_FIELDS[p])
    for p in BOX_PARTS:
        if BOX_FIELDS[p] in ann:
            _box(ann[BOX_FIELDS[p]], src, rec, BOX_FIELDS[p], image)


def _flat_points(v: Any, k: int, src: str, rec: str, fld: str) -> np.ndarray:
    pts = checked_numbers(v, 3 * k, src, rec, fld).reshape(k, 3)
    if (pts[:, 2] < 0).any():
        raise AnnotationError(src, rec, fld, "visibility flags must be >= 0")
    return pts


def _confidences(v: Any, k: int, src: str, rec: str, fld: str) -> np.ndarray:
    c = checked_numbers(v, k, src, rec, fld)
    if ((c < 0) | (c > 1)).any():
        raise AnnotationError(src, rec, fld, "confidences must lie in [0, 1]")
    return c


def _box(v: Any, src: str, rec: str, fld: str, image: Mapping[str, Any]) -> np.ndarray:
    b = checked_numbers(v, 4, src, rec, fld)
    if b[2] < 0 or b[3] < 0:
        raise AnnotationError(src, rec, fld, f"negative width or height in {b.tolist()}")
    w, h = image["width"], image["height"]
    if b[2] > 0 and (
        b[0] < -BOX_TOLERANCE
        or b[1] < -BOX_TOLERANCE
        or b[0] + b[2] > w + BOX_TOLERANCE
        or b[1] + b[3] > h + BOX_TOLERANCE
    ):
        raise AnnotationError(src, rec, fld, f"box {b.tolist()} lies outside the {w}x{h} image")
    return b
