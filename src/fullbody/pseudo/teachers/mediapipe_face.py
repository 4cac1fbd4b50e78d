"""MediaPipe's face mesh (``face_landmark.tflite``) mapped to the 68 iBUG points: a face teacher.

The model takes a 192 x 192 RGB crop in [0, 1] with the eyes level and returns 468 mesh points
in crop pixels and a face-flag logit (its sigmoid is every point's confidence). The first crop
comes from the face region (rotated by the eye line, ``crop_scale`` x the region's side); each
``refine`` pass re-crops the way MediaPipe tracks a face (rotation from the outer eye corners,
box of all 468 points in that frame, x1.5).

468 -> 68: iBUG contours are not mesh vertices one for one (public vertex maps disagree, worst
on the jaw, where the mesh outline sits higher than iBUG's). Each iBUG contour is taken as
points spread evenly by arc length along a mesh polyline (:data:`IBUG_FROM_MESH`); the jaw runs
along the mesh's face oval from vertex 127 (beside the outer eye corner) round the chin (152)
to 356; starting it at 234 (the cheek at eye height) instead measured worse against human
labels (docs/results.md).
"""

from __future__ import annotations

import os

import numpy as np

from fullbody.geometry import box_to_square, rotated_extent, unit
from fullbody.keypoints import PART_SLICES
from fullbody.pseudo.teachers.base import (
    People,
    Prediction,
    TFLiteModel,
    check_parts,
    crop_points_to_image,
    model_file,
    sigmoid,
)

MODEL_FILE = "face_landmark.tflite"
#: Outer eye corners (person's right, left): MediaPipe's rotation reference.
EYE_CORNERS = (33, 263)
ROI_SCALE = 1.5

#: (mesh vertex polyline, how many iBUG points lie on it, whether to skip its two end points),
#: in iBUG order: jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nose base
#: 31-35, right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67.
IBUG_FROM_MESH: tuple[tuple[tuple[int, ...], int, bool], ...] = (
    ((127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
      377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356), 17, False),
    ((70, 63, 105, 66, 107), 5, False),
    ((336, 296, 334, 293, 300), 5, False),
    ((168, 6, 197, 195, 5, 4), 4, False),
    ((98, 97, 2, 326, 327), 5, False),
    ((33,), 1, False), ((160,), 1, False), ((158,), 1, False),
    ((133,), 1, False), ((153,), 1, False), ((144,), 1, False),
    ((362,), 1, False), ((385,), 1, False), ((387,), 1, False),
    ((263,), 1, False), ((373,), 1, False), ((380,), 1, False),
    ((61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291), 7, False),
    ((291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61), 5, True),
    ((78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308), 5, False),
    ((308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78), 3, True),
)  # fmt: skip


def resample(polyline: np.ndarray, n: int) -> np.ndarray:
    """``n`` points spread evenly by arc length along (m, 2) ``polyline``, ends included."""
    if len(polyline) == 1:
        return np.repeat(polyline, n, axis=0)
    seg = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, cum[-1], n)
    return np.stack([np.interp(t, cum, polyline[:, d]) for d in range(2)], axis=1)


def mesh_to_ibug(mesh: np.ndarray, contours=IBUG_FROM_MESH) -> np.ndarray:
    """The 68 iBUG points (68, 2) of one face's (468, 2) mesh points."""
    out = []
    for verts, n, skip_ends in contours:
        pts = resample(mesh[list(verts)], n + 2 if skip_ends else n)
        out.append(pts[1:-1] if skip_ends else pts)
    ibug = np.concatenate(out)
    if len(ibug) != 68:
        raise ValueError(f"the contour map gives {len(ibug)} points, not 68")
    return ibug


class MediaPipeFace:
    """Face teacher: MediaPipe's 468-point mesh mapped to the 68 iBUG points."""

    parts = ("face",)

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        crop_scale: float = 1.4,
        refine: int = 1,
        num_threads: int = 1,
    ):
        check_parts(self.parts, "MediaPipeFace")
        self.model = TFLiteModel(model_file(MODEL_FILE, model_dir), num_threads)
        self.crop_scale, self.refine = crop_scale, refine

    def mesh(self, image: np.ndarray, centre, side, up) -> tuple[np.ndarray, np.ndarray]:
        """Mesh points (n, 468, 2) in image px and face probabilities (n,) for n crops."""
        (points, flag, *_), inverse = self.model.run_crops(image, centre, side, up)
        pts = crop_points_to_image(inverse, points.reshape(-1, 468, 3)[..., :2])
        return pts, sigmoid(flag.reshape(len(pts), -1)[:, 0])

    def predict(self, image: np.ndarray, people: People) -> Prediction:
        out = Prediction.empty(len(people))
        boxes, up, ok = people.regions.part("face")
        rows = np.flatnonzero(ok)
        if not len(rows):
            return out
        centre, side = box_to_square(boxes[rows], self.crop_scale)
        u = up[rows]
        for step in range(1 + self.refine):
            mesh, flag = self.mesh(image, centre, side, u)
            if step < self.refine:
                across = mesh[:, EYE_CORNERS[1]] - mesh[:, EYE_CORNERS[0]]
                u = unit(np.stack([across[:, 1], -across[:, 0]], axis=1))
                centre, extent = rotated_extent(mesh, np.ones(mesh.shape[:2], bool), u)
                side = np.maximum(ROI_SCALE * extent, 1.0)
        sl = PART_SLICES["face"]
        out.xy[rows, sl] = np.stack([mesh_to_ibug(m) for m in mesh])
        out.conf[rows, sl] = flag[:, None]
        return out
