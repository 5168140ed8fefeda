"""Polygon layers of snca_cli.runtime.vector: WKB geometry, GeoPackage 1.2, GeoJSON in EPSG:4326."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio

from snca_cli.runtime.vector import box_rings, write_geojson_wgs84, write_polygons
from tests.helpers.gpkg import GPKG_APPLICATION_ID, gpkg_version


def test_geopackages_are_version_1_2_also_with_a_second_layer(tmp_path: Path) -> None:
    path = tmp_path / "tiles.gpkg"
    rings = box_rings(np.array([[500000.0, 4999000.0, 501000.0, 5000000.0]]))
    write_polygons(path, rings, {"tile_id": np.array([7])}, "EPSG:32633", layer="tiles")
    assert gpkg_version(path) == (GPKG_APPLICATION_ID, 10200)
    write_polygons(path, rings, {"rank": np.array([1])}, "EPSG:32633", layer="query")
    assert gpkg_version(path) == (GPKG_APPLICATION_ID, 10200)
    assert [name for name, _ in pyogrio.list_layers(path)] == ["tiles", "query"]
    info = pyogrio.read_info(path, layer="tiles")
    assert info["fields"].tolist() == ["tile_id"] and info["features"] == 1
    assert info["total_bounds"] == (500000.0, 4999000.0, 501000.0, 5000000.0)


def test_geojson_copy_is_longitude_latitude(tmp_path: Path) -> None:
    path = tmp_path / "tiles.geojson"
    # a 1 km box whose lower-left corner is UTM 33N's central meridian (15 E) at the equator
    rings = box_rings(np.array([[500000.0, 0.0, 501000.0, 1000.0]]))
    write_geojson_wgs84(path, rings, {"tile_id": np.array([1])}, "EPSG:32633", layer="tiles")
    ring = json.loads(path.read_text())["features"][0]["geometry"]["coordinates"][0]
    assert np.allclose(ring[0], [15.0, 0.0], atol=1e-9)
    # 1 km east and north at scale factor 0.9996, with 111,319.49 m per degree of longitude and
    # 110,574.27 m per degree of latitude at the equator
    expected = [15.0 + 1000 / (0.9996 * 111319.49), 1000 / (0.9996 * 110574.27)]
    assert np.allclose(ring[2], expected, atol=1e-6)
