"""The ONNX metadata contract: JSON-encoded props, Deepness keys, missing keys named."""

import json
from pathlib import Path

import onnxruntime as ort
import pytest

import snca_cli
from snca_cli.contract.metadata import REQUIRED_KEYS, ModelMetadata
from snca_cli.errors import SncaError
from tests.helpers.model_readers import deepness_reads, geodeep_reads


def make_metadata() -> ModelMetadata:
    return ModelMetadata(
        class_names=["Airport", "Beach", "Forest"],
        tile_size=150,
        embedding_dim=128,
        input_bands=3,
        resolution_cm=200.0,
        backbone="efficientnet_lite0",
        training={"dataset": "aid150", "split_seed": 0},
        snca_version="0.1.0",
    )


def test_props_are_json_and_carry_deepness_keys() -> None:
    props = make_metadata().to_props()
    values = {key: json.loads(value) for key, value in props.items()}
    assert values["model_type"] == "Recognition"
    assert values["class_names"] == {"0": "Airport", "1": "Beach", "2": "Forest"}
    assert values["tile_size"] == values["tiles_size"] == 150
    assert values["resolution"] == 200.0
    assert values["orientations"] == 1
    assert values["standardization_mean"] == [0.0, 0.0, 0.0]
    assert values["standardization_std"] == [1.0, 1.0, 1.0]
    assert values["input_scale"]["uint8"] == 255.0


def test_round_trip() -> None:
    metadata = make_metadata()
    parsed = ModelMetadata.from_props(metadata.to_props())
    assert parsed == metadata
    assert parsed.num_classes == 3
    assert parsed.resolution_m == 2.0
    averaged = make_metadata()
    averaged.orientations = 8
    assert ModelMetadata.from_props(averaged.to_props()).orientations == 8


def test_models_exported_before_orientations_see_each_tile_once() -> None:
    props = make_metadata().to_props()
    del props["orientations"]
    assert ModelMetadata.from_props(props).orientations == 1


def test_class_colours_are_optional_and_kept_lower_case() -> None:
    assert "class_colours" not in make_metadata().to_props()
    coloured = make_metadata()
    coloured.class_colours = {"Beach": "#F3DFA2"}
    parsed = ModelMetadata.from_props(coloured.to_props())
    assert parsed.class_colours == {"Beach": "#f3dfa2"}


@pytest.mark.parametrize(
    ("colours", "message"),
    [
        ('{"Beach": "sand"}', "the class_colours entry of 'Beach', 'sand' is not a #rrggbb colour"),
        ('{"Sea": "#0000ff"}', "class_colours for classes it does not have: Sea"),
        ('{"unknown": "#000000"}', "class_colours for classes it does not have: unknown"),
        ('["#0000ff"]', "malformed"),
    ],
)
def test_bad_class_colours_are_one_line(colours: str, message: str) -> None:
    props = make_metadata().to_props()
    props["class_colours"] = colours
    with pytest.raises(SncaError, match=message):
        ModelMetadata.from_props(props, source="model x.onnx")


def test_missing_keys_are_named() -> None:
    props = make_metadata().to_props()
    del props["class_names"], props["input_scale"]
    with pytest.raises(SncaError, match="class_names, input_scale"):
        ModelMetadata.from_props(props, source="model x.onnx")


def test_no_metadata_names_every_required_key() -> None:
    with pytest.raises(SncaError) as info:
        ModelMetadata.from_props({})
    for key in REQUIRED_KEYS:
        assert key in str(info.value)


def test_malformed_value_is_one_line() -> None:
    props = make_metadata().to_props()
    props["tile_size"] = "not json"
    with pytest.raises(SncaError, match="malformed"):
        ModelMetadata.from_props(props)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tile_size", "0", "tile_size 0 .must be at least 1 px."),
        ("embedding_dim", "-3", "embedding_dim -3"),
        ("input_bands", "0", "input_bands 0"),
        ("resolution", "0", "resolution 0.0 .must be positive"),
        ("resolution", "NaN", "resolution nan"),
        ("input_scale", '{"uint8": 0}', r"input_scale .* \(divisors must be positive"),
        ("tiles_overlap", "Infinity", "tiles_overlap inf"),
    ],
)
def test_metadata_values_outside_their_range_are_one_line(
    key: str, value: str, message: str
) -> None:
    props = make_metadata().to_props()
    props[key] = value
    with pytest.raises(SncaError, match=f"model has an invalid snca metadata value: {message}"):
        ModelMetadata.from_props(props)


