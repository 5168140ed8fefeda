"""`snca index build/add` through the CLI, then `snca search` over the index they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from rasterio.warp import transform as transform_coords
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from tests.helpers.index_data import (
    TILE,
    colour_grid,
    read_layer,
)
from tests.helpers.rasters import (
    ORIGIN,
    PIXEL,
    painted_raster,
)

runner = CliRunner()


def test_cli_build_add_and_search(tmp_path: Path, model: OnnxModel, colours: np.ndarray) -> None:
    first = painted_raster(tmp_path / "first.tif", colours, TILE)
    second = painted_raster(tmp_path / "second.tif", colour_grid(1, 2, seed=3), TILE)
    idx = str(tmp_path / "idx")
    built = runner.invoke(
        app, ["index", "build", str(first), "-m", str(model.path), "-o", idx, "--M", "8"]
    )
    assert built.exit_code == 0, built.output
    assert "indexed 12 tiles of 1 raster(s)" in " ".join(built.output.split())
    added = runner.invoke(app, ["index", "add", idx, str(second), "-m", str(model.path)])
    assert added.exit_code == 0, added.output
    assert "holds 14 tiles" in " ".join(added.output.split())
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["index"]["M"] == 8

    x, y = ORIGIN[0] + (2 * TILE + 3) * PIXEL, ORIGIN[1] - (TILE + 5) * PIXEL
    (lon,), (lat,) = transform_coords("EPSG:32633", "EPSG:4326", [x], [y])
    out = tmp_path / "hits.gpkg"
    for query in (
        ["--tile-id", "6"],
        ["--xy", str(x), str(y)],
        ["--xy", str(x), str(y), "--crs", "EPSG:32633"],
        ["--lonlat", str(lon), str(lat), "--exact"],
    ):
        searched = runner.invoke(app, ["search", idx, *query, "-k", "3", "-o", str(out), "--force"])
        assert searched.exit_code == 0, searched.output
        assert "query: tile 6 (row 1, col 2) of first.tif" in searched.output
        assert "3 most similar to tile 6" in searched.output
        fields, _ = read_layer(out, "similar_tiles")
        assert fields["rank"].tolist() == [1, 2, 3] and 6 not in fields["tile_id"].tolist()
    assert (tmp_path / "hits.geojson").is_file()

    # tile 1 exists in both rasters (grid ids, as snca classify numbers tiles): name one
    ambiguous = runner.invoke(app, ["search", idx, "--tile-id", "1"])
    assert ambiguous.exit_code == 2 and "name the raster" in ambiguous.output
    named = runner.invoke(app, ["search", idx, "--tile-id", "1", "--raster", "second.tif"])
    assert named.exit_code == 0 and "query: tile 1 (row 0, col 1) of second.tif" in named.output

    # several examples: positives by id and by point, a negative; all written to layer query
    examples = ["--tile-id", "6", "--point", f"{x},{y}", "--tile-id", "2", "--not-tile-id", "3"]
    searched = runner.invoke(
        app,
        ["search", idx, *examples, "--raster", "first.tif", "-k", "4", "-o", str(out), "--force"],
    )
    assert searched.exit_code == 0, searched.output
    assert "unlike: tile 3 (row 0, col 3) of first.tif" in searched.output
    query_fields, _ = read_layer(out, "query")
    assert query_fields["example"].tolist() == ["positive"] * 2 + ["negative"]
    assert query_fields["tile_id"].tolist() == [6, 2, 3]  # tile 6 given twice counts once
    fields, _ = read_layer(out, "similar_tiles")
    assert len(fields["rank"]) == 4 and not {2, 3, 6} & set(fields["tile_id"].tolist())


def test_cli_uses_the_shipped_model_without_model(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray, monkeypatch
) -> None:
    monkeypatch.setattr("snca_cli.runtime.default_model.default_model_path", lambda: model.path)
    first = painted_raster(tmp_path / "first.tif", colours, TILE)
    second = painted_raster(tmp_path / "second.tif", colour_grid(1, 2, seed=3), TILE)
    idx = str(tmp_path / "idx")
    assert runner.invoke(app, ["index", "build", str(first), "-o", idx]).exit_code == 0
    added = runner.invoke(app, ["index", "add", idx, str(second)])
    assert added.exit_code == 0 and "holds 14 tiles" in " ".join(added.output.split())
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert model.sha256 in json.dumps(manifest)
    colour = np.array(colours[1, 2], dtype=np.uint8)  # tile 6's colour: an exact match
    Image.fromarray(np.tile(colour, (TILE, TILE, 1))).save(tmp_path / "query.png")
    searched = runner.invoke(app, ["search", idx, "--image", str(tmp_path / "query.png")])
    assert searched.exit_code == 0, searched.output
    rows = [[c.strip() for c in line.split("│")[1:4]] for line in searched.stdout.splitlines()]
    assert ["1", "1.0000", "6"] in rows  # rank 1: tile 6, similarity 1
