"""Score a hand teacher on held-out hand crops of a labelled set (docs/pseudo_labels.md).

``python hand_crops.py ann_file=coco_wholebody_val_v1.0.json image_dir=val2017 out_dir=hands32
[size=32] [margin=2.0] [area=person] [teacher/hand=mediapipe_plain] [workers=2]``
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="hand_crops")
def main(cfg: DictConfig) -> None:
    """Cut, label and score hand crops (see the module docs)."""
    from fullbody.jobs import hand_crops
    from fullbody.utils.cli import user_errors

    with user_errors(cfg):
        hand_crops.run(cfg)


if __name__ == "__main__":
    main()
