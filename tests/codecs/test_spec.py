"""TopDownSpec: derived sizes, the codec it describes, storage round trips and refusals."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from fullbody.codecs import HeatmapCodec, SimCCCodec
from fullbody.codecs.spec import METADATA_KEY, STANDARD, TopDownSpec, spec_of
from fullbody.errors import ConfigError


def test_sizes_and_codecs_follow_the_spec() -> None:
    spec = TopDownSpec.standard((256, 192), "heatmap", stride=8, dark=False)
    assert spec.heatmap_size == (32, 24) and spec.aspect_ratio == 0.75
    codec = spec.codec()
    assert isinstance(codec, HeatmapCodec) and codec.heatmap_size == (32, 24) and not codec.dark
    simcc = dataclasses.replace(spec, kind="simcc", split_ratio=3.0).codec()
    assert isinstance(simcc, SimCCCodec) and simcc.bins == (576, 768)
    with pytest.raises(ValueError, match="needs a codec kind"):
        TopDownSpec.standard((256, 192)).codec()


def test_the_spec_survives_the_checkpoint_and_the_onnx_metadata() -> None:
    spec = TopDownSpec.standard((128, 96), "simcc", padding=1.5, simcc_sigma=(3.0, 4.0))
    assert TopDownSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    meta = spec.to_metadata()
    assert list(meta) == [METADATA_KEY]
    assert TopDownSpec.from_metadata(meta, "m.onnx", 2) == spec
    # A config block (lists, no kind) gives the spec whose kind the head sets.
    block = {k: v for k, v in spec.to_dict().items() if k != "kind"}
    assert spec_of(block).for_kind("simcc") == spec and spec_of(spec) is spec


def test_the_standard_values_are_the_fields_usual_ones() -> None:
    assert STANDARD["padding"] == 1.25 and STANDARD["stride"] == 4 and STANDARD["sigma"] == 2.0
    assert set(STANDARD) | {"input_size", "kind"} == {
        f.name for f in dataclasses.fields(TopDownSpec)
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stride": 3}, "stride must be one of"),
        ({"input_size": (130, 96)}, r"input_size \[130, 96\] must be positive multiples of .* 4"),
        ({"padding": 0.0}, "padding must be > 0"),
        ({"sigma": -1.0}, "sigma must be > 0"),
        ({"split_ratio": 0.5}, "split_ratio must be >= 1"),
        ({"kind": "regression"}, "kind must be one of"),
        ({"simcc_sigma": (1.0,)}, "simcc_sigma must be"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"model.spec.{message}") as info:
        TopDownSpec(**{**STANDARD, "input_size": (128, 96), **change})
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)  # crosses processes


def test_blocks_with_unknown_or_missing_settings_and_other_kinds_are_refused() -> None:
    values = TopDownSpec.standard((128, 96)).to_dict()
    with pytest.raises(ConfigError, match="model.spec: unknown setting 'heatmap_size'"):
        TopDownSpec.from_dict({**values, "heatmap_size": [32, 24]})
    del values["padding"]
    with pytest.raises(ConfigError, match="model.spec: padding is missing"):
        TopDownSpec.from_dict(values)
    simcc = TopDownSpec.standard((128, 96), "simcc")
    with pytest.raises(ConfigError, match="model.head=fpn decodes heatmap"):
        simcc.for_kind("heatmap", "model.head=fpn")
    with pytest.raises(ConfigError, match="m.onnx: metadata topdown_spec is not JSON"):
        TopDownSpec.from_metadata({METADATA_KEY: "{"}, "m.onnx", 1)
