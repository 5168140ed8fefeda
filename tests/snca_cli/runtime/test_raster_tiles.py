"""Tile reads of snca_cli.runtime.raster_tiles: bands, no-data, masks, memory, bad rasters."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.raster_tiles import RasterTiling
from tests.helpers.rasters import (
    BLUE,
    GREEN,
    RED,
    painted,
    sparse_raster,
    utm_transform,
    write_raster,
)
from tests.helpers.tiling import metadata, uniform


def test_padded_edges_reach_past_the_raster_as_nodata(tmp_path: Path) -> None:
    path = uniform(tmp_path / "r.tif", 100, 64)
    options = TilingOptions(edge="pad", min_valid=0.0)
    with RasterTiling.open(path, metadata(32), options) as tiling:
        assert tiling.grid.col_offsets.tolist() == [0, 32, 64, 96]
        edge = tiling.tile(0, 3)
        assert edge.bounds == (500960.0, 4999680.0, 501280.0, 5000000.0)
        batch, fractions = tiling.read([tiling.tile(0, 0), edge])
        assert fractions.tolist() == [1.0, 4 / 32]  # 4 of 32 columns lie inside
        # the padding takes the valid mean: the whole tile reads as the uniform value
        assert np.allclose(batch[1], 100 / 255)


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
        sampled = len(windows)  # the default (auto) scaling samples tiles once, at opening
        for tile in tiling.tiles():
            tiling.read_tile(tile)
        count = tiling.tile_count
    # stride 48: ceil((300 - 64) / 48) + 1 by ceil((500 - 64) / 48) + 1 natively,
    # ceil((150 - 64) / 48) + 1 by ceil((250 - 64) / 48) + 1 resampled
    assert count == (6 * 11 if resolution == "native" else 3 * 5)
    # natively every pixel is valid: one data read per tile; resampled, the WarpedVRT's alpha
    # band marks the pixels outside the source: one mask and one data read per tile
    assert len(windows) - sampled == (count if resolution == "native" else 2 * count)
    assert sampled <= (count if resolution == "native" else 2 * count)
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
    with RasterTiling.open(path, meta, TilingOptions(stretch="model")) as tiling:
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


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("nodata", [None, -9999.0])
def test_non_finite_pixels_count_as_nodata_in_a_float_raster(
    tmp_path: Path, bad: float, nodata: float | None
) -> None:
    data = np.full((3, 32, 64), 0.5, dtype=np.float32)
    data[:, :8, :32] = 0.25
    data[1, 8:, :32] = bad  # 3/4 of tile 0 non-finite in one band: invalid
    data[:, :, 32:] = bad  # tile 1 entirely non-finite
    path = write_raster(tmp_path / "f.tif", data, nodata=nodata)
    with RasterTiling.open(path, metadata(32), TilingOptions(min_valid=0.2)) as tiling:
        batch, fractions = tiling.read([tiling.tile(0, 0), tiling.tile(0, 1)])
        assert fractions.tolist() == [0.25, 0.0]
        assert np.isfinite(batch).all()
        assert np.allclose(batch[0], 0.25)  # the invalid pixels take the valid mean
        assert tiling.read_tile(tiling.tile(0, 1)) == (None, 0.0)
        pixels, fraction = tiling.read_tile(tiling.tile(0, 0))
        assert fraction == 0.25 and np.allclose(pixels, 0.25)


@pytest.mark.parametrize(
    ("given", "gdal"),
    [
        ("/vsicurl/https://host/a.tif", "/vsicurl/https://host/a.tif"),
        (Path("/vsicurl/https://host/a.tif"), "/vsicurl/https://host/a.tif"),
        (Path("https://host/dir/a.tif"), "https://host/dir/a.tif"),
        (
            Path("/vsizip//vsicurl/https://host/a.zip/a.tif"),
            "/vsizip//vsicurl/https://host/a.zip/a.tif",
        ),
        (Path("/vsis3/bucket/key.tif"), "/vsis3/bucket/key.tif"),
        (Path("/data/https:/x.tif"), "/data/https:/x.tif"),
        (Path("rel/a.tif"), "rel/a.tif"),
    ],
)
def test_remote_names_reach_gdal_as_typed(given: object, gdal: str) -> None:
    from snca_cli.runtime.paths import gdal_path

    assert gdal_path(given) == gdal


def test_a_gdal_virtual_file_is_tiled_without_a_local_check(tmp_path: Path) -> None:
    from rasterio.io import MemoryFile

    path = write_raster(tmp_path / "r.tif", painted([[RED, GREEN]], 32))
    with MemoryFile(path.read_bytes(), filename="r.tif") as memory:
        assert memory.name.startswith("/vsimem/")
        with RasterTiling.open(Path(memory.name), metadata(32)) as tiling:
            pixels, fraction = tiling.read_tile(tiling.tile(0, 1))
    assert fraction == 1.0 and np.allclose(pixels[:, 0, 0], np.array(GREEN) / 255)
