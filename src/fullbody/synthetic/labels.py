"""Label sets: the COCO-WholeBody labels of a run (:func:`generate_labels`, no drawing) and
teacher-like pseudo-labels made from them (:func:`perturb_labels`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from fullbody.annotations import BOX_PARTS, PARTS, WholeBodySet, points_box
from fullbody.keypoints import PART_SLICES
from fullbody.synthetic.config import GENERATOR_VERSION, SceneConfig, check_args
from fullbody.synthetic.figure import _FOOT, _u
from fullbody.synthetic.scenes import BATCH, Scene, sample_scenes


def image_id(index: int) -> int:
    """COCO image id of image ``index`` (ids start at 1)."""
    return index + 1


def _image_record(index: int, cfg: SceneConfig) -> dict[str, Any]:
    i = image_id(index)
    return {"id": i, "file_name": f"{i:012d}.jpg", "width": cfg.image_size[0],
            "height": cfg.image_size[1]}  # fmt: skip


def _assemble(scenes: list[Scene], cfg: SceneConfig, seed: int) -> WholeBodySet:
    counts = [len(s.keypoints) for s in scenes]
    gt = WholeBodySet.from_arrays(
        images=[_image_record(i, cfg) for i in range(len(scenes))],
        image_ids=np.repeat([image_id(i) for i in range(len(scenes))], counts),
        keypoints=np.concatenate([s.keypoints for s in scenes]),
        bboxes=np.concatenate([s.bboxes for s in scenes]),
        areas=np.concatenate([s.areas for s in scenes]),
        valid=np.concatenate([s.valid for s in scenes]),
        part_boxes=np.concatenate([s.part_boxes for s in scenes]),
    )
    gt.header["info"] = {
        "description": "fullbody synthetic whole-body scenes (exact labels)",
        "generator": f"fullbody.synthetic v{GENERATOR_VERSION}",
        "seed": seed,
    }
    return gt


def generate_labels(
    num_images: int, seed: int = 0, *, config: SceneConfig | None = None
) -> WholeBodySet:
    """The labels :func:`generate` writes for these parameters, without drawing any image."""
    cfg = config or SceneConfig()
    check_args(num_images, seed)
    scenes: list[Scene] = []
    for b in range(math.ceil(num_images / BATCH)):
        scenes += sample_scenes(b, seed, cfg, min(BATCH, num_images - b * BATCH))
    return _assemble(scenes, cfg, seed)


# ------------------------------------------------------------------------------ pseudo-labels
@dataclass
class PseudoConfig:
    """How teacher-like pseudo-labels deviate from the exact ones (sizes relative to the part:
    the longer side of a face or hand box, 0.1 x sqrt(area) for a foot)."""

    #: Typical point error (standard deviation per axis) as a share of the part's size.
    noise: float = 0.03
    #: Error multiplier for points a human marked occluded (teachers guess those).
    occluded_factor: float = 2.0
    #: Spread of the per-instance difficulty (log-normal sigma): some parts are much worse.
    instance_spread: float = 0.5
    #: Log-normal sigma of the teacher's misjudgement of its own error (0 = confidences rank
    #: errors perfectly).
    conf_noise: float = 0.5
    #: Chance a labelled point is missing from the teacher's output (v = 0, conf 0).
    p_drop: float = 0.04
    #: Chance a foot's small toe is missing (several teachers have no small toe).
    p_small_toe_missing: float = 0.6
    #: Chance a whole foot, face or hand is missing.
    p_missing_part: float = 0.03
    #: Chance a point is an outlier: 0.5-2 part sizes off, with a middling confidence.
    p_outlier: float = 0.02
    #: Chance a hand is predicted 0.6-1.5 hand sizes away from where it is, confidently.
    p_hand_displaced: float = 0.03
    #: Chance a person's left and right hand predictions are exchanged.
    p_hands_swapped: float = 0.02
    #: Point error of single parts (``foot``, ``face``, ``lefthand``, ``righthand``) in place
    #: of ``noise``, e.g. to match measured teachers (:mod:`fullbody.pseudo.noise_fit`).
    part_noise: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(f"PseudoConfig.{p}" for p in problems))
        self.part_noise = {str(k): float(v) for k, v in self.part_noise.items()}

    @classmethod
    def from_options(cls, options: Mapping[str, Any], name: str) -> PseudoConfig:
        """The config of a mapping of field values (from YAML); every unknown field or bad
        value is a ValueError naming it as ``<name>.<field>``."""
        known = {f.name for f in fields(cls)}
        unknown = [f"{name}.{k}: unknown field; expected one of {sorted(known)}"
                   for k in options if k not in known]  # fmt: skip
        if unknown:
            raise ValueError("; ".join(unknown))
        try:
            return cls(**{k: _plain(v) for k, v in options.items()})
        except (TypeError, ValueError) as e:
            raise ValueError(str(e).replace("PseudoConfig.", f"{name}.")) from None

    def noise_of(self, part: str) -> float:
        """The point error of ``part``: its ``part_noise`` or the global ``noise``."""
        return self.part_noise.get(part, self.noise)

    def to_json(self) -> dict[str, Any]:
        """The fields as plain JSON values (key order fixed: digests depend on it)."""
        d = asdict(self)
        d["part_noise"] = dict(sorted(self.part_noise.items()))
        return d


_PSEUDO_PARTS = ("foot", "face", "lefthand", "righthand")
_PROBABILITIES = ("p_drop", "p_small_toe_missing", "p_missing_part", "p_outlier",
                  "p_hand_displaced", "p_hands_swapped")  # fmt: skip


def _plain(value: Any) -> Any:
    """YAML/OmegaConf containers as plain dicts (``part_noise``)."""
    return dict(value) if isinstance(value, Mapping) else value


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _problems(cfg: PseudoConfig) -> list[str]:
    out = []
    for name in ("noise", *_PROBABILITIES, "occluded_factor", "instance_spread", "conf_noise"):
        v = getattr(cfg, name)
        if not _number(v):
            out.append(f"{name}: must be a number, got {v!r}")
        elif name in _PROBABILITIES and not 0 <= v <= 1:
            out.append(f"{name}: must lie in [0, 1], got {v!r}")
        elif name == "noise" and v <= 0:
            out.append(f"{name}: must be > 0, got {v!r}")
        elif v < 0:
            out.append(f"{name}: must be >= 0, got {v!r}")
    if not isinstance(cfg.part_noise, Mapping):
        return [*out, f"part_noise: must be a mapping of part to noise, got {cfg.part_noise!r}"]
    for part, v in cfg.part_noise.items():
        if part not in _PSEUDO_PARTS:
            out.append(f"part_noise.{part}: unknown part; expected one of {list(_PSEUDO_PARTS)}")
        elif not (_number(v) and v > 0):
            out.append(f"part_noise.{part}: must be > 0, got {v!r}")
    return out


def perturb_labels(
    gt: WholeBodySet, seed: int, *, config: PseudoConfig | None = None
) -> WholeBodySet:
    """Teacher-like pseudo-labels from exact ones, for exercising distillation.

    Body points stay the human labels (confidence 1). Foot, face and hand points get noise
    proportional to their part's size, confidences in [0, 1] that fall with the error (but
    imperfectly), some points and parts missing, outliers, displaced and swapped hands, and
    often no small toe. Points stay inside their image. Deterministic for a seed.
    """
    cfg = config or PseudoConfig()
    rng = np.random.default_rng([seed, 1, 2, 3])
    n = len(gt)
    kp = gt.keypoints.copy()
    lab = kp[..., 2] > 0
    occ = kp[..., 2] == 1
    conf = lab.astype(np.float64)
    scale = 0.1 * np.sqrt(np.maximum(gt.areas, 1.0))
    out = kp.copy()
    for p in _PSEUDO_PARTS:
        sl = PART_SLICES[p]
        k = sl.stop - sl.start
        size = scale.copy()
        if p in BOX_PARTS:
            box = gt.part_boxes[:, BOX_PARTS.index(p)]
            size = np.where(box[:, 2:].max(1) > 0, box[:, 2:].max(1), scale)
        inst = np.exp(rng.normal(0, cfg.instance_spread, n))[:, None]
        noise = cfg.noise_of(p)
        sigma = noise * size[:, None] * inst * np.where(occ[:, sl], cfg.occluded_factor, 1)
        err = rng.normal(0, 1, (n, k, 2)) * sigma[..., None]
        # Confidence from the error the teacher believes it made: imperfectly correlated.
        z = np.hypot(err[..., 0], err[..., 1]) / (noise * size[:, None])
        z_seen = z * np.exp(rng.normal(0, cfg.conf_noise, (n, k)))
        c = 1 / (1 + np.exp(1.3 * (z_seen - 2.0)))
        outlier = rng.random((n, k)) < cfg.p_outlier
        dist = rng.uniform(0.5, 2.0, (n, k)) * size[:, None]
        ang = rng.uniform(0, 2 * np.pi, (n, k))
        err[outlier] = (dist[..., None] * _u(ang))[outlier]
        c[outlier] = rng.uniform(0.05, 0.7, (n, k))[outlier]
        if p.endswith("hand"):
            moved = rng.random(n) < cfg.p_hand_displaced
            shift = rng.uniform(0.6, 1.5, n)[:, None] * size[:, None] * _u(rng.uniform(0, 7, n))
            err[moved] += shift[moved, None]
        out[:, sl, :2] = kp[:, sl, :2] + err
        conf[:, sl] = np.where(lab[:, sl], c, 0)
        gone = rng.random(n) < cfg.p_missing_part
        conf[gone, sl] = 0
    drop = rng.random(conf.shape) < cfg.p_drop
    toes = _FOOT["small_toe"]
    drop[:, toes] |= rng.random((n, 2)) < cfg.p_small_toe_missing
    body = PART_SLICES["body"]
    drop[:, body] = False
    conf[drop] = 0
    conf[:, body] = lab[:, body]
    out[:, body] = kp[:, body]

    swap = rng.random(n) < cfg.p_hands_swapped
    lh, rh = PART_SLICES["lefthand"], PART_SLICES["righthand"]
    for arr in (out, conf):
        left = arr[swap, lh].copy()
        arr[swap, lh] = arr[swap, rh]
        arr[swap, rh] = left

    keep = conf > 0
    conf = np.where(keep, np.clip(np.round(conf, 3), 0.001, 1.0), 0.0)
    sizes = np.array([[gt.images[int(i)]["width"], gt.images[int(i)]["height"]]
                      for i in gt.image_ids], float).reshape(n, 2)  # fmt: skip
    xy = np.clip(out[..., :2], 0, sizes[:, None] - 1)
    out = np.concatenate([np.where(keep[..., None], np.round(xy, 2), 0.0),
                          np.where(keep, 2.0, 0.0)[..., None]], -1)  # fmt: skip
    out[:, body] = kp[:, body]
    valid = np.stack([(out[:, PART_SLICES[p], 2] > 0).any(1) for p in PARTS], 1)
    part_boxes = np.round(np.stack([points_box(out[:, PART_SLICES[p]]) for p in BOX_PARTS], 1), 2)
    res = WholeBodySet.from_arrays(
        images=gt.images.values(),
        image_ids=gt.image_ids,
        keypoints=out,
        bboxes=gt.bboxes,
        areas=gt.areas,
        ann_ids=gt.ann_ids,
        valid=valid,
        part_boxes=part_boxes,
        conf=conf,
    )
    res.header = {**gt.header}
    info = dict(gt.header.get("info", {}))
    info["description"] = "fullbody synthetic pseudo-labels (perturbed exact labels)"
    info["pseudo_seed"] = seed
    res.header["info"] = info
    return res
