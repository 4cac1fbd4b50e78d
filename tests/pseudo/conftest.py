"""Small synthetic-style inputs for the pseudo-labelling tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # worker processes import fake_teachers by name
    sys.path.insert(0, str(HERE))

#: An upright person facing the camera (person's left on the image's right), 17 COCO points.
SKELETON = np.array([
    [50, 20], [53, 17], [47, 17], [57, 19], [43, 19], [62, 35], [38, 35], [66, 55], [34, 55],
    [68, 75], [32, 75], [57, 80], [43, 80], [58, 110], [42, 110], [58, 140], [42, 140],
], dtype=np.float64)  # fmt: skip


def skeleton(n: int = 1, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """``n`` copies of :data:`SKELETON` as (n, 17, 3) body keypoints, all visible."""
    body = np.zeros((n, 17, 3))
    body[..., :2] = SKELETON * scale + np.asarray(shift)
    body[..., 2] = 2
    return body


def make_dataset(root: Path, n_images: int = 9, per_image: int = 2, seed: int = 0) -> Path:
    """Noise images with skeleton people and a COCO person JSON; returns the JSON path."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        w, h = 240, 180
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        images.append({"id": 100 + i, "file_name": name, "width": w, "height": h})
        for j in range(per_image):
            body = skeleton(1, 1.0, (10 + 100 * j + rng.uniform(0, 20), rng.uniform(0, 20)))[0]
            if rng.random() < 0.3:
                body[9, 2] = 0  # an unlabelled wrist: no hand proposal
            x0, y0 = body[:, :2].min(0) - 5
            x1, y1 = body[:, :2].max(0) + 5
            anns.append({
                "id": 1000 + len(anns), "image_id": 100 + i, "category_id": 1, "iscrowd": 0,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                "keypoints": body.ravel().tolist(), "num_keypoints": int((body[:, 2] > 0).sum()),
            })  # fmt: skip
    path = root / "person_keypoints.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": []}))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")
