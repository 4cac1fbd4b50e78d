"""Part proposals from human body keypoints: where the face, hands and feet should be.

Pure numpy. Each region is an axis-aligned box estimating the part's extent in the
COCO-WholeBody box convention (the tight box of the part's points), plus the part's upright
direction ``up`` (a unit image vector) that teachers use to rotate their crops, and a flag
``ok`` saying whether the body had enough labelled points to place it. Teachers enlarge the
box to their own crop scale; the proposal itself aims at the human part box, which is what
:func:`proposal_quality` measures.

Scales are anthropometric ratios between 2-D distances. A projected distance can only shrink
with out-of-plane rotation, so each size is the largest of several independent estimates
(e.g. ear span, eye span, eye-to-ear, nose-to-eye for the face).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fullbody.annotations import PARTS, WholeBodySet, points_box
from fullbody.geometry import UP, unit
from fullbody.keypoints import NAME_TO_INDEX as K
from fullbody.keypoints import PART_SLICES

#: The proposed regions, in this order along axis 1 of :class:`Regions` arrays.
REGION_PARTS = ("face", "lefthand", "righthand", "leftfoot", "rightfoot")
#: 133-point indices each region's teacher labels (the foot part is split into its two sides).
REGION_POINTS = {
    "face": np.arange(PART_SLICES["face"].start, PART_SLICES["face"].stop),
    "lefthand": np.arange(PART_SLICES["lefthand"].start, PART_SLICES["lefthand"].stop),
    "righthand": np.arange(PART_SLICES["righthand"].start, PART_SLICES["righthand"].stop),
    "leftfoot": np.array([K["left_big_toe"], K["left_small_toe"], K["left_heel"]]),
    "rightfoot": np.array([K["right_big_toe"], K["right_small_toe"], K["right_heel"]]),
}

# Face: side of the 68-point box from each distance (bitragion ~145 mm, face box ~130 mm,
# interpupillary ~63 mm, eye-to-tragion ~85 mm, nose-tip-to-eye ~50 mm).
FACE_PER_EAR_SPAN = 0.9
FACE_PER_EYE_SPAN = 2.0
FACE_PER_EYE_EAR = 1.5
FACE_PER_NOSE_EYE = 2.6
#: The face box centre lies below the mean of nose, eyes and ears by this fraction of its side.
FACE_CENTRE_DROP = 0.15
# Hands: forearm ~ 0.87 upper arm ~ 0.52 torso (shoulder-hip); hand length ~ 0.72 forearm and
# the tight box of a relaxed or closed hand ~ 0.7 of its length, so ~ 0.5 forearm; its centre
# lies ~ 0.3 forearm beyond the wrist along the forearm.
FOREARM_PER_UPPER_ARM = 0.87
FOREARM_PER_TORSO = 0.52
HAND_PER_FOREARM = 0.5
HAND_CENTRE_BEYOND_WRIST = 0.3
# Feet: shin ~ 0.95 thigh ~ 0.85 torso; the foot (~ 0.6 shin long) points forward, a way the
# body does not tell, so its region spans 0.7 shin across the leg, centred on the ankle, and
# from 0.05 shin above the ankle to 0.35 shin below it along the leg.
SHIN_PER_THIGH = 0.95
SHIN_PER_TORSO = 0.85
FOOT_ACROSS = 0.7
FOOT_ABOVE_ANKLE = 0.05
FOOT_BELOW_ANKLE = 0.35


@dataclass
class Regions:
    """Proposed part regions of ``n`` people, parts in :data:`REGION_PARTS` order."""

    boxes: np.ndarray  # (n, 5, 4) xywh, image px; zeros where not ok
    up: np.ndarray  # (n, 5, 2) unit vectors: the part's upright direction in the image
    ok: np.ndarray  # (n, 5) bool

    def __len__(self) -> int:
        return len(self.boxes)

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(boxes (n,4), up (n,2), ok (n,))`` of one region part."""
        j = REGION_PARTS.index(name)
        return self.boxes[:, j], self.up[:, j], self.ok[:, j]

    def subset(self, rows: np.ndarray) -> Regions:
        """The regions of the given people."""
        return Regions(self.boxes[rows], self.up[rows], self.ok[rows])


