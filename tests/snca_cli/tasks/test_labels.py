"""Labels on the map -> labelled tiles (snca_cli.tasks.labels): points pick the tile under them,
polygons the tiles at least half inside, any CRS; bad layers give one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rasterio.warp import transform as transform_coords

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.tasks.labels import (
    check_classes,
    class_counts,
    label_rasters,
    label_tiles,
    read_labels,
)
from tests.helpers.index_data import TILE
from tests.helpers.rasters import ORIGIN, PIXEL, painted_raster, utm_transform

TILE_M = TILE * PIXEL  # a tile is 80 m


def write_geojson(path: Path, features: list[tuple[dict, str | None]], crs: str | None) -> Path:
    """A GeoJSON of (geometry, kind) features, in ``crs`` (a named CRS member) or WGS84."""
    collection: dict = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"kind": kind}, "geometry": geometry}
            for geometry, kind in features
        ],
    }
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(collection))
    return path


def point(col: float, row: float) -> dict:
    """A point at (col, row) tiles from the painted raster's corner, in its UTM CRS."""
    return {"type": "Point", "coordinates": [ORIGIN[0] + col * TILE_M, ORIGIN[1] - row * TILE_M]}


def test_points_label_the_tile_under_them_in_any_crs(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    utm = [point(0.5, 0.5), point(2.3, 1.7), point(2.6, 1.2)]  # tiles 0, 6 and 6 again
    xs, ys = transform_coords(
        "EPSG:32633", "EPSG:4326", [3.5 * TILE_M + ORIGIN[0]], [ORIGIN[1] - 2.5 * TILE_M]
    )
    wgs84 = {"type": "Point", "coordinates": [xs[0], ys[0]]}  # tile 11 (row 2, col 3)
    path = write_geojson(
        tmp_path / "labels.geojson",
        [(utm[0], "water"), (utm[1], "forest"), (utm[2], "forest")],
        "EPSG:32633",
    )
    other = write_geojson(tmp_path / "wgs84.geojson", [(wgs84, "water")], None)
    with RasterTiling.open(raster, model.metadata) as tiling:
        found = label_tiles(read_labels(path, "kind"), tiling)
        far = label_tiles(read_labels(other, "kind"), tiling)
    assert [(t.tile.tile_id, t.class_name) for t in found.tiles] == [(0, "water"), (6, "forest")]
    assert (found.outside, found.conflicts) == (0, 0)
    assert [(t.tile.row, t.tile.col) for t in far.tiles] == [(2, 3)]
    assert class_counts(found.tiles) == {"forest": 1, "water": 1}


def test_a_polygon_labels_the_tiles_at_least_half_inside(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    # x from 0.4 to 2.6 tiles, y rows 0 .. 1: tile 0 is 60 % inside, tile 1 all, tile 2 60 %
    minx, maxx = ORIGIN[0] + 0.4 * TILE_M, ORIGIN[0] + 2.6 * TILE_M
    maxy, miny = ORIGIN[1], ORIGIN[1] - 1.0 * TILE_M
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    narrow = [[x + 0.25 * TILE_M, y] for x, y in ring]  # 0.65..2.85: tile 0 only 35 % inside
    path = write_geojson(
        tmp_path / "poly.geojson",
        [({"type": "Polygon", "coordinates": [ring]}, "field")],
        "EPSG:32633",
    )
    shifted = write_geojson(
        tmp_path / "shifted.geojson",
        [({"type": "Polygon", "coordinates": [narrow]}, "field")],
        "EPSG:32633",
    )
    with RasterTiling.open(raster, model.metadata) as tiling:
        tiles = label_tiles(read_labels(path, "kind"), tiling).tiles
        moved = label_tiles(read_labels(shifted, "kind"), tiling).tiles
    assert [t.tile.tile_id for t in tiles] == [0, 1, 2]
    assert [t.tile.tile_id for t in moved] == [1, 2]  # tile 0 only 35 % inside, tile 2 85 %


def test_conflicts_and_labels_outside_are_counted_not_used(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    path = write_geojson(
        tmp_path / "labels.geojson",
        [
            (point(0.2, 0.2), "a"),
            (point(0.8, 0.8), "b"),
            (point(40, 40), "a"),
            (point(1.5, 0.5), "b"),
        ],
        "EPSG:32633",
    )
    with RasterTiling.open(raster, model.metadata) as tiling:
        found = label_tiles(read_labels(path, "kind"), tiling)
    assert [(t.tile.tile_id, t.class_name) for t in found.tiles] == [(1, "b")]
    assert (found.outside, found.conflicts) == (1, 1)


def test_bad_label_layers_are_refused_in_one_line(tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "l.geojson", [(point(0, 0), "a")], "EPSG:32633")
    with pytest.raises(SncaError, match=r"has no field 'class' \(fields: kind\)"):
        read_labels(path, "class")
    with pytest.raises(SncaError, match="does not exist"):
        read_labels(tmp_path / "none.gpkg", "kind")
    (tmp_path / "bad.geojson").write_text("not json")
    with pytest.raises(SncaError, match="not a vector layer GDAL can read"):
        read_labels(tmp_path / "bad.geojson", "kind")
    empty = write_geojson(tmp_path / "e.geojson", [(point(0, 0), None)], "EPSG:32633")
    with pytest.raises(SncaError, match="no feature with a class"):
        read_labels(empty, "kind")
    line = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    lines = write_geojson(tmp_path / "line.geojson", [(line, "a")], "EPSG:32633")
    with pytest.raises(SncaError, match="points or polygons, not LineString"):
        read_labels(lines, "kind")
    long = write_geojson(tmp_path / "long.geojson", [(point(0, 0), "x" * 1001)], "EPSG:32633")
    with pytest.raises(SncaError, match=r"long.geojson: class value 'x{40}'... is 1,001 char"):
        read_labels(long, "kind")  # longer than a model's class names may be


def test_class_checks_want_two_classes_and_warn_of_single_examples() -> None:
    with pytest.raises(SncaError, match="at least two classes \\(only 'a'\\)"):
        check_classes({"a": 3}, "labels.gpkg")
    assert check_classes({"a": 3, "b": 1}, "x") == [
        "class 'b' has a single labelled tile: add more for a reliable head"
    ]


def test_labels_on_one_of_two_rasters_are_not_outside_every_raster(
    tmp_path: Path, model: OnnxModel, raster: Path, colours
) -> None:
    """A label counted once per raster it misses was reported "outside every raster"."""
    east = utm_transform(origin=(ORIGIN[0] + colours.shape[1] * TILE_M, ORIGIN[1]))
    beside = painted_raster(tmp_path / "beside.tif", colours, TILE, transform=east)
    path = write_geojson(
        tmp_path / "labels.geojson",
        [(point(0.5, 0.5), "a"), (point(colours.shape[1] + 0.5, 0.5), "b"), (point(99, 0), "a")],
        "EPSG:32633",
    )
    tiles, warnings = label_rasters(
        read_labels(path, "kind"), [raster, beside], model.metadata, TilingOptions()
    )
    assert [(t.raster.name, t.class_name) for t in tiles] == [
        ("painted.tif", "a"),
        ("beside.tif", "b"),
    ]
    assert warnings == ["1 label(s) fall outside every raster (ignored)"]


def test_a_polygon_under_half_of_every_tile_is_named_as_such(
    tmp_path: Path, model: OnnxModel, raster: Path
) -> None:
    """It was counted as a label outside every raster; its largest cover is kept."""
    x, y = ORIGIN[0] + TILE_M, ORIGIN[1] - TILE_M  # the corner of 4 tiles
    ring = [
        [x - 40, y - 40],
        [x + 40, y - 40],
        [x + 40, y + 40],
        [x - 40, y + 40],
        [x - 40, y - 40],
    ]
    box = {"type": "Polygon", "coordinates": [ring]}  # 80 x 80 m: a quarter in each of 4 tiles
    path = write_geojson(tmp_path / "l.geojson", [(box, "a"), (point(0.5, 1.5), "b")], "EPSG:32633")
    labels = read_labels(path, "kind")
    with RasterTiling.open(raster, model.metadata) as tiling:
        found = label_tiles(labels, tiling)
    assert found.cover == [0.25, 1.0] and found.outside == 0
    _, warnings = label_rasters(labels, [raster], model.metadata, TilingOptions())
    assert warnings == [
        "1 polygon(s) cover less than half of any tile (ignored; the largest covers 25.0 % of "
        "a tile, and a polygon labels the tiles at least half inside it)"
    ]
