"""Scenes: figures placed in the image, occluders, the depth buffer that decides which points
are occluded, and the labels of each image (:func:`sample_scenes`; nothing is drawn here)."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from fullbody.annotations import BOX_PARTS, PARTS, points_box
from fullbody.keypoints import NUM_KEYPOINTS, PART_SLICES
from fullbody.synthetic.config import SceneConfig
from fullbody.synthetic.figure import (
    _CAP_LAYER,
    _EYE,
    _FACE0,
    _K,
    _NUM_NORMAL,
    _NUM_UNIFORM,
    _NUM_VERTS,
    _POLY_LAYER,
    _RANK_STEP,
    KEYPOINT_LAYER,
    People,
    _build_people,
    _ellipse,
    _hsv_to_bgr,
    _pad,
)


class Scene(NamedTuple):
    """One image's figures, occluders and labels (labels rounded as they are written)."""

    width: int
    height: int
    people: People
    occluders: np.ndarray  # (k, 26, 2) polygons
    occluder_rank: np.ndarray  # (k,)
    occluder_colors: np.ndarray  # (k, 3) uint8
    keypoints: np.ndarray  # (n, 133, 3) x, y, v
    bboxes: np.ndarray  # (n, 4) xywh
    areas: np.ndarray  # (n,)
    valid: np.ndarray  # (n, 5) bool, PARTS order
    part_boxes: np.ndarray  # (n, 3, 4) xywh, BOX_PARTS order


def _place(rng: np.random.Generator, cfg: SceneConfig, people: People) -> People:
    """Translate each figure into the image: uniformly, next to an earlier one (overlap) or
    partly outside (truncation)."""
    W, H = cfg.image_size
    ext = people.extent()
    size = ext[:, 2:] - ext[:, :2]
    n = len(size)
    lo = np.zeros((n, 2))  # top-left corner of each placed extent
    dims = np.array([W, H], float)
    for i in range(n):
        free = dims - size[i]
        # Allowed corner range: inside, or at most max_truncation of the box outside.
        out = cfg.max_truncation * size[i]
        lo_lim, hi_lim = np.minimum(0, free) - out, np.maximum(0, free) + out
        inside_lo, inside_hi = np.minimum(0, free), np.maximum(0, free)
        if i > 0 and rng.random() < cfg.p_overlap:
            j = int(rng.integers(i))
            cj = lo[j] + size[j] / 2
            side = rng.choice([-1.0, 1.0])
            off = np.array([side * rng.uniform(0.15, 0.6) * (size[i, 0] + size[j, 0]) / 2,
                            rng.uniform(-0.25, 0.25) * size[j, 1]])  # fmt: skip
            corner = cj + off - size[i] / 2
            corner = np.clip(corner, inside_lo - 0.3 * out, inside_hi + 0.3 * out)
        elif rng.random() < cfg.p_truncate:
            corner = rng.uniform(inside_lo, inside_hi)
            axis = int(rng.random() < 0.4)  # bottom/top edges a little less often
            frac = rng.uniform(0.1, max(cfg.max_truncation, 0.1)) * size[i, axis]
            corner[axis] = inside_lo[axis] - frac if rng.random() < 0.5 else inside_hi[axis] + frac
        else:
            corner = rng.uniform(inside_lo, inside_hi)
        lo[i] = np.clip(corner, lo_lim, hi_lim)
    shift = lo - ext[:, :2]
    caps = people.caps.copy()
    caps[..., :2] += shift[:, None]
    caps[..., 2:4] += shift[:, None]
    return people._replace(
        kp=people.kp + shift[:, None], caps=caps, polys=people.polys + shift[:, None, None]
    )


_SHIFT = 4
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


def _fp(a: np.ndarray) -> np.ndarray:
    """Fixed-point (1/16 px) integer coordinates for cv2's ``shift`` argument."""
    return np.round(np.asarray(a) * _ONE).astype(np.int32)


class _Fixed(NamedTuple):
    """A scene's figures in cv2's fixed-point integers, converted once per scene."""

    kp: list  # (n, 133, 2)
    ends: list  # (n, 39, 4) capsule end points
    widths: list  # (n, 39) stroke widths, px
    polys: np.ndarray  # (n, 9, 26, 2) int32


def _fixed(p: People) -> _Fixed:
    return _Fixed(_fp(p.kp).tolist(), _fp(p.caps[..., :4]).tolist(),
                  (2 * p.caps[..., 4]).round().astype(int).tolist(), _fp(p.polys))  # fmt: skip


