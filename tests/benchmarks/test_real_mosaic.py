"""The benchmark mosaic of AID test scenes (`benchmarks/real_mosaic.py`), on a fake AID folder:
each cell lies where the transform says, holds its scene's pixels and is named by its class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import from_bounds
from real_mosaic import BLOCK, mosaic_scenes, write_real_mosaic

from tests.helpers.aid_mosaic import CELL, ORIGIN, PIXEL_M, held_out_split

GRID = 3


def colour_of(scene: str) -> tuple[int, int, int]:
    """A colour of its own for each scene."""
    value = sum(scene.encode()) * 7919
    return value % 251, (value // 251) % 251, (value // 63001) % 251


@pytest.fixture
def fake_aid(tmp_path: Path) -> Path:
    """The scenes a 3 x 3 mosaic takes, as plain PNG-coded images of one colour each, at
    their paths in AID (the test split's names; the file ends in .jpg but any format reads)."""
    folder = tmp_path / "aid"
    for scene in mosaic_scenes(GRID):
        (folder / scene).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (CELL, CELL), colour_of(scene)).save(folder / scene, format="PNG")
    return folder


def test_each_cell_holds_its_scene_where_the_transform_puts_it(
    fake_aid: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mosaic.tif"
    classes = write_real_mosaic(fake_aid, path, grid=GRID)
    scenes = mosaic_scenes(GRID)
    assert classes == [scene.split("/")[0] for scene in scenes]
    with rasterio.open(path) as src:
        assert (src.width, src.height, src.count) == (GRID * CELL, GRID * CELL, 3)
        assert src.dtypes == ("uint8",) * 3
        assert src.crs.to_epsg() == 32633
        assert src.res == (PIXEL_M, PIXEL_M)
        assert src.block_shapes == [(BLOCK, BLOCK)] * 3
        assert src.compression.name == "deflate"
        for i, scene in enumerate(scenes):
            row, col = divmod(i, GRID)
            west = ORIGIN[0] + col * CELL * PIXEL_M
            north = ORIGIN[1] - row * CELL * PIXEL_M
            window = from_bounds(
                west, north - CELL * PIXEL_M, west + CELL * PIXEL_M, north, src.transform
            )
            assert (window.col_off, window.row_off) == (col * CELL, row * CELL)
            pixels = src.read(window=window)
            expected = np.array(colour_of(scene), np.uint8)[:, None, None]
            assert np.array_equal(pixels, np.broadcast_to(expected, (3, CELL, CELL))), scene


def test_scenes_are_distinct_test_scenes_up_to_the_whole_split() -> None:
    split = held_out_split()
    scenes = mosaic_scenes(44)
    assert len(set(scenes)) == 44 * 44 and set(scenes) <= set(split)
    assert mosaic_scenes(GRID) == mosaic_scenes(GRID)  # a fixed order
    with pytest.raises(ValueError, match="test split has 2000"):
        mosaic_scenes(45)
