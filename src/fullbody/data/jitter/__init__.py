"""Training-box jitter: AlphaPose's DPG (the default), PGPG learned from a detector, uniform.

A top-down model is tested on detector boxes but trained on ground-truth boxes. RMPE's
pose-guided proposals generator (PGPG) closes that gap: it measures how a detector's boxes
deviate from the ground truth, separately for each "atomic pose" (a k-means cluster of
normalised poses), and draws training boxes from those deviations.

:func:`.fit.fit_jitter` matches detections to ground-truth boxes per image (greedy by score, IoU >=
0.5 as COCO evaluation matches), expresses each matched detection as four offsets relative to
its ground-truth box — centre shift ``dx / w``, ``dy / h`` and log size ratios
``log(w_det / w_gt)``, ``log(h_det / h_gt)`` — clusters the ground-truth poses (body points
relative to the box centre, divided by the box's longer side) and fits a Gaussian mixture to
the offsets of each cluster (and one to all of them). :class:`LearnedJitter` loads such a fit
from a small JSON file and, for a training person, draws offsets from the mixture of the
cluster nearest to that person's pose.

Refit on your own detector's output (the ``bbox`` results it writes on COCO train or val)::

    python -m fullbody.data.jitter fit --annotations person_keypoints.json \\
        --detections detections.json --out my_jitter.json --clusters 8

and train with ``data/jitter=learned data.train.jitter.path=my_jitter.json``. The fit needs a
few hundred matched boxes per Gaussian (a few thousand people for several atomic poses) and warns
with the counts when it has fewer. Without such a fit, :class:`DPGJitter` (AlphaPose's published
per-edge Gaussians; the data configs' default) and :class:`UniformJitter` (independent uniform
centre shift and size scaling) need no detector. The runtime jitters live in :mod:`.jitters`,
fitting and the command line in :mod:`.fit`.
"""

from fullbody.data.jitter.jitters import (
    DPGJitter,
    GaussianMixture,
    LearnedJitter,
    UniformJitter,
    apply_offsets,
    box_offsets,
    pose_descriptor,
)

__all__ = [
    "DPGJitter",
    "GaussianMixture",
    "LearnedJitter",
    "UniformJitter",
    "apply_offsets",
    "box_offsets",
    "pose_descriptor",
]
