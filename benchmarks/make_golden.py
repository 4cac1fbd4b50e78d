"""Regenerate the golden xtcocotools values that ``tests/evaluation`` compare the metric with.

    PYTHONPATH=src python benchmarks/make_golden.py [--only sample|synthetic]

Inputs are generated HERE, in the project's environment (numpy 2), and handed to the reference
(xtcocotools in a throw-away numpy<2 venv, see ``reference_venv.py``) as JSON, which round-trips
every float exactly; so the tests, regenerating the same inputs in the same environment, feed
our metric exactly what the reference saw. Writes, under ``tests/evaluation/golden/``:

* ``sample_predictions.json`` — simulated predictions for the shared COCO-WholeBody sample
  (split layout), and ``sample_golden.json`` — the reference's 60 numbers for them, with the
  official and the halpe sigmas;
* ``synthetic_golden.json`` — for a 5,000-image synthetic set (``generate_labels``) with
  simulated predictions: the seeds, the simulation config, a fingerprint of the inputs and the
  reference's 60 numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reference_venv import reference_python, run_reference  # noqa: E402

from fullbody.annotations import WholeBodySet  # noqa: E402
from fullbody.evaluation.simulate import (  # noqa: E402
    SimulationConfig,
    config_dict,
    fingerprint,
    simulate_predictions,
    synthetic_case,
)
from fullbody.jsonio import write_json_atomic  # noqa: E402

GOLDEN = ROOT / "tests" / "evaluation" / "golden"
SAMPLE = Path(
    os.environ.get("FULLBODY_SAMPLE_DIR", ROOT.parent / "shared" / "data" / "coco_wholebody_sample")
)
SAMPLE_SEED = 7
#: The sample is tiny: more duplicates and false positives exercise more rules.
SAMPLE_CONFIG = SimulationConfig(duplicate_rate=0.4, false_positives=2.0, part_drop=0.15)
SYNTHETIC = {"num_images": 5000, "gt_seed": 2024, "pred_seed": 7, "crowd_rate": 0.02}
COMMAND = "PYTHONPATH=src python benchmarks/make_golden.py"


def _versions(python: Path) -> dict[str, str]:
    import subprocess

    code = (
        "import numpy, importlib.metadata as m; print(numpy.__version__, m.version('xtcocotools'))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.split()
    return {"numpy": out[0], "xtcocotools": out[1]}


def _write(obj: dict, path: Path) -> None:
    """Golden values as readable JSON (floats keep their exact repr)."""
    path.write_text(json.dumps(obj, indent=1) + "\n")


def make_sample(python: Path, sample_dir: Path) -> None:
    gt_file = sample_dir / "annotations" / "coco_wholebody_sample.json"
    gt = WholeBodySet.load(gt_file)
    preds = simulate_predictions(gt, seed=SAMPLE_SEED, config=SAMPLE_CONFIG)
    pred_file = GOLDEN / "sample_predictions.json"
    write_json_atomic(preds.to_json("split"), pred_file)
    golden = {
        "regenerate": COMMAND,
        "ground_truth": "coco_wholebody_sample/annotations/coco_wholebody_sample.json",
        "predictions": pred_file.name,
        "reference": _versions(python),
    }
    for sigmas in ("official", "halpe"):
        golden[sigmas] = run_reference(gt_file, pred_file, sigmas)["stats"]
    _write(golden, GOLDEN / "sample_golden.json")
    print(
        f"sample: {len(preds)} predictions, wholebody AP {golden['official']['wholebody/AP']:.4f}"
    )


def make_synthetic(python: Path) -> None:
    config = SimulationConfig()
    gt, preds = synthetic_case(**SYNTHETIC, config=config)
    with tempfile.TemporaryDirectory() as tmp:
        gt_file, pred_file = Path(tmp) / "gt.json", Path(tmp) / "results.json"
        gt.save(gt_file)
        write_json_atomic(preds.to_json("split"), pred_file)
        ref = run_reference(gt_file, pred_file)
    golden = {
        "regenerate": COMMAND,
        **SYNTHETIC,
        "simulation": config_dict(config),
        "fingerprint": fingerprint(gt, preds),
        "num_people": len(gt),
        "num_predictions": len(preds),
        "reference": _versions(python),
        "reference_seconds": round(ref["seconds"], 2),
        "stats": ref["stats"],
    }
    _write(golden, GOLDEN / "synthetic_golden.json")
    print(
        f"synthetic: {len(gt.images)} images, {len(gt)} people, {len(preds)} predictions, "
        f"wholebody AP {ref['stats']['wholebody/AP']:.4f} (xtcocotools {ref['seconds']:.1f} s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("sample", "synthetic"))
    ap.add_argument("--sample-dir", type=Path, default=SAMPLE)
    args = ap.parse_args()
    python = reference_python()
    if python is None:
        sys.exit("the xtcocotools reference venv cannot be built here")
    if args.only in (None, "sample"):
        make_sample(python, args.sample_dir)
    if args.only in (None, "synthetic"):
        make_synthetic(python)


if __name__ == "__main__":
    main()