_LAYER_CAPS = [np.flatnonzero(lay == _CAP_LAYER).tolist() for lay in range(5)]
_LAYER_POLYS = [np.flatnonzero(lay == _POLY_LAYER).tolist() for lay in range(5)]


def _raster_layer(buf: np.ndarray, fx: _Fixed, p: People, i: int, layer: int, value: int) -> None:
    """Fill the shapes of one layer of figure ``i`` with ``value``, without anti-aliasing: the
    geometry :func:`render` draws, for the depth and silhouette buffers."""
    ends, widths = fx.ends[i], fx.widths[i]
    for k in _LAYER_CAPS[layer]:
        e = ends[k]
        cv2.line(buf, (e[0], e[1]), (e[2], e[3]), value, widths[k], cv2.LINE_8, _SHIFT)
    for k in _LAYER_POLYS[layer]:
        if p.drawn[i, k]:
            cv2.fillPoly(buf, [fx.polys[i, k]], value, cv2.LINE_8, _SHIFT)


def _depth_buffer(p: People, fx: _Fixed, occluders: np.ndarray, occluder_rank: np.ndarray,
                  W: int, H: int) -> np.ndarray:  # fmt: skip
    """(H, W) draw rank + 1 of the last shape drawn on each pixel (0 = background)."""
    buf = np.zeros((H, W), np.int16)
    jobs = [(int(o) * _RANK_STEP + lay, i, lay) for i, o in enumerate(p.order)
            for lay in range(5)]  # fmt: skip
    jobs += [(int(r), -1 - j, 0) for j, r in enumerate(occluder_rank)]
    for rank, i, lay in sorted(jobs):
        if i >= 0:
            _raster_layer(buf, fx, p, i, lay, rank + 1)
        else:
            cv2.fillPoly(buf, [_fp(occluders[-1 - i])], rank + 1, cv2.LINE_8, _SHIFT)
    return buf


def _silhouette_area(p: People, fx: _Fixed, W: int, H: int) -> np.ndarray:
    """Pixel area of each figure's silhouette inside the image (what a COCO segmentation
    measures, except that occlusion by others is not subtracted)."""
    ext = np.round(p.extent()).astype(int)
    lo = np.maximum(ext[:, :2], 0)
    hi = np.minimum(ext[:, 2:] + 1, [W, H])
    buf = np.zeros((H, W), np.uint8)
    areas = np.zeros(len(ext))
    for i in range(len(ext)):
        if (hi[i] <= lo[i]).any():
            continue
        for layer in range(5):
            _raster_layer(buf, fx, p, i, layer, 1)
        roi = buf[lo[i, 1] : hi[i, 1], lo[i, 0] : hi[i, 0]]
        areas[i] = cv2.countNonZero(roi)
        roi[:] = 0
    return areas


