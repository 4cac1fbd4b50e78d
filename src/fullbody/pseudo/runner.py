"""Pseudo-label a COCO person file: shards of images over worker processes, resumable.

:class:`PseudoLabeller` reads the input with :class:`~fullbody.annotations.WholeBodySet`, splits
its images (in id order) into shards of ``shard_size`` images and hands the shards to
``workers`` processes (each builds its own teachers from their Hydra configs). Every worker
writes its shard's labels atomically as ``<out stem>.shards/shard-NNNNN.json`` next to the
output, beside a ``manifest.json`` naming the input (SHA-256) and the settings. A run that finds
that folder with the same manifest skips the shards already written, so a killed job resumes
without redoing or losing work; a different manifest is refused. When every shard is there
they are merged, in shard order, into the output file (written atomically; an existing output is
never replaced unless ``overwrite``), and the shard folder is removed unless ``keep_shards``.
With ``report``, the output is then scored against the input's human whole-body labels
(:mod:`fullbody.pseudo.report`) into ``<out stem>.report.json``.
Shards depend only on their images, so the output is the same byte for byte however the work
was split, interrupted or resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from fullbody.annotations import AnnotationError, WholeBodySet, write_json_atomic
from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.merge import FUSION_MODES, fuse, merge_predictions, part_min_conf
from fullbody.pseudo.proposals import propose, with_human_boxes
from fullbody.pseudo.teachers.base import TEACHER_PARTS, People, Prediction, Teacher

MANIFEST_VERSION = 1
PART_BOX_MODES = ("proposals", "gt")
#: Teacher slots: part teachers win over the whole-body one for the parts they label.
WHOLEBODY_SLOT = "wholebody"
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def build_teachers(specs: Mapping[str, Any]) -> dict[str, Teacher]:
    """Teacher objects from ``slot -> config`` (a ``_target_`` mapping, a teacher, or None)."""
    from hydra.utils import instantiate

    out = {}
    for slot, spec in specs.items():
        if spec is None:
            continue
        teacher = instantiate(spec) if isinstance(spec, Mapping) else spec
        if not isinstance(teacher, Teacher):
            raise TypeError(f"teacher '{slot}': {type(teacher).__name__} has no parts/predict")
        out[slot] = teacher
    return out


def assign_parts(
    teachers: Mapping[str, Teacher], fused: Sequence[str] = ()
) -> dict[str, Teacher | tuple[Teacher, ...]]:
    """Which teacher labels each part: the part teacher that names it, else the whole-body one;
    for the ``fused`` parts that both label, the pair (part teacher, whole-body teacher), whose
    predictions :func:`label_image` fuses per point.

    Two part teachers claiming one part is an error (the choice would be silent).
    """
    by_part: dict[str, Teacher] = {}
    owner: dict[str, str] = {}
    for slot, teacher in teachers.items():
        if slot == WHOLEBODY_SLOT:
            continue
        for part in teacher.parts:
            if part in by_part:
                raise ValueError(
                    f"part '{part}' is claimed by teachers '{owner[part]}' and '{slot}'"
                )
            by_part[part], owner[part] = teacher, slot
    bad = sorted(set(fused) - set(TEACHER_PARTS))
    if bad:
        raise ValueError(f"fusion_parts names unknown parts {bad}; parts are {TEACHER_PARTS}")
    whole = teachers.get(WHOLEBODY_SLOT)
    out: dict[str, Teacher | tuple[Teacher, ...]] = dict(by_part)
    if whole is not None:
        for part in whole.parts:
            if part not in by_part:
                out[part] = whole
            elif part in fused:
                out[part] = (by_part[part], whole)
    return {p: out[p] for p in TEACHER_PARTS if p in out}


@dataclass
class ImageTask:
    """One image and its people: everything a worker needs, nothing more."""

    image: dict[str, Any]  # the COCO image record
    ann_ids: np.ndarray  # (m,)
    body: np.ndarray  # (m, 17, 3)
    body_conf: np.ndarray  # (m, 17)
    bboxes: np.ndarray  # (m, 4)
    part_boxes: np.ndarray  # (m, 3, 4) human boxes (zeros when absent)
    iscrowd: np.ndarray  # (m,)


def read_image(image_dir: str | os.PathLike, record: Mapping[str, Any]) -> np.ndarray:
    """The RGB image of a COCO image record; clear errors for a missing or mismatched file."""
    path = Path(image_dir) / str(record["file_name"])
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: image {record['id']} not found or not readable")
    h, w = image.shape[:2]
    if (w, h) != (int(record["width"]), int(record["height"])):
        raise AnnotationError(
            path, f"image {record['id']}", "width/height",
            f"the file is {w}x{h} but the annotation says {record['width']}x{record['height']}",
        )  # fmt: skip
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def label_image(
    image: np.ndarray,
    task: ImageTask,
    teachers: Mapping[str, Teacher | Sequence[Teacher]],
    part_boxes: str = "proposals",
    min_conf: float | Mapping[str, float] = 0.5,
    fusion: str = "max",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-labels of one image's people: keypoints, conf, valid, part boxes (merge order).

    ``teachers`` maps parts to a teacher or several (:func:`assign_parts`), whose predictions
    are fused per point (:func:`fullbody.pseudo.merge.fuse`, ``fusion`` mode); each distinct
    teacher runs once on the image's non-crowd people. Crowd regions keep their body and
    nothing else.
    """
    people_rows = np.flatnonzero(~task.iscrowd.astype(bool))
    regions = propose(task.body[people_rows])
    if part_boxes == "gt":
        regions = with_human_boxes(regions, task.part_boxes[people_rows])
    people = People(task.body[people_rows], task.bboxes[people_rows], regions)
    sources = {p: tuple(t) if isinstance(t, Sequence) else (t,) for p, t in teachers.items()}
    by_teacher: dict[int, Prediction] = {}
    for teacher in {id(t): t for ts in sources.values() for t in ts}.values():
        if not len(people_rows):
            break
        pred = teacher.predict(image, people)
        full = Prediction.empty(len(task.ann_ids))
        full.xy[people_rows], full.conf[people_rows] = pred.xy, pred.conf
        full.occluded[people_rows] = pred.occluded
        by_teacher[id(teacher)] = full
    predictions = {
        part: fuse([by_teacher[id(t)] for t in ts], fusion)
        for part, ts in sources.items()
        if by_teacher
    }
    size = (float(task.image["width"]), float(task.image["height"]))
    return merge_predictions(task.body, task.body_conf, predictions, size, min_conf)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _describe(spec: Any) -> Any:
    """A JSON-able description of a teacher spec for the manifest."""
    if spec is None or isinstance(spec, (str, int, float, bool)):
        return spec
    if isinstance(spec, Mapping):
        return {str(k): _describe(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_describe(v) for v in spec]
    return f"{type(spec).__module__}.{type(spec).__qualname__}"


# ------------------------------------------------------------------------ worker processes
_WORKER: dict[str, Any] = {}


def _init_worker(specs, image_dir, part_boxes, min_conf, fusion, shard_dir, threads) -> None:
    cv2.setNumThreads(threads)
    mode, fused = fusion
    teachers = assign_parts(build_teachers(specs), fused)
    if "torch" in sys.modules:  # only teachers that use torch pay for importing it
        sys.modules["torch"].set_num_threads(threads)
    _WORKER.update(
        teachers=teachers,
        image_dir=image_dir,
        part_boxes=part_boxes,
        min_conf=min_conf,
        fusion=mode,
        shard_dir=Path(shard_dir),
    )


def _shard_path(shard_dir: Path, index: int) -> Path:
    return shard_dir / f"shard-{index:05d}.json"


def _run_shard(job: tuple[int, list[ImageTask]]) -> tuple[int, int]:
    """Label one shard and write it atomically; returns (shard index, people labelled)."""
    index, tasks = job
    w = _WORKER
    rows: dict[str, list] = {
        "ann_ids": [],
        "keypoints": [],
        "conf": [],
        "valid": [],
        "part_boxes": [],
    }
    for task in tasks:
        if not len(task.ann_ids):
            continue
        image = read_image(w["image_dir"], task.image)
        kpts, conf, valid, boxes = label_image(
            image, task, w["teachers"], w["part_boxes"], w["min_conf"], w["fusion"]
        )
        rows["ann_ids"] += task.ann_ids.tolist()
        rows["keypoints"] += kpts.tolist()
        rows["conf"] += conf.tolist()
        rows["valid"] += valid.tolist()
        rows["part_boxes"] += boxes.tolist()
    write_json_atomic({"shard": index, **rows}, _shard_path(w["shard_dir"], index))
    return index, len(rows["ann_ids"])


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Pin BLAS/OpenMP threads in the environment that spawned workers inherit."""
    old = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: str(threads) for k in _THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class PseudoLabeller:
    """One pseudo-labelling job (see the module docstring).

    ``teachers`` maps slots (``hand``, ``face``, ``foot``, ``wholebody``, or any name) to
    teacher configs with a ``_target_`` (required when ``workers > 0``: each process builds its
    own) or, for ``workers=0`` (everything in this process), to teacher objects.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        out_file: str | os.PathLike,
        teachers: Mapping[str, Any],
        part_boxes: str = "proposals",
        min_conf: float | Mapping[str, float] = 0.5,
        fusion: str | None = None,
        fusion_parts: Sequence[str] = TEACHER_PARTS,
        workers: int = 1,
        shard_size: int = 16,
        threads_per_worker: int = 1,
        overwrite: bool = False,
        keep_shards: bool = False,
        progress: bool = True,
        report: bool = False,
    ):
        if part_boxes not in PART_BOX_MODES:
            raise ValueError(f"part_boxes must be one of {PART_BOX_MODES}, got {part_boxes!r}")
        if shard_size < 1 or workers < 0 or threads_per_worker < 1:
            raise ValueError("shard_size and threads_per_worker must be >= 1, workers >= 0")
        part_min_conf(min_conf)  # validates
        if fusion is not None and fusion not in FUSION_MODES:
            raise ValueError(f"fusion must be null or one of {FUSION_MODES}, got {fusion!r}")
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        self.out_file = Path(out_file)
        self.teachers = dict(teachers)
        if not any(v is not None for v in self.teachers.values()):
            raise ValueError("no teacher configured: set at least one of teacher/hand, face, foot")
        if workers > 0:
            for slot, spec in self.teachers.items():
                if spec is not None and not isinstance(spec, Mapping):
                    raise TypeError(f"teacher '{slot}': worker processes need a _target_ config")
        self.part_boxes = part_boxes
        self.min_conf = dict(min_conf) if isinstance(min_conf, Mapping) else float(min_conf)
        self.fusion = (fusion or "max", tuple(fusion_parts) if fusion else ())
        self.workers, self.shard_size, self.threads = workers, shard_size, threads_per_worker
        self.overwrite, self.keep_shards, self.progress = overwrite, keep_shards, progress
        self.report = report
        #: Where ``report=True`` writes the quality report, and what it held (after :meth:`run`).
        self.report_file = self.out_file.with_name(self.out_file.stem + ".report.json")
        self.report_table: dict[str, Any] | None = None
        self.shard_dir = self.out_file.with_name(self.out_file.stem + ".shards")

    # ----------------------------------------------------------------- planning
    def _tasks(self, ws: WholeBodySet) -> list[ImageTask]:
        groups = ws.by_image()
        return [
            ImageTask(
                image=dict(ws.images[i]),
                ann_ids=ws.ann_ids[r],
                body=ws.keypoints[r, PART_SLICES["body"]],
                body_conf=ws.conf[r, PART_SLICES["body"]],
                bboxes=ws.bboxes[r],
                part_boxes=ws.part_boxes[r],
                iscrowd=ws.iscrowd[r],
            )
            for i, r in sorted(groups.items())
        ]

    def _manifest(self, tasks: list[ImageTask]) -> dict[str, Any]:
        shards = [
            [int(t.image["id"]) for t in tasks[i : i + self.shard_size]]
            for i in range(0, len(tasks), self.shard_size)
        ]
        return {
            "version": MANIFEST_VERSION,
            "ann_file_sha256": _sha256(self.ann_file),
            "settings": {
                "teachers": _describe(self.teachers),
                "part_boxes": self.part_boxes,
                "min_conf": self.min_conf,
                "fusion": [self.fusion[0], list(self.fusion[1])] if self.fusion[1] else None,
            },
            "shards": shards,
        }

    def _prepare_shard_dir(self, manifest: dict[str, Any]) -> None:
        path = self.shard_dir / "manifest.json"
        if self.shard_dir.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                old = None
            if old != manifest:
                if not self.overwrite:
                    raise FileExistsError(
                        f"{self.shard_dir} holds shards of a different job (input or settings "
                        "differ, or no manifest); delete it or pass overwrite=true"
                    )
                shutil.rmtree(self.shard_dir)
        if not self.shard_dir.exists():
            self.shard_dir.mkdir(parents=True)
            write_json_atomic(manifest, path)

    # ----------------------------------------------------------------- running
    def run(self) -> WholeBodySet:
        """Label every shard not yet written, merge, save; returns the pseudo-label set."""
        if self.out_file.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.out_file} exists; choose another out_file or pass overwrite=true"
            )
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"{self.image_dir}: image folder not found")
        ws = WholeBodySet.load(self.ann_file)
        if self.report and not ws.valid[:, 1:].any():
            raise AnnotationError(
                self.ann_file, "all annotations", "foot/face/hand keypoints",
                "report=true needs human whole-body labels to score against, and this file has none",
            )  # fmt: skip
        if self.part_boxes == "gt" and not (ws.part_boxes[..., 2:].prod(-1) > 0).any():
            raise AnnotationError(
                self.ann_file, "all annotations", "face_box/lefthand_box/righthand_box",
                "part_boxes=gt needs human part boxes, and this file has none",
            )  # fmt: skip
        tasks = self._tasks(ws)
        manifest = self._manifest(tasks)
        self._prepare_shard_dir(manifest)
        shard_tasks = [
            tasks[i : i + self.shard_size] for i in range(0, len(tasks), self.shard_size)
        ]
        done = {i for i in range(len(shard_tasks)) if _shard_path(self.shard_dir, i).is_file()}
        todo = [(i, shard_tasks[i]) for i in range(len(shard_tasks)) if i not in done]
        done_people = sum(len(t.ann_ids) for i in done for t in shard_tasks[i])
        bar = tqdm(
            total=len(ws), initial=done_people, unit="person", desc="pseudo-labelling",
            disable=not self.progress, dynamic_ncols=True,
        )  # fmt: skip
        args = (self.teachers, str(self.image_dir), self.part_boxes, self.min_conf,
                self.fusion, str(self.shard_dir), self.threads)  # fmt: skip
        with bar:
            if self.workers == 0:
                _init_worker(*args)
                try:
                    for job in todo:
                        bar.update(_run_shard(job)[1])
                finally:
                    _WORKER.clear()
            elif todo:
                ctx = multiprocessing.get_context("spawn")
                with (
                    _thread_env(self.threads),
                    ctx.Pool(
                        min(self.workers, len(todo)), initializer=_init_worker, initargs=args
                    ) as pool,
                ):
                    for _, n in pool.imap_unordered(_run_shard, todo):
                        bar.update(n)
        out = self._merge(ws, len(shard_tasks))
        out.save(self.out_file)
        if not self.keep_shards:
            shutil.rmtree(self.shard_dir)
        if self.report:
            from fullbody.pseudo.report import quality_report

            self.report_table = quality_report(out, ws)
            write_json_atomic(self.report_table, self.report_file)
        return out

    def _merge(self, ws: WholeBodySet, n_shards: int) -> WholeBodySet:
        out = ws.subset(np.arange(len(ws)))
        out.keypoints, out.conf = np.zeros_like(ws.keypoints), np.zeros_like(ws.conf)
        out.valid, out.part_boxes = np.zeros_like(ws.valid), np.zeros_like(ws.part_boxes)
        out.has_conf = True
        row_of = {int(a): r for r, a in enumerate(ws.ann_ids)}
        seen = np.zeros(len(ws), bool)
        for i in range(n_shards):
            path = _shard_path(self.shard_dir, i)
            try:
                shard = json.loads(path.read_text())
                rows = np.array([row_of[int(a)] for a in shard["ann_ids"]], dtype=np.int64)
            except (OSError, json.JSONDecodeError, KeyError) as e:
                raise AnnotationError(path, "shard", "(file)", f"unreadable shard: {e}") from e
            if len(rows):
                out.keypoints[rows] = np.asarray(shard["keypoints"], np.float64)
                out.conf[rows] = np.asarray(shard["conf"], np.float64)
                out.valid[rows] = np.asarray(shard["valid"], bool)
                out.part_boxes[rows] = np.asarray(shard["part_boxes"], np.float64)
                seen[rows] = True
        if not seen.all():
            raise AnnotationError(
                self.shard_dir, f"annotation {ws.ann_ids[~seen][0]}", "(shards)",
                "no shard holds this person; delete the shard folder and run again",
            )  # fmt: skip
        out.validate(str(self.out_file))
        return out
