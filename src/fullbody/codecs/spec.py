"""``TopDownSpec``: the top-down settings a model is trained with and must be run with.

One frozen record of everything that has to agree between training and inference: the input
crop (``input_size`` (h, w) and the box ``padding``), the codec (its ``kind``: Gaussian heatmaps
at ``stride`` 2, 4 or 8 with ``sigma`` and optional DARK decoding, or SimCC vectors with
``split_ratio`` bins per pixel and ``simcc_sigma``) and the decoding (``flip_test``, the
``score_threshold`` of the person score). It is built once from the ``model.spec`` config block
(the data config reads the same block by interpolation), saved whole in the checkpoint's
hyper-parameters (``spec``) and in the ONNX metadata (``topdown_spec``, JSON), and read back by
the predictor, export, the teachers and evaluation, so a setting cannot be used in training and
forgotten at inference.

The codec kind is the head's (``fullbody.models.network.HEADS``): a spec from the config may
leave it unset (``None``) until the model resolves it (:meth:`TopDownSpec.for_kind`).

Checkpoints and ONNX files written before the spec existed are read with the values that were
then fixed in code (:data:`STANDARD`), and a log line says so (:meth:`TopDownSpec.legacy`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fullbody.codecs.heatmap import HeatmapCodec
from fullbody.codecs.simcc import SimCCCodec
from fullbody.codecs.topdown import PoseCodec
from fullbody.errors import ConfigError

#: The codec kinds: Gaussian heatmaps or SimCC coordinate vectors.
KINDS = ("heatmap", "simcc")
#: Heatmap strides the heatmap heads produce (4 as in the field; 2 or 8 on both axes).
HEATMAP_STRIDES = (2, 4, 8)
#: The ONNX metadata key holding the spec (JSON of :meth:`TopDownSpec.to_dict`).
METADATA_KEY = "topdown_spec"
#: The field's usual values (SimpleBaseline, mmpose, AlphaPose): the base of
#: :meth:`TopDownSpec.standard`, and what the code used for settings that files written before
#: the spec existed do not record (the box padding was fixed; the others had these defaults).
STANDARD: dict[str, Any] = {
    "stride": 4,
    "sigma": 2.0,
    "split_ratio": 2.0,
    "simcc_sigma": None,
    "dark": True,
    "padding": 1.25,
    "flip_test": True,
    "score_threshold": 0.2,
}

log = logging.getLogger(__name__)


def kind_of_outputs(outputs: int) -> str:
    """The codec kind of a pose network with this many outputs: SimCC's two vectors (RTMPose's
    layout, as export writes them) or one tensor of heatmaps."""
    return "simcc" if outputs == 2 else "heatmap"


@dataclass(frozen=True)
class TopDownSpec:
    """Crop, codec and decoding settings of one top-down model (see the module docstring).

    ``input_size``: network input (h, w), multiples of ``stride``; ``stride``: input px per
    heatmap px; ``sigma``: heatmap Gaussian, heatmap px; ``split_ratio``: SimCC bins per input
    px; ``simcc_sigma``: SimCC label sigma (x, y) in bins (None: RTMPose's for the input size);
    ``dark``: DARK sub-pixel heatmap decoding; ``padding``: crop size / box size after widening
    the box to the input's aspect ratio; ``flip_test``: average with the mirrored crop;
    ``score_threshold``: keypoints above it count in the person score; ``kind``: ``"heatmap"``,
    ``"simcc"`` or None (the head's, not yet resolved). The fields of the other codec kind are
    kept but unused.
    """

    input_size: tuple[int, int]
    stride: int
    sigma: float
    split_ratio: float
    simcc_sigma: tuple[float, float] | None
    dark: bool
    padding: float
    flip_test: bool
    score_threshold: float
    kind: str | None = None

    def __post_init__(self) -> None:
        def field(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if len(self.input_size) != 2:
            raise ConfigError(f"model.spec.input_size must be (h, w), got {self.input_size}")
        field("input_size", (int(self.input_size[0]), int(self.input_size[1])))
        field("stride", int(self.stride))
        for name in ("sigma", "split_ratio", "padding", "score_threshold"):
            field(name, float(getattr(self, name)))
        field("dark", bool(self.dark))
        field("flip_test", bool(self.flip_test))
        if self.simcc_sigma is not None:
            if len(self.simcc_sigma) != 2:
                raise ConfigError(
                    f"model.spec.simcc_sigma must be [x, y] bins or null, got {self.simcc_sigma}"
                )
            field("simcc_sigma", (float(self.simcc_sigma[0]), float(self.simcc_sigma[1])))
        if self.kind is not None and self.kind not in KINDS:
            raise ConfigError(f"model.spec.kind must be one of {KINDS}, got {self.kind!r}")
        h, w = self.input_size
        if self.stride not in HEATMAP_STRIDES:
            raise ConfigError(
                f"model.spec.stride must be one of {HEATMAP_STRIDES} (the heads upsample by "
                f"doublings), got {self.stride}"
            )
        if h <= 0 or w <= 0 or h % self.stride or w % self.stride:
            raise ConfigError(
                f"model.spec.input_size {list(self.input_size)} must be positive multiples of "
                f"the heatmap stride {self.stride}"
            )
        for name in ("sigma", "padding"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"model.spec.{name} must be > 0, got {getattr(self, name)}")
        if self.split_ratio < 1:
            raise ConfigError(f"model.spec.split_ratio must be >= 1, got {self.split_ratio}")

    # -------------------------------------------------------------- derived
    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(h, w) of the heatmaps: the input size over the stride."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    @property
    def aspect_ratio(self) -> float:
        """Width / height of the input crop (person boxes are widened to it)."""
        return self.input_size[1] / self.input_size[0]

    @classmethod
    def standard(
        cls, input_size: tuple[int, int], kind: str | None = None, **changes: Any
    ) -> TopDownSpec:
        """A spec of :data:`STANDARD` values for ``input_size`` with ``changes`` (for code that
        builds a model by hand: benchmarks, notebooks, tests; runs take the config's block)."""
        return cls(**{**STANDARD, "input_size": input_size, "kind": kind, **changes})

    def for_kind(self, kind: str, source: str = "model.head") -> TopDownSpec:
        """This spec with its codec kind set to ``kind`` (a head's); a spec that already names
        another kind is refused (``source`` names what declared ``kind``)."""
        if self.kind not in (None, kind):
            raise ConfigError(
                f"{source} decodes {kind}, but model.spec.kind is {self.kind!r}: leave "
                "model.spec.kind unset (the head's) or pick a head of that kind"
            )
        return dataclasses.replace(self, kind=kind)

    def codec(self) -> PoseCodec:
        """The codec this spec describes (``kind`` must be resolved)."""
        if self.kind == "simcc":
            return SimCCCodec(self.input_size, self.split_ratio, self.simcc_sigma)
        if self.kind == "heatmap":
            return HeatmapCodec(self.input_size, self.heatmap_size, self.sigma, dark=self.dark)
        raise ValueError("TopDownSpec.codec() needs a codec kind (the model's head sets it)")

    # -------------------------------------------------------------- storage
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (lists for pairs): the checkpoint's ``spec`` hyper-parameter."""
        out = dataclasses.asdict(self)
        out["input_size"] = list(self.input_size)
        if self.simcc_sigma is not None:
            out["simcc_sigma"] = list(self.simcc_sigma)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "model.spec") -> TopDownSpec:
        """A spec from :meth:`to_dict`'s values (or a config block); unknown or missing fields
        are refused, naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown setting {unknown[0]!r}; expected {sorted(names)}")
        missing = sorted(names - set(values) - {"kind"})
        if missing:
            raise ConfigError(f"{source}: {missing[0]} is missing")
        try:
            return cls(**values)
        except ConfigError as e:
            if source == "model.spec":
                raise
            raise ConfigError(f"{source}: {e}") from None

    def to_metadata(self) -> dict[str, str]:
        """The ONNX metadata entry that carries this spec."""
        return {METADATA_KEY: json.dumps(self.to_dict(), sort_keys=True)}

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, str], source: str, outputs: int
    ) -> TopDownSpec | None:
        """The spec stored in an ONNX file's metadata by export; for a file exported before
        the spec existed (flat ``input_size``, ``heatmap_size``, ... entries), the legacy
        reading (:meth:`legacy`; the codec kind from the file's number of ``outputs``: two are
        SimCC's); None for a file without either (one from elsewhere)."""
        if METADATA_KEY in metadata:
            try:
                values = json.loads(metadata[METADATA_KEY])
            except json.JSONDecodeError as e:
                raise ConfigError(f"{source}: metadata {METADATA_KEY} is not JSON ({e})") from None
            return cls.from_dict(values, f"{source} (metadata {METADATA_KEY})")
        if "input_size" not in metadata:
            return None

        def pair(key: str) -> list[int] | None:
            return [int(v) for v in metadata[key].split(",")] if key in metadata else None

        old: dict[str, Any] = {
            "input_size": pair("input_size"),
            "heatmap_size": pair("heatmap_size"),
        }
        for key in ("sigma", "split_ratio", "score_threshold"):
            if key in metadata:
                old[key] = float(metadata[key])
        for key in ("flip_test", "dark"):
            if key in metadata:
                old[key] = metadata[key] == "true"
        return cls.legacy(old, kind_of_outputs(outputs), source)

    @classmethod
    def legacy(cls, values: Mapping[str, Any], kind: str, source: str) -> TopDownSpec:
        """The spec of a file written before the spec existed: its recorded ``input_size``,
        ``heatmap_size`` (-> stride) and decoding settings, :data:`STANDARD` for the rest; logs
        which values were assumed."""
        fields = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in fields and v is not None}
        if "input_size" not in known:
            raise ConfigError(f"{source}: no top-down spec and no input_size to derive one from")
        h = int(known["input_size"][0])
        hm = values.get("heatmap_size")
        if hm is not None and kind == "heatmap":
            known["stride"] = h // max(int(hm[0]), 1)
        assumed = {k: v for k, v in STANDARD.items() if k not in known}
        spec = cls(**{**STANDARD, **known, "kind": kind})
        log.warning(
            "%s: written before the top-down spec was saved with the model; read with %s",
            source,
            ", ".join(f"{k}={v}" for k, v in assumed.items()) or "its own settings",
        )
        return spec


def spec_of(spec: TopDownSpec | Mapping[str, Any], source: str = "model.spec") -> TopDownSpec:
    """A :class:`TopDownSpec` given as one or as its config block / :meth:`to_dict` values."""
    return spec if isinstance(spec, TopDownSpec) else TopDownSpec.from_dict(spec, source)
