"""SNCA Scene Search: a QGIS plugin that classifies raster tiles with an snca ONNX model and
finds the tiles most similar to the one clicked on the map.

QGIS calls :func:`classFactory`. Nothing here imports the snca runtime: the plugin starts even
when it is missing and then tells the user how to install it.
"""

from __future__ import annotations


def classFactory(iface):
    """Create the plugin for the QGIS interface ``iface``."""
    from .plugin import SncaPlugin

    return SncaPlugin(iface)
