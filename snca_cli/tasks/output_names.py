"""Where outputs go when the user names only some of them: one naming rule for the CLI and plugin.

* the GeoJSON copy of ``tiles.gpkg`` is ``tiles.geojson`` beside it;
* the class map of ``tiles.gpkg`` is ``tiles_classes.tif`` beside it; in output folders, raster
  ``R`` gives ``R.gpkg``, ``R.geojson`` and ``R_classes.tif``;
* when nothing is named (the QGIS dock), raster ``R`` is classified into ``R_snca.gpkg`` and
  indexed into the folder ``R_snca_index``, beside the raster.
"""

from __future__ import annotations

from pathlib import Path

CLASS_MAP_SUFFIX = "_classes.tif"


def geojson_beside(output: Path) -> Path:
    """The EPSG:4326 GeoJSON copy of a GeoPackage output."""
    return Path(output).with_suffix(".geojson")


def class_map_name(stem: str) -> str:
    """The class-map file name for outputs named ``stem``."""
    return f"{stem}{CLASS_MAP_SUFFIX}"


def class_map_beside(output: Path) -> Path:
    """The class-map raster beside a GeoPackage output."""
    output = Path(output)
    return output.with_name(class_map_name(output.stem))


def default_classify_output(raster: Path) -> Path:
    """The GeoPackage beside ``raster`` when no output is named."""
    return Path(raster).with_name(f"{Path(raster).stem}_snca.gpkg")


def default_index_dir(raster: Path) -> Path:
    """The index folder beside ``raster`` when no folder is named."""
    return Path(raster).with_name(f"{Path(raster).stem}_snca_index")
