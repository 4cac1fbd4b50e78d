"""Evaluation: the official COCO-WholeBody metric per part, results I/O, breakdowns, pose NMS.

The Lightning callback lives in :mod:`fullbody.evaluation.callback` (imported on its own, so
that the metric needs neither torch nor Lightning).
"""

from fullbody.evaluation.results import Predictions
from fullbody.evaluation.wholebody import STATS, evaluate, format_table

__all__ = ["STATS", "Predictions", "evaluate", "format_table"]
