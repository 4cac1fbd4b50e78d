"""Synthetic pseudo-labels as noisy as measured teachers: per part, the point error
(:attr:`fullbody.synthetic.PseudoConfig.part_noise`) whose pseudo-labels score a target AP
against the exact labels.

The score is the pseudo-label report's (:func:`fullbody.pseudo.report.quality_report`,
``metrics``): every pseudo-labelled person is one prediction ranked per part by its mean point
confidence (:func:`~fullbody.pseudo.report.as_predictions`), scored with the project's
COCO-WholeBody metric. So a target taken from the report of real teachers against human labels
gives synthetic pseudo-labels of like quality against the exact labels.

With everything else fixed (same seed, same draws), each point's error grows linearly with its
part's noise and its confidence does not change, so a part's AP falls monotonically with its
noise; parts are independent (one part's noise moves no other part's points or draws). The fit
bisects all parts at once on a log scale. A target above what the smallest noise reaches (the
small toes a teacher misses cap the foot AP) is reported as not reached.

Command line (exact labels of the default training scenes, made without drawing)::

    python -m fullbody.pseudo.noise_fit --targets foot=0.637 face=0.793 lefthand=0.178 \\
        righthand=0.178 [--set p_small_toe_missing=0] [--images 300] [--seed 0] [--labels FILE]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fullbody.annotations import WholeBodySet
from fullbody.evaluation.wholebody import evaluate
from fullbody.pseudo.report import as_predictions
from fullbody.synthetic import PseudoConfig, generate_labels, perturb_labels

#: The parts whose noise is fitted (the body keeps the human labels).
FIT_PARTS = ("foot", "face", "lefthand", "righthand")
#: Range of noise searched (share of the part size).
NOISE_RANGE = (1e-3, 4.0)


def part_aps(pseudo: WholeBodySet, exact: WholeBodySet) -> dict[str, float]:
    """AP per part of pseudo-labels against the exact labels (the report's ``metrics``)."""
    m = evaluate(exact, as_predictions(pseudo), parts=FIT_PARTS)
    return {p: float(m[f"{p}/AP"]) for p in FIT_PARTS}


@dataclass(frozen=True)
class NoiseFit:
    """Fitted noise per part, the AP it gives, and whether the target is reached within
    the tolerance (False: the target lies outside what :data:`NOISE_RANGE` can give)."""

    noise: dict[str, float]
    ap: dict[str, float]
    reached: dict[str, bool]


def fit_part_noise(
    exact: WholeBodySet,
    targets: Mapping[str, float],
    seed: int,
    *,
    base: PseudoConfig | None = None,
    tol: float = 0.002,
    max_iter: int = 40,
) -> NoiseFit:
    """Per part of ``targets``, the ``part_noise`` (on top of ``base``) whose pseudo-labels of
    ``exact`` (:func:`perturb_labels` with ``seed``) score the target AP. Deterministic."""
    unknown = sorted(set(targets) - set(FIT_PARTS))
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; expected some of {list(FIT_PARTS)}")
    bad = {p: t for p, t in targets.items() if not 0 < t < 1}
    if bad:
        raise ValueError(f"target APs must lie in (0, 1), got {bad}")
    base = base or PseudoConfig()
    parts = list(targets)

    def score(noise: np.ndarray) -> np.ndarray:
        cfg = replace(base, part_noise={**base.part_noise, **dict(zip(parts, noise.tolist()))})
        ap = part_aps(perturb_labels(exact, seed, config=cfg), exact)
        return np.array([ap[p] for p in parts])

    target = np.array([targets[p] for p in parts])
    lo, hi = np.full(len(parts), NOISE_RANGE[0]), np.full(len(parts), NOISE_RANGE[1])
    best, best_ap = lo.copy(), score(lo)
    for _ in range(max_iter):
        if (np.abs(best_ap - target) <= tol).all():
            break
        mid = np.array([float(f"{v:.4g}") for v in np.sqrt(lo * hi)])  # as the preset writes it
        ap = score(mid)
        lo, hi = np.where(ap > target, mid, lo), np.where(ap > target, hi, mid)
        closer = np.abs(ap - target) < np.abs(best_ap - target)
        best, best_ap = np.where(closer, mid, best), np.where(closer, ap, best_ap)
    return NoiseFit(
        noise={p: float(v) for p, v in zip(parts, best)},
        ap=dict(zip(parts, best_ap.tolist())),
        reached={p: bool(abs(a - t) <= tol) for p, a, t in zip(parts, best_ap, target)},
    )


def preset_yaml(fit: NoiseFit) -> str:
    """The ``part_noise`` block of a ``data.pseudo`` preset."""
    return "part_noise:\n" + "".join(f"  {p}: {v}\n" for p, v in fit.noise.items())


def _pairs(items: Sequence[str], flag: str) -> dict[str, float]:
    """``NAME=NUMBER`` arguments as a mapping."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            number = float(value) if sep else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{flag}: expected NAME=NUMBER, got {item!r}")
        out[name] = number
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Fit per-part noise to target APs and print the preset block."""
    ap = argparse.ArgumentParser(prog="python -m fullbody.pseudo.noise_fit",
                                 description=__doc__.split("\n\n")[0])  # fmt: skip
    ap.add_argument("--targets", nargs="+", required=True, metavar="PART=AP",
                    help=f"target AP per part ({', '.join(FIT_PARTS)})")  # fmt: skip
    ap.add_argument("--images", type=int, default=300, help="training scenes (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    ap.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="other PseudoConfig fields of the fit (e.g. p_small_toe_missing=0)")  # fmt: skip
    ap.add_argument("--labels", default=None,
                    help="exact labels to use instead (a generated set's annotations.json)")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        targets, options = _pairs(args.targets, "--targets"), _pairs(args.set, "--set")
        base = PseudoConfig.from_options(options, "--set")
        if args.labels:
            exact = WholeBodySet.load(args.labels)
            seed = int(exact.header.get("info", {}).get("seed", args.seed))
        else:
            exact, seed = generate_labels(args.images, args.seed), args.seed
        fit = fit_part_noise(exact, targets, seed, base=base)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    default = part_aps(perturb_labels(exact, seed), exact)
    print(f"# {len(exact)} people, seed {seed}")
    print("# default PseudoConfig AP vs exact: "
          + ", ".join(f"{p} {a:.3f}" for p, a in default.items()))  # fmt: skip
    print("# fitted AP vs exact: " + ", ".join(
        f"{p} {a:.3f} (target {targets[p]:.3f}{'' if fit.reached[p] else ', NOT reached'})"
        for p, a in fit.ap.items()))  # fmt: skip
    print("".join(f"{k}: {v}\n" for k, v in options.items()) + preset_yaml(fit), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
