"""GDAL block cache bounds of snca_cli.runtime.block_cache while rasters are open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.io import DatasetReader

from snca_cli.errors import SncaError
from snca_cli.runtime.block_cache import (
    BLOCK_CACHE_MAX_BYTES,
    BLOCK_CACHE_MIN_BYTES,
    block_cache_bytes,
    bounded_block_cache,
)
from snca_cli.runtime.raster_tiles import RasterTiling
from tests.helpers.rasters import (
    write_raster,
)
from tests.helpers.tiling import metadata, uniform

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
