"""The plugin's defaults tile like ``snca classify``'s: the model's ``tiles_overlap`` everywhere.

A model with a 25 % overlap classifies the same raster through the dock (as it opens), the
Processing algorithm (no overlap given) and the command line (no --overlap): the three
GeoPackages hold the same tiles (count, grid cells, footprints, classes), and more tiles than a
grid without overlap would have.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("qgis.core")

from qgis.core import QgsProcessingFeedback, QgsProject, QgsRasterLayer, QgsVectorLayer  # noqa: E402

from snca_cli.contract.tiling import TilingOptions  # noqa: E402
from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from snca_cli.runtime.raster_tiles import RasterTiling  # noqa: E402
from snca_cli.tasks.output_names import default_classify_output  # noqa: E402
from tests.helpers.onnx_models import make_band_mean_model  # noqa: E402
from tests.qgis.events import wait_for  # noqa: E402
from tests.qgis.rasters import CLASS_NAMES, TILE_SIZE  # noqa: E402

pytestmark = pytest.mark.qgis

OVERLAP_PERCENT = 25.0


def _tiles(gpkg, layer: str) -> list[tuple]:
    """(tile_id, row, col, class_name, footprint) of every feature, sorted by tile id."""
    vector = QgsVectorLayer(f"{gpkg}|layername={layer}", "tiles", "ogr")
    assert vector.isValid(), gpkg
    rows = []
    for feature in vector.getFeatures():
        box = feature.geometry().boundingBox()
        corners = (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
        footprint = tuple(round(v, 6) for v in corners)
        cell = (feature["tile_id"], feature["row"], feature["col"], feature["class_name"])
        rows.append((*cell, footprint))
    return sorted(rows)


def test_dock_processing_and_cli_defaults_tile_alike(plugin, colour_raster, tmp_path) -> None:
    model_path = make_band_mean_model(
        tmp_path / "overlap.onnx",
        tile_size=TILE_SIZE,
        class_names=CLASS_NAMES,
        tiles_overlap=str(OVERLAP_PERCENT),
    )
    metadata = OnnxModel(model_path).metadata
    assert metadata.tiles_overlap == OVERLAP_PERCENT
    with RasterTiling.open(colour_raster, metadata) as tiling:
        expected_count, stride = tiling.tile_count, tiling.stride
    with RasterTiling.open(colour_raster, metadata, TilingOptions(overlap=0)) as tiling:
        assert expected_count > tiling.tile_count  # the overlap is really used
    assert stride == TILE_SIZE - round(TILE_SIZE * OVERLAP_PERCENT / 100)

    # the command line, with its defaults
    cli_output = tmp_path / "cli.gpkg"
    done = subprocess.run(
        [sys.executable, "-m", "snca_cli.cli", "classify", str(colour_raster)]
        + ["-m", str(model_path), "-o", str(cli_output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr

    # the dock, as it opens (no option touched)
    layer = QgsRasterLayer(str(colour_raster), colour_raster.stem)
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.layer_combo.setLayer(layer)
    dock.model_file.setFilePath(str(model_path))
    assert dock.overlap_percent() is None
    task = plugin.controller.classify()
    assert task is not None
    wait_for(lambda: plugin.controller.task is None)
    assert task.error is None and not task.was_cancelled
    dock_output = default_classify_output(colour_raster)

    # the Processing algorithm, with its defaults
    import processing

    processing_output = tmp_path / "processing.gpkg"
    processing.run(
        "snca:classifyraster",
        {"INPUT": str(colour_raster), "MODEL": str(model_path), "OUTPUT": str(processing_output)},
        feedback=QgsProcessingFeedback(),
    )

    cli_tiles = _tiles(cli_output, colour_raster.stem)
    assert len(cli_tiles) == expected_count
    assert _tiles(dock_output, colour_raster.stem) == cli_tiles
    assert _tiles(processing_output, colour_raster.stem) == cli_tiles
    windows = {(row, col): footprint[0] for _, row, col, _, footprint in cli_tiles if row == 0}
    assert windows[(0, 1)] - windows[(0, 0)] == pytest.approx(stride * 10.0)  # 10 m pixels
