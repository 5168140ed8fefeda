"""Where outputs go when the user names only some of them: one naming rule for the CLI and plugin.

* the GeoJSON copy of ``tiles.gpkg`` is ``tiles.geojson`` beside it;
* the class map of ``tiles.gpkg`` is ``tiles_classes.tif`` beside it; in output folders, raster
  ``R`` gives ``R.gpkg``, ``R.geojson`` and ``R_classes.tif``;
* a class map ``C.tif`` comes with its sidecars ``C.tif.aux.xml`` (GDAL: colour table and class
  names) and ``C.qml`` (QGIS's default style);
* when nothing is named (the QGIS dock), raster ``R`` is classified into ``R_snca.gpkg``,
  indexed into the folder ``R_snca_index`` and adapted into ``R.adapted.onnx``, beside the raster;
* each output raster ``R`` of a classify into a folder is ``R.gpkg`` and ``R.geojson`` there;
* an adapted model ``M.onnx`` comes with ``M.card.md``, ``M.card.json``, ``M.adapt.json`` and
  ``M.confusion.png`` beside it.
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


def class_map_sidecars(class_map: Path) -> tuple[Path, Path]:
    """The files that go with a class map: GDAL's PAM sidecar and QGIS's default style."""
    class_map = Path(class_map)
    return Path(f"{class_map}.aux.xml"), class_map.with_suffix(".qml")


def default_classify_output(raster: Path) -> Path:
    """The GeoPackage beside ``raster`` when no output is named."""
    return Path(raster).with_name(f"{Path(raster).stem}_snca.gpkg")


def default_index_dir(raster: Path) -> Path:
    """The index folder beside ``raster`` when no folder is named."""
    return Path(raster).with_name(f"{Path(raster).stem}_snca_index")


def default_adapted_model(raster: Path) -> Path:
    """The adapted model beside ``raster`` when none is named."""
    return Path(raster).with_suffix(".adapted.onnx")


def folder_outputs(raster: Path, output_dir: Path, geojson_dir: Path) -> tuple[Path, Path]:
    """The GeoPackage and GeoJSON of ``raster`` classified into folders."""
    stem = Path(raster).stem
    return Path(output_dir) / f"{stem}.gpkg", Path(geojson_dir) / f"{stem}.geojson"


def adapted_model_files(output: Path) -> dict[str, Path]:
    """The files an adapted model ``output`` (``*.onnx``) comes with."""
    stem = Path(output).with_suffix("")
    return {
        "model": Path(output),
        "card": Path(f"{stem}.card.md"),
        "card_json": Path(f"{stem}.card.json"),
        "report_json": Path(f"{stem}.adapt.json"),
        "confusion_png": Path(f"{stem}.confusion.png"),
    }
