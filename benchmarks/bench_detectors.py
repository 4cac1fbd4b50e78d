"""Person detectors on the shared sample: box AP against the 14 human person boxes, and speed.

    PYTHONPATH=src python benchmarks/bench_detectors.py [--threads 0]

Scores the packaged detector (``python -m fullbody.inference.install``) with pycocotools'
bbox evaluation (person category, all boxes with score >= 0.01) against the sample's human
boxes, at a few NMS IoU thresholds, and the sample's own detection file (a 56-AP COCO detector)
as the reference. The last line is one JSON object: the packaged detector's AP (default
settings), the reference the detection file's.
"""

from __future__ import annotations

import argparse
import json
import time

from fullbody.inference.detectors import (
    PACKAGED_SETTINGS,
    DetectionFileDetector,
    packaged_detector,
    person_box_ap,
)
from fullbody.utils.sample import missing_sample_reason, sample_available, sample_dir

SAMPLE = sample_dir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    ap.add_argument("--smoke", action="store_true", help="seconds: one NMS setting")
    args = ap.parse_args()
    if not sample_available():
        reason = missing_sample_reason()
        print(json.dumps({"figure": "packaged_detector_person_box_AP", "value": None,
                          "reference": None, "ratio": None, "skipped": reason}))  # fmt: skip
        return
    ann = SAMPLE / "annotations" / "coco_wholebody_sample.json"
    images = SAMPLE / "images"
    try:
        packaged_detector()
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        print(json.dumps({"figure": "packaged_detector_person_box_AP", "value": None,
                          "reference": None, "ratio": None, "skipped": str(e)}))  # fmt: skip
        return
    rows = {}
    ref = person_box_ap(DetectionFileDetector(SAMPLE / "annotations" / "person_detections.json"),
                        ann, images)  # fmt: skip
    rows["detection file (reference)"] = ref
    for iou in (0.6,) if args.smoke else (0.5, 0.6, 0.7):
        det = packaged_detector(score_threshold=0.01, nms_iou=iou, threads=args.threads)
        start = time.perf_counter()
        stats = person_box_ap(det, ann, images)
        stats["ms_per_image"] = 1000 * (time.perf_counter() - start) / 4
        rows[f"packaged, NMS IoU {iou}"] = stats
    for name, s in rows.items():
        ms = f"{s['ms_per_image']:.0f} ms/image" if "ms_per_image" in s else ""
        print(f"{name:28s} AP {s['AP']:.3f}  AP50 {s['AP50']:.3f}  AP75 {s['AP75']:.3f}  "
              f"AR {s['AR']:.3f}  {s['detections']:4d} boxes  {ms}")  # fmt: skip
    default = rows["packaged, NMS IoU 0.6"]
    print(json.dumps({
        "figure": "packaged_detector_person_box_AP",
        "value": round(default["AP"], 4),
        "reference": round(ref["AP"], 4),
        "ratio": round(default["AP"] / ref["AP"], 3),
        "AP50": round(default["AP50"], 4),
        "reference_AP50": round(ref["AP50"], 4),
        "ms_per_image": round(default["ms_per_image"], 1),
        "settings": {k: list(v) if isinstance(v, tuple) else v
                     for k, v in PACKAGED_SETTINGS.items()},
        "images": 4,
        "people": 14,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
