"""Styles inside the files: QGIS's ``layer_styles`` table in a GeoPackage (read back with sqlite3)
and GDAL's PAM sidecar of a class map (read back by GDAL through rasterio)."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
from rasterio.transform import from_origin

from snca_cli.runtime.style_files import (
    LAYER_STYLES,
    STYLE_NAME,
    LayerStyle,
    write_class_pam,
    write_layer_styles,
)
from snca_cli.runtime.vector import box_rings, write_polygons
from tests.helpers.gpkg import layer_styles

COLOURS = {"Forest": "#1b6e34", "River": "#4a90d9", "unknown": "#9e9e9e"}


def two_layers(path: Path) -> Path:
    rings = box_rings(np.array([[0.0, 0.0, 10.0, 10.0]]))
    write_polygons(path, rings, {"class_name": ["Forest"]}, "EPSG:32633", layer="tiles")
    write_polygons(path, rings, {"example": ["positive"]}, "EPSG:32633", layer="query")
    return path


def test_each_layer_gets_its_default_style_as_qgis_keeps_it(tmp_path: Path) -> None:
    path = two_layers(tmp_path / "out.gpkg")
    write_layer_styles(
        path, [LayerStyle("tiles", "<qgis/>", "classes"), LayerStyle("query", "<qgis a='1'/>", "q")]
    )
    rows = layer_styles(path)
    assert [(r["f_table_name"], r["styleQML"], r["description"]) for r in rows] == [
        ("tiles", "<qgis/>", "classes"),
        ("query", "<qgis a='1'/>", "q"),
    ]
    for row in rows:
        assert row["f_geometry_column"] == "geom" and row["f_table_schema"] == ""
        assert row["useAsDefault"] == 1 and row["styleName"] == STYLE_NAME
        assert row["update_time"].endswith("Z")
    with sqlite3.connect(path) as db:
        kind = db.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = ?", (LAYER_STYLES,)
        ).fetchone()
    db.close()
    assert kind == ("attributes",)
    # GDAL still reads the layers, and lists the style table as QGIS's own files do
    assert [name for name, _ in pyogrio.list_layers(path)] == ["tiles", "query", LAYER_STYLES]
    assert pyogrio.read_info(path, layer="tiles")["features"] == 1


def test_the_class_map_palette_and_names_are_read_by_gdal(tmp_path: Path) -> None:
    path = tmp_path / "classes.tif"
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 2, "dtype": "uint8"}
    with rasterio.open(path, "w", crs="EPSG:32633", transform=from_origin(0, 4, 1, 1), **profile):
        pass
    write_class_pam(Path(f"{path}.aux.xml"), COLOURS)
    band = ET.parse(f"{path}.aux.xml").getroot().find("PAMRasterBand")
    assert band.get("band") == "1"
    assert [c.text for c in band.iter("Category")] == list(COLOURS)
    with rasterio.open(path) as src:
        colormap = src.colormap(1)
        assert src.colorinterp[0].name == "palette" and src.colorinterp[1].name != "alpha"
    assert [colormap[i] for i in range(3)] == [
        (27, 110, 52, 255),
        (74, 144, 217, 255),
        (158,) * 3 + (255,),
    ]
