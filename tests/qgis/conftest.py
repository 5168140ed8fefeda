"""Headless QGIS for the plugin tests: one ``QgsApplication`` per session, Processing initialised.

The tests need QGIS's Python (``python3-qgis``); elsewhere every test module skips itself with
``pytest.importorskip("qgis.core")``. ``QT_QPA_PLATFORM`` defaults to ``offscreen`` so that no
display is needed.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PLUGIN_ROOT = Path(__file__).resolve().parents[2] / "qgis_plugin"

try:
    from qgis.core import QgsApplication, QgsProject
except ImportError:  # not QGIS's Python: the test modules skip themselves
    QgsApplication = None
else:  # the plugin package, as QGIS finds it in its plugins folder
    if str(PLUGIN_ROOT) not in sys.path:
        sys.path.insert(0, str(PLUGIN_ROOT))


@pytest.fixture(scope="session")
def qgis_app() -> Iterator[QgsApplication]:
    """The running ``QgsApplication``, with Processing (and its native algorithms) ready."""
    if QgsApplication is None:
        pytest.skip("needs QGIS's Python (python3-qgis)")
    app = QgsApplication([], True)
    app.initQgis()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    yield app
    QgsProject.instance().removeAllMapLayers()
    # free what the tests left (QGIS objects, onnxruntime sessions) while QGIS still runs, then
    # shut QGIS down before the interpreter does: left to the exit, their destructors run in
    # no set order and can crash the process after every test has passed
    gc.collect()
    app.exitQgis()


@pytest.fixture
def project(qgis_app: QgsApplication) -> Iterator[QgsProject]:
    """The project, emptied after the test."""
    project = QgsProject.instance()
    yield project
    project.removeAllMapLayers()


@pytest.fixture
def iface(project: QgsProject):
    """A headless QGIS interface with a real map canvas."""
    from tests.qgis.qgis_interface import HeadlessQgisInterface

    interface = HeadlessQgisInterface()
    yield interface
    interface.window.close()


@pytest.fixture
def provider(qgis_app):
    """The snca Processing provider, registered as the plugin's initProcessing does."""
    import snca_qgis

    plugin = snca_qgis.classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    QgsApplication.processingRegistry().removeProvider(plugin.provider)


@pytest.fixture
def band_mean_model(tmp_path: Path) -> Path:
    """The band-mean ONNX model (32 px tiles, classes red/green/blue = brightest band)."""
    from tests.helpers.onnx_models import make_band_mean_model
    from tests.qgis.rasters import CLASS_NAMES, TILE_SIZE

    return make_band_mean_model(
        tmp_path / "band_mean.onnx", tile_size=TILE_SIZE, class_names=CLASS_NAMES
    )


@pytest.fixture
def colour_raster(tmp_path: Path) -> Path:
    """A 128 x 96 px RGB GeoTIFF (EPSG:32633, 10 m) of 3 x 4 tiles in ``TILE_COLOURS``."""
    from tests.qgis.rasters import TILE_COLOURS, TILE_SIZE, write_tile_colours

    return write_tile_colours(tmp_path / "colours.tif", TILE_COLOURS, TILE_SIZE)


@pytest.fixture
def plugin(iface):
    """The plugin loaded through ``classFactory`` and ``initGui``; unloaded afterwards."""
    import snca_qgis

    loaded = snca_qgis.classFactory(iface)
    loaded.initGui()
    yield loaded
    loaded.unload()
