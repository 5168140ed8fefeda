"""The file behind a QGIS raster layer: what the snca runtime reads."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProviderRegistry, QgsRasterLayer

from snca_cli.errors import SncaError


def raster_file(layer: QgsRasterLayer) -> Path:
    """The local file of a GDAL raster layer; raise SncaError for any other kind of layer."""
    if layer.providerType() != "gdal":
        raise SncaError(
            f"layer {layer.name()!r} is not a raster file ({layer.providerType()} layer); "
            "save it as a GeoTIFF first"
        )
    path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path", "")
    if not path or not Path(path).is_file():
        raise SncaError(f"layer {layer.name()!r} is not backed by a local file ({layer.source()})")
    return Path(path)
