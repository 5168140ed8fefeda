"""Polygon layers of snca_cli.runtime.vector: WKB geometry, GeoPackage 1.2, GeoJSON in EPSG:4326."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
from rasterio.warp import transform as transform_coords

from snca_cli.runtime.vector import (
    DENSIFY_SEGMENTS,
    box_rings,
    densify_rings,
    write_geojson_wgs84,
    write_polygons,
)
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
    write_geojson_wgs84(
        path, rings, {"tile_id": np.array([1])}, "EPSG:32633", "snca_test: x", layer="tiles"
    )
    ring = json.loads(path.read_text())["features"][0]["geometry"]["coordinates"][0]
    assert np.allclose(ring[0], [15.0, 0.0], atol=1e-9)
    # 1 km east and north at scale factor 0.9996, with 111,319.49 m per degree of longitude and
    # 110,574.27 m per degree of latitude at the equator
    expected = [15.0 + 1000 / (0.9996 * 111319.49), 1000 / (0.9996 * 110574.27)]
    # the edges are densified: corner 2 of the box is vertex 2 x DENSIFY_SEGMENTS
    assert len(ring) == 4 * DENSIFY_SEGMENTS + 1
    assert np.allclose(ring[2 * DENSIFY_SEGMENTS], expected, atol=1e-6)


def test_reprojected_edges_follow_the_curve(tmp_path: Path) -> None:
    """A 200 km tile far from UTM 33N's central meridian: its straight northern edge in UTM is a
    curve in longitude/latitude. Each GeoJSON vertex is the exact transform of a point on the
    UTM edge, so the edge's midpoint is off the straight line between the corners."""
    path = tmp_path / "big.geojson"
    rings = box_rings(np.array([[700000.0, 6000000.0, 900000.0, 6200000.0]]))
    write_geojson_wgs84(
        path, rings, {"tile_id": np.array([1])}, "EPSG:32633", "snca_test: x", layer="tiles"
    )
    ring = np.array(json.loads(path.read_text())["features"][0]["geometry"]["coordinates"][0])
    dense = densify_rings(rings)[0]
    lon, lat = transform_coords("EPSG:32633", "EPSG:4326", dense[:, 0], dense[:, 1])
    np.testing.assert_allclose(ring, np.stack([lon, lat], axis=1), atol=1e-7)
    top_right, top_left = ring[2 * DENSIFY_SEGMENTS], ring[3 * DENSIFY_SEGMENTS]
    midpoint = ring[2 * DENSIFY_SEGMENTS + DENSIFY_SEGMENTS // 2]
    # the chord's midpoint latitude differs from the edge's by more than 1 km (~0.01 degree)
    assert abs(midpoint[1] - (top_right[1] + top_left[1]) / 2) > 0.01


def test_densify_keeps_the_vertices_and_splits_each_edge() -> None:
    rings = box_rings(np.array([[0.0, 0.0, 4.0, 2.0]]))
    dense = densify_rings(rings, segments=4)
    assert dense.shape == (1, 17, 2)
    np.testing.assert_array_equal(dense[0, ::4], rings[0])
    np.testing.assert_array_equal(dense[0, :5, 0], [0.0, 1.0, 2.0, 3.0, 4.0])
    # no ring at all (every tile skipped): no ring out, the same vertex count
    assert densify_rings(box_rings(np.empty((0, 4))), segments=4).shape == (0, 17, 2)
