"""Evaluation: the official COCO-WholeBody metric per part, breakdowns, pose NMS (the results
they read, :class:`fullbody.results.Predictions`, live on the ground floor).

The Lightning callback lives in :mod:`fullbody.evaluation.callback` (imported on its own, so
that the metric needs neither torch nor Lightning).
"""

from fullbody.evaluation.wholebody import STATS, evaluate, format_table

__all__ = ["STATS", "evaluate", "format_table"]
