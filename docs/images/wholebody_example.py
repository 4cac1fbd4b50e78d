"""Make ``docs/images/wholebody_example.png``, the README's picture: ``fullbody.draw`` on COCO
val2017 image 785 (Flickr 6795644157, licence CC BY 2.0, the one image of the shared sample
whose licence allows a derivative) with its human COCO-WholeBody labels: the 133 points per
person that ``Wholebody()`` returns.

    python docs/images/wholebody_example.py /path/to/coco_wholebody_sample
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
from PIL import Image

from fullbody.annotations import WholeBodySet
from fullbody.draw import draw_wholebody

IMAGE_ID = 785


def main(sample: Path, out: Path) -> None:
    labels = WholeBodySet.load(sample / "annotations" / "coco_wholebody_sample.json")
    rows = labels.image_ids == IMAGE_ID
    keypoints = labels.keypoints[rows].copy()  # (N, 133, 3), the visibility as the score
    bgr = cv2.imread(str(sample / "images" / f"{IMAGE_ID:012d}.jpg"))
    # The person, with a margin, enlarged so that hands and face are visible at README size.
    x, y, w, h = labels.bboxes[rows][0]
    x0, y0 = max(0, int(x - 0.3 * w)), max(0, int(y - 0.08 * h))
    x1, y1 = min(bgr.shape[1], int(x + 1.3 * w)), min(bgr.shape[0], int(y + 1.08 * h))
    zoom = 560 / (y1 - y0)
    crop = cv2.resize(bgr[y0:y1, x0:x1], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    keypoints[..., :2] = (keypoints[..., :2] - (x0, y0)) * zoom
    drawn = draw_wholebody(crop, keypoints, threshold=0.0, radius=3, thickness=2)
    rgb = Image.fromarray(cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB))
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_suffix(".png"))