def _pts(body: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(n,2) coordinates and (n,) labelled flags of one body keypoint."""
    p = body[:, K[name]]
    return p[:, :2], p[:, 2] > 0


def _dist(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Distance between two keypoints, NaN where either is unlabelled."""
    d = np.linalg.norm(a[0] - b[0], axis=1)
    return np.where(a[1] & b[1], d, np.nan)


def _nanmax(*columns: np.ndarray) -> np.ndarray:
    """Row-wise maximum ignoring NaN; NaN where all are NaN."""
    stack = np.stack(columns, axis=1)
    out = np.full(len(stack), np.nan)
    has = ~np.isnan(stack).all(1)
    out[has] = np.nanmax(stack[has], axis=1)
    return out


def _mid(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint of two keypoints, labelled where both are."""
    return (a[0] + b[0]) / 2, a[1] & b[1]


def torso_length(body: np.ndarray) -> np.ndarray:
    """Shoulder-to-hip distance (the longer side), NaN where neither side is labelled."""
    return _nanmax(
        _dist(_pts(body, "left_shoulder"), _pts(body, "left_hip")),
        _dist(_pts(body, "right_shoulder"), _pts(body, "right_hip")),
    )


def _square(centre: np.ndarray, side: np.ndarray, ok: np.ndarray) -> np.ndarray:
    box = np.concatenate([centre - side[:, None] / 2, np.repeat(side[:, None], 2, 1)], axis=1)
    return np.where(ok[:, None], np.nan_to_num(box), 0.0)


def face_region(body: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face boxes (n,4), up vectors (n,2) and ok flags (n,) from nose, eyes and ears.

    Needs at least two of the five points. Up is perpendicular to the eye line (else the ear
    line), turned to point away from the shoulders; with neither pair, from the shoulder
    midpoint to the face, else straight up.
    """
    names = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    pts = {n: _pts(body, n) for n in names}
    lab = np.stack([pts[n][1] for n in names], axis=1)
    xy = np.stack([pts[n][0] for n in names], axis=1)
    ok = lab.sum(1) >= 2
    mean = (xy * lab[..., None]).sum(1) / np.maximum(lab.sum(1), 1)[:, None]
    side = _nanmax(
        FACE_PER_EAR_SPAN * _dist(pts["left_ear"], pts["right_ear"]),
        FACE_PER_EYE_SPAN * _dist(pts["left_eye"], pts["right_eye"]),
        FACE_PER_EYE_EAR * _dist(pts["left_eye"], pts["left_ear"]),
        FACE_PER_EYE_EAR * _dist(pts["right_eye"], pts["right_ear"]),
        FACE_PER_NOSE_EYE * _dist(pts["nose"], pts["left_eye"]),
        FACE_PER_NOSE_EYE * _dist(pts["nose"], pts["right_eye"]),
    )
    ok &= np.isfinite(side) & (np.nan_to_num(side) > 0)
    neck, neck_ok = _mid(_pts(body, "left_shoulder"), _pts(body, "right_shoulder"))
    neck_up = np.where(neck_ok[:, None], unit(mean - neck), UP)
    up = neck_up.copy()
    for a, b in (("left_ear", "right_ear"), ("left_eye", "right_eye")):  # eyes win
        pair = pts[a][1] & pts[b][1]
        across = pts[a][0] - pts[b][0]  # person's right -> left: the face's x axis
        cand = unit(np.stack([across[:, 1], -across[:, 0]], axis=1))
        cand = np.where((np.einsum("ni,ni->n", cand, neck_up) < 0)[:, None], -cand, cand)
        up = np.where(pair[:, None], cand, up)
    centre = mean - FACE_CENTRE_DROP * np.nan_to_num(side)[:, None] * up
    return _square(centre, side, ok), up, ok


def hand_region(body: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One side's hand boxes, up vectors (elbow -> wrist) and ok flags (wrist labelled).

    The size is the forearm length, or the upper arm or torso scaled to a forearm when those
    are longer (a foreshortened or missing forearm); with no elbow the hand points along
    shoulder -> wrist, else straight up.
    """
    wrist, elbow, shoulder = (_pts(body, f"{side}_{j}") for j in ("wrist", "elbow", "shoulder"))
    forearm = _nanmax(
        _dist(wrist, elbow),
        FOREARM_PER_UPPER_ARM * _dist(elbow, shoulder),
        FOREARM_PER_TORSO * torso_length(body),
    )
    ok = wrist[1] & np.isfinite(forearm) & (np.nan_to_num(forearm) > 0)
    up = np.where(shoulder[1][:, None], unit(wrist[0] - shoulder[0]), UP)
    up = np.where(elbow[1][:, None], unit(wrist[0] - elbow[0]), up)
    f = np.nan_to_num(forearm)[:, None]
    centre = wrist[0] + HAND_CENTRE_BEYOND_WRIST * f * up
    return _square(centre, HAND_PER_FOREARM * f[:, 0], ok), up, ok


def foot_region(body: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One side's foot boxes, up vectors (ankle -> knee) and ok flags (ankle labelled)."""
    ankle, knee, hip = (_pts(body, f"{side}_{j}") for j in ("ankle", "knee", "hip"))
    shin = _nanmax(
        _dist(ankle, knee), SHIN_PER_THIGH * _dist(knee, hip), SHIN_PER_TORSO * torso_length(body)
    )
    ok = ankle[1] & np.isfinite(shin) & (np.nan_to_num(shin) > 0)
    up = np.where(hip[1][:, None], unit(hip[0] - ankle[0]), UP)
    up = np.where(knee[1][:, None], unit(knee[0] - ankle[0]), up)
    s = np.nan_to_num(shin)[:, None, None]
    across = np.stack([-up[:, 1], up[:, 0]], axis=1)[:, None]
    corners = (
        ankle[0][:, None]
        + np.array([-0.5, 0.5, -0.5, 0.5])[None, :, None] * FOOT_ACROSS * s * across
        + np.array([FOOT_ABOVE_ANKLE] * 2 + [-FOOT_BELOW_ANKLE] * 2)[None, :, None]
        * s
        * up[:, None]
    )
    lo, hi = corners.min(1), corners.max(1)
    box = np.where(ok[:, None], np.concatenate([lo, hi - lo], axis=1), 0.0)
    return box, up, ok


def propose(body: np.ndarray) -> Regions:
    """All five regions of ``n`` people from their (n, 17, 3) body keypoints."""
    body = np.asarray(body, np.float64)
    if body.ndim != 3 or body.shape[1:] != (17, 3):
        raise ValueError(f"body keypoints must have shape (n, 17, 3), got {body.shape}")
    parts = [
        face_region(body),
        hand_region(body, "left"),
        hand_region(body, "right"),
        foot_region(body, "left"),
        foot_region(body, "right"),
    ]
    return Regions(
        boxes=np.stack([p[0] for p in parts], 1),
        up=np.stack([p[1] for p in parts], 1),
        ok=np.stack([p[2] for p in parts], 1),
    )


def with_human_boxes(regions: Regions, part_boxes: np.ndarray) -> Regions:
    """Regions whose face and hand boxes are the human part boxes (n, 3, 4) where present.

    Up vectors stay the body's; feet have no human box in COCO-WholeBody and keep theirs. A
    present human box also makes its region ok (the part was labelled even if the body was not).
    """
    out = Regions(regions.boxes.copy(), regions.up.copy(), regions.ok.copy())
    for b, part in enumerate(("face", "lefthand", "righthand")):
        j = REGION_PARTS.index(part)
        has = part_boxes[:, b, 2] * part_boxes[:, b, 3] > 0
        out.boxes[has, j] = part_boxes[has, b]
        out.ok[has, j] = True
    return out


def paired_box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row i of ``a`` with row i of ``b``, (n, 4) xywh each -> (n,); 0 where either is
    empty. (:func:`fullbody.data.detections.box_iou` is the all-pairs (n, m) version.)"""
    lo = np.maximum(a[:, :2], b[:, :2])
    hi = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.clip(hi - lo, 0, None).prod(1)
    union = a[:, 2:].prod(1) + b[:, 2:].prod(1) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def human_region_boxes(ws: WholeBodySet) -> tuple[np.ndarray, np.ndarray]:
    """The human box (n, 5, 4) of every region and whether it exists (n, 5).

    Face and hands: the annotated part box of a valid part. Feet (no box in COCO-WholeBody):
    the extent of the side's labelled foot points and ankle, when at least two foot points are.
    """
    n = len(ws)
    boxes, has = np.zeros((n, len(REGION_PARTS), 4)), np.zeros((n, len(REGION_PARTS)), bool)
    for b, part in enumerate(("face", "lefthand", "righthand")):
        j = REGION_PARTS.index(part)
        boxes[:, j] = ws.part_boxes[:, b]
        has[:, j] = ws.valid[:, PARTS.index(part)] & (ws.part_boxes[:, b, 2:].prod(1) > 0)
    for side in ("left", "right"):
        j = REGION_PARTS.index(f"{side}foot")
        idx = np.concatenate([[K[f"{side}_ankle"]], REGION_POINTS[f"{side}foot"]])
        pts = ws.keypoints[:, idx]
        boxes[:, j] = points_box(pts)
        has[:, j] = (pts[:, 1:, 2] > 0).sum(1) >= 2
    return boxes, has


def proposal_quality(regions: Regions, ws: WholeBodySet) -> dict[str, dict[str, float]]:
    """Proposals against the human part boxes of ``ws``: per region part, over the people who
    have a human box, ``n``, ``mean_iou``, ``recall@0.5`` (IoU >= 0.5), ``proposed`` (fraction
    with a proposal) and ``point_recall`` (fraction of the part's labelled points inside the
    proposed box; a missing proposal counts as missing all of them). A part without any human
    box gets ``n`` 0 and None for the rest.
    """
    human, has = human_region_boxes(ws)
    out: dict[str, dict[str, float | None]] = {}
    for j, part in enumerate(REGION_PARTS):
        rows = np.flatnonzero(has[:, j])
        prop = np.where(regions.ok[rows, j, None], regions.boxes[rows, j], 0.0)
        iou = paired_box_iou(prop, human[rows, j])
        pts = ws.keypoints[rows][:, REGION_POINTS[part]]
        lab = pts[..., 2] > 0
        lo, hi = prop[:, None, :2], prop[:, None, :2] + prop[:, None, 2:]
        inside = ((pts[..., :2] >= lo) & (pts[..., :2] <= hi)).all(-1) & lab
        inside &= regions.ok[rows, j, None]
        if not len(rows):  # nothing to measure (None keeps reports strict JSON)
            out[part] = {"n": 0, "mean_iou": None, "recall@0.5": None, "proposed": None,
                         "point_recall": None}  # fmt: skip
            continue
        out[part] = {
            "n": len(rows),
            "mean_iou": float(iou.mean()),
            "recall@0.5": float((iou >= 0.5).mean()),
            "proposed": float(regions.ok[rows, j].mean()),
            "point_recall": float(inside.sum() / max(lab.sum(), 1)),
        }
    return out
