"""Tile grid geometry (snca_cli.runtime.grid): offsets, bounds, edges, nearest tile, ownership."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.grid import tile_offsets
from snca_cli.runtime.raster_tiles import RasterTiling
from tests.helpers.rasters import (
    utm_transform,
)
from tests.helpers.tiling import metadata, uniform


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
        assert np.diff(tiling.grid.col_offsets)[:-1].tolist() == [stride] * (tiling.n_cols - 2)


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
        owned = tiling.grid.owned_pixels()
        # columns: [32, 32, 18, 18]; rows (offsets 0, 32, 38; owner changes at 32, 51): [32, 19, 19]
        assert owned.tolist() == (np.outer([32, 19, 19], [32, 32, 18, 18])).tolist()
        assert owned.sum() == 100 * 70
