"""Held-out hand crops: how well a hand teacher labels small hands it sees without the body.

A "hidden-style" hand evaluation, buildable from any COCO-WholeBody-format file with
human hand labels (COCO-WholeBody val, or any hand set converted to that format):

* **Which hands.** Every human hand that is labelable: a non-crowd person's hand marked valid,
  with a non-empty hand box and at least one labelled point (the metric ignores the rest).
* **The crop.** A square centred on the human hand box's centre, ``margin`` x the box's long
  side (the context the teacher gets), unrotated, resampled so that the box's long side becomes
  ``size`` px: the crop image is ``round(margin * size)`` px square and the scale
  ``s = size / long side`` (exactly, whatever the rounding: the crop side in the source is
  ``round(margin * size) / s``). Enlarging is bilinear; shrinking first reduces the image by
  area averaging (:func:`fullbody.geometry.warp_crop_antialiased`), as a resize to 32 px
  would. Pixel centres at integers (OpenCV), so the human points map by the same affine.
* **The set.** One crop per image, one "person" per crop: no body points, the hand's 21 points
  (and its box) in its own side's slot, everything else unlabelled. ``area="person"`` (default)
  keeps the person's area times ``s**2``: OKS divides squared distances by the area, so every
  OKS, and hence the AP, is exactly what the official COCO-WholeBody metric gives those hands
  in the full image. ``area="hand_box"`` uses the crop's hand box w x h instead (for hand-only
  sets without a person area; much stricter).
* **Scoring.** The teacher's labels of the crops (the pseudo-labelling job itself, with the
  human hand boxes as regions and no body points, so the teacher's own search decides) become
  predictions as in the quality report (:func:`fullbody.pseudo.report.as_predictions`: points
  below ``min_conf`` unlabelled, each hand ranked by its mean confidence) and are scored by the
  project's metric (:func:`fullbody.evaluation.wholebody.evaluate`): per side, and pooled
  ("hand": every hand in one part slot; left and right hands share their sigmas). Coverage is
  labelled / labelable hands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fullbody.annotations import PARTS, WholeBodySet
from fullbody.errors import ConfigError, InputNotFoundError, OutputExistsError
from fullbody.geometry import UP, crop_affines, transform_points, warp_crop_antialiased
from fullbody.images import image_folder, read_image
from fullbody.jsonio import AnnotationError, write_atomic
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES
from fullbody.manifest import file_sha256

#: The two hand parts (their boxes are columns 1 and 2 of ``WholeBodySet.part_boxes``).
HAND_PARTS = ("lefthand", "righthand")
AREA_MODES = ("person", "hand_box")
#: The crop set's file and image folder inside the output folder.
CROPS_FILE = "hand_crops.json"
IMAGES = "images"


def labelable_hands(ws: WholeBodySet) -> list[tuple[int, str]]:
    """``(row, part)`` of every labelable human hand, in file order (left before right)."""
    ok = []
    for part in HAND_PARTS:
        box = ws.part_boxes[:, 1 + HAND_PARTS.index(part)]
        lab = (ws.keypoints[:, PART_SLICES[part], 2] > 0).any(1)
        good = ~ws.iscrowd & ws.valid[:, PARTS.index(part)] & (box[:, 2:] > 0).all(1) & lab
        ok += [(int(r), part) for r in np.flatnonzero(good)]
    return sorted(ok)


def hand_crop_affine(box: np.ndarray, size: int, margin: float) -> tuple[np.ndarray, int, float]:
    """Image -> crop affine (2, 3), crop side in px and scale of the crop of one xywh hand box
    (see the module docstring)."""
    if size < 1 or margin < 1:
        raise ConfigError(f"size must be >= 1 and margin >= 1, got size={size}, margin={margin}")
    box = np.asarray(box, np.float64)
    scale = size / box[2:].max()
    out = max(1, round(margin * size))
    centre = (box[:2] + box[2:] / 2)[None]
    return crop_affines(centre, np.array([out / scale]), UP[None], out)[0], out, scale


def crop_hand(
    ws: WholeBodySet, row: int, part: str, size: int, margin: float, area: str
) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """The affine, crop side and the crop's ground-truth arrays (``keypoints`` (133, 3),
    ``bbox``, ``area``, ``valid``, ``part_boxes``) of one human hand."""
    if area not in AREA_MODES:
        raise ConfigError(f"area must be one of {AREA_MODES}, got {area!r}")
    b = HAND_PARTS.index(part) + 1
    affine, out, scale = hand_crop_affine(ws.part_boxes[row, b], size, margin)
    kpts = np.zeros((NUM_KEYPOINTS, 3))
    src = ws.keypoints[row, PART_SLICES[part]]
    lab = src[:, 2] > 0
    kpts[PART_SLICES[part]][lab] = transform_points(src[lab], affine)
    x, y, w, h = ws.part_boxes[row, b]
    corner = transform_points(np.array([[x, y]]), affine)[0]
    box = np.array([*corner, w * scale, h * scale])
    part_boxes = np.zeros((3, 4))
    part_boxes[b] = box
    valid = np.zeros(len(PARTS), bool)
    valid[PARTS.index(part)] = True
    crop_area = ws.areas[row] * scale**2 if area == "person" else box[2] * box[3]
    gt = {
        "keypoints": kpts,
        "bbox": box,
        "area": crop_area,
        "valid": valid,
        "part_boxes": part_boxes,
    }
    return affine, out, gt


def build_hand_crops(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int = 32,
    margin: float = 2.0,
    area: str = "person",
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> WholeBodySet:
    """Cut every labelable hand of ``ann_file`` into ``out_dir/images`` (PNG, lossless) and
    write the crops' ground truth to ``out_dir/hand_crops.json`` (atomically, last: its presence
    means the set is complete). Image records name their source (``source_image_id``,
    ``source_file_name``, ``source_annotation_id``, ``hand``, ``crop_affine``); the file's
    ``hand_crops`` entry records the settings and the source file's SHA-256."""
    ann_file, out_dir = Path(ann_file), Path(out_dir)
    ws = WholeBodySet.load(ann_file)
    hands = labelable_hands(ws)
    if not hands:
        raise AnnotationError(
            ann_file, "all annotations", "lefthand_kpts/righthand_kpts/*_box",
            "no labelable human hand (valid, with a hand box and a labelled point)",
        )  # fmt: skip
    (out_dir / IMAGES).mkdir(parents=True, exist_ok=True)
    images, rows = [], {k: [] for k in ("keypoints", "bbox", "area", "valid", "part_boxes")}
    last_image, image = None, None
    for k, (row, part) in enumerate(progress(hands), start=1):
        rec = ws.images[int(ws.image_ids[row])]
        if rec["id"] != last_image:  # hands come in file order: one read per image and run
            image = read_image(ws.image_path(rec["id"], image_dir), record=rec, source=ann_file)
            last_image = rec["id"]
        affine, out, gt = crop_hand(ws, row, part, size, margin, area)
        crop = warp_crop_antialiased(image, affine, out)
        name = f"{k:06d}.png"
        ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode crop {name}")
        write_atomic(png.tobytes(), out_dir / IMAGES / name)
        images.append({
            "id": k, "file_name": name, "width": out, "height": out,
            "source_image_id": int(rec["id"]), "source_file_name": rec["file_name"],
            "source_annotation_id": int(ws.ann_ids[row]), "hand": part,
            "crop_affine": affine.round(6).tolist(),
        })  # fmt: skip
        for key, v in gt.items():
            rows[key].append(v)
    crops = WholeBodySet.from_arrays(
        images,
        np.arange(1, len(images) + 1),
        np.stack(rows["keypoints"]),
        np.stack(rows["bbox"]),
        areas=np.array(rows["area"]),
        valid=np.stack(rows["valid"]),
        part_boxes=np.stack(rows["part_boxes"]),
    )
    crops.header["hand_crops"] = crop_settings(ann_file, image_dir, size, margin, area)
    crops.save(out_dir / CROPS_FILE)
    return crops


