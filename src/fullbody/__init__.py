"""fullbody: multi-person whole-body pose estimation (133 COCO-WholeBody keypoints) by distillation."""

__version__ = "0.1.0"