def _occluder_shapes(
    rng: np.random.Generator, cfg: SceneConfig, people: People
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(people.kp)
    k = int(rng.integers(1, cfg.max_occluders + 1)) if rng.random() < cfg.p_occluders else 0
    if cfg.max_occluders == 0:
        k = 0
    polys = np.zeros((k, _NUM_VERTS, 2))
    rank = np.zeros(k, np.int64)
    for j in range(k):
        target = int(rng.integers(n))
        hgt = people.height[target]
        centre = people.kp[target, rng.integers(NUM_KEYPOINTS)] + rng.normal(0, 0.05 * hgt, 2)
        w, h = rng.uniform(0.12, 0.45, 2) * hgt
        ang = rng.uniform(0, np.pi)
        kind = rng.integers(3)
        if kind == 0:  # rotated rectangle
            shape = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [w / 2, h / 2]
        elif kind == 1:  # ellipse
            shape = _ellipse(0.0, 0.0, w / 2, h / 2, 20)
        else:  # random convex-ish polygon
            t = np.sort(rng.uniform(0, 2 * np.pi, 6))
            rad = rng.uniform(0.6, 1.0, 6)
            shape = np.stack([np.cos(t) * rad * w / 2, np.sin(t) * rad * h / 2], 1)
        c, s = np.cos(ang), np.sin(ang)
        polys[j] = _pad(shape @ np.array([[c, s], [-s, c]]) + centre)
        # Drawn in front of the target and behind a random number of nearer people.
        depth = int(rng.integers(people.order[target] + 1, n + 1))
        rank[j] = depth * _RANK_STEP - 1
    colors = _hsv_to_bgr(rng.uniform(0, 1, k), rng.uniform(0, 0.9, k), rng.uniform(0.2, 1, k))
    return polys, rank, colors.reshape(k, 3)


#: Images whose figures are built together. Batches have fixed boundaries (0-15, 16-31, ...)
#: so that every way of producing an image computes it with identical array operations.
BATCH = 16


def sample_scenes(batch: int, seed: int, cfg: SceneConfig, count: int = BATCH) -> list[Scene]:
    """Figures, occluders and labels (no drawing) of the first ``count`` images of batch
    ``batch``; image ``i`` is seeded from ``(seed, i)`` alone. The figures of the whole batch
    are always built, so an image's numbers never depend on how many were asked for."""
    first = batch * BATCH
    rngs = [np.random.default_rng([seed, first + k]) for k in range(BATCH)]
    sizes = [int(r.integers(cfg.people[0], cfg.people[1] + 1)) for r in rngs]
    uniform = np.concatenate([r.random((n, _NUM_UNIFORM)) for r, n in zip(rngs, sizes)])
    normal = np.concatenate([r.standard_normal((n, _NUM_NORMAL)) for r, n in zip(rngs, sizes)])
    people = _build_people(uniform, normal, cfg)
    ends = np.cumsum([0, *sizes])
    return [_finish_scene(r, cfg, People(*(a[lo:hi] for a in people)))
            for r, lo, hi in zip(rngs[:count], ends[:-1], ends[1:])]  # fmt: skip


def sample_scene(index: int, seed: int, cfg: SceneConfig) -> Scene:
    """The figures, occluders and labels of image ``index`` (no drawing)."""
    batch, k = divmod(index, BATCH)
    return sample_scenes(batch, seed, cfg, k + 1)[k]


def _finish_scene(rng: np.random.Generator, cfg: SceneConfig, people: People) -> Scene:
    """Place one image's figures and occluders, and compute its labels."""
    W, H = cfg.image_size
    n = len(people.kp)
    people = _place(rng, cfg, people)
    # Far to near: mostly smaller (farther) people first.
    depth_key = people.height * np.exp(rng.normal(0, 0.25, n))
    order = np.empty(n, np.int64)
    order[np.argsort(depth_key, kind="stable")] = np.arange(n)
    people = people._replace(order=order)
    occ_polys, occ_rank, occ_colors = _occluder_shapes(rng, cfg, people)

    # Occluded: the pixel under the point was last drawn by a shape of a later rank.
    kp = people.kp
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= W - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= H - 1)
    fx = _fixed(people)
    depth = _depth_buffer(people, fx, occ_polys, occ_rank, W, H)
    px = np.where(inside[..., None], np.round(kp), 0).astype(np.int64)
    rank = order[:, None] * _RANK_STEP + KEYPOINT_LAYER[None]
    occluded = depth[px[..., 1], px[..., 0]] > rank + 1
    vis = np.where(inside, np.where(occluded, 1.0, 2.0), 0.0)

    # Unlabelled parts: faces seen from behind, too small faces and hands, random ones.
    vis[np.ix_(people.back, np.r_[_K["nose"], _EYE, _FACE0 : _FACE0 + 68])] = 0
    labelled = np.ones((n, len(PARTS)), bool)
    labelled[:, 1:] = rng.random((n, len(PARTS) - 1)) >= cfg.p_unlabelled_part
    for p in ("face", "lefthand", "righthand"):
        sl = PART_SLICES[p]
        span = (kp[:, sl].max(1) - kp[:, sl].min(1)).max(1)
        labelled[:, PARTS.index(p)] &= span >= cfg.min_part_size
    for pi, p in enumerate(PARTS):
        vis[~labelled[:, pi], PART_SLICES[p]] = 0
    xy = np.where(vis[..., None] > 0, np.round(kp, 2), 0.0)
    keypoints = np.concatenate([xy, vis[..., None]], -1)
    valid = np.stack([(vis[:, PART_SLICES[p]] > 0).any(1) for p in PARTS], 1)

    ext = people.extent()
    box0 = np.clip(ext[:, :2], 0, [W - 1, H - 1])
    box1 = np.clip(ext[:, 2:], 0, [W - 1, H - 1])
    bboxes = np.round(np.concatenate([box0, box1 - box0], 1), 2)
    areas = _silhouette_area(people, fx, W, H)
    part_boxes = np.round(
        np.stack([points_box(keypoints[:, PART_SLICES[p]]) for p in BOX_PARTS], 1), 2
    )
    return Scene(W, H, people, occ_polys, occ_rank, occ_colors, keypoints, bboxes, areas, valid,
                 part_boxes)  # fmt: skip
