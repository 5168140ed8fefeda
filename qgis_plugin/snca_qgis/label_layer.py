"""A QGIS vector layer of labels, as the file ``snca adapt`` reads.

Any layer QGIS shows (a memory layer of clicked points, a shapefile, a PostGIS table, with a
filter or edits not yet saved) is written as it is seen into a GeoPackage in a temporary folder;
``snca_cli.tasks.labels`` then applies the one labelling rule (points: the tile they fall in;
polygons: tiles at least half inside) exactly as on the command line.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProject, QgsVectorFileWriter, QgsVectorLayer, QgsWkbTypes

from snca_cli.errors import SncaError

#: Geometry types a label layer may have.
LABEL_GEOMETRIES = (QgsWkbTypes.PointGeometry, QgsWkbTypes.PolygonGeometry)


def check_label_layer(layer: QgsVectorLayer | None, field: str) -> QgsVectorLayer:
    """``layer`` when it is a point or polygon layer with the field ``field``; SncaError else."""
    if layer is None or not layer.isValid():
        raise SncaError("choose a point or polygon layer of labels")
    if layer.geometryType() not in LABEL_GEOMETRIES:
        raise SncaError(f"layer {layer.name()!r}: labels must be points or polygons")
    names = [f.name() for f in layer.fields()]
    if not field:
        raise SncaError(f"choose the field of {layer.name()!r} that holds the class names")
    if field not in names:
        raise SncaError(
            f"layer {layer.name()!r} has no field {field!r} (fields: {', '.join(names) or 'none'})"
        )
    if layer.featureCount() == 0:
        raise SncaError(f"layer {layer.name()!r} has no features")
    return layer


def write_label_file(layer: QgsVectorLayer, field: str, folder: Path) -> Path:
    """Write ``layer``'s features (geometry and ``field``) to ``folder/labels.gpkg``."""
    check_label_layer(layer, field)
    path = Path(folder) / "labels.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "labels"
    options.attributes = [layer.fields().indexOf(field)]
    error, message, _path, _layer = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, str(path), QgsProject.instance().transformContext(), options
    )
    if error != QgsVectorFileWriter.NoError:
        raise SncaError(f"could not save the labels of {layer.name()!r}: {message}")
    return path
