"""Styles that travel with the files: QGIS and GDAL apply them when a file is opened on its own.

* A GeoPackage keeps QGIS styles in its ``layer_styles`` table (the table QGIS itself creates
  when a style is saved "in the database"); the row marked ``useAsDefault`` is applied to its
  layer when QGIS opens it. :func:`write_layer_styles` adds one row per layer with
  :mod:`sqlite3`, into a finished GeoPackage.
* A GeoTIFF cannot keep category names, and a colour table inside a two-band GeoTIFF makes
  GDAL's writer mark band 2 as alpha (the class map's confidence would become transparency).
  Both go into GDAL's PAM sidecar ``<file>.aux.xml`` instead (:func:`write_class_pam`): band 1
  a palette with one colour and one category name per class id, read by every GDAL tool
  (``gdalinfo`` shows ``Color Table`` and ``Categories``). QGIS 3.22 still draws a two-band
  raster as an RGB composite, so the class map also gets QGIS's default style sidecar
  ``<name>.qml`` (:func:`snca_cli.runtime.styles.class_map_qml`, written by the caller).
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from snca_cli.contract.class_colours import hex_rgb

#: The GeoPackage table QGIS reads styles from.
LAYER_STYLES = "layer_styles"
#: The name snca's styles have in QGIS's style manager.
STYLE_NAME = "snca"

#: The ``layer_styles`` table as QGIS (through OGR) creates it.
_CREATE_LAYER_STYLES = f"""
CREATE TABLE IF NOT EXISTS "{LAYER_STYLES}" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "f_table_catalog" TEXT(256),
    "f_table_schema" TEXT(256),
    "f_table_name" TEXT(256),
    "f_geometry_column" TEXT(256),
    "styleName" TEXT(30),
    "styleQML" TEXT,
    "styleSLD" TEXT,
    "useAsDefault" BOOLEAN,
    "description" TEXT,
    "owner" TEXT(30),
    "ui" TEXT(30),
    "update_time" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


@dataclass(frozen=True)
class LayerStyle:
    """The default style (a QML document) of one layer of a GeoPackage."""

    layer: str
    qml: str
    description: str


def write_layer_styles(path: Path, styles: Sequence[LayerStyle]) -> None:
    """Add each style to the GeoPackage ``path`` as its layer's default QGIS style.

    The table is registered in ``gpkg_contents`` as an attributes table, as QGIS does, so
    GDAL lists it and QGIS finds it; QGIS picks a layer's row by table name and geometry
    column, with an empty schema.
    """
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(_CREATE_LAYER_STYLES)
        db.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, last_change) "
            "SELECT ?, 'attributes', ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE NOT EXISTS (SELECT 1 FROM gpkg_contents WHERE table_name = ?)",
            (LAYER_STYLES, LAYER_STYLES, LAYER_STYLES),
        )
        for style in styles:
            (geometry_column,) = db.execute(
                "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                (style.layer,),
            ).fetchone()
            db.execute(
                f'INSERT INTO "{LAYER_STYLES}" (f_table_catalog, f_table_schema, f_table_name, '
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', NULL)",
                (style.layer, geometry_column, STYLE_NAME, style.qml, style.description),
            )


def write_class_pam(path: Path, colours: Mapping[str, str]) -> None:
    """Write GDAL's PAM sidecar ``path`` of a class map: band 1 a palette, with one colour
    table entry and one category name per class id (``colours``: every class in id order)."""
    dataset = ET.Element("PAMDataset")
    band = ET.SubElement(dataset, "PAMRasterBand", band="1")
    ET.SubElement(band, "ColorInterp").text = "Palette"
    names = ET.SubElement(band, "CategoryNames")
    for name in colours:
        ET.SubElement(names, "Category").text = name
    table = ET.SubElement(band, "ColorTable")
    for colour in colours.values():
        red, green, blue = hex_rgb(colour)
        ET.SubElement(table, "Entry", c1=str(red), c2=str(green), c3=str(blue), c4="255")
    ET.indent(dataset)
    Path(path).write_text(ET.tostring(dataset, encoding="unicode") + "\n", encoding="utf-8")
