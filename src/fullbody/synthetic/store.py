"""Writing a data set: images in worker processes, labels, a resumable manifest
(:mod:`fullbody.manifest`) that refuses other parameters and foreign files; and the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from fullbody.annotations import PARTS, WholeBodySet
from fullbody.errors import InputNotFoundError, OutputExistsError
from fullbody.jsonio import write_atomic
from fullbody.manifest import DIFFERENT, FINISHED, MANIFEST, PARTIAL, UNFINISHED, JobManifest
from fullbody.synthetic.config import GENERATOR_VERSION, SceneConfig, check_args
from fullbody.synthetic.drawing import render
from fullbody.synthetic.labels import PseudoConfig, _assemble, image_id, perturb_labels
from fullbody.synthetic.scenes import BATCH, Scene, sample_scenes

IMAGES_DIR = "images"
ANNOTATIONS = "annotations.json"
PSEUDO_ANNOTATIONS = "pseudo_annotations.json"
_IMAGE_NAME = re.compile(r"^\d{12}\.jpg$")
#: Pseudo-labels of another :class:`PseudoConfig` (:func:`derive_pseudo_labels`).
_DERIVED_NAME = re.compile(r"^pseudo_annotations_[0-9a-f]{12}\.json$")
_OWN_FILES = {IMAGES_DIR, ANNOTATIONS, PSEUDO_ANNOTATIONS, MANIFEST, PARTIAL}


def _own(name: str) -> bool:
    return name in _OWN_FILES or bool(_DERIVED_NAME.match(name))


# ------------------------------------------------------------------------------ writing
def _make_batch(args: tuple[int, int, int, SceneConfig, str]) -> list[Scene]:
    """Scenes of one batch of images, writing each image that is not already on disk."""
    batch, count, seed, cfg, images_dir = args
    out = []
    params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
    for k, scene in enumerate(sample_scenes(batch, seed, cfg, count)):
        i = batch * BATCH + k
        path = Path(images_dir) / f"{image_id(i):012d}.jpg"
        # A resumed run keeps finished images: they are written atomically, so they are whole.
        if not path.is_file():
            img = render(scene, np.random.default_rng([seed, i, 1]), cfg)
            ok, buf = cv2.imencode(".jpg", img, params)
            if not ok:
                raise RuntimeError(f"{path}: JPEG encoding failed")
            write_atomic(buf.tobytes(), path)
        out.append(scene._replace(people=None))  # only the labels travel back (cheap to pickle)
    return out


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _params(num_images: int, seed: int, pseudo: bool, cfg: SceneConfig) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "num_images": int(num_images),
            "seed": int(seed), "pseudo": bool(pseudo), "config": cfg.to_json()}  # fmt: skip


def _foreign(out: Path) -> list[str]:
    """Entries of ``out`` this generator would not have written."""
    bad = [e.name for e in out.iterdir() if not (_own(e.name) or _is_tmp(e.name))]
    images = out / IMAGES_DIR
    if images.exists() and not images.is_dir():
        bad.append(IMAGES_DIR)
    elif images.is_dir():
        bad += [f"{IMAGES_DIR}/{e.name}" for e in images.iterdir()
                if not (_IMAGE_NAME.match(e.name) or _is_tmp(e.name))]  # fmt: skip
    for name in (ANNOTATIONS, PSEUDO_ANNOTATIONS, MANIFEST, PARTIAL):
        if (out / name).is_dir():
            bad.append(name)
    return sorted(bad)


def _is_tmp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _clear_own(out: Path, manifest: JobManifest) -> None:
    """Remove what this generator writes (never anything else); the manifest goes first."""
    manifest.clear()
    for name in (ANNOTATIONS, PSEUDO_ANNOTATIONS):
        if (out / name).is_file():
            (out / name).unlink()
    for e in out.iterdir():
        if e.is_file() and (_is_tmp(e.name) or _DERIVED_NAME.match(e.name)):
            e.unlink()
    images = out / IMAGES_DIR
    if images.is_dir():
        for e in images.iterdir():
            if e.is_file() and (_IMAGE_NAME.match(e.name) or _is_tmp(e.name)):
                e.unlink()


def _job(out: Path, params: dict[str, Any]) -> JobManifest:
    """The manifest of a data set: ``params`` under ``"params"``, the generator's name first."""
    return JobManifest(out, params, key="params", header={"generator": "fullbody.synthetic"})


