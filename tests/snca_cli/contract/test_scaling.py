"""Value scaling of snca_cli.contract.scaling: input_scale per dtype, the percentile stretch, the
one choice between them, its record and how a query image is scaled like an index's rasters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from snca_cli.contract.scaling import (
    BY_INPUT_SCALE,
    BY_PERCENTILES,
    ValueScaling,
    carries_gdal_scale,
    choose_scaling,
    input_scaling,
    percentile_scaling,
    query_scaling,
    to_uint8,
)
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.tasks.index.build import build_index
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import (
    write_raster,
)
from tests.helpers.tiling import metadata


def test_uint16_is_scaled_by_the_models_input_scale(tmp_path: Path) -> None:
    values = np.array([13107, 32768, 65535], np.uint16)  # 0.2, ~0.5, 1.0 of 65535
    path = write_raster(tmp_path / "u16.tif", np.broadcast_to(values[:, None, None], (3, 32, 32)))
    with RasterTiling.open(path, metadata(32)) as tiling:
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert np.allclose(batch[0, :, 0, 0], [0.2, 32768 / 65535, 1.0], atol=1e-7)


def test_float_rasters_use_the_float32_scale_and_clip(tmp_path: Path) -> None:
    values = np.array([-0.5, 0.25, 1.5], np.float64)
    path = write_raster(tmp_path / "f.tif", np.broadcast_to(values[:, None, None], (3, 32, 32)))
    with RasterTiling.open(path, metadata(32)) as tiling:
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert batch[0, :, 0, 0].tolist() == [0.0, 0.25, 1.0]


def test_a_dtype_without_input_scale_asks_for_a_stretch(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "i16.tif", np.ones((3, 32, 32), np.int16))
    with pytest.raises(SncaError, match="no input_scale for int16.*--stretch percentile"):
        RasterTiling.open(path, metadata(32), TilingOptions(stretch="model"))
    with RasterTiling.open(path, metadata(32)) as tiling:  # auto stretches it instead
        assert tiling.scaling.method == "percentile"
        assert tiling.scaling.reason == "the model has no input_scale for int16"


def test_percentile_stretch_maps_2_and_98_percent_to_0_and_1(tmp_path: Path) -> None:
    ramp = np.arange(64 * 64, dtype=np.int16).reshape(64, 64)  # values 0..4095, all sampled
    path = write_raster(tmp_path / "ramp.tif", np.stack([ramp, ramp * 2, ramp + 5]))
    options = TilingOptions(stretch="percentile")
    with RasterTiling.open(path, metadata(32), options) as tiling:
        batch, _ = tiling.read(list(tiling.tiles()))
    low, high = np.percentile(np.arange(4096.0), [2, 98])  # 81.9 and 4013.1
    image = np.zeros((64, 64))
    image[:32, :32], image[:32, 32:] = batch[0, 0], batch[1, 0]
    image[32:, :32], image[32:, 32:] = batch[2, 0], batch[3, 0]
    assert np.allclose(image, np.clip((ramp - low) / (high - low), 0, 1), atol=1e-6)
    assert image.min() == 0.0 and image.max() == 1.0


# ------------------------------------------------------------------- the default: auto


def reflectance(shape=(3, 96, 96), seed=0) -> np.ndarray:
    """uint16 values as Sentinel-2 delivers them: reflectance x 10,000, mostly 400..1,500."""
    return np.random.default_rng(seed).integers(400, 1500, shape).astype(np.uint16)


def test_auto_stretches_values_using_a_small_part_of_their_range(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "s2.tif", reflectance())
    with RasterTiling.open(path, metadata(32)) as tiling:
        scaling = tiling.scaling
        batch, _ = tiling.read(list(tiling.tiles()))
    assert scaling.method == "percentile"
    # 2 % and 98 % of uniform 400..1499: about 422 and 1477; the span is 1.6 % of 65,535
    assert np.allclose(scaling.low, 422, atol=6) and np.allclose(scaling.high, 1477, atol=6)
    assert scaling.reason == "values use 2% of the model's uint16 range 0..65535"
    assert 0.45 < float(batch.mean()) < 0.55  # not near-black: mean 0.5 after the stretch
    record = scaling.record()
    assert record["method"] == "percentile" and record["low"] == scaling.low
    assert scaling.describe().startswith("percentile stretch, raw 4")
    with RasterTiling.open(path, metadata(32), TilingOptions(stretch="model")) as tiling:
        black, _ = tiling.read([tiling.tile(0, 0)])
    assert float(black.max()) < 1500 / 65535 + 1e-6  # what the model's input_scale gives


def test_auto_keeps_input_scale_for_values_that_fill_their_range(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, (3, 64, 64)).astype(np.uint8)
    path = write_raster(tmp_path / "u8.tif", data)
    with RasterTiling.open(path, metadata(32)) as tiling:
        assert tiling.scaling.method == "input_scale"
        assert tiling.scaling.reason == "values use 96% of the model's uint8 range 0..255"
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert np.allclose(batch[0], data[:, :32, :32] / 255.0, atol=1e-7)


def test_auto_stretches_floats_beyond_the_range_and_keeps_constant_values(tmp_path: Path) -> None:
    floats = np.random.default_rng(2).uniform(0, 3000, (3, 64, 64)).astype(np.float32)
    with RasterTiling.open(write_raster(tmp_path / "f.tif", floats), metadata(32)) as tiling:
        assert tiling.scaling.method == "percentile"
        assert tiling.scaling.reason.startswith("values reach 2.9")
    constant = np.full((3, 64, 64), 9, np.uint16)
    with RasterTiling.open(write_raster(tmp_path / "c.tif", constant), metadata(32)) as tiling:
        assert tiling.scaling.method == "input_scale"
        assert tiling.scaling.reason == "constant values (9): no range to stretch"


def test_auto_stretches_bands_with_a_gdal_scale_and_offset(tmp_path: Path) -> None:
    """Landsat C2 / Sentinel-2 L2A style: uint16 DN with scale 2.75e-5 and offset -0.2; the
    values use 40 % of the range, yet they are physical quantities, not display values."""
    data = np.random.default_rng(3).integers(7000, 33000, (3, 64, 64)).astype(np.uint16)
    path = write_raster(tmp_path / "l9.tif", data)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (2.75e-5,) * 3, (-0.2,) * 3
    with RasterTiling.open(path, metadata(32)) as tiling:
        assert tiling.scaling.method == "percentile"
        assert tiling.scaling.reason == "the bands carry a GDAL scale/offset: physical values"
    with RasterTiling.open(write_raster(tmp_path / "dn.tif", data), metadata(32)) as tiling:
        assert tiling.scaling.method == "input_scale"  # the same values without scale/offset


def test_the_index_manifest_records_each_rasters_scaling(tmp_path: Path) -> None:
    model = OnnxModel(make_band_mean_model(tmp_path / "m.onnx"))
    rasters = [
        write_raster(tmp_path / "s2.tif", reflectance(seed=4)),
        write_raster(
            tmp_path / "u8.tif",
            np.random.default_rng(5).integers(0, 256, (3, 64, 64)).astype(np.uint8),
        ),
    ]
    build_index(rasters, model, tmp_path / "index")
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["tiling"]["stretch"] == "auto"
    methods = [raster["scaling"]["method"] for raster in manifest["rasters"]]
    assert methods == ["percentile", "input_scale"]
    assert 400 <= manifest["rasters"][0]["scaling"]["low"][0] < 450


# ------------------------------------------------------------- the one choice, and its record

INPUT_SCALE = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}


def low_contrast_uint8() -> np.ndarray:
    """A uint8 sample (3 bands x 51 values) using 19 % of the range: 100..150, 40..90, 180..230;
    its 2 and 98 % percentiles are 101 / 41 / 181 and 149 / 89 / 229 exactly."""
    return np.stack([np.arange(100, 151), np.arange(40, 91), np.arange(180, 231)]).astype(np.uint8)


def test_auto_choice_stretches_a_low_contrast_uint8_sample_by_its_exact_percentiles() -> None:
    scaling = choose_scaling("auto", low_contrast_uint8(), np.uint8, INPUT_SCALE, 3)
    assert scaling.method == BY_PERCENTILES
    assert scaling.low == [101.0, 41.0, 181.0] and scaling.high == [149.0, 89.0, 229.0]
    assert scaling.reason == "values use 19% of the model's uint8 range 0..255"
    assert scaling.dtype == "uint8"
    raw = np.array([101, 41, 181], np.uint8)[:, None, None] + np.array([0, 24, 48, 60], np.uint8)
    assert scaling(raw)[:, 0].tolist() == [[0.0, 0.5, 1.0, 1.0]] * 3


def test_the_choice_for_each_stretch() -> None:
    sample = low_contrast_uint8()
    model = choose_scaling("model", None, np.uint8, INPUT_SCALE, 3)  # no sample looked at
    assert (model.method, model.reason, model.high) == (BY_INPUT_SCALE, "chosen", [255.0] * 3)
    assert choose_scaling(None, sample, np.uint8, INPUT_SCALE, 3).method == BY_INPUT_SCALE
    stretched = choose_scaling("percentile", sample, np.uint8, INPUT_SCALE, 3)
    assert (stretched.method, stretched.reason, stretched.low) == (
        BY_PERCENTILES,
        "chosen",
        [101.0, 41.0, 181.0],
    )
    full = np.stack([np.arange(256)] * 3).astype(np.uint8)
    assert choose_scaling("auto", full, np.uint8, INPUT_SCALE, 3).method == BY_INPUT_SCALE
    physical = choose_scaling("auto", full, np.uint8, INPUT_SCALE, 3, gdal_scaled=True)
    assert physical.method == BY_PERCENTILES
    nothing = choose_scaling("auto", None, np.uint16, INPUT_SCALE, 3)
    assert (nothing.method, nothing.reason) == (BY_INPUT_SCALE, "no valid pixels sampled")
    with pytest.raises(SncaError, match="raster a.tif has no valid pixels to stretch"):
        choose_scaling("percentile", None, np.uint8, INPUT_SCALE, 3, source="raster a.tif")


def test_gdal_scales_and_offsets_mark_physical_values() -> None:
    assert not carries_gdal_scale([None, 1.0, 1.0], [None, 0.0, None])
    assert carries_gdal_scale([2.75e-5] * 3, [-0.2] * 3)
    assert carries_gdal_scale([1.0, 1.0], [0.0, -0.2])


@pytest.mark.parametrize("stretched", [True, False])
def test_a_scaling_rebuilt_from_its_json_record_scales_exactly_alike(stretched: bool) -> None:
    raw = np.random.default_rng(6).integers(300, 4000, (3, 40, 40)).astype(np.uint16)
    if stretched:
        scaling = percentile_scaling(raw.reshape(3, -1), raw.dtype, "why")
    else:
        scaling = input_scaling(raw.dtype, INPUT_SCALE, 3, "why")
    rebuilt = ValueScaling.from_record(json.loads(json.dumps(scaling.record())))
    assert rebuilt.record() == scaling.record()
    assert rebuilt.method == scaling.method and rebuilt.dtype == "uint16"
    assert np.array_equal(rebuilt(raw), scaling(raw))


def test_to_uint8_rounds_and_clips_model_input() -> None:
    unit = np.array([-0.1, 0.0, 0.49 / 255, 0.51 / 255, 0.5, 1.0, 1.2], np.float32)
    assert to_uint8(unit).tolist() == [0, 0, 0, 1, 128, 255, 255]
    assert to_uint8(unit).dtype == np.uint8


# --------------------------------------------------------- a query scaled like an index


def query_like(records: list[dict], stretch: str | None = "auto", dtype=np.uint8) -> ValueScaling:
    """The scaling of the low-contrast query (as ``dtype``) against rasters with ``records``."""
    sample = low_contrast_uint8().astype(dtype)
    return query_scaling(records, stretch, sample, sample.dtype, INPUT_SCALE)


def test_a_query_takes_the_input_scale_every_raster_recorded() -> None:
    """The query would stretch itself (low contrast), but the rasters were divided by their
    type's divisor: so is the query, by its own type's."""
    u16 = input_scaling(np.uint16, INPUT_SCALE, 3, "values use 40%").record()
    scaling = query_like([u16, u16])
    assert (scaling.method, scaling.high, scaling.dtype) == (BY_INPUT_SCALE, [255.0] * 3, "uint8")
    assert query_like([u16], dtype=np.uint16).high == [65535.0] * 3


def test_a_query_takes_the_one_percentile_stretch_the_rasters_recorded() -> None:
    raster = np.random.default_rng(8).integers(0, 120, (3, 500)).astype(np.uint8)
    recorded = percentile_scaling(raster, np.uint8, "values use 44%")
    scaling = query_like([recorded.record(), recorded.record()])
    assert scaling.method == BY_PERCENTILES and scaling.reason == "as the index's rasters"
    assert scaling.low == recorded.low and scaling.high == recorded.high
    older = {key: value for key, value in recorded.record().items() if key != "dtype"}
    assert query_like([older]).low == recorded.low  # a record without its type: applied too
    own = percentile_scaling(low_contrast_uint8(), np.uint8)
    # the rasters' values were of another type: the recorded range means nothing to the query
    uint16 = {**recorded.record(), "dtype": "uint16"}
    assert query_like([uint16]).low == own.low
    # rasters stretched each by its own range: the query by its own
    other = percentile_scaling(raster[:, :250], np.uint8).record()
    mixed = query_like([recorded.record(), other])
    assert mixed.low == own.low
    assert mixed.reason == "the index's rasters were each stretched by their own range"


def test_a_query_chooses_for_itself_without_one_recorded_method() -> None:
    """Rasters scaled by different methods, or an index written before scalings were recorded:
    the index's stretch applied to the query alone, as before."""
    u8 = input_scaling(np.uint8, INPUT_SCALE, 3).record()
    stretched = percentile_scaling(low_contrast_uint8(), np.uint8).record()
    for records in ([u8, stretched], [{}], [u8, {}], []):
        assert query_like(records).low == [101.0, 41.0, 181.0]  # auto: the query's percentiles
        assert query_like(records, stretch="model").method == BY_INPUT_SCALE
    # no divisor for the query's type (int16): its own choice, not the rasters' input_scale
    assert query_like([u8], dtype=np.int16).method == BY_PERCENTILES
