"""The small toes from the big toe, the heel and the hips: a two-number geometric foot model.

No teacher that runs here predicts the small toes (COCO-WholeBody 18 and 21), and a foot part
without them caps the foot AP. Seen in an image, the small toe sits a little behind the big toe
along the foot (towards the heel) and out to the side of the body. The foot's sideways
direction is not visible from heel and toe alone (a foot seen from the side hides it; one seen
from the front shows it fully), but it is parallel to the hip line, and the image hip vector
(this side's hip minus the other's) foreshortens exactly as the foot's width does. So::

    small_toe = big_toe + along * (heel - big_toe) + across * (this hip - other hip)

``along`` and ``across`` are fitted by least squares on human-labelled feet
(:func:`fit_small_toes`); with a hip missing the sideways term is dropped. The small toe's
confidence is the smaller of the big toe's and the heel's, times ``conf_scale`` (the model's own
agreement with human small toes, so that its points rank below the points the teacher saw).
"""

from __future__ import annotations

import numpy as np

from fullbody.keypoints import NAME_TO_INDEX as K

#: Per side: (big toe, small toe, heel, this hip, other hip) indices.
FOOT_POINTS = {
    side: tuple(K[f"{s}_{n}"] for s, n in ((side, "big_toe"), (side, "small_toe"),
                                          (side, "heel"), (side, "hip"), (other, "hip")))
    for side, other in (("left", "right"), ("right", "left"))
}  # fmt: skip


def _offsets(points: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Heel - big toe and this hip - other hip (n, 2) of (n, 133, 2) points."""
    big, _, heel, hip, other = FOOT_POINTS[side]
    return points[:, heel] - points[:, big], points[:, hip] - points[:, other]


def small_toes(
    xy: np.ndarray,
    conf: np.ndarray,
    body: np.ndarray,
    along: float,
    across: float,
    conf_scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Both small toes of ``n`` people in place of what ``xy``/``conf`` hold there.

    ``xy`` (n, 133, 2) and ``conf`` (n, 133) are a teacher's prediction (big toes and heels
    used); ``body`` (n, 17, 3) the human body points (hips used where labelled). Returns copies
    with points 18 and 21 filled in.
    """
    xy, conf = np.array(xy, np.float64), np.array(conf, np.float64)
    pts = np.zeros((len(xy), xy.shape[1], 2))
    pts[:, :17] = body[..., :2]
    pts[:, 17:] = xy[:, 17:]
    for side, (big, small, heel, hip, other) in FOOT_POINTS.items():
        back, sideways = _offsets(pts, side)
        hips = (body[:, hip, 2] > 0) & (body[:, other, 2] > 0)
        sideways = np.where(hips[:, None], sideways, 0.0)
        xy[:, small] = xy[:, big] + along * back + across * sideways
        conf[:, small] = conf_scale * np.minimum(conf[:, big], conf[:, heel])
    return xy, conf


def fit_small_toes(keypoints: np.ndarray) -> tuple[float, float, int]:
    """Least-squares ``(along, across, feet used)`` from human-labelled (n, 133, 3) people:
    every foot whose big toe, small toe, heel and both hips are labelled."""
    rows_a, rows_b = [], []
    for side, (big, small, heel, hip, other) in FOOT_POINTS.items():
        lab = (keypoints[:, [big, small, heel, hip, other], 2] > 0).all(1)
        back, sideways = _offsets(keypoints[lab, :, :2], side)
        rows_a.append(np.stack([back, sideways], axis=2).reshape(-1, 2))
        rows_b.append((keypoints[lab, small, :2] - keypoints[lab, big, :2]).reshape(-1))
    a, b = np.concatenate(rows_a), np.concatenate(rows_b)
    if len(b) < 4:
        raise ValueError(
            f"fitting the small toes needs at least 2 labelled feet, got {len(b) // 2}"
        )
    (along, across), *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(along), float(across), len(b) // 2


def holdout(keypoints: np.ndarray, areas: np.ndarray, groups: np.ndarray) -> list[dict]:
    """Leave-one-group-out check of the model (groups: e.g. image ids): per held-out group, the
    parameters fitted on the others and the mean OKS term exp(-d^2 / (2 s^2 k^2)) of its
    predicted small toes placed from the human big toes and heels (k = 2 x the small toe's
    sigma, s^2 = person area: the metric's tolerance)."""
    from fullbody.keypoints import SIGMAS

    out = []
    for g in np.unique(groups):
        train, test = groups != g, groups == g
        try:
            along, across, n = fit_small_toes(keypoints[train])
        except ValueError:
            continue
        kp = keypoints[test]
        xy, _ = small_toes(kp[..., :2], np.ones(kp.shape[:2]), kp[:, :17], along, across, 1.0)
        terms = []
        for big, small, heel, *_ in FOOT_POINTS.values():
            lab = (kp[:, [big, small, heel], 2] > 0).all(1)
            d2 = ((xy[lab, small] - kp[lab, small, :2]) ** 2).sum(1)
            k = 2 * SIGMAS[small]
            terms.extend(np.exp(-d2 / (2 * areas[test][lab] * k**2)).tolist())
        if terms:
            out.append({"group": g.item(), "along": along, "across": across, "fit_feet": n,
                        "test_feet": len(terms), "mean_oks": float(np.mean(terms))})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m fullbody.pseudo.foot_model HUMAN.json``: fit on every labelled foot, then
    leave one image out, as JSON lines."""
    import argparse
    import json

    from fullbody.annotations import WholeBodySet

    ap = argparse.ArgumentParser(description="Fit the small-toe model on human foot labels.")
    ap.add_argument("human", help="COCO-WholeBody JSON with human foot labels")
    args = ap.parse_args(argv)
    ws = WholeBodySet.load(args.human)
    along, across, n = fit_small_toes(ws.keypoints)
    print(json.dumps({"fit": "all", "along": along, "across": across, "feet": n}))
    for row in holdout(ws.keypoints, ws.areas, ws.image_ids):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
