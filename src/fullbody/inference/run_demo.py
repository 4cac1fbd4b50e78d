"""The demo job: an image, a folder of images or a video in; drawn poses and COCO results out.

:func:`run_demo` is what ``python demo.py input=PATH ckpt_path=CKPT`` runs. Per input it
detects people, predicts their 133 points and draws them coloured by part
(:func:`fullbody.draw.draw_wholebody`). It writes into ``out_dir``:

* ``vis/<file name>`` — each drawn image (JPEG/PNG as the input), or ``<video stem>_pose.mp4``;
* ``results.json`` — COCO keypoint results (mmpose's split layout, with ``bbox``);
* ``images.json`` — the COCO ``images`` records the results' ``image_id`` refer to (file name,
  size; ``frame`` for video frames);
* ``summary.json`` — counts, timing and every skipped file with its reason.

A file that cannot be read or decoded is reported and skipped; the others still run. An
``out_dir`` that already holds a demo's outputs is refused before anything is drawn, unless
``overwrite`` (then those files are replaced); a folder without any file to read is an error.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from fullbody.draw import draw_wholebody
from fullbody.errors import InputNotFoundError, OutputError, OutputExistsError
from fullbody.images import ImageReadError, read_image, read_image_records
from fullbody.inference.detectors import PersonDetector
from fullbody.inference.predictor import PosePredictor, PoseResult
from fullbody.jsonio import write_json_atomic
from fullbody.results import Predictions

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
#: What a demo run writes into its ``out_dir`` (besides ``<video stem>_pose.mp4``).
OUTPUT_NAMES = ("results.json", "images.json", "summary.json", "vis")


@dataclass
class DemoOutput:
    """What a demo run produced (also written to ``summary.json``)."""

    out_dir: Path
    images: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    people: int = 0
    seconds: float = 0.0  # spent detecting and predicting (not reading, drawing, writing)
    results: list[Predictions] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.images),
            "people": self.people,
            "skipped": self.skipped,
            "videos": self.videos,
            "detect_and_pose_seconds": round(self.seconds, 3),
            "detect_and_pose_images_per_second": (
                round(len(self.images) / self.seconds, 3) if self.seconds else 0.0
            ),
        }


def list_inputs(path: str | os.PathLike) -> tuple[str, list[Path]]:
    """Classify ``path``: ("video", [file]), ("images", [files]) for an image or a folder.

    A folder's files are taken in name order, hidden files skipped; files with other suffixes
    are kept (they may be images with odd names) and skipped later if they do not decode.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputNotFoundError(
            f"{p}: input not found (input=PATH: an image, a folder or a video)"
        )
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise InputNotFoundError(f"{p}: no files in the folder (input=PATH: images or a video)")
        return "images", files
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return "video", [p]
    return "images", [p]


def check_out_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create ``out_dir`` and check, before anything is drawn, that the demo may write there:
    :class:`OutputExistsError` when it holds a previous demo's outputs (unless ``overwrite``),
    :class:`OutputError` when it cannot be written."""
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        msg = f"{out}: cannot create the output folder (out_dir): {e.strerror}"
        raise OutputError(msg) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: the output folder is not writable (out_dir)")
    found = [n for n in OUTPUT_NAMES if (out / n).exists()]
    found += sorted(p.name for p in out.glob("*_pose.mp4"))
    if found and not overwrite:
        raise OutputExistsError(
            f"{out}: holds a previous demo's {', '.join(found)} (out_dir): choose another "
            "out_dir or pass overwrite=true to replace them"
        )
    return out


def image_ids_for(files: list[Path], ann_file: str | os.PathLike | None = None) -> list[int | None]:
    """COCO image ids for ``files``: from ``ann_file``'s ``images`` (matched by file name;
    None for a file it does not list) when given, else the file names' numbers when every stem
    is a distinct number (COCO's ``000000000785.jpg`` -> 785), else 1, 2, ... in order."""
    if ann_file is not None:
        by_name = {Path(r["file_name"]).name: i for i, r in read_image_records(ann_file).items()}
        return [by_name.get(f.name) for f in files]
    stems = [f.stem for f in files]
    if stems and all(s.isdigit() for s in stems) and len(set(map(int, stems))) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(files) + 1))


