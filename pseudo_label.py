"""Pseudo-label COCO people with face, hand and foot teachers (docs/pseudo_labels.md).

``python pseudo_label.py ann_file=person_keypoints_train2017.json image_dir=train2017
out_file=pseudo.json [teacher/face=dlib] [part_boxes=gt] [workers=2] [report=true]``
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="pseudo_label")
def main(cfg: DictConfig) -> None:
    """Label, merge and save (see the module docs)."""
    from fullbody.jobs import pseudo_label
    from fullbody.utils.cli import user_errors

    with user_errors(cfg):
        pseudo_label.run(cfg)


if __name__ == "__main__":
    main()