@pytest.mark.parametrize("resolution_cm", [200.0, None])
def test_deepness_and_geodeep_parse_every_key(resolution_cm: float | None) -> None:
    metadata = make_metadata()
    metadata.resolution_cm = resolution_cm
    metadata.tiles_overlap = 12.5
    props = metadata.to_props()
    deepness, geodeep = deepness_reads(props), geodeep_reads(props)
    assert deepness["model_type"] == geodeep["model_type"] == "Recognition"
    assert deepness["class_names"] == [["Airport", "Beach", "Forest"]]
    assert geodeep["class_names"] == {"0": "Airport", "1": "Beach", "2": "Forest"}
    assert deepness["tile_size"] == 150
    # overlap in percent: Deepness truncates to whole percent, GeoDeep keeps the fraction
    assert (deepness["tiles_overlap"], geodeep["tiles_overlap"]) == (12, 12.5)
    assert deepness["standardization"] == ([0.0] * 3, [1.0] * 3)
    if resolution_cm is None:
        # an unknown resolution is absent: Deepness uses the raster's, GeoDeep its 10 cm/px
        assert "resolution" not in props
        assert (deepness["resolution"], geodeep["resolution"]) == (None, 10.0)
    else:
        assert deepness["resolution"] == geodeep["resolution"] == 200.0
    assert all(value != "null" for value in props.values())


def test_the_shipped_models_parse_in_deepness_and_geodeep() -> None:
    for path in sorted((Path(snca_cli.__file__).parent / "models").glob("*.onnx")):
        props = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
        assert "null" not in props.values(), path.name
        assert json.loads(props["orientations"]) == 1, path.name
        assert len(deepness_reads(props)["class_names"][0]) == 30
        assert len(geodeep_reads(props)["class_names"]) == 30


def test_resolution_in_metres_becomes_the_metadata_centimetres() -> None:
    from snca_cli.contract.metadata import resolution_cm_from_m

    assert resolution_cm_from_m(0.5) == 50.0
    assert resolution_cm_from_m(10) == 1000.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(SncaError, match="metres per pixel"):
            resolution_cm_from_m(bad)


def test_metadata_beyond_the_size_limit_is_refused_before_parsing(monkeypatch) -> None:
    monkeypatch.setattr("snca_cli.contract.metadata.MAX_METADATA_BYTES", 1 << 20)
    props = make_metadata().to_props()
    props["notes"] = json.dumps("z" * (1 << 20))
    with pytest.raises(SncaError) as caught:
        ModelMetadata.from_props(props, source="model m.onnx")
    assert str(caught.value).startswith("model m.onnx holds 1,04")
    assert "bytes of metadata ('notes': 1,048,583); snca reads at most 1 MiB" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("backbone", "x" * 1001, "backbone 'x{40}'... is 1,001 characters long"),
        ("model_type", "x" * 5000, "model_type 'x{40}'... is 5,000 characters long"),
        ("class_names", ["a", "é" * 1200], "class name 'é{40}'... is 1,200 characters long"),
    ],
)
def test_names_longer_than_the_limit_are_refused(key: str, value: object, message: str) -> None:
    props = make_metadata().to_props()
    props[key] = json.dumps(value)
    with pytest.raises(SncaError, match=f"invalid snca metadata value: {message}; names have at"):
        ModelMetadata.from_props(props)


@pytest.mark.parametrize("names", [{"0": 5, "1": None}, [1, 2], {"0": ["a"]}, "abc", 7])
def test_class_names_that_are_not_text_are_refused(names: object) -> None:
    props = make_metadata().to_props()
    props["class_names"] = json.dumps(names)
    with pytest.raises(SncaError, match="malformed snca metadata: class_names must be names"):
        ModelMetadata.from_props(props)