class DemoRunner:
    """Runs detector + predictor over images or video frames and draws the poses."""

    def __init__(
        self,
        predictor: PosePredictor,
        detector: PersonDetector,
        draw_threshold: float = 0.3,
        min_pose_score: float = 0.0,
        draw_boxes: bool = True,
    ) -> None:
        self.predictor = predictor
        self.detector = detector
        self.draw_threshold = draw_threshold
        self.min_pose_score = min_pose_score
        self.draw_boxes = draw_boxes

    def predict(self, image: np.ndarray, image_id: int | None) -> PoseResult:
        """Poses of one RGB image."""
        boxes, scores = self.detector(image, image_id)
        return self.predictor(image, boxes, scores)

    def draw(self, image: np.ndarray, result: PoseResult) -> np.ndarray:
        """The BGR picture of an RGB image with its poses drawn (poses above the score floor)."""
        shown = result.scores >= self.min_pose_score
        return draw_wholebody(
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
            result.keypoints[shown],
            threshold=self.draw_threshold,
            boxes=result.boxes[shown] if self.draw_boxes else None,
        )

    # -------------------------------------------------------------- images
    def run_images(
        self,
        files: list[Path],
        ids: list[int | None],
        out: DemoOutput,
        progress: bool = True,
    ) -> None:
        vis = out.out_dir / "vis"
        vis.mkdir(parents=True, exist_ok=True)
        bar = tqdm(list(zip(files, ids)), desc="images", unit="img", disable=not progress)
        for path, image_id in bar:
            if image_id is None:
                self._skip(out, path, f"{path}: not listed in the ann_file's images")
                continue
            try:
                image = read_image(path)
            except ImageReadError as e:
                self._skip(out, path, str(e))
                continue
            t0 = time.perf_counter()
            result = self.predict(image, image_id)
            out.seconds += time.perf_counter() - t0
            target = vis / path.name
            if target.suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp"}:
                target = target.with_suffix(".jpg")
            if not cv2.imwrite(str(target), self.draw(image, result)):
                self._skip(out, path, f"{target}: cannot write the drawn image")
            h, w = image.shape[:2]
            out.images.append({"id": image_id, "file_name": path.name, "width": w, "height": h})
            out.results.append(result.to_predictions(image_id))
            out.people += len(result)
            bar.set_postfix(people=out.people, skipped=len(out.skipped))

    # -------------------------------------------------------------- video
    def run_video(
        self,
        path: Path,
        out: DemoOutput,
        progress: bool = True,
        codec: str = "mp4v",
        max_frames: int | None = None,
    ) -> None:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            self._skip(out, path, f"{path}: cannot open the video (corrupt or unsupported)")
            return
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        target = out.out_dir / f"{path.stem}_pose.mp4"
        writer: cv2.VideoWriter | None = None
        try:
            with tqdm(total=total, desc=path.name, unit="frame", disable=not progress) as bar:
                for frame_no, bgr in enumerate(_frames(cap, max_frames)):
                    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    image_id = frame_no + 1
                    t0 = time.perf_counter()
                    result = self.predict(image, image_id)
                    out.seconds += time.perf_counter() - t0
                    drawn = self.draw(image, result)
                    if writer is None:
                        h, w = drawn.shape[:2]
                        fourcc = cv2.VideoWriter_fourcc(*codec)
                        writer = cv2.VideoWriter(str(target), fourcc, fps, (w, h))
                        if not writer.isOpened():
                            raise RuntimeError(f"{target}: cannot open a {codec!r} video writer")
                    writer.write(drawn)
                    h, w = image.shape[:2]
                    out.images.append(
                        {"id": image_id, "file_name": path.name, "frame": frame_no,
                         "width": w, "height": h}
                    )  # fmt: skip
                    out.results.append(result.to_predictions(image_id))
                    out.people += len(result)
                    bar.update()
                    bar.set_postfix(people=out.people)
        finally:
            cap.release()
            if writer is not None:
                writer.release()
        if writer is None:
            self._skip(out, path, f"{path}: no frame could be decoded")
        else:
            out.videos.append(target.name)

    @staticmethod
    def _skip(out: DemoOutput, path: Path, reason: str) -> None:
        log.warning("skipped %s", reason)
        out.skipped.append({"file": str(path), "reason": reason})


def _frames(cap: cv2.VideoCapture, max_frames: int | None) -> Iterator[np.ndarray]:
    n = 0
    while max_frames is None or n < max_frames:
        ok, frame = cap.read()
        if not ok:
            return
        n += 1
        yield frame


def run_demo(
    input: str | os.PathLike,
    runner: DemoRunner,
    out_dir: str | os.PathLike,
    ann_file: str | os.PathLike | None = None,
    progress: bool = True,
    video_codec: str = "mp4v",
    max_frames: int | None = None,
    overwrite: bool = False,
) -> DemoOutput:
    """Run the demo on ``input`` and write everything into ``out_dir`` (see module docs)."""
    kind, files = list_inputs(input)
    out = DemoOutput(check_out_dir(out_dir, overwrite))
    if kind == "video":
        runner.run_video(files[0], out, progress, video_codec, max_frames)
    else:
        videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
        for v in videos:
            DemoRunner._skip(out, v, f"{v}: a video inside a folder (pass it as input= itself)")
        files = [f for f in files if f.suffix.lower() not in VIDEO_SUFFIXES]
        runner.run_images(files, image_ids_for(files, ann_file), out, progress)
    preds = Predictions.concatenate(out.results)
    preds.save(out.out_dir / "results.json", layout="split", overwrite=overwrite)
    write_json_atomic(out.images, out.out_dir / "images.json")
    write_json_atomic(out.summary(), out.out_dir / "summary.json")
    return out
