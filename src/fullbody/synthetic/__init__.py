"""Synthetic multi-person whole-body scenes with exact 133-point labels: the built-in data set.

Every image holds 1-6 articulated figures drawn with OpenCV on a random background: a torso,
limbs as thick strokes (each person's left and right limbs, shoes and palms in different
colours), a head whose skin outline runs through the 17 jaw points and whose brows, nose, eyes
and lips are polylines through the other 51 iBUG points, hands made of a palm and five
differently coloured fingers through the 21 hand points, and feet with big toe, small toe and
heel. Every keypoint also carries a small mark (a dot or a ring) drawn at its exact position
with sub-pixel, anti-aliased drawing, so each label can be localised from local appearance.

Labels follow COCO-WholeBody conventions. Pixel centres lie at integer coordinates (OpenCV's
convention, the one its affine warps use). A point outside the image is unlabelled
(``v = 0``, ``x = y = 0``); a point hidden by a nearer person, by a random occluding object or
by a part of the same figure drawn over it is labelled occluded (``v = 1``); every other point is
visible (``v = 2``). People are drawn far to near, so occlusion is what the image shows. As in
COCO-WholeBody, some parts are left unlabelled (all zeros, ``*_valid`` false): faces and hands
smaller than :attr:`SceneConfig.min_part_size`, the faces of people seen from behind, and a
random few. ``bbox`` is the tight box of the drawn figure clipped to the image, ``area`` the
figure's silhouette area inside the image (a segmentation area, as in COCO), part boxes the
extent of the part's labelled points.

Labels are computed from geometry alone, so :func:`generate_labels` gives exactly the labels
:func:`generate` writes without drawing anything. Each image is seeded from ``(seed, index)``:
output is identical for any number of worker processes.

Modules, in the order a data set is made: :mod:`.config` (the knobs), :mod:`.figure` (figure
geometry), :mod:`.scenes` (placement, occlusion, labels), :mod:`.drawing` (the image),
:mod:`.labels` (label sets, pseudo-labels), :mod:`.store` (writing, resuming, command line).
Names with a leading underscore are shared inside this package only; the names below are its
public face.

Command line::

    python -m fullbody.synthetic --out data/synthetic --images 2000 --seed 0 --pseudo
"""

from fullbody.synthetic.config import GENERATOR_VERSION, SceneConfig
from fullbody.synthetic.drawing import render, render_background, render_image
from fullbody.synthetic.labels import PseudoConfig, generate_labels, image_id, perturb_labels
from fullbody.synthetic.scenes import BATCH, Scene, sample_scene, sample_scenes
from fullbody.synthetic.store import (
    ANNOTATIONS,
    IMAGES_DIR,
    PSEUDO_ANNOTATIONS,
    derive_pseudo_labels,
    generate,
    main,
    pseudo_labels_name,
)

__all__ = [
    "ANNOTATIONS",
    "BATCH",
    "GENERATOR_VERSION",
    "IMAGES_DIR",
    "PSEUDO_ANNOTATIONS",
    "PseudoConfig",
    "Scene",
    "SceneConfig",
    "derive_pseudo_labels",
    "generate",
    "generate_labels",
    "image_id",
    "main",
    "perturb_labels",
    "pseudo_labels_name",
    "render",
    "render_background",
    "render_image",
    "sample_scene",
    "sample_scenes",
]
