"""Detector-like evaluation boxes without a detector: ground-truth boxes put through a box jitter.

A top-down model is only as good as the boxes it is given. To measure how a model copes with
bad boxes (RMPE's question: people cut off, off-centre, too small in the crop) on data that has
no detector output, :func:`simulate_detections` draws one box per (non-crowd) person from its
ground-truth box through a training-box jitter (:mod:`fullbody.data.jitter`; PGPG's learned
detector errors, turned up with its ``scale``), with a fixed seed, and writes them as a COCO
person-results file — exactly what ``data.val.det_file`` takes.

:class:`SimulatedDetectorDataModule` is the synthetic data module evaluated that way: its
``det_jitter`` boxes replace the labels' boxes for validation and test
(``conf/experiment/ablation_rmpe.yaml`` uses it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.data.datamodule import SyntheticDataModule
from fullbody.jsonio import write_json_atomic

Jitter = Callable[..., np.ndarray]


def simulate_detections(
    ann: WholeBodySet, jitter: Jitter, seed: int = 0, score: float = 1.0
) -> list[dict[str, Any]]:
    """One jittered box per non-crowd person with a box, as COCO results records (file order).

    The same annotations, jitter and seed give the same boxes. Boxes are rounded to 0.01 px.
    """
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for i in range(len(ann.bboxes)):
        box = ann.bboxes[i]
        if ann.iscrowd[i] or box[2] <= 1 or box[3] <= 1:
            continue
        det = np.asarray(jitter(box, rng, ann.keypoints[i]), dtype=np.float64)
        out.append(
            {
                "image_id": int(ann.image_ids[i]),
                "category_id": 1,
                "bbox": [round(float(v), 2) for v in det],
                "score": float(score),
            }
        )
    return out


def write_simulated_detections(
    ann_file: str | Path, jitter: Jitter, seed: int = 0, out_dir: str | Path | None = None
) -> Path:
    """Write :func:`simulate_detections` of ``ann_file`` next to it (or in ``out_dir``).

    The file is named after a digest of its content, so different jitters or seeds never
    overwrite each other and the same ones reuse (rewrite identically) the same file — safe
    when several processes do it at once.
    """
    ann_file = Path(ann_file)
    dets = simulate_detections(WholeBodySet.load(ann_file), jitter, seed)
    text = json.dumps(dets, separators=(",", ":"))
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(out_dir or ann_file.parent) / f"simulated_detections_{digest}.json"
    if not path.is_file():
        write_json_atomic(dets, path)
    return path


class SimulatedDetectorDataModule(SyntheticDataModule):
    """:class:`SyntheticDataModule` whose validation/test boxes come from a simulated detector.

    ``det_jitter``: the box jitter that turns each validation person's ground-truth box into
    its "detection" (``None``: the labels' boxes, as the plain module); ``det_seed``: its seed.
    The held-out test scenes (``test_images``) get their detections the same way.
    The boxes are written once next to the validation scenes (see
    :func:`write_simulated_detections`) and used as ``val.det_file``.
    """

    def __init__(self, *args: Any, det_jitter: Jitter | None = None, det_seed: int = 0,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        if det_jitter is not None and self.sections["val"].get("det_file"):
            raise ValueError(
                f"{self.prefix}.det_jitter and {self.prefix}.val.det_file are both set: "
                "simulate the detections or give them, not both"
            )
        self.det_jitter = det_jitter
        self.det_seed = int(det_seed)

    def setup(self, stage: str | None = None) -> None:
        for split, folder in (("val", self.val_dir), ("test", self.test_dir)):
            labels = None if folder is None else folder / "annotations.json"
            if self.det_jitter is not None and labels is not None and labels.is_file():
                path = write_simulated_detections(labels, self.det_jitter, self.det_seed)
                self.sections[split]["det_file"] = str(path)
        super().setup(stage)
