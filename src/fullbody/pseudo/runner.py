"""Pseudo-label a COCO person file: shards of images over worker processes, resumable.

:class:`PseudoLabeller` reads the input with :class:`~fullbody.annotations.WholeBodySet`, splits
its images (in id order) into shards of ``shard_size`` images and hands the shards to
``workers`` processes (each builds its own teachers from their Hydra configs). Every worker
writes its shard's labels atomically as ``<out stem>.shards/shard-NNNNN.json`` next to the
output, beside the job's record (:class:`fullbody.manifest.JobManifest`: the input's SHA-256,
the image folder, the shard size and the settings). A run that finds that folder with the same
record skips the shards already written, so a killed job resumes without redoing or losing
work; another job's folder is refused, naming what differs. Labelling one image is
:mod:`fullbody.pseudo.labelling`; images are read as training reads them
(:mod:`fullbody.images`). A worker that fails ends the job with its error (finished shards stay
for the resume); with ``skip_bad_images``, an image that is missing, truncated or not decodable
is left out instead (with its people) and listed in ``<out stem>.skipped.json`` and the report.
When every shard is there they are merged, in shard order, into the output file (written
atomically; an existing output is never replaced unless ``overwrite``), and the shard folder is
removed unless ``keep_shards``. With ``report``, the output is then scored against the input's
human whole-body labels (:mod:`fullbody.pseudo.report`) into ``<out stem>.report.json``, with
the confidence calibration's reliability plot in ``<out stem>.calibration.png`` and the fitted
recalibration (``data.train.conf_calibration``) in ``<out stem>.calibration_map.json``.
Shards depend only on their images, so the output is the same byte for byte however the work
was split, interrupted or resumed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from fullbody.annotations import WholeBodySet
from fullbody.errors import (
    ConfigError,
    OutputError,
    OutputExistsError,
    UserError,
)
from fullbody.images import ImageReadError, image_folder
from fullbody.jsonio import AnnotationError, write_json_atomic
from fullbody.keypoints import PART_SLICES
from fullbody.manifest import DIFFERENT, NEW, JobManifest, ManifestMismatchError, file_sha256
from fullbody.pseudo.labelling import (
    PART_BOX_MODES,
    ImageTask,
    assign_parts,
    build_teachers,
    label_image,
    read_task_image,
    task_image_path,
)
from fullbody.pseudo.merge import FUSION_MODES, part_min_conf
from fullbody.pseudo.teachers.base import TEACHER_PARTS

#: Version of the shard folder's manifest (2: records image_dir and skipped images).
MANIFEST_VERSION = 2
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class ImageLabelError(RuntimeError):
    """Labelling one image failed in a way that is not the image's or the input's fault (a
    teacher raised); the message names the image file, the error type and its message."""


# ------------------------------------------------------------------------ the shard manifest
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


def _picklable(e: BaseException) -> BaseException:
    """``e`` itself when it survives a trip between processes, else one with its type's name
    and message that does (a pool whose worker raises an unpicklable error waits forever): a
    :class:`UserError` stays one (one line, exit 2), anything else becomes a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        kind = UserError if isinstance(e, UserError) else RuntimeError
        return kind(f"{type(e).__name__}: {e}")


def _init_worker(specs, image_dir, source, part_boxes, min_conf, fusion, manifest, threads, skip):
    _WORKER.clear()
    _WORKER.update(
        image_dir=image_dir,
        source=source,
        part_boxes=part_boxes,
        min_conf=min_conf,
        fusion=fusion[0],
        manifest=manifest,
        skip_bad_images=skip,
    )
    cv2.setNumThreads(threads)
    try:
        _WORKER["teachers"] = assign_parts(build_teachers(specs), fusion[1])
    except Exception as e:  # kept for the first shard: a pool respawns failed initialisers
        _WORKER["error"] = _picklable(e)
    if "torch" in sys.modules:  # only teachers that use torch pay for importing it
        sys.modules["torch"].set_num_threads(threads)


def _run_shard(job: tuple[int, list[ImageTask]]) -> tuple[int, int]:
    """Label one shard and write it atomically; returns (shard index, people labelled)."""
    index, tasks = job
    w = _WORKER
    if "error" in w:
        raise w["error"]
    rows: dict[str, list] = {
        "ann_ids": [],
        "keypoints": [],
        "conf": [],
        "valid": [],
        "part_boxes": [],
        "skipped": [],
    }
    for task in tasks:
        if not len(task.ann_ids):
            continue
        try:
            image = read_task_image(w["image_dir"], task, w["source"])
        except ImageReadError as e:
            if not w["skip_bad_images"]:
                raise
            rec = task.image
            rows["skipped"].append(
                {"id": rec["id"], "file_name": rec["file_name"], "error": str(e)}
            )
            continue
        try:
            kpts, conf, valid, boxes = label_image(
                image, task, w["teachers"], w["part_boxes"], w["min_conf"], w["fusion"]
            )
        except Exception as e:
            path = task_image_path(w["image_dir"], task)
            raise ImageLabelError(
                f"{path}: image {task.image['id']}: labelling failed: {type(e).__name__}: {e}"
            ) from None
        rows["ann_ids"] += task.ann_ids.tolist()
        rows["keypoints"] += kpts.tolist()
        rows["conf"] += conf.tolist()
        rows["valid"] += valid.tolist()
        rows["part_boxes"] += boxes.tolist()
    w["manifest"].write_shard(index, {"shard": index, **rows})
    return index, sum(len(t.ann_ids) for t in tasks)


