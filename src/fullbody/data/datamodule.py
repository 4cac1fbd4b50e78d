"""The LightningDataModule: top-down training, validation and test sets from config.

:class:`WholeBodyDataModule` reads COCO-WholeBody (or pseudo-label) files and image folders
named in its ``train``, ``val`` and ``test`` sections (``conf/data/coco_wholebody.yaml``,
``conf/data/sample.yaml``); :class:`SyntheticDataModule` first generates its data set on first
use (``conf/data/synthetic.yaml``, the default). Batches follow :class:`fullbody.data.batch.Batch`
(keypoints in input-crop pixels); the module's codec renders heatmaps or SimCC labels from them on
the training device. The crop (input size, box padding) is the model's
:class:`~fullbody.codecs.spec.TopDownSpec`: the data config reads ``model.spec``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from fullbody.annotations import WholeBodySet
from fullbody.codecs.spec import TopDownSpec, spec_of
from fullbody.data.calibration import (
    CalibrationMap,
    CalibrationMapError,
    fit_against,
    read_calibration_map,
)
from fullbody.data.dataset import TopDownDataset
from fullbody.data.detections import PersonDetections
from fullbody.data.sampler import ImageGroupedSampler
from fullbody.errors import InputNotFoundError, UserError

if TYPE_CHECKING:
    from fullbody.synthetic import PseudoConfig

#: Keys of a ``train`` section passed on to :class:`TopDownDataset` (besides the paths).
TRAIN_KEYS = frozenset(
    {
        "jitter", "flip_prob", "half_body_prob", "half_body_padding", "scale_factor",
        "rotation_factor", "rotation_prob", "photometric", "conf_floor", "conf_weighting",
        "pseudo_part_weights", "min_keypoints",
    }
)  # fmt: skip
#: Keys of a ``train`` section the module reads itself.
OWN_TRAIN_KEYS = frozenset({"ann_file", "image_dir", "group_size", "conf_calibration"})
SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


class DataConfigError(UserError, ValueError):
    """A data setting is missing or wrong; the message names its config key."""


class WholeBodyDataModule(L.LightningDataModule):
    """Top-down whole-body data: one sample per person (train) or per box (val/test).

    Args:
        train: ``ann_file`` (labels or pseudo-labels), ``image_dir``, ``group_size`` (people of
            one image in a row, sharing a decode; 1 = plain shuffling) and augmentation/weight
            settings of :class:`TopDownDataset` (``jitter``, ``flip_prob``, ``half_body_prob``,
            ``scale_factor``, ``rotation_factor``, ``rotation_prob``, ``photometric``,
            ``conf_floor``, ``conf_weighting``, ``pseudo_part_weights``, ...) and
            ``conf_calibration`` (a map of :mod:`fullbody.data.calibration` applied to the
            pseudo-labels' confidences first).
        val: ``ann_file``, ``image_dir`` and optionally ``det_file`` (COCO person results) with
            ``det_score_threshold``; without ``det_file`` the labels' boxes are used.
        test: like ``val``; ``None`` means the validation set.
        spec: the model's top-down settings (a :class:`~fullbody.codecs.spec.TopDownSpec` or
            its config block): the crop's input size and box padding.
        batch_size, val_batch_size: per device; ``val_batch_size`` defaults to ``batch_size``.
        num_workers, pin_memory, persistent_workers: DataLoader settings.
        seed: seed of the training order.
        config_prefix: how the config names this module in error messages.
    """

    def __init__(
        self,
        train: Mapping[str, Any] | None = None,
        val: Mapping[str, Any] | None = None,
        test: Mapping[str, Any] | None = None,
        *,
        spec: TopDownSpec | Mapping[str, Any],
        batch_size: int = 32,
        val_batch_size: int | None = None,
        num_workers: int = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        reduced_decode: bool = True,
        seed: int = 0,
        config_prefix: str = "data",
    ) -> None:
        super().__init__()
        self.sections = {
            "train": dict(train or {}),
            "val": dict(val or {}),
            "test": None if test is None else dict(test),
        }
        self.spec = spec_of(spec, f"{config_prefix}.spec")
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers)
        self.reduced_decode = reduced_decode
        self.seed = int(seed)
        self.prefix = config_prefix
        unknown = set(self.sections["train"]) - TRAIN_KEYS - OWN_TRAIN_KEYS
        if unknown:
            raise DataConfigError(
                f"{self._key('train', sorted(unknown)[0])}: unknown setting; expected one of "
                f"{sorted(TRAIN_KEYS | OWN_TRAIN_KEYS)}"
            )
        weighting = self.sections["train"].get("conf_weighting", True)
        if not isinstance(weighting, bool):
            raise DataConfigError(
                f"{self._key('train', 'conf_weighting')} must be true or false, got {weighting!r}"
            )
        #: The training labels' confidence map, read at construction when it is there already.
        self._calibration_map: CalibrationMap | None = self._check_calibration(weighting)
        self.train_dataset: TopDownDataset | None = None
        self.val_dataset: TopDownDataset | None = None
        self.test_dataset: TopDownDataset | None = None
        self.val_annotations: WholeBodySet | None = None
        self.test_annotations: WholeBodySet | None = None

    # ------------------------------------------------------------------ config helpers
    def _calibration_made_here(self) -> bool:
        """Whether ``train.conf_calibration`` names a map this module writes in
        ``prepare_data`` (so it is not there to read at construction)."""
        return False

    def _check_calibration(self, weighting: bool) -> CalibrationMap | None:
        """Refuse a ``train.conf_calibration`` that could not act, or a map that is missing or
        malformed, at construction: before a logger or a trainer starts. Returns the map, or
        None without one or when this module writes it later."""
        sec = self.sections["train"]
        path = sec.get("conf_calibration")
        if path in (None, ""):
            return None
        key = self._key("train", "conf_calibration")
        if not weighting and float(sec.get("conf_floor", 0.0)) <= 0:
            raise CalibrationMapError(
                f"{key}: with {self._key('train', 'conf_weighting')}=false and "
                f"{self._key('train', 'conf_floor')}=0 every labelled point weighs 1 whatever its "
                f"confidence, so the map {path} would change nothing; set a floor, weigh by "
                f"confidence, or set {key}=null"
            )
        return None if self._calibration_made_here() else read_calibration_map(path, key)

    def _key(self, split: str, name: str) -> str:
        return f"{self.prefix}.{split}.{name}" if self.prefix else f"{split}.{name}"

    def _path(self, split: str, name: str, *, kind: str) -> Path:
        section = self.sections[split] or {}
        value = section.get(name)
        key = self._key(split, name)
        if value in (None, "", "???"):
            raise DataConfigError(f"{key} is not set: give the {kind} (e.g. {key}=/path/to/it)")
        path = Path(os.path.expanduser(str(value)))
        if not path.exists():
            raise InputNotFoundError(f"{key}: {path} does not exist (set {key} to the {kind})")
        return path

    def _calibrated(self, ann: WholeBodySet) -> WholeBodySet:
        """The training labels with ``train.conf_calibration``'s map applied to their
        confidences (:mod:`fullbody.data.calibration`), or as they are without one; a map that
        could not change the weights is refused rather than ignored."""
        sec = self.sections["train"]
        path = sec.get("conf_calibration")
        if path in (None, ""):
            return ann
        key = self._key("train", "conf_calibration")
        if not ann.has_conf:
            raise CalibrationMapError(
                f"{key}: {ann.path} holds labels without confidences (human labels), so the "
                f"map {path} has nothing to recalibrate; set {key}=null or train on pseudo-labels"
            )
        cmap = self._calibration_map or read_calibration_map(path, key)
        out = ann.subset(np.arange(len(ann)))
        out.conf = cmap.apply(ann.conf)
        log.info("%s: confidences recalibrated by %s (%s)", ann.path, path, ", ".join(cmap.parts))
        return out

    def _common(self) -> dict[str, Any]:
        return {"spec": self.spec, "reduced_decode": self.reduced_decode}

    def _eval_set(self, split: str) -> tuple[WholeBodySet, TopDownDataset]:
        src = split if self.sections[split] is not None else "val"
        sec = self.sections[src]
        ann = WholeBodySet.load(self._path(src, "ann_file", kind="ground-truth JSON"))
        image_dir = self._path(src, "image_dir", kind="image folder")
        boxes: str | PersonDetections = "gt"
        if sec.get("det_file"):
            det = self._path(src, "det_file", kind="person detection results JSON")
            boxes = PersonDetections.load(det, images=ann.images)
        ds = TopDownDataset(
            ann,
            image_dir,
            train=False,
            boxes=boxes,
            det_score_threshold=float(sec.get("det_score_threshold", 0.0)),
            **self._common(),
        )
        return ann, ds

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        """Load the files a stage needs (fit: train + val; validate: val; test/predict: test)."""
        if stage in (None, "fit") and self.train_dataset is None:
            sec = self.sections["train"]
            ann = self._calibrated(
                WholeBodySet.load(
                    self._path("train", "ann_file", kind="training labels or pseudo-labels JSON")
                )
            )
            kwargs = {k: v for k, v in sec.items() if k in TRAIN_KEYS}
            self.train_dataset = TopDownDataset(
                ann,
                self._path("train", "image_dir", kind="training image folder"),
                train=True,
                seed=self.seed,
                **kwargs,
                **self._common(),
            )
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            self.val_annotations, self.val_dataset = self._eval_set("val")
        if stage in (None, "test", "predict") and self.test_dataset is None:
            self.test_annotations, self.test_dataset = self._eval_set("test")

    def _loader(self, ds: TopDownDataset | None, stage: str, **kwargs: Any) -> DataLoader:
        if ds is None:
            raise RuntimeError(f"call setup({stage!r}) before asking for its dataloader")
        workers = self.num_workers
        return DataLoader(
            ds,
            num_workers=workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and workers > 0,
            **kwargs,
        )

    def _replicas(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        kw = getattr(trainer, "distributed_sampler_kwargs", None) if trainer is not None else None
        if kw:
            return int(kw["num_replicas"]), int(kw["rank"])
        return 1, 0

    def _epochs_done(self) -> int:
        fit_loop = getattr(getattr(self, "trainer", None), "fit_loop", None)
        return 0 if fit_loop is None else int(fit_loop.epoch_progress.current.processed)

    def train_dataloader(self) -> DataLoader:
        ds = self.train_dataset
        if ds is None:
            raise RuntimeError("call setup('fit') before asking for its dataloader")
        replicas, rank = self._replicas()
        sampler = ImageGroupedSampler(
            ds.image_ids,
            int(self.sections["train"].get("group_size", 4)),
            shuffle=True,
            seed=self.seed,
            num_replicas=replicas,
            rank=rank,
        )
        # Lightning sets the epoch before each new epoch's iterator, but on resume it builds the
        # first iterator before setting it: start from the epoch the checkpoint had reached.
        sampler.set_epoch(self._epochs_done())
        drop_last = len(sampler) > self.batch_size
        return self._loader(
            ds, "fit", batch_size=self.batch_size, sampler=sampler, drop_last=drop_last
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, "validate", batch_size=self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, "test", batch_size=self.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, "predict", batch_size=self.val_batch_size)


class SyntheticDataModule(WholeBodyDataModule):
    """:class:`WholeBodyDataModule` over generated scenes, made on first use.

    ``prepare_data`` (rank 0 only) generates a training set and a separate validation set
    (other seed, other folder) under ``root`` with :func:`fullbody.synthetic.generate`;
    a second run finds them and returns at once. ``train_labels``: ``exact`` trains on the
    generator's exact labels, ``pseudo`` on its simulated pseudo-labels (with confidences).
    ``pseudo``: fields of :class:`fullbody.synthetic.PseudoConfig` for those pseudo-labels
    (``None``: the generator's own); they are derived once from the exact labels into a file
    named by the config's digest (:func:`fullbody.synthetic.derive_pseudo_labels`).
    ``generator``: fields of :class:`fullbody.synthetic.SceneConfig` (image size, people
    per image, ...); folders are named by size and seed, so change ``root`` with the scenes.
    ``calibration_images``: with pseudo-labels, fit a confidence recalibration on the first
    that many training images' pseudo-labels against their exact labels (as a human-labelled
    subset would be used), saved beside the labels (reused when there) and applied to all
    training labels; 0 = none.

    ``test_images`` > 0 adds a held-out test set of that many scenes of ``test_seed`` (default
    ``data_seed + 8``: the scenes of ``data.data_seed=7 data.val_images=200`` in ``eval.py``
    when 200), scored with exact labels and never used to pick a checkpoint; 0 tests on the
    validation set.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        train_images: int = 300,
        val_images: int = 50,
        *,
        train_labels: str = "exact",
        calibration_images: int = 0,
        generator: Mapping[str, Any] | None = None,
        pseudo: Mapping[str, Any] | None = None,
        generate_workers: int = 1,
        data_seed: int = 0,
        test_images: int = 0,
        test_seed: int | None = None,
        train: Mapping[str, Any] | None = None,
        val: Mapping[str, Any] | None = None,
        test: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        prefix = kwargs.get("config_prefix", "data")
        if train_labels not in ("exact", "pseudo"):
            raise DataConfigError(
                f"{prefix}.train_labels must be 'exact' or 'pseudo', got {train_labels!r}"
            )
        self.pseudo = None if pseudo is None else _pseudo_config(pseudo, prefix, train_labels)
        self.root = Path(os.path.expanduser(str(root)))
        self.train_images, self.val_images = int(train_images), int(val_images)
        self.train_labels = train_labels
        self.generator = dict(generator or {})
        self.generate_workers = int(generate_workers)
        self.data_seed = int(data_seed)
        self.train_dir = self.root / f"train_n{self.train_images}_s{self.data_seed}"
        self.val_dir = self.root / f"val_n{self.val_images}_s{self.data_seed + 1}"
        self.test_images = int(test_images)
        self.test_seed = self.data_seed + 8 if test_seed is None else int(test_seed)
        self.test_dir: Path | None = None
        if self.test_images > 0:
            if test is not None:
                raise DataConfigError(
                    f"{prefix}.test_images and {prefix}.test are both set: generate the "
                    f"held-out scenes or name a test set, not both"
                )
            if self.test_seed in (self.data_seed, self.data_seed + 1):
                raise DataConfigError(
                    f"{prefix}.test_seed={self.test_seed} is the seed of the training or "
                    f"validation scenes ({prefix}.data_seed={self.data_seed}): held-out scenes "
                    f"need another seed"
                )
            self.test_dir = self.root / f"val_n{self.test_images}_s{self.test_seed}"
            test = {
                "ann_file": str(self.test_dir / "annotations.json"),
                "image_dir": str(self.test_dir / "images"),
            }
        elif self.test_images < 0:
            raise DataConfigError(f"{prefix}.test_images must be >= 0, got {test_images}")
        labels = "pseudo_annotations.json" if train_labels == "pseudo" else "annotations.json"
        if self.pseudo is not None:
            from fullbody.synthetic import pseudo_labels_name

            labels = pseudo_labels_name(self.pseudo)
        #: The training labels file (the one place its name is chosen).
        self.train_labels_file = self.train_dir / labels
        train = dict(train or {})
        self.calibration_file = self._calibration_setting(int(calibration_images), train, prefix)
        train = {
            **train,
            "ann_file": str(self.train_labels_file),
            "image_dir": str(self.train_dir / "images"),
        }
        val = {
            **dict(val or {}),
            "ann_file": str(self.val_dir / "annotations.json"),
            "image_dir": str(self.val_dir / "images"),
        }
        super().__init__(train, val, test, **kwargs)

    def _calibration_made_here(self) -> bool:
        return self.calibration_file is not None

    def _calibration_setting(self, n: int, train: dict[str, Any], prefix: str) -> Path | None:
        """Check ``calibration_images``; with some, the map's path, set as the training
        section's ``conf_calibration``."""
        key = f"{prefix}.calibration_images"
        if not 0 <= n <= self.train_images:
            raise DataConfigError(f"{key} must be in [0, {self.train_images}], got {n}")
        self.calibration_images = n
        if not n:
            return None
        if self.train_labels != "pseudo":
            raise DataConfigError(
                f"{key}={n} needs {prefix}.train_labels=pseudo: exact labels have no "
                "confidences to recalibrate"
            )
        if train.get("conf_calibration"):
            raise DataConfigError(
                f"{key}={n} fits its own map: leave {prefix}.train.conf_calibration unset"
            )
        stem = self.train_labels_file.name.removesuffix(".json")
        path = self.train_labels_file.with_name(f"{stem}.calibration_n{n}.json")
        train["conf_calibration"] = str(path)
        return path

    def _generated_dirs(self) -> list[tuple[Path, int, int, bool]]:
        """(folder, images, seed, with pseudo-labels) of every set this module generates."""
        dirs = [
            (self.train_dir, self.train_images, self.data_seed, True),
            (self.val_dir, self.val_images, self.data_seed + 1, False),
        ]
        if self.test_dir is not None:
            dirs.append((self.test_dir, self.test_images, self.test_seed, False))
        return dirs

    def setup(self, stage: str | None = None) -> None:
        for d, *_ in self._generated_dirs():
            if not (d / "annotations.json").is_file():
                raise InputNotFoundError(
                    f"{d}: synthetic data not generated yet: call prepare_data() first (the "
                    f"Trainer does), or point {self.prefix}.root at a generated set"
                )
        if self.calibration_file is not None and not self.calibration_file.is_file():
            raise InputNotFoundError(
                f"{self.calibration_file}: the calibration map of {self.prefix}."
                "calibration_images is not fitted yet: call prepare_data() first (the Trainer does)"
            )
        super().setup(stage)

    def prepare_data(self) -> None:
        """Generate the training and validation scenes unless they are there already."""
        from fullbody.synthetic import SceneConfig, derive_pseudo_labels, generate

        try:
            config = SceneConfig(**self.generator)
        except TypeError as e:
            raise DataConfigError(f"{self.prefix}.generator: {e}") from None
        for out, n, seed, pseudo in self._generated_dirs():
            generate(out, n, seed, pseudo=pseudo, config=config, workers=self.generate_workers)
        if self.pseudo is not None:
            derive_pseudo_labels(self.train_dir, self.pseudo)
        if self.calibration_file is not None and not self.calibration_file.is_file():
            self._fit_calibration(self.calibration_file)

    def _fit_calibration(self, path: Path) -> None:
        """Fit the confidence map on the first ``calibration_images`` training images (by id):
        their pseudo-labels against their exact labels; written atomically to ``path``."""
        labels = WholeBodySet.load(self.train_labels_file)
        exact = WholeBodySet.load(self.train_dir / "annotations.json")
        first = sorted(exact.images)[: self.calibration_images]
        reference = exact.subset(np.flatnonzero(np.isin(exact.image_ids, first)))
        fit_against(labels, reference, source=str(path)).save(path)


def _pseudo_config(options: Mapping[str, Any], prefix: str, train_labels: str) -> PseudoConfig:
    """The :class:`~fullbody.synthetic.PseudoConfig` of ``<prefix>.pseudo``, refused when it
    is wrong or would be ignored (training on the exact labels)."""
    from fullbody.synthetic import PseudoConfig

    if train_labels != "pseudo":
        raise DataConfigError(
            f"{prefix}.pseudo is set but {prefix}.train_labels={train_labels!r} trains on the "
            f"exact labels: set {prefix}.train_labels=pseudo or leave {prefix}.pseudo null"
        )
    if not isinstance(options, Mapping):
        raise DataConfigError(f"{prefix}.pseudo must be a mapping of PseudoConfig fields")
    try:
        return PseudoConfig.from_options(options, f"{prefix}.pseudo")
    except ValueError as e:
        raise DataConfigError(str(e)) from None
