"""Keypoint results (predictions) as arrays, read from and written to COCO results JSON.

A results file is a JSON list with one object per predicted person:

* ``image_id`` (int), ``score`` (number), optional ``category_id`` (must be 1, person);
* the 133 points either **flat** — ``keypoints`` holds 133 x (x, y, confidence) = 399 numbers —
  or in mmpose's **split** layout — ``keypoints`` holds the 17 body points (51 numbers) and
  ``foot_kpts`` (18), ``face_kpts`` (204), ``lefthand_kpts`` (63), ``righthand_kpts`` (63) the
  rest, which is what the official COCO-WholeBody evaluation reads; one file uses one layout;
* optional per-part ranking scores ``foot_score``, ``face_score``, ``lefthand_score``,
  ``righthand_score``, ``wholebody_score`` (a record without one is ranked by ``score`` for that
  part, as the official evaluation does), and an optional ``bbox`` (xywh: all records or none).
  As in the official tools, a detection's area for the APM/APL ranges is then its box's w·h
  (else the extent of its body points), and pose NMS takes its areas and scales from it.

Anything malformed raises :class:`~fullbody.jsonio.AnnotationError` naming the file, the
record and the field: wrong lengths, NaN or infinity, missing fields, unknown image ids, mixed
layouts, malformed JSON. Nothing is silently dropped or zeroed.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fullbody.errors import OutputExistsError
from fullbody.jsonio import (
    JSON_ARRAYS,
    JSON_OBJECTS,
    AnnotationError,
    checked_number,
    checked_numbers,
    float_table,
    json_number,
    number_bytes,
    numbers_of,
    read_json,
    write_json_atomic,
)
from fullbody.keypoints import EVAL_PARTS, NUM_KEYPOINTS, PART_FIELDS, PART_SLICES

#: Per-part ranking-score fields; the body is always ranked by ``score``.
SCORE_FIELDS: dict[str, str] = {p: f"{p}_score" for p in EVAL_PARTS if p != "body"}
#: Fields that mark a record as using the split (mmpose) layout.
_SPLIT_FIELDS = tuple(PART_FIELDS[p] for p in PART_SLICES if p != "body")
_SPLIT_SET = frozenset(_SPLIT_FIELDS)
#: Numbers of each part's field (3 per point).
_SPLIT_LENGTHS = {p: 3 * (s.stop - s.start) for p, s in PART_SLICES.items()}
PERSON_CATEGORY = 1
Layout = Literal["split", "flat"]


def _nested(v: Any) -> bool:
    return bool(len(v)) and isinstance(v[0], (*JSON_ARRAYS, tuple))


def _checked(v: Any, n: int, src: str, rec: str, fld: str) -> memoryview:
    """A JSON list of ``n`` plain numbers as float64 bytes (finiteness is checked later, for all
    records at once); nested lists get their own error."""
    got = number_bytes(v, n)
    if got is not None:
        return got
    if isinstance(v, JSON_ARRAYS) and _nested(v):
        raise AnnotationError(
            src, rec, fld, "expected a flat list [x, y, c, x, y, c, ...], got nested lists"
        )
    return numbers_of(v, n, src, rec, fld)  # raises the precise error


def _check_values(rec: Any, src: str, name: str) -> None:
    """Raise the error of the first non-finite number or negative box size of one record."""
    for fld in ("keypoints", *_SPLIT_FIELDS):
        if fld in rec:
            checked_numbers(rec[fld], len(rec[fld]), src, name, fld)
    if "bbox" in rec:
        box = checked_numbers(rec["bbox"], 4, src, name, "bbox")
        if box[2] < 0 or box[3] < 0:
            raise AnnotationError(src, name, "bbox", "negative width or height")


@dataclass
class Predictions:
    """M predicted people; row ``i`` of every array is one person.

    ``keypoints[..., :2]`` are image pixels, ``keypoints[..., 2]`` confidences (a part whose
    confidences are all <= 0 counts as not predicted). ``part_scores[part]`` holds per-part
    ranking scores with NaN where a record has none (it is then ranked by ``scores``); use
    :meth:`score_for`. ``bboxes`` (xywh) are optional; with them, each detection's area for
    the metric's area ranges is its box's, as the official ``loadRes`` sets it, and pose NMS
    uses them.
    """

    image_ids: np.ndarray  # (M,) int64
    keypoints: np.ndarray  # (M, 133, 3) float64
    scores: np.ndarray  # (M,) float64
    part_scores: dict[str, np.ndarray] = field(default_factory=dict)  # part -> (M,), NaN = absent
    bboxes: np.ndarray | None = None  # (M, 4) float64 xywh
    path: Path | None = None

    def __post_init__(self) -> None:
        self.image_ids = np.asarray(self.image_ids, dtype=np.int64).reshape(-1)
        m = len(self.image_ids)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64).reshape(m, NUM_KEYPOINTS, 3)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(m)
        self.part_scores = {
            p: np.asarray(v, dtype=np.float64).reshape(m) for p, v in self.part_scores.items()
        }
        if self.bboxes is not None:
            self.bboxes = np.asarray(self.bboxes, dtype=np.float64).reshape(m, 4)

    def __len__(self) -> int:
        return len(self.image_ids)

    def score_for(self, part: str) -> np.ndarray:
        """The score that ranks each prediction for ``part`` (its part score, else ``score``)."""
        if part not in EVAL_PARTS:
            raise KeyError(f"unknown part {part!r}; expected one of {EVAL_PARTS}")
        ps = self.part_scores.get(part)
        if ps is None or part == "body":
            return self.scores
        return np.where(np.isnan(ps), self.scores, ps)

    def subset(self, rows: np.ndarray | Collection[int]) -> Predictions:
        """A new container holding the given rows (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        return Predictions(
            image_ids=self.image_ids[rows],
            keypoints=self.keypoints[rows],
            scores=self.scores[rows],
            part_scores={p: v[rows] for p, v in self.part_scores.items()},
            bboxes=None if self.bboxes is None else self.bboxes[rows],
            path=self.path,
        )

    @classmethod
    def concatenate(cls, parts: list[Predictions]) -> Predictions:
        """Stack several containers (e.g. one per batch); part scores absent in one are NaN."""
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros((0, NUM_KEYPOINTS, 3)), np.zeros(0))
        names = sorted({p for x in parts for p in x.part_scores})
        with_boxes = [x.bboxes is not None for x in parts]
        if any(with_boxes) and not all(with_boxes):
            raise ValueError("cannot concatenate predictions with and without bboxes")
        return cls(
            image_ids=np.concatenate([x.image_ids for x in parts]),
            keypoints=np.concatenate([x.keypoints for x in parts]),
            scores=np.concatenate([x.scores for x in parts]),
            part_scores={
                p: np.concatenate([x.part_scores.get(p, np.full(len(x), np.nan)) for x in parts])
                for p in names
            },
            bboxes=np.concatenate([x.bboxes for x in parts]) if all(with_boxes) else None,
        )

    # ---------------------------------------------------------------- validation
    def validate(self, images: Collection[int] | None = None, src: str = "<arrays>") -> None:
        """Check values: finite numbers everywhere and, given ``images``, known image ids."""
        m = len(self)
        checks: list[tuple[str, np.ndarray]] = [
            ("keypoints", self.keypoints.reshape(m, 3 * NUM_KEYPOINTS)),
            ("score", self.scores.reshape(m, 1)),
        ]
        if self.bboxes is not None:
            checks.append(("bbox", self.bboxes))
        for name, arr in checks:
            bad = ~np.isfinite(arr).all(1)
            if bad.any():
                raise AnnotationError(src, f"result #{np.argmax(bad)}", name, "NaN or infinity")
        for p, v in self.part_scores.items():
            if p not in SCORE_FIELDS:
                raise AnnotationError(src, "arrays", f"part_scores[{p!r}]", "unknown part score")
            if np.isinf(v).any():
                bad = int(np.argmax(np.isinf(v)))
                raise AnnotationError(src, f"result #{bad}", SCORE_FIELDS[p], "infinity")
        if images is not None:
            unknown = ~np.isin(self.image_ids, np.fromiter(images, np.int64, len(images)))
            if unknown.any():
                i = int(np.argmax(unknown))
                raise AnnotationError(
                    src,
                    f"result #{i}",
                    "image_id",
                    f"unknown image id {int(self.image_ids[i])} (not in the ground truth)",
                )

    # ---------------------------------------------------------------- JSON
    @classmethod
    def from_json(
        cls,
        data: Any,
        path: str | os.PathLike | None = None,
        *,
        images: Collection[int] | None = None,
        allow_empty: bool = False,
    ) -> Predictions:
        """Parse a loaded results list (plain, or a lazy document of
        :func:`~fullbody.jsonio.read_json`); ``images`` (ground-truth image ids) checks every id.

        Each record's fields are checked for presence, type and length as they are gathered;
        finiteness and box sizes then for all records at once (the first bad record is named).
        """
        src = str(path) if path is not None else "<json>"
        if not isinstance(data, JSON_ARRAYS):
            raise AnnotationError(
                src, "top level", "(root)", "expected a list of result objects (COCO results)"
            )
        if not len(data) and not allow_empty:
            raise AnnotationError(src, "top level", "(root)", "no predictions in the file")
        known = set(int(i) for i in images) if images is not None else None
        m = len(data)
        image_ids = np.zeros(m, np.int64)
        kpts, kpts_b = float_table(m, 3 * NUM_KEYPOINTS)  # filled straight from the file
        scores = np.zeros(m)
        part_scores = {p: np.full(m, np.nan) for p in SCORE_FIELDS}
        boxes, boxes_b = float_table(m, 4)
        has_box = np.zeros(m, bool)
        layout: Layout | None = None
        for i, rec in enumerate(data):
            name = f"result #{i}"
            if not isinstance(rec, JSON_OBJECTS):
                raise AnnotationError(src, name, "(record)", "expected an object")
            keys = dict.fromkeys(rec)  # a lazy object answers a missing key slowly
            for key in ("image_id", "keypoints", "score"):
                if key not in keys:
                    raise AnnotationError(src, name, key, "missing")
            img = rec["image_id"]
            if not isinstance(img, int) or isinstance(img, bool):
                raise AnnotationError(src, name, "image_id", f"expected an integer, got {img!r}")
            if known is not None and img not in known:
                raise AnnotationError(
                    src, name, "image_id", f"unknown image id {img} (not in the ground truth)"
                )
            image_ids[i] = img
            cat = rec["category_id"] if "category_id" in keys else PERSON_CATEGORY
            if cat != PERSON_CATEGORY:
                raise AnnotationError(
                    src, name, "category_id", f"expected {PERSON_CATEGORY} (person), got {cat!r}"
                )
            this: Layout = "flat" if _SPLIT_SET.isdisjoint(keys) else "split"
            if layout is None:
                layout = this
            elif this != layout:
                raise AnnotationError(
                    src,
                    name,
                    "keypoints",
                    f"mixed layouts: this record uses the {this} layout, earlier ones the {layout}",
                )
            if this == "flat":
                v = rec["keypoints"]
                if isinstance(v, JSON_ARRAYS) and len(v) != 3 * NUM_KEYPOINTS and not _nested(v):
                    raise AnnotationError(
                        src,
                        name,
                        "keypoints",
                        f"expected 399 numbers (133 points x (x, y, confidence)) or the split "
                        f"layout (17 body points plus {', '.join(_SPLIT_FIELDS)}), "
                        f"got {len(v)} values",
                    )
                o = 8 * 3 * NUM_KEYPOINTS * i
                kpts_b[o : o + 8 * 3 * NUM_KEYPOINTS] = _checked(
                    v, 3 * NUM_KEYPOINTS, src, name, "keypoints"
                )
            else:
                for p, fld in PART_FIELDS.items():
                    if fld not in keys:
                        raise AnnotationError(src, name, fld, "missing (split layout)")
                    o, n = 8 * 3 * (NUM_KEYPOINTS * i + PART_SLICES[p].start), _SPLIT_LENGTHS[p]
                    kpts_b[o : o + 8 * n] = _checked(rec[fld], n, src, name, fld)
            scores[i] = checked_number(rec["score"], src, name, "score")
            for p, fld in SCORE_FIELDS.items():
                if fld in keys:
                    part_scores[p][i] = checked_number(rec[fld], src, name, fld)
            if "bbox" in keys:
                boxes_b[32 * i : 32 * i + 32] = numbers_of(rec["bbox"], 4, src, name, "bbox")
                has_box[i] = True
        if has_box.any() and not has_box.all():
            i = int(np.argmin(has_box))
            raise AnnotationError(src, f"result #{i}", "bbox", "missing (other records have one)")
        kpts = kpts.reshape(m, NUM_KEYPOINTS, 3)
        bboxes = boxes if has_box.any() else None
        bad = ~np.isfinite(kpts).all((1, 2))
        if bboxes is not None:
            bad |= ~np.isfinite(bboxes).all(1) | (bboxes[:, 2] < 0) | (bboxes[:, 3] < 0)
        if bad.any():  # name the record, field and position
            i = int(np.argmax(bad))
            _check_values(data[i], src, f"result #{i}")
        return cls(
            image_ids=image_ids,
            keypoints=kpts,
            scores=scores,
            part_scores={p: v for p, v in part_scores.items() if not np.isnan(v).all()},
            bboxes=bboxes,
            path=Path(path) if path is not None else None,
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        images: Collection[int] | None = None,
        allow_empty: bool = False,
    ) -> Predictions:
        """Read and validate a results JSON file (either layout)."""
        data = read_json(path, "results file", lazy=True)
        return cls.from_json(data, path, images=images, allow_empty=allow_empty)

    def to_json(self, layout: Layout = "split") -> list[dict[str, Any]]:
        """The COCO results list, in mmpose's split layout (default) or the flat one."""
        if layout not in ("split", "flat"):
            raise ValueError(f"unknown layout {layout!r}; expected 'split' or 'flat'")
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {"image_id": int(self.image_ids[i]), "category_id": 1}
            if layout == "flat":
                rec["keypoints"] = [json_number(v) for v in self.keypoints[i].ravel()]
            else:
                for p, fld in PART_FIELDS.items():
                    rec[fld] = [json_number(v) for v in self.keypoints[i, PART_SLICES[p]].ravel()]
            rec["score"] = json_number(self.scores[i])
            for p, v in self.part_scores.items():
                if not np.isnan(v[i]):
                    rec[SCORE_FIELDS[p]] = json_number(v[i])
            if self.bboxes is not None:
                rec["bbox"] = [json_number(v) for v in self.bboxes[i]]
            out.append(rec)
        return out

    def save(
        self, path: str | os.PathLike, layout: Layout = "split", *, overwrite: bool = False
    ) -> Path:
        """Write the results JSON atomically; refuses to replace a file unless ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path}: exists (pass overwrite=True to replace it)")
        return write_json_atomic(self.to_json(layout), path)


def from_arrays(
    image_ids: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    part_scores: Mapping[str, np.ndarray] | None = None,
    bboxes: np.ndarray | None = None,
    images: Collection[int] | None = None,
) -> Predictions:
    """Build and validate predictions from arrays (e.g. a model's outputs)."""
    preds = Predictions(image_ids, keypoints, scores, dict(part_scores or {}), bboxes)
    preds.validate(images)
    return preds
