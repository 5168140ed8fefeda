"""Tile grids, windowed reads, scaling, no-data and resampling of snca_cli.tiling."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.io import DatasetReader
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from snca_cli.errors import SncaError
from snca_cli.metadata import ModelMetadata
from snca_cli.tiling import (
    BLOCK_CACHE_MAX_BYTES,
    BLOCK_CACHE_MIN_BYTES,
    RasterTiling,
    TilingOptions,
    block_cache_bytes,
    bounded_block_cache,
    metres_per_degree,
    tile_offsets,
)
from tests.rasters import BLUE, GREEN, RED, painted, sparse_raster, utm_transform, write_raster


def metadata(tile_size: int = 32, bands: int = 3, resolution_cm: float | None = None):
    return ModelMetadata(
        class_names=[f"c{i}" for i in range(bands)],
        tile_size=tile_size,
        embedding_dim=bands,
        input_bands=bands,
        resolution_cm=resolution_cm,
    )


def uniform(path: Path, width: int, height: int, value: int = 100, **kwargs) -> Path:
    return write_raster(path, np.full((3, height, width), value, np.uint8), **kwargs)


# -- grid geometry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "stride", "edge", "expected"),
    [
        (100, 32, "shift", [0, 32, 64, 68]),
        (100, 32, "pad", [0, 32, 64, 96]),
        (100, 24, "shift", [0, 24, 48, 68]),
        (100, 24, "pad", [0, 24, 48, 72]),
        (96, 32, "shift", [0, 32, 64]),
        (32, 32, "shift", [0]),
    ],
)
def test_tile_offsets(length: int, stride: int, edge: str, expected: list[int]) -> None:
    assert tile_offsets(length, 32, stride, edge).tolist() == expected


@pytest.mark.parametrize(("overlap", "pixels"), [(0, 0), (0.25, 8), (0.1, 3), (16, 16), (31, 31)])
def test_overlap_in_pixels(overlap: float, pixels: int) -> None:
    assert TilingOptions(overlap=overlap).overlap_pixels(32) == pixels


@pytest.mark.parametrize("overlap", [32, 40, -1])
def test_overlap_leaving_no_stride_is_refused(overlap: float) -> None:
    with pytest.raises(SncaError, match="overlap"):
        TilingOptions(overlap=overlap).overlap_pixels(32)


def test_tile_bounds_are_the_window_through_the_transform(tmp_path: Path) -> None:
    path = uniform(tmp_path / "r.tif", 100, 70)
    with RasterTiling.open(path, metadata(32)) as tiling:
        assert (tiling.n_rows, tiling.n_cols) == (3, 4)
        assert tiling.transform == utm_transform()
        tile = tiling.tile(1, 2)
        assert tile.tile_id == 1 * 4 + 2
        assert tile.window == (64, 32, 32, 32)
        # x = 500000 + 10 * col, y = 5000000 - 10 * row
        assert tile.bounds == (500640.0, 4999360.0, 500960.0, 4999680.0)
        for t in tiling.tiles():
            assert t.bounds == window_bounds(Window(*t.window), tiling.transform)
        last = tiling.tile(2, 3)
        assert last.window == (68, 38, 32, 32)
        assert last.bounds == (500680.0, 4999300.0, 501000.0, 4999620.0)


@pytest.mark.parametrize("overlap", [0, 8, 0.5])
def test_shifted_edges_cover_the_raster_exactly(tmp_path: Path, overlap: float) -> None:
    path = uniform(tmp_path / "r.tif", 101, 75)
    with RasterTiling.open(path, metadata(32), TilingOptions(overlap=overlap)) as tiling:
        stride = 32 - TilingOptions(overlap=overlap).overlap_pixels(32)
        assert tiling.stride == stride
        cover = np.zeros((75, 101), int)
        for tile in tiling.tiles():
            col, row, width, height = tile.window
            assert 0 <= col and col + width <= 101 and 0 <= row and row + height <= 75
            cover[row : row + height, col : col + width] += 1
        assert cover.min() >= 1
        # all but the shifted last column advance by the stride
        assert np.diff(tiling.col_offsets)[:-1].tolist() == [stride] * (tiling.n_cols - 2)


def test_padded_edges_reach_past_the_raster_as_nodata(tmp_path: Path) -> None:
    path = uniform(tmp_path / "r.tif", 100, 64)
    options = TilingOptions(edge="pad", min_valid=0.0)
    with RasterTiling.open(path, metadata(32), options) as tiling:
        assert tiling.col_offsets.tolist() == [0, 32, 64, 96]
        edge = tiling.tile(0, 3)
        assert edge.bounds == (500960.0, 4999680.0, 501280.0, 5000000.0)
        batch, fractions = tiling.read([tiling.tile(0, 0), edge])
        assert fractions.tolist() == [1.0, 4 / 32]  # 4 of 32 columns lie inside
        # the padding takes the valid mean: the whole tile reads as the uniform value
        assert np.allclose(batch[1], 100 / 255)


def test_tile_at_picks_the_tile_with_the_nearest_centre(tmp_path: Path) -> None:
    path = uniform(tmp_path / "r.tif", 100, 70)
    with RasterTiling.open(path, metadata(32)) as tiling:
        # column centres 16, 48, 80, 84 -> owner changes at 32, 64, 82
        x_of = lambda col: 500000.0 + 10.0 * col  # noqa: E731
        y_of = lambda row: 5000000.0 - 10.0 * row  # noqa: E731
        assert tiling.tile_at(x_of(70.5), y_of(5.5)).window[:2] == (64, 0)
        assert tiling.tile_at(x_of(82.5), y_of(5.5)).window[:2] == (68, 0)
        assert tiling.tile_at(x_of(99.9), y_of(69.9)).tile_id == tiling.tile_count - 1
        assert tiling.tile_at(x_of(100.1), y_of(5)) is None
        assert tiling.tile_at(x_of(5), y_of(-0.1)) is None


def test_owned_pixels_partition_the_raster(tmp_path: Path) -> None:
    path = uniform(tmp_path / "r.tif", 100, 70)
    with RasterTiling.open(path, metadata(32)) as tiling:
        owned = tiling.owned_pixels()
        # columns: [32, 32, 18, 18]; rows (offsets 0, 32, 38; owner changes at 32, 51): [32, 19, 19]
        assert owned.tolist() == (np.outer([32, 19, 19], [32, 32, 18, 18])).tolist()
        assert owned.sum() == 100 * 70


# -- reading -------------------------------------------------------------------------------


def test_reads_painted_tiles_scaled_to_unit_range(tmp_path: Path) -> None:
    colours = [[RED, GREEN], [BLUE, RED]]
    path = write_raster(tmp_path / "p.tif", painted(colours, 32))
    with RasterTiling.open(path, metadata(32)) as tiling:
        batch, fractions = tiling.read(list(tiling.tiles()))
    assert batch.dtype == np.float32 and batch.shape == (4, 3, 32, 32)
    assert fractions.tolist() == [1.0] * 4
    expected = np.array([RED, GREEN, BLUE, RED], np.float32) / np.float32(255.0)
    assert np.array_equal(batch[:, :, 7, 9], expected)
    assert np.array_equal(batch.min(axis=(2, 3)), batch.max(axis=(2, 3)))


def test_band_selection_reorders_bands(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "p.tif", painted([[RED]], 32))
    with RasterTiling.open(path, metadata(32), TilingOptions(bands=(3, 2, 1))) as tiling:
        assert tiling.bands == (3, 2, 1)
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert np.allclose(batch[0, :, 0, 0], np.array(RED[::-1]) / 255.0)


def test_single_band_model_reads_the_chosen_band(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "p.tif", painted([[RED]], 32))
    with RasterTiling.open(path, metadata(32, bands=1), TilingOptions(bands=(2,))) as tiling:
        batch, _ = tiling.read([tiling.tile(0, 0)])
    assert batch.shape == (1, 1, 32, 32) and np.allclose(batch, RED[1] / 255.0)


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
        RasterTiling.open(path, metadata(32))


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


def test_nodata_pixels_are_filled_with_the_valid_mean(tmp_path: Path) -> None:
    data = np.zeros((3, 32, 64), np.uint8)
    data[:, :, :32] = np.array(RED)[:, None, None]
    data[:, :16, 32:] = np.array(GREEN)[:, None, None]  # right tile: top half valid
    data[0, :8, 32:] = 100  # and in band 1 two values: mean (100 + 50) / 2
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    with RasterTiling.open(path, metadata(32)) as tiling:
        batch, fractions = tiling.read(list(tiling.tiles()))
        pixels, fraction = tiling.read_tile(tiling.tile(0, 1))
    assert fractions.tolist() == [1.0, 0.5] and fraction == 0.5
    right = batch[1]
    assert np.allclose(right[0, 20:], 75 / 255) and np.allclose(right[1, 20:], 180 / 255)
    assert np.allclose(right[0, :8], 100 / 255)  # valid pixels untouched
    assert np.array_equal(pixels, right)


def test_tiles_under_min_valid_are_not_read(tmp_path: Path) -> None:
    data = np.zeros((3, 32, 32), np.uint8)
    data[:, :8] = 90  # a quarter valid
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    with RasterTiling.open(path, metadata(32)) as tiling:
        assert tiling.read_tile(tiling.tile(0, 0)) == (None, 0.25)
    with RasterTiling.open(path, metadata(32), TilingOptions(min_valid=0.25)) as tiling:
        pixels, fraction = tiling.read_tile(tiling.tile(0, 0))
        assert fraction == 0.25 and np.allclose(pixels, 90 / 255)


@pytest.mark.parametrize(("resolution", "tile_size"), [("native", 32), (20.0, 16)])
def test_internal_mask_and_alpha_band_mark_invalid_pixels(
    tmp_path: Path, resolution: str | float, tile_size: int
) -> None:
    rgb = painted([[GREEN]], 32)
    valid = np.ones((32, 32), bool)
    valid[:, :24] = False
    masked = write_raster(tmp_path / "mask.tif", rgb, mask=valid)
    alpha = np.where(valid, 255, 0).astype(np.uint8)[None]
    rgba = write_raster(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]))
    interp = rasterio.enums.ColorInterp
    with rasterio.open(rgba, "r+") as dst:
        dst.colorinterp = [interp.red, interp.green, interp.blue, interp.alpha]
    options = TilingOptions(min_valid=0.2, resolution=resolution)
    for path in (masked, rgba):
        with RasterTiling.open(path, metadata(tile_size), options) as tiling:
            assert tiling.resampled == (resolution != "native")
            pixels, fraction = tiling.read_tile(tiling.tile(0, 0))
        assert fraction == 0.25
        assert np.allclose(pixels[:, 0, 0], np.array(GREEN) / 255.0)


# -- windowed reads: memory does not grow with the raster --------------------------------------


@pytest.mark.parametrize("resolution", ["native", 10.0 * 300 / 150])
def test_reads_are_never_larger_than_a_tile(tmp_path: Path, monkeypatch, resolution) -> None:
    # 300 x 500 px at 10 m, read natively or resampled to 150 x 250 px at 20 m
    path = write_raster(tmp_path / "big.tif", np.full((3, 300, 500), 77, np.uint8))
    windows: list[tuple[str, Window]] = []

    def spy(name: str, method):
        def read(self, *args, **kwargs):
            windows.append((name, kwargs.get("window")))
            return method(self, *args, **kwargs)

        return read

    for cls in (DatasetReader, WarpedVRT):
        monkeypatch.setattr(cls, "read", spy("read", cls.read))
        monkeypatch.setattr(cls, "read_masks", spy("mask", cls.read_masks))
    options = TilingOptions(overlap=0.25, resolution=resolution)
    with RasterTiling.open(path, metadata(64), options) as tiling:
        for tile in tiling.tiles():
            tiling.read_tile(tile)
        count = tiling.tile_count
    # stride 48: ceil((300 - 64) / 48) + 1 by ceil((500 - 64) / 48) + 1 natively,
    # ceil((150 - 64) / 48) + 1 by ceil((250 - 64) / 48) + 1 resampled
    assert count == (6 * 11 if resolution == "native" else 3 * 5)
    # natively every pixel is valid: one data read per tile; resampled, the WarpedVRT's alpha
    # band marks the pixels outside the source: one mask and one data read per tile
    assert len(windows) == (count if resolution == "native" else 2 * count)
    for _, window in windows:
        assert window is not None and window.width <= 64 and window.height <= 64


@pytest.mark.parametrize(
    ("dtype", "nodata", "mask_reads"), [("uint8", 0, 0), ("int16", -9999, 0), ("float32", 0, 4)]
)
def test_integer_nodata_is_found_in_the_pixels_without_a_mask_read(
    tmp_path: Path, monkeypatch, dtype: str, nodata: float, mask_reads: int
) -> None:
    data = np.full((3, 64, 64), 120, dtype)
    data[:, :16, :] = nodata  # top quarter of the raster: no-data in every band
    data[1, 40, 40] = nodata  # one pixel no-data in band 2 only
    path = write_raster(tmp_path / "nd.tif", data, nodata=nodata)
    masks = []
    original = DatasetReader.read_masks

    def counting(self, *args, **kwargs):
        masks.append(kwargs.get("window"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatasetReader, "read_masks", counting)
    scale = {"uint8": 255.0, "int16": 120.0, "float32": 120.0}[dtype]
    meta = metadata(32)
    meta.input_scale = {dtype: scale}
    with RasterTiling.open(path, meta) as tiling:
        batch, fractions = tiling.read(list(tiling.tiles()))
    assert len(masks) == mask_reads
    # tiles (0, 0), (0, 1) are half no-data; (1, 1) misses one pixel
    assert fractions.tolist() == [0.5, 0.5, 1.0, 1 - 1 / 1024]
    assert np.allclose(batch[3], 120 / scale) and np.allclose(batch[0], 120 / scale)


def test_large_sparse_raster_reads_in_bounded_memory(tmp_path: Path) -> None:
    width = height = 8192  # 192 MiB of pixels if read whole
    path = sparse_raster(tmp_path / "sparse.tif", width, height, block=(4096, 4096, 512, 512))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    with RasterTiling.open(path, metadata(256)) as tiling:
        kept = [t for t in tiling.tiles() if tiling.read_tile(t)[0] is not None]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(kept) == 4  # the 512 px block is 2 x 2 tiles
    assert peak < 8 << 20


# -- resolution ------------------------------------------------------------------------------


def test_metres_per_degree_on_wgs84() -> None:
    per_lon, per_lat = metres_per_degree(45.0)
    assert per_lon == pytest.approx(78846.8, abs=0.1)
    assert per_lat == pytest.approx(111131.7, abs=0.1)
    assert metres_per_degree(0.0)[0] == pytest.approx(111319.49, abs=0.01)


def test_geographic_raster_resampled_to_metres_at_its_centre_latitude(tmp_path: Path) -> None:
    # 0.0001 deg pixels centred on latitude 45 N: ~7.9 m east-west, ~11.1 m north-south
    transform = from_origin(10.0, 45.02, 0.0001, 0.0001)
    data = painted([[RED, GREEN], [BLUE, RED]], 200)
    path = write_raster(tmp_path / "geo.tif", data, crs="EPSG:4326", transform=transform)
    options = TilingOptions(resolution=20.0)
    with RasterTiling.open(path, metadata(32), options) as tiling:
        per_lon, per_lat = metres_per_degree(45.0)
        assert tiling.resampled
        assert tiling.transform.a == pytest.approx(20.0 / per_lon, rel=1e-12)
        assert tiling.transform.e == pytest.approx(-20.0 / per_lat, rel=1e-12)
        assert (tiling.transform.c, tiling.transform.f) == (10.0, 45.02)
        assert tiling.width == round(0.04 / (20.0 / per_lon)) == 158
        assert tiling.height == round(0.04 / (20.0 / per_lat)) == 222
        assert tiling.crs.to_epsg() == 4326
        # averaging uniform areas keeps their colour: the top-left tile is red
        batch, fractions = tiling.read([tiling.tile(0, 0)])
    assert fractions[0] == 1.0
    assert np.allclose(batch[0, :, 16, 16], np.array(RED) / 255.0, atol=1 / 255)


def test_model_resolution_resamples_a_projected_raster(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "p.tif", painted([[RED, GREEN], [BLUE, RED]], 64))
    with RasterTiling.open(path, metadata(32, resolution_cm=2000)) as tiling:
        assert tiling.resampled and tiling.transform == utm_transform(20.0)
        assert (tiling.width, tiling.height, tiling.n_rows, tiling.n_cols) == (64, 64, 2, 2)
        batch, _ = tiling.read(list(tiling.tiles()))
    expected = np.array([RED, GREEN, BLUE, RED], np.float32) / 255.0
    assert np.allclose(batch[:, :, 5, 5], expected, atol=1e-6)
    native = TilingOptions(resolution="native")
    with RasterTiling.open(path, metadata(32, resolution_cm=2000), native) as tiling:
        assert not tiling.resampled and tiling.transform == utm_transform(10.0)
    near = TilingOptions(resolution=10.05)  # within 1 %: read as is
    with RasterTiling.open(path, metadata(32), near) as tiling:
        assert not tiling.resampled


def test_resampling_keeps_nodata_invalid(tmp_path: Path) -> None:
    data = painted([[GREEN, GREEN]], 64)
    data[:, :, 64:] = 0
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    with RasterTiling.open(path, metadata(32), TilingOptions(resolution=20.0)) as tiling:
        assert tiling.resampled and (tiling.width, tiling.height) == (64, 32)
        _, fractions = tiling.read(list(tiling.tiles()))
    assert fractions.tolist() == [1.0, 0.0]


# -- bad input -------------------------------------------------------------------------------


def test_bad_rasters_are_refused_with_one_line(tmp_path: Path) -> None:
    small = uniform(tmp_path / "small.tif", 40, 20)
    no_crs = uniform(tmp_path / "nocrs.tif", 64, 64, crs=None)
    rotated = uniform(
        tmp_path / "rot.tif", 64, 64, transform=utm_transform() @ rasterio.Affine.rotation(10)
    )
    text = tmp_path / "notes.tif"
    text.write_text("not a raster\n")
    two_bands = write_raster(tmp_path / "two.tif", np.ones((2, 64, 64), np.uint8))
    cases = [
        (tmp_path / "missing.tif", TilingOptions(), "does not exist"),
        (tmp_path, TilingOptions(), "is a folder"),
        (text, TilingOptions(), "not a raster GDAL can read"),
        (small, TilingOptions(), "40 x 20 px, smaller than one 32 x 32 px tile"),
        (no_crs, TilingOptions(), "has no CRS"),
        (rotated, TilingOptions(), "rotated"),
        (two_bands, TilingOptions(), "has 2 band\\(s\\); the model takes 3.*--bands"),
        (two_bands, TilingOptions(bands=(1, 2)), "model takes 3 band\\(s\\); --bands chose 2"),
        (two_bands, TilingOptions(bands=(1, 2, 3)), "has 2 band\\(s\\)"),
        (small, TilingOptions(min_valid=1.5), "min-valid"),
        (small, TilingOptions(edge="wrap"), "edge must be"),
        (small, TilingOptions(resolution="fine"), "resolution must be"),
        (small, TilingOptions(bands=(0, 1, 2)), "numbered from 1"),
    ]
    for path, options, message in cases:
        with pytest.raises(SncaError, match=message) as caught:
            RasterTiling.open(path, metadata(32), options)
        assert "\n" not in str(caught.value)


# -- GDAL block cache --------------------------------------------------------------------

GIB = 1 << 30


@pytest.fixture
def large_gdal_cache(monkeypatch):
    """GDAL's cache already initialised (a raster read) and then set to 1 GiB, as QGIS leaves
    it; no GDAL_CACHEMAX in the environment. Restores the value the process had."""
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    before = get_gdal_config("GDAL_CACHEMAX")
    set_gdal_config("GDAL_CACHEMAX", GIB)
    yield
    set_gdal_config("GDAL_CACHEMAX", before)


def test_block_cache_is_capped_while_a_raster_is_open(tmp_path: Path, large_gdal_cache) -> None:
    path = uniform(tmp_path / "r.tif", 64, 64)
    with rasterio.open(path) as plain:  # GDAL has read blocks before snca opens anything
        plain.read()
    assert get_gdal_config("GDAL_CACHEMAX") == GIB
    with RasterTiling.open(path, metadata()) as tiling:
        assert get_gdal_config("GDAL_CACHEMAX") == BLOCK_CACHE_MIN_BYTES
        tiling.read_tile(tiling.tile(0, 0))
        assert get_gdal_config("GDAL_CACHEMAX") == BLOCK_CACHE_MIN_BYTES
    assert get_gdal_config("GDAL_CACHEMAX") == GIB


def test_block_cache_cap_is_restored_by_the_last_of_nested_users(
    tmp_path: Path, large_gdal_cache
) -> None:
    path = uniform(tmp_path / "r.tif", 64, 64)
    first = RasterTiling.open(path, metadata())
    with bounded_block_cache(BLOCK_CACHE_MIN_BYTES):
        second = RasterTiling.open(path, metadata())
    first.close()
    first.close()  # a second close releases nothing more
    assert get_gdal_config("GDAL_CACHEMAX") == BLOCK_CACHE_MIN_BYTES
    second.close()
    assert get_gdal_config("GDAL_CACHEMAX") == GIB


def test_the_smallest_of_concurrent_caps_applies(tmp_path: Path, large_gdal_cache) -> None:
    path = uniform(tmp_path / "r.tif", 64, 64)
    with RasterTiling.open(path, metadata()):
        with bounded_block_cache(16 << 20):
            assert get_gdal_config("GDAL_CACHEMAX") == 16 << 20
        assert get_gdal_config("GDAL_CACHEMAX") == BLOCK_CACHE_MIN_BYTES
    assert get_gdal_config("GDAL_CACHEMAX") == GIB


def test_block_cache_cap_released_when_open_fails(tmp_path: Path, large_gdal_cache) -> None:
    path = uniform(tmp_path / "small.tif", 16, 16)
    with pytest.raises(SncaError, match="smaller than one"):
        RasterTiling.open(path, metadata(tile_size=32))
    assert get_gdal_config("GDAL_CACHEMAX") == GIB


def test_block_cache_never_grows_and_respects_gdal_cachemax(
    tmp_path: Path, large_gdal_cache, monkeypatch
) -> None:
    path = uniform(tmp_path / "r.tif", 64, 64)
    set_gdal_config("GDAL_CACHEMAX", 32 << 20)  # already smaller than the cap: kept
    with RasterTiling.open(path, metadata()):
        assert get_gdal_config("GDAL_CACHEMAX") == 32 << 20
    set_gdal_config("GDAL_CACHEMAX", GIB)
    monkeypatch.setenv("GDAL_CACHEMAX", "1024")  # the user's choice wins
    with RasterTiling.open(path, metadata()):
        assert get_gdal_config("GDAL_CACHEMAX") == GIB


def test_block_cache_holds_a_row_of_tiles_of_wide_rasters(tmp_path: Path) -> None:
    def wide(width: int, dtype: str = "uint8") -> DatasetReader:
        data = np.zeros((3, 16, width), dtype)
        blocks = {"tiled": True, "blockxsize": 512, "blockysize": 512}
        return rasterio.open(write_raster(tmp_path / f"w{width}.tif", data, **blocks))

    with wide(16000) as narrow, wide(30000) as raster, wide(30000, "uint16") as deep:
        assert block_cache_bytes(narrow, 224) == BLOCK_CACHE_MIN_BYTES  # 16000 x 1248 x 3 < 64 MiB
        # a row of 224 px tiles straddles two rows of 512 px blocks, and the next one is read
        assert block_cache_bytes(raster, 224) == 30000 * (224 + 2 * 512) * 3
        assert block_cache_bytes(deep, 224) == 30000 * (224 + 2 * 512) * 6
        assert block_cache_bytes(deep, 4000) == BLOCK_CACHE_MAX_BYTES
