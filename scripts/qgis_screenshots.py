"""Make the screenshots of docs/qgis.md from a real run of the plugin in headless QGIS.

    QT_QPA_PLATFORM=offscreen .venv-qgis/bin/python -m scripts.qgis_screenshots \\
        --raster RGB.byte.tif [--model model.onnx] [--output docs/img]

Loads the plugin through ``classFactory`` into a headless QGIS window, classifies the raster,
builds its index and clicks a tile with the Find similar tool, exactly as a user would, then
writes ``qgis_classes.png`` (the classified tiles over the raster), ``qgis_similar.png`` (the
similar tiles and the query tile), ``qgis_dock.png`` (the dock) and ``qgis_window.png`` (map
and dock together). Without ``--model`` the band-mean test model (class = brightest band) is
used.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsMapLayer,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402

PLUGIN_ROOT = Path(__file__).resolve().parents[2] / "qgis_plugin"
MAP_SIZE = QSize(800, 720)
#: The tile clicked for the similar-tile screenshot, as a fraction of the raster's extent.
CLICK_AT = (0.42, 0.55)


def save_small(image, path: Path) -> None:
    """Save a QImage as a 256-colour PNG (a fraction of the size of a true-colour one)."""
    from PIL import Image

    image.save(str(path), "PNG")
    with Image.open(path) as loaded:
        small = loaded.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def render(layers: list[QgsMapLayer], extent, crs, path: Path) -> None:
    """Render ``layers`` (top first) offscreen to a PNG."""
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(crs)
    settings.setExtent(extent)
    settings.setOutputSize(MAP_SIZE)
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    save_small(job.renderedImage(), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raster", type=Path, required=True, help="a georeferenced RGB raster")
    parser.add_argument("--model", type=Path, help="an snca ONNX model (default: band-mean)")
    parser.add_argument("--output", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="snca-screenshots-"))

    app = QgsApplication([], True)
    app.initQgis()
    import sys

    sys.path.insert(0, str(PLUGIN_ROOT))
    import snca_qgis
    from tests.helpers.onnx_models import make_band_mean_model
    from tests.qgis.events import wait_for
    from tests.qgis.qgis_interface import HeadlessQgisInterface

    model = args.model or make_band_mean_model(
        work / "band_mean.onnx", class_names=["red", "green", "blue"]
    )
    raster = work / args.raster.name
    raster.symlink_to(args.raster.resolve())

    iface = HeadlessQgisInterface()
    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    controller, dock = plugin.controller, plugin.dock
    project = QgsProject.instance()
    layer = QgsRasterLayer(str(raster), raster.stem)
    project.addMapLayer(layer)
    project.setCrs(layer.crs())
    iface.canvas.setDestinationCrs(layer.crs())
    iface.canvas.setExtent(layer.extent())
    dock.layer_combo.setLayer(layer)
    dock.model_file.setFilePath(str(model))
    dock.class_map.setChecked(False)
    dock.k.setValue(10)

    controller.classify()
    wait_for(lambda: controller.task is None, timeout=600)
    classes = project.mapLayersByName(f"{raster.stem} classes")[0]
    controller.build_index()
    wait_for(lambda: controller.task is None, timeout=600)

    extent = layer.extent()
    point = QgsPointXY(
        extent.xMinimum() + CLICK_AT[0] * extent.width(),
        extent.yMaximum() - CLICK_AT[1] * extent.height(),
    )
    dock.find_button.setChecked(True)
    controller.map_tool.choose(point)
    similar, query = controller.similar_layer(), controller.query_layer()

    render([classes, layer], extent, layer.crs(), args.output / "qgis_classes.png")
    render([query, similar, layer], extent, layer.crs(), args.output / "qgis_similar.png")

    iface.window.resize(1400, 860)
    dock.setMinimumWidth(560)
    iface.window.show()
    for _ in range(5):
        app.processEvents()  # lay the window out so the canvas gets its real size
    iface.canvas.setLayers([query, similar, classes, layer])
    classes.setOpacity(0.3)
    iface.canvas.setExtent(extent)
    iface.canvas.refresh()
    iface.canvas.waitWhileRendering()
    app.processEvents()
    save_small(iface.window.grab().toImage(), args.output / "qgis_window.png")
    dock.setFloating(True)
    dock.resize(560, 1180)
    for _ in range(5):
        app.processEvents()
    save_small(dock.grab().toImage(), args.output / "qgis_dock.png")
    print(dock.status_label.text())
    for name in ("qgis_classes", "qgis_similar", "qgis_dock", "qgis_window"):
        print(args.output / f"{name}.png")
    project.removeAllMapLayers()
    plugin.unload()


if __name__ == "__main__":
    main()