def crop_settings(
    ann_file: str | os.PathLike, image_dir: str | os.PathLike, size: int, margin: float, area: str
) -> dict[str, Any]:
    """What fixes a crop set: the source file's SHA-256, its image folder and the settings."""
    return {
        "source": str(Path(ann_file).resolve()),
        "source_sha256": file_sha256(ann_file),
        "image_dir": str(Path(image_dir).resolve()),
        "size": int(size),
        "margin": float(margin),
        "area": area,
    }


def pooled(ws: WholeBodySet) -> WholeBodySet:
    """The set with every right hand moved into the left-hand slot (points, confidences,
    validity, box): one part holding all hands, for the pooled hand AP (both hands have the
    same sigmas). Rows must hold at most one hand, as crop sets do."""
    out = ws.subset(np.arange(len(ws)))
    left, right = PART_SLICES["lefthand"], PART_SLICES["righthand"]
    rows = (ws.keypoints[:, right, 2] > 0).any(1) | ws.valid[:, PARTS.index("righthand")]
    if ((ws.keypoints[rows, left, 2] > 0).any(1)).any():
        raise ValueError("pooling hands needs one hand per person (a crop set)")
    for a in (out.keypoints, out.conf):
        a[rows, left] = a[rows, right]
        a[rows, right] = 0
    out.valid[rows, PARTS.index("lefthand")] = ws.valid[rows, PARTS.index("righthand")]
    out.valid[rows, PARTS.index("righthand")] = False
    out.part_boxes[rows, 1], out.part_boxes[rows, 2] = ws.part_boxes[rows, 2], 0
    return out


