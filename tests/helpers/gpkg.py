"""GeoPackage checks: the ``application_id`` and ``user_version`` snca writes, and the QGIS
styles it keeps in ``layer_styles``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"


def gpkg_version(path: Path) -> tuple[int, int]:
    """The GeoPackage's ``application_id`` and ``user_version`` (10200 for 1.2)."""
    with sqlite3.connect(path) as connection:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        user_version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()
    return application_id, user_version


def layer_styles(path: Path) -> list[dict[str, object]]:
    """The rows of the GeoPackage's ``layer_styles`` table (QGIS's styles), in id order."""
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM layer_styles ORDER BY id").fetchall()
    connection.close()
    return [dict(row) for row in rows]
