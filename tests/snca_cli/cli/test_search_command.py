"""`snca search` through the CLI: one-line errors for bad queries and a missing index, and image
queries of real AID scenes that find their own tiles."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.tasks.index import store, verified
from tests.helpers.aid_mosaic import CELL, GRID, held_out_scenes, write_aid_mosaic

runner = CliRunner()
#: AID classes whose scenes use little of the uint8 range (the percentile stretch, when such
#: a scene is scaled on its own), and classes of higher contrast that fill the mosaic up.
LOW_CONTRAST_CLASSES = ("Desert", "Meadow", "BareLand")
HIGH_CONTRAST_CLASSES = ("Airport", "Beach", "Forest", "Farmland")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give a query: --xy, --lonlat, --tile-id, --point or --image"),
        (["--tile-id", "1", "--lonlat", "1", "2"], "--lonlat and --image each make a query"),
        (["--not-tile-id", "1"], "need a positive example as well"),
        (["--tile-id", "1", "--not-tile-id", "1"], "is both a positive and a negative"),
        (["--tile-id", "1", "--point", "3"], "--point takes X,Y"),
        (["--tile-id", "1", "--not-point", "a,b"], "--not-point takes X,Y"),
        (["--xy", "1", "2", "--raster", "a.tif"], "--raster goes with --tile-id"),
        (["--tile-id", "1", "--raster", "a.tif"], "raster 'a.tif' is not in the index"),
        (["--tile-id", "1", "--crs", "EPSG:4326"], "--crs goes with --xy"),
        (["--tile-id", "1", "--model", "m.onnx"], "--model goes with --image"),
        (["--tile-id", "99"], "tile id 99 is not in the index"),
        (["--lonlat", "100", "-80"], "is outside every raster of the index"),
        (["--tile-id", "1", "-k", "0"], "-k must be at least 1"),
        (["--tile-id", "1", "--class", "nope"], "class 'nope' is not one of"),
    ],
)
def test_cli_search_errors_are_one_line(
    index_dir: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(app, ["search", str(index_dir), *arguments])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_search_of_a_missing_index(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", str(tmp_path / "none"), "--tile-id", "1"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_search_verifies_the_files_once_and_again_with_verify(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    digest = store.file_digest

    def noted(handle):  # type: ignore[no-untyped-def]
        hashed.append(handle.name)
        return digest(handle)

    monkeypatch.setattr(store, "file_digest", noted)
    monkeypatch.setattr(verified, "RACY_S", 0.01)
    time.sleep(0.05)  # the index's files settle
    for options, files in (([], 4), ([], 0), (["--verify"], 4), ([], 0)):
        hashed.clear()
        result = runner.invoke(app, ["search", str(index_dir), "--tile-id", "1", *options])
        assert result.exit_code == 0, result.output
        assert "searched 12 tiles with hnswlib" in result.output
        assert len(hashed) == files, (options, hashed)


def test_cli_search_refuses_a_bad_output_before_opening_the_index(tmp_path: Path) -> None:
    # the index does not even exist: the output is checked first
    out = tmp_path / "hits.txt"
    result = runner.invoke(
        app, ["search", str(tmp_path / "none"), "--tile-id", "1", "-o", str(out)]
    )
    assert result.exit_code == 2 and "use .gpkg or .geojson" in result.output
    (tmp_path / "hits.geojson").write_text("{}")
    args = ["search", str(tmp_path / "none"), "--tile-id", "1", "-o", str(tmp_path / "hits.gpkg")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "not a GeoJSON copy written by snca" in result.output


@pytest.mark.shared_data
def test_image_query_of_an_indexed_tiles_pixels_finds_that_tile(
    tmp_path: Path, aid_dir: Path
) -> None:
    """`snca search --image` scales the query like the index's raster: each tile of a mosaic of
    16 real AID scenes (4 Desert, 4 Meadow, 4 BareLand, 4 of high contrast), saved as a PNG of
    its exact pixels and searched with the shipped model, is its own first hit (similarity 1),
    low-contrast scenes included (on their own they would be percentile-stretched; the mosaic
    is divided by 255)."""
    scenes = held_out_scenes(LOW_CONTRAST_CLASSES, per_class=4)
    scenes += held_out_scenes(HIGH_CONTRAST_CLASSES)
    mosaic = tmp_path / "aid_mosaic.tif"
    write_aid_mosaic(aid_dir, mosaic, scenes)
    index = tmp_path / "aid.index"
    built = runner.invoke(app, ["index", "build", str(mosaic), "-o", str(index)])
    assert built.exit_code == 0, built.output
    with rasterio.open(mosaic) as src:
        pixels = np.moveaxis(src.read(), 0, -1)
    every_tile = str(GRID * GRID)
    found: dict[str, tuple[int, float]] = {}  # scene: (rank of its tile, similarity)
    for tile_id, scene in enumerate(scenes):
        row, col = divmod(tile_id, GRID)
        cell = pixels[row * CELL : (row + 1) * CELL, col * CELL : (col + 1) * CELL]
        query = tmp_path / f"tile_{tile_id}.png"
        Image.fromarray(cell).save(query)
        hits = tmp_path / f"hits_{tile_id}.geojson"
        args = ["search", str(index), "--image", str(query), "-k", every_tile, "-o", str(hits)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        ranked = [f["properties"] for f in json.loads(hits.read_text())["features"]]
        own = next(hit for hit in ranked if hit["tile_id"] == tile_id)
        found[scene] = (own["rank"], own["similarity"])
    missed = {scene: hit for scene, hit in found.items() if hit[0] != 1 or hit[1] < 0.9999}
    assert not missed, f"image queries not found as their own tile (rank, similarity): {missed}"