def _run_shard_across(job: tuple[int, list[ImageTask]]) -> tuple[int, int]:
    """:func:`_run_shard` in a worker process: whatever it raises can be sent back."""
    try:
        return _run_shard(job)
    except Exception as e:
        raise _picklable(e) from None


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
        skip_bad_images: bool = False,
    ):
        if part_boxes not in PART_BOX_MODES:
            raise ConfigError(f"part_boxes must be one of {PART_BOX_MODES}, got {part_boxes!r}")
        if shard_size < 1 or workers < 0 or threads_per_worker < 1:
            raise ConfigError("shard_size and threads_per_worker must be >= 1, workers >= 0")
        part_min_conf(min_conf)  # validates
        if fusion is not None and fusion not in FUSION_MODES:
            raise ConfigError(f"fusion must be null or one of {FUSION_MODES}, got {fusion!r}")
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        self.out_file = Path(out_file)
        self.teachers = dict(teachers)
        if not any(v is not None for v in self.teachers.values()):
            raise ConfigError("no teacher configured: set at least one of teacher/hand, face, foot")
        if workers > 0:
            for slot, spec in self.teachers.items():
                if spec is not None and not isinstance(spec, Mapping):
                    raise TypeError(f"teacher '{slot}': worker processes need a _target_ config")
        self.part_boxes = part_boxes
        self.min_conf = dict(min_conf) if isinstance(min_conf, Mapping) else float(min_conf)
        #: (fusion mode, fused parts); no parts: a part teacher wins its part
        self.fusion = (fusion or "max", tuple(fusion_parts) if fusion else ())
        self.workers, self.shard_size, self.threads = workers, shard_size, threads_per_worker
        self.overwrite, self.keep_shards, self.progress = overwrite, keep_shards, progress
        self.report, self.skip_bad_images = report, skip_bad_images
        #: Where ``report=True`` writes the quality report, and what it held (after :meth:`run`).
        self.report_file = self.out_file.with_name(self.out_file.stem + ".report.json")
        self.calibration_plot = self.out_file.with_name(self.out_file.stem + ".calibration.png")
        self.calibration_map_file = self.out_file.with_name(
            self.out_file.stem + ".calibration_map.json"
        )
        self.report_table: dict[str, Any] | None = None
        #: Images left out by ``skip_bad_images`` (id, file_name, error), and where they are listed.
        self.skipped: list[dict[str, Any]] = []
        self.skipped_file = self.out_file.with_name(self.out_file.stem + ".skipped.json")
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

    def _manifest(self) -> JobManifest:
        """The shard folder's record: what fixes the output (the shard plan follows from the
        input and ``shard_size``), so a resume with anything else is refused by name."""
        return JobManifest(
            self.shard_dir,
            {
                "version": MANIFEST_VERSION,
                "ann_file_sha256": file_sha256(self.ann_file),
                "image_dir": str(self.image_dir.resolve()),
                "shard_size": self.shard_size,
                "settings": {
                    "teachers": _describe(self.teachers),
                    "part_boxes": self.part_boxes,
                    "min_conf": self.min_conf,
                    "fusion": [self.fusion[0], list(self.fusion[1])] if self.fusion[1] else None,
                    "skip_bad_images": self.skip_bad_images,
                },
            },
        )

    def _prepare_shard_dir(self, manifest: JobManifest) -> None:
        """Refuse a folder of another job (naming what differs) unless ``overwrite``, which
        clears it; then record that this job runs."""
        state = manifest.state()
        stray = state == NEW and any(self.shard_dir.glob("shard-*.json"))
        if state == DIFFERENT or stray:
            if not self.overwrite:
                what = "no manifest" if stray else manifest.difference()
                raise ManifestMismatchError(
                    f"{self.shard_dir} holds shards of a different job ({what}); resume with "
                    "the same input, image_dir and settings, or delete it or pass overwrite=true"
                )
            manifest.clear()
        manifest.begin()

    # ----------------------------------------------------------------- running
    def run(self) -> WholeBodySet:
        """Label every shard not yet written, merge, save; returns the pseudo-label set."""
        if self.out_file.exists() and not self.overwrite:
            raise OutputExistsError(
                f"{self.out_file} exists; choose another out_file or pass overwrite=true"
            )
        image_folder(self.image_dir)
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
        # The teachers are built (and checked: files, input sizes, fusion) once here, before
        # the shard folder's record is written: a teacher that cannot be built is one error
        # from this process, not one per worker, and leaves no record of a job that never ran.
        built = build_teachers(self.teachers)
        assign_parts(built, self.fusion[1])
        specs = built if self.workers == 0 else self.teachers
        del built
        manifest = self._manifest()
        self._prepare_shard_dir(manifest)
        shard_tasks = [
            tasks[i : i + self.shard_size] for i in range(0, len(tasks), self.shard_size)
        ]
        done = set(manifest.finished_shards(len(shard_tasks)))
        todo = [(i, shard_tasks[i]) for i in manifest.missing_shards(len(shard_tasks))]
        done_people = sum(len(t.ann_ids) for i in done for t in shard_tasks[i])
        bar = tqdm(
            total=len(ws), initial=done_people, unit="person", desc="pseudo-labelling",
            disable=not self.progress, dynamic_ncols=True,
        )  # fmt: skip
        args = (specs, str(self.image_dir), str(self.ann_file), self.part_boxes,
                self.min_conf, self.fusion, manifest, self.threads,
                self.skip_bad_images)  # fmt: skip
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
                    for _, n in pool.imap_unordered(_run_shard_across, todo):
                        bar.update(n)
        out, kept = self._merge(ws, manifest, len(shard_tasks))
        with self._writing(self.out_file):
            out.save(self.out_file)
            manifest.finish({"people": len(out), "skipped_images": len(self.skipped)})
            if self.skipped:
                write_json_atomic(self.skipped, self.skipped_file)
        if not self.keep_shards:
            shutil.rmtree(self.shard_dir)
        if self.report:
            from fullbody.pseudo.report import (
                quality_report,
                save_calibration_map,
                save_reliability_plot,
            )

            self.report_table = quality_report(out, kept)
            if self.skipped:
                self.report_table["skipped_images"] = self.skipped
            with self._writing(self.report_file):
                write_json_atomic(self.report_table, self.report_file)
                save_reliability_plot(self.report_table["calibration"], self.calibration_plot)
                save_calibration_map(out, kept, self.calibration_map_file)
        return out

    @contextlib.contextmanager
    def _writing(self, path: Path) -> Iterator[None]:
        """An output that cannot be written (full disk, read-only folder) as one
        :class:`OutputError` naming it and what is kept; the atomic writes leave the previous
        file or none, and no temporary file."""
        try:
            yield
        except OSError as e:
            kept = (
                f"the labelled shards stay in {self.shard_dir}: free space and run the same "
                "command again to merge them"
                if self.shard_dir.is_dir()
                else f"the pseudo-labels are in {self.out_file}"
            )
            raise OutputError(f"{path}: cannot write ({e.strerror or e}); {kept}") from None

    def _merge(
        self, ws: WholeBodySet, manifest: JobManifest, n_shards: int
    ) -> tuple[WholeBodySet, WholeBodySet]:
        """The pseudo-labels of every shard, and the input without the skipped images."""
        out = ws.subset(np.arange(len(ws)))
        out.keypoints, out.conf = np.zeros_like(ws.keypoints), np.zeros_like(ws.conf)
        out.valid, out.part_boxes = np.zeros_like(ws.valid), np.zeros_like(ws.part_boxes)
        out.has_conf = True
        row_of = {int(a): r for r, a in enumerate(ws.ann_ids)}
        seen = np.zeros(len(ws), bool)
        self.skipped = []
        for i in range(n_shards):
            path = manifest.shard_path(i)
            shard = manifest.read_shard(i)  # a damaged file: an error naming it
            try:
                rows = np.array([row_of[int(a)] for a in shard["ann_ids"]], dtype=np.int64)
                self.skipped += shard["skipped"]
            except (KeyError, TypeError, ValueError) as e:
                raise AnnotationError(path, "shard", "(file)", f"unreadable shard: {e}") from e
            if len(rows):
                out.keypoints[rows] = np.asarray(shard["keypoints"], np.float64)
                out.conf[rows] = np.asarray(shard["conf"], np.float64)
                out.valid[rows] = np.asarray(shard["valid"], bool)
                out.part_boxes[rows] = np.asarray(shard["part_boxes"], np.float64)
                seen[rows] = True
        gone = {int(r["id"]) for r in self.skipped}
        keep = np.flatnonzero(~np.isin(ws.image_ids, list(gone)))
        if not seen[keep].all():
            missing = ws.ann_ids[keep[~seen[keep]]][0]
            raise AnnotationError(
                self.shard_dir, f"annotation {missing}", "(shards)",
                "no shard holds this person; delete the shard folder and run again",
            )  # fmt: skip
        out, kept = out.subset(keep), ws.subset(keep)
        for s in (out, kept):
            s.images = {i: r for i, r in s.images.items() if i not in gone}
        out.validate(str(self.out_file))
        return out, kept
