"""Evaluate keypoint results with the official COCO-WholeBody metric.

``python eval.py ann_file=GT.json results_file=RESULTS.json [metrics_file=OUT.json] [nms=oks]``
prints AP/AR per part and writes ``metrics.json`` (keys ``"<part>/<stat>"``).

``python eval.py ckpt_path=RUN/checkpoints/last.ckpt [data=coco_wholebody ...]`` first predicts
with a checkpoint of ``train.py`` on the data config's test split (its validation split when it
has none) and evaluates those predictions against that split's labels; the predictions are
saved as ``results.json`` in the run folder.

``python eval.py pose_model=NAME ann_file=GT.json image_dir=IMAGES [det_file=DETS.json]`` runs a
pose model — a published one by name (``rtmw-x-384x288`` ...), an ONNX file or a checkpoint —
on the images of ``ann_file`` through the inference predictor, with the detection file's person
boxes (else the ground truth's), and scores it: a published AP reproduced with this evaluator.

A wrong option or file ends in one line naming it and exit status 2. An empty results list (a
model that found nobody) scores 0; ground truth that labels only some parts (a COCO person
file) is said so, in the log and in ``metrics.json``'s ``notes``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Evaluate (see the module docs); a wrong option or file ends in one line, exit 2."""
    from fullbody.jobs import evaluate
    from fullbody.utils.cli import user_errors

    with user_errors(cfg):
        evaluate.run(cfg)


if __name__ == "__main__":
    main()