def _prepare(out: Path, job: JobManifest, overwrite: bool) -> bool:
    """Check the output folder; True when it already holds this exact data set."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    state = job.state()
    if state == FINISHED:
        expected = [ANNOTATIONS] + ([PSEUDO_ANNOTATIONS] if job.config["pseudo"] else [])
        if all((out / name).is_file() for name in expected):
            return True
    foreign = _foreign(out)
    # Same parameters but unfinished or damaged: finish it, keeping the images.
    resumable = state in (FINISHED, UNFINISHED)
    if overwrite:
        if not resumable:
            _clear_own(out, job)
        return False
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise OutputExistsError(
            f"{out}: holds files this generator did not write ({shown}); choose an empty or "
            "new folder, or pass overwrite=True (--overwrite) to write beside them"
        )
    if resumable or not any(out.iterdir()):
        return False
    if state == DIFFERENT:
        what = "a finished" if job.finished_record() else "an unfinished"
        raise OutputExistsError(
            f"{out}: holds {what} synthetic data set with different parameters "
            f"({job.difference()}); pass overwrite=True (--overwrite) to replace it"
        )
    raise OutputExistsError(
        f"{out}: holds synthetic-looking files but no manifest; pass overwrite=True "
        "(--overwrite) to replace them"
    )


def generate(
    out_dir: str | os.PathLike,
    num_images: int,
    seed: int = 0,
    *,
    pseudo: bool = False,
    config: SceneConfig | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``num_images`` scenes to ``out_dir`` and return it.

    Writes ``images/{image_id:012d}.jpg``, ``annotations.json`` (COCO-WholeBody), with
    ``pseudo`` also ``pseudo_annotations.json`` (:func:`perturb_labels`), and last
    ``manifest.json`` (parameters and counts). A folder that already holds the same data set is
    returned at once; an unfinished run with the same parameters resumes (finished images are
    kept). Any other content is an error unless ``overwrite``, which replaces what this
    generator writes and leaves other files alone. ``workers > 1`` draws images in that many
    processes; the output is byte-identical for any worker count.
    """
    cfg = config or SceneConfig()
    check_args(num_images, seed)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    out = Path(out_dir)
    job = _job(out, _params(num_images, seed, pseudo, cfg))
    if _prepare(out, job, overwrite):
        return out
    images_dir = out / IMAGES_DIR
    images_dir.mkdir(parents=True, exist_ok=True)
    job.begin()

    jobs = [(b, min(BATCH, num_images - b * BATCH), seed, cfg, str(images_dir))
            for b in range(math.ceil(num_images / BATCH))]  # fmt: skip
    scenes: list[Scene] = []
    bar = tqdm(total=num_images, desc="synthetic images", unit="img", disable=not progress)
    try:
        if workers == 1:
            results = map(_make_batch, jobs)
            for res in results:
                scenes += res
                bar.update(len(res))
        else:
            # Fresh interpreters: forking a process whose OpenCV/BLAS thread pools are running
            # can deadlock. (Scripts calling this need the ``if __name__ == "__main__"`` guard.)
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as ex:
                for res in ex.map(_make_batch, jobs):
                    scenes += res
                    bar.update(len(res))
    finally:
        bar.close()

    gt = _assemble(scenes, cfg, seed)
    gt.save(out / ANNOTATIONS)
    counts = {
        "images": num_images,
        "people": len(gt),
        "labelled_points": int((gt.keypoints[..., 2] > 0).sum()),
        "occluded_points": int((gt.keypoints[..., 2] == 1).sum()),
        "labelled_parts": {p: int(gt.valid[:, i].sum()) for i, p in enumerate(PARTS)},
    }
    files = {"images": IMAGES_DIR, "annotations": ANNOTATIONS}
    if pseudo:
        perturb_labels(gt, seed).save(out / PSEUDO_ANNOTATIONS)
        files["pseudo_annotations"] = PSEUDO_ANNOTATIONS
    job.finish({"counts": counts, "files": files})
    return out


def pseudo_labels_name(config: PseudoConfig) -> str:
    """File name of the pseudo-labels of ``config``: a digest of its fields, so each config
    has its own file and a changed config never reuses another's labels."""
    text = json.dumps(config.to_json(), sort_keys=True)
    return f"pseudo_annotations_{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"


def derive_pseudo_labels(out_dir: str | os.PathLike, config: PseudoConfig) -> Path:
    """Pseudo-labels of ``config`` for the finished data set in ``out_dir``, made from its
    ``annotations.json`` with the set's seed (as :func:`generate` makes
    ``pseudo_annotations.json``) into :func:`pseudo_labels_name`; an existing file is reused.
    Regenerating the set (``overwrite``) removes these files with the rest of its output."""
    out = Path(out_dir)
    path = out / pseudo_labels_name(config)
    if path.is_file():
        return path
    if not (out / MANIFEST).is_file():
        raise InputNotFoundError(f"{out}: no finished synthetic data set (generate it first)")
    seed = int(json.loads((out / MANIFEST).read_text())["params"]["seed"])
    gt = WholeBodySet.load(out / ANNOTATIONS)
    return perturb_labels(gt, seed, config=config).save(path)


# ------------------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fullbody.synthetic``: write a synthetic data set."""
    ap = argparse.ArgumentParser(
        prog="python -m fullbody.synthetic",
        description="Write synthetic multi-person whole-body scenes with exact COCO-WholeBody "
        "labels: OUT/images/*.jpg, OUT/annotations.json, OUT/manifest.json.",
    )
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--images", required=True, type=int, help="number of images")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--pseudo", action="store_true",
                    help="also write teacher-like pseudo_annotations.json")  # fmt: skip
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a different data set (or write beside foreign files)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        out = generate(args.out, args.images, args.seed, pseudo=args.pseudo,
                       workers=args.workers, overwrite=args.overwrite,
                       progress=not args.quiet)  # fmt: skip
    except (FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = json.loads((out / MANIFEST).read_text())["counts"]
    print(f"{out}: {counts['images']} images, {counts['people']} people")
    return 0
