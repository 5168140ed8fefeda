"""Search results written by snca_cli.tasks.index.results: GeoPackage (with its layers' QGIS
styles), WGS 84 GeoJSON, CRS."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
from rasterio.warp import transform as transform_coords

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.styles import query_tiles_qml, similar_tiles_qml
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.search import TileIndex
from tests.helpers.gpkg import GPKG_APPLICATION_ID, gpkg_version, layer_styles
from tests.helpers.index_data import (
    TILE,
    read_layer,
)
from tests.helpers.rasters import (
    PIXEL,
    painted_raster,
    utm_transform,
)


def test_results_are_written_as_gpkg_and_wgs84_geojson(tmp_path: Path, index_dir: Path) -> None:
    result = TileIndex.open(index_dir).search_tile_id(5, k=4)
    written = result.write(tmp_path / "out" / "similar.gpkg")
    assert written == [tmp_path / "out" / "similar.gpkg", tmp_path / "out" / "similar.geojson"]
    assert [name for name, _ in pyogrio.list_layers(written[0])] == [
        "similar_tiles",
        "query",
        "layer_styles",
    ]
    assert gpkg_version(written[0]) == (GPKG_APPLICATION_ID, 10200)
    styles = {row["f_table_name"]: row["styleQML"] for row in layer_styles(written[0])}
    assert styles == {"similar_tiles": similar_tiles_qml(), "query": query_tiles_qml()}
    fields, bounds = read_layer(written[0], "similar_tiles")
    assert fields["rank"].tolist() == [1, 2, 3, 4]
    assert fields["tile_id"].tolist() == [h.tile.tile_id for h in result.hits]
    np.testing.assert_allclose(fields["similarity"], [h.similarity for h in result.hits])
    np.testing.assert_array_equal(bounds, [h.tile.bounds for h in result.hits])
    _, query_bounds = read_layer(written[0], "query")
    assert query_bounds.tolist() == [list(result.query.bounds)]
    assert pyogrio.read_info(written[0], layer="similar_tiles")["crs"] == "EPSG:32633"

    geojson = json.loads(written[1].read_text())
    first = geojson["features"][0]
    assert first["properties"]["rank"] == 1 and first["properties"]["query"] == "tile 5"
    minx, miny, _, _ = result.hits[0].tile.bounds
    (lon,), (lat,) = transform_coords("EPSG:32633", "EPSG:4326", [minx], [miny])
    assert first["geometry"]["coordinates"][0][0] == pytest.approx([lon, lat], abs=1e-7)
    with pytest.raises(SncaError, match="use --force"):
        result.write(tmp_path / "out" / "similar.gpkg")
    with pytest.raises(SncaError, match="use .gpkg or .geojson"):
        result.write(tmp_path / "out" / "similar.csv")


def test_hits_from_another_crs_are_reprojected_into_the_query_crs(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray
) -> None:
    a = painted_raster(tmp_path / "a.tif", colours, TILE)
    b = painted_raster(
        tmp_path / "b.tif",
        colours[:1, :1],
        TILE,
        crs="EPSG:32632",
        transform=utm_transform(origin=(700000.0, 5000000.0)),
    )
    build_index([a, b], model, tmp_path / "idx")
    result = TileIndex.open(tmp_path / "idx").search_tile_id(0, k=1, raster="a.tif")
    hit = result.hits[0].tile
    assert (hit.raster.name, hit.tile_id, hit.index_row) == ("b.tif", 0, 12)  # same colour
    assert result.hits[0].similarity == pytest.approx(1.0, abs=1e-6)
    result.write(tmp_path / "similar.gpkg")
    _, bounds = read_layer(tmp_path / "similar.gpkg", "similar_tiles")
    corners_x = [700000.0, 700000.0 + TILE * PIXEL] * 2
    corners_y = [5000000.0] * 2 + [5000000.0 - TILE * PIXEL] * 2
    xs, ys = transform_coords("EPSG:32632", "EPSG:32633", corners_x, corners_y)
    assert bounds[0, 0] == pytest.approx(min(xs), abs=1e-6)
    assert bounds[0, 3] == pytest.approx(max(ys), abs=1e-6)


def test_hits_of_remote_rasters_keep_their_gdal_names(tmp_path: Path, index_dir: Path) -> None:
    """A raster named by URL keeps its ``//`` in the written results (pathlib collapses it)."""
    result = TileIndex.open(index_dir).search_tile_id(5, k=2)
    url = "/vsicurl/https://example.org/scenes/a.tif"
    hits = [replace(h, tile=replace(h.tile, raster=Path(url))) for h in result.hits]
    remote = replace(result, hits=hits, positives=[replace(result.positives[0], raster=Path(url))])
    written = remote.write(tmp_path / "similar.gpkg")
    properties = json.loads(written[1].read_text())["features"][0]["properties"]
    assert properties["raster"] == url
    fields, _ = read_layer(written[0], "query")
    assert fields["raster"].tolist() == [url]