def score_hand_crops(labels: WholeBodySet, crops: WholeBodySet) -> dict[str, Any]:
    """Hand AP/AR (``"<hand|lefthand|righthand>/<stat>"``) of a teacher's ``labels`` of a crop
    set against its ``crops`` ground truth, and coverage (labelable, labelled) per side and
    pooled. A side without hands gives -1 (COCO's convention)."""
    from fullbody.evaluation.wholebody import evaluate
    from fullbody.pseudo.report import as_predictions, coverage

    if set(labels.ann_ids.tolist()) != set(crops.ann_ids.tolist()):
        raise ValueError("the labels and the crop set must hold the same annotation ids")
    metrics = evaluate(crops, as_predictions(labels), parts=HAND_PARTS)
    hand = evaluate(pooled(crops), as_predictions(pooled(labels)), parts=("lefthand",))
    metrics = {k.replace("lefthand/", "hand/"): v for k, v in hand.items()} | metrics
    cov = coverage(labels, crops)
    sides = {p: {"labelable": cov[p]["human"], "labelled": cov[p]["labelled"]} for p in HAND_PARTS}
    total = {k: sum(s[k] for s in sides.values()) for k in ("labelable", "labelled")}
    return {"metrics": metrics, "coverage": {"hand": total, **sides}}


def load_or_build_crops(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int = 32,
    margin: float = 2.0,
    area: str = "person",
    overwrite: bool = False,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> WholeBodySet:
    """The crop set in ``out_dir``: reused when it was built from the same file, images and
    settings, else built (:func:`build_hand_crops`). A set of other settings, or crop images
    without a finished set (an interrupted build, or someone else's files), is refused naming
    what differs unless ``overwrite``, which rebuilds it."""
    if area not in AREA_MODES:
        raise ConfigError(f"area must be one of {AREA_MODES}, got {area!r}")
    out_dir = Path(out_dir)
    if not Path(ann_file).is_file():
        raise InputNotFoundError(f"{ann_file}: annotation file not found")
    image_folder(image_dir)
    path, images = out_dir / CROPS_FILE, out_dir / IMAGES
    want = crop_settings(ann_file, image_dir, size, margin, area)
    if path.is_file():
        old = WholeBodySet.load(path)
        have = old.header.get("hand_crops")
        if have == want:
            return old
        if not overwrite:
            differ = (
                [k for k in want if have.get(k) != want[k]]
                if isinstance(have, dict)
                else ["not a hand crop set"]
            )
            raise OutputExistsError(
                f"{path} holds hand crops of other settings ({', '.join(differ)}); choose "
                "another out_dir or pass overwrite=true"
            )
    elif images.is_dir() and any(images.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{images} holds files but no {CROPS_FILE} (an interrupted build?); choose another "
            "out_dir or pass overwrite=true"
        )
    if images.is_dir():
        for stale in images.glob("*.png"):
            stale.unlink()
    return build_hand_crops(ann_file, image_dir, out_dir, size, margin, area, progress)
