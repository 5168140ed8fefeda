"""Label layers for the tests: points on the tiles of painted rasters, and on known places of
the real Landsat scene."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.index_data import TILE
from tests.helpers.rasters import ORIGIN, PIXEL

#: Pixels (col, row) of the 300 m Landsat scene RGB.byte.tif that show each kind, read off the
#: image: open water far out, the shallow turquoise water of the coast, and land. The cloud
#: bank in the north (tiles rows 1-4, cols 4-9 at 100 m) is not labelled.
LANDSAT_PLACES = {
    "deep water": [(600, 300), (520, 500), (700, 200), (650, 450), (560, 380), (480, 600)],
    "shallow water": [(120, 400), (60, 300), (150, 600), (40, 500), (100, 250)],
    "land": [(280, 340), (400, 580), (230, 250), (300, 420), (200, 300)],
}
#: Pixels (col, row) on the clouds in the north of the same scene.
LANDSAT_CLOUDS = [(425, 90), (465, 90), (330, 215), (230, 160), (385, 170)]


def tile_points_file(
    path: Path, labels: dict[str, list[tuple[int, int]]], tile: int = TILE, field: str = "cover"
) -> Path:
    """A GeoJSON of points at the centres of the (row, col) tiles of a painted raster (in its
    UTM CRS), with the class in ``field``."""
    features = [
        {
            "type": "Feature",
            "properties": {field: name},
            "geometry": {
                "type": "Point",
                "coordinates": [
                    ORIGIN[0] + (col + 0.5) * tile * PIXEL,
                    ORIGIN[1] - (row + 0.5) * tile * PIXEL,
                ],
            },
        }
        for name, cells in labels.items()
        for row, col in cells
    ]
    return _painted_raster_features(path, features)


def tile_boxes_file(
    path: Path,
    labels: dict[str, list[tuple[float, float, float, float]]],
    tile: int = TILE,
    field: str = "cover",
) -> Path:
    """A GeoJSON of rectangles ``(col0, row0, col1, row1)``, in tiles from the corner of a
    painted raster (in its UTM CRS), with the class in ``field``."""

    def corner(col: float, row: float) -> list[float]:
        return [ORIGIN[0] + col * tile * PIXEL, ORIGIN[1] - row * tile * PIXEL]

    features = [
        {
            "type": "Feature",
            "properties": {field: name},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [corner(c0, r0), corner(c1, r0), corner(c1, r1), corner(c0, r1), corner(c0, r0)]
                ],
            },
        }
        for name, boxes in labels.items()
        for c0, r0, c1, r1 in boxes
    ]
    return _painted_raster_features(path, features)


def _painted_raster_features(path: Path, features: list[dict]) -> Path:
    """Write ``features`` as a GeoJSON in the painted rasters' CRS (UTM zone 33N)."""
    crs = {"type": "name", "properties": {"name": "EPSG:32633"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    return path


def landsat_points_file(
    path: Path, raster: Path, places: dict[str, list[tuple[int, int]]], field: str = "kind"
) -> Path:
    """A GeoJSON (EPSG:4326, as a GPS or a web map gives them) of points on pixels (col, row)
    of ``raster``, with the class in ``field``."""
    import rasterio
    from rasterio.warp import transform as transform_coords

    features = []
    with rasterio.open(raster) as src:
        for name, points in places.items():
            for col, row in points:
                x, y = src.xy(row, col)
                (lon,), (lat,) = transform_coords(src.crs, "EPSG:4326", [x], [y])
                features.append(
                    {
                        "type": "Feature",
                        "properties": {field: name},
                        "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    }
                )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path
