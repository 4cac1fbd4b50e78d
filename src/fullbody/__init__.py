"""fullbody: multi-person whole-body pose estimation (133 COCO-WholeBody keypoints) by distillation."""

import os

# Batches of crops and heatmaps are tens of MB: fresh ones from the OS cost a page fault per
# 4 KiB, more than filling them. PyTorch then backs large CPU tensors with transparent huge
# pages (read once, at torch's first large allocation; set THP_MEM_ALLOC_ENABLE=0 to opt out).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
