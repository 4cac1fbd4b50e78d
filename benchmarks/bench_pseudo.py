"""Pseudo-labelling throughput: people per second on one core, projected to COCO train2017.

Runs the default teachers (MediaPipe hand, face and pose-feet; and the dlib face variant) on the
shared COCO-WholeBody sample's images in one process with every thread pool pinned to one
thread, from JPEG file to merged labels (decode, proposals, crops, teachers, merge), repeated;
the figure is people per CPU-second of that process (wall clock beside it).
The reference is the rate that labels COCO train2017's ~150k people in 24 hours on one 2-core
machine like this one: 150,000 / 86,400 s / 2 cores = 0.87 people/s per core; ``ratio`` > 1
means one such machine finishes within the day. Ends with one JSON line.
"""

from __future__ import annotations

import os

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_k] = "1"

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fullbody.annotations import PARTS, WholeBodySet  # noqa: E402
from fullbody.pseudo.labelling import ImageTask, label_image, read_task_image  # noqa: E402
from fullbody.pseudo.teachers.base import TeacherError  # noqa: E402

COCO_TRAIN_PEOPLE = 150_000
REFERENCE = COCO_TRAIN_PEOPLE / 86_400 / 2
SAMPLE = Path(
    os.environ.get("FULLBODY_SAMPLE_DIR", ROOT.parent / "shared" / "data" / "coco_wholebody_sample")
)


def teachers(face: str) -> dict:
    from fullbody.pseudo.teachers.mediapipe_hand import MediaPipeHand
    from fullbody.pseudo.teachers.mediapipe_pose_feet import MediaPipePoseFeet

    if face == "dlib":
        from fullbody.pseudo.teachers.dlib_face import DlibFace

        face_teacher = DlibFace()
    else:
        from fullbody.pseudo.teachers.mediapipe_face import MediaPipeFace

        face_teacher = MediaPipeFace()
    hand = MediaPipeHand()
    return {"lefthand": hand, "righthand": hand, "face": face_teacher, "foot": MediaPipePoseFeet()}


def measure(ws: WholeBodySet, by_part: dict, repeats: int) -> tuple[float, float]:
    """People per CPU second and per wall-clock second over ``repeats`` passes of the sample
    (JPEG decode included). The process is single-threaded, so CPU time is its time on one core
    and stays meaningful when other jobs share the machine."""
    tasks = []
    for iid, rows in sorted(ws.by_image().items()):
        tasks.append(ImageTask(
            ws.images[iid], ws.ann_ids[rows], ws.keypoints[rows, :17], ws.conf[rows, :17],
            ws.bboxes[rows], ws.part_boxes[rows], ws.iscrowd[rows],
        ))  # fmt: skip
    label_image(read_task_image(SAMPLE / "images", tasks[0]), tasks[0], by_part)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for t in tasks:
            label_image(read_task_image(SAMPLE / "images", t), t, by_part)
    people = repeats * len(ws)
    return people / (time.process_time() - cpu), people / (time.perf_counter() - start)


def main() -> None:
    cv2.setNumThreads(1)
    ann = SAMPLE / "annotations" / "coco_wholebody_sample.json"
    if not ann.is_file():
        print(
            json.dumps(
                {
                    "figure": "pseudo_label_persons_per_s_per_core",
                    "skipped": f"no sample at {SAMPLE}",
                }
            )
        )
        return
    ws = WholeBodySet.load(ann)
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    try:
        rates = {face: measure(ws, teachers(face), repeats) for face in ("mediapipe", "dlib")}
    except (TeacherError, ImportError) as e:
        print(json.dumps({"figure": "pseudo_label_persons_per_s_per_core", "skipped": str(e)}))
        return
    for face, (r, wall) in rates.items():
        print(f"face={face}: {r:.2f} people per CPU-second ({wall:.2f}/s wall clock); COCO "
              f"train2017 ({COCO_TRAIN_PEOPLE} people): {COCO_TRAIN_PEOPLE / r / 3600:.1f} core-hours")  # fmt: skip
    value, wall = rates["mediapipe"]
    print(json.dumps({
        "figure": "pseudo_label_persons_per_s_per_core",
        "value": round(value, 3),
        "reference": round(REFERENCE, 3),
        "ratio": round(value / REFERENCE, 2),
        "reference_is": "150k people (COCO train2017) in 24 h on one 2-core machine",
        "wall_clock_value": round(wall, 3),
        "dlib_face_value": round(rates["dlib"][0], 3),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "train2017_core_hours": round(COCO_TRAIN_PEOPLE / value / 3600, 1),
        "people_in_sample": len(ws),
        "parts": list(PARTS),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
