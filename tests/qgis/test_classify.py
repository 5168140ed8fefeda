"""Classify layer: the QgsTask runs snca's classify job and adds the styled tile layer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qgis.core")

import rasterio  # noqa: E402
from qgis.core import (  # noqa: E402
    QgsCategorizedSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from snca_cli.contract.class_colours import FALLBACK_PALETTE, class_colours  # noqa: E402
from tests.helpers.onnx_models import make_band_mean_model  # noqa: E402
from tests.qgis.events import wait_for  # noqa: E402
from tests.qgis.rasters import (  # noqa: E402
    CLASS_NAMES,
    TILE_COLOURS,
    TILE_SIZE,
    expected_band_mean,
    tile_bounds,
)

pytestmark = pytest.mark.qgis

TILE_FIELDS = ["tile_id", "row", "col", "class_id", "class_name", "score", "valid_fraction"]


def _layers_named(name: str) -> list:
    return QgsProject.instance().mapLayersByName(name)


def _run(plugin, raster, model, class_map: bool = False):
    layer = QgsRasterLayer(str(raster), raster.stem)
    QgsProject.instance().addMapLayer(layer)
    dock = plugin.dock
    dock.layer_combo.setLayer(layer)
    dock.model_file.setFilePath(str(model))
    dock.class_map.setChecked(class_map)
    task = plugin.controller.classify()
    assert task is not None
    assert not dock.classify_button.isEnabled()  # one task at a time
    wait_for(lambda: plugin.controller.task is None)
    assert task.error is None and not task.was_cancelled
    return task


def test_classify_layer_adds_the_tile_layer_styled_by_class(
    plugin, colour_raster, band_mean_model
) -> None:
    task = _run(plugin, colour_raster, band_mean_model, class_map=True)

    (layer,) = _layers_named("colours classes")
    assert isinstance(layer, QgsVectorLayer) and layer.isValid()
    assert layer.crs().authid() == "EPSG:32633"
    assert layer.featureCount() == 12
    assert layer.fields().names()[1 : 1 + len(TILE_FIELDS)] == TILE_FIELDS  # after the fid
    _, probabilities = expected_band_mean(TILE_COLOURS, classes=3)
    for feature in layer.getFeatures():
        tile_id = feature["tile_id"]
        row, col = divmod(tile_id, 4)
        assert (feature["row"], feature["col"]) == (row, col)
        assert feature["class_id"] == int(np.argmax(TILE_COLOURS[row][col]))
        assert feature["class_name"] == CLASS_NAMES[feature["class_id"]]
        assert feature["score"] == pytest.approx(probabilities[tile_id].max(), abs=1e-6)
        box = feature.geometry().boundingBox()
        assert (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()) == pytest.approx(
            tile_bounds(row, col, TILE_SIZE)
        )
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert renderer.classAttribute() == "class_name"
    colours = class_colours(CLASS_NAMES)
    assert task.result.summaries[0].class_colours == colours
    # red, green and blue name no land cover: the first colours of the fallback palette
    assert list(colours.values()) == list(FALLBACK_PALETTE[:3])
    assert [(c.value(), c.label(), c.symbol().color().name()) for c in renderer.categories()] == [
        (name, f"{name} (4)", colours[name]) for name in CLASS_NAMES
    ]

    (class_map,) = _layers_named("colours class map")
    assert isinstance(class_map.renderer(), QgsPalettedRasterRenderer)
    assert [(c.value, c.color.name(), c.label) for c in class_map.renderer().classes()] == [
        (i, colours[name], f"{name} (4)") for i, name in enumerate(CLASS_NAMES)
    ]
    with rasterio.open(task.result.summaries[0].class_map) as src:
        classes = src.read(1)
    expected = np.argmax(np.asarray(TILE_COLOURS), axis=2)
    assert np.array_equal(classes[::TILE_SIZE, ::TILE_SIZE], expected)
    assert "classified 12 tiles of colours.tif (0 skipped)" in plugin.dock.status_label.text()


def test_an_existing_output_is_refused_unless_overwrite_is_ticked(
    plugin, colour_raster, band_mean_model
) -> None:
    _run(plugin, colour_raster, band_mean_model)
    assert plugin.controller.classify() is None
    output = colour_raster.with_name("colours_snca.gpkg")
    message = f"{output} exists; tick 'Overwrite existing outputs' to replace it"
    assert plugin.dock.status_text() == f"error: {message}"
    plugin.dock.overwrite.setChecked(True)
    task = plugin.controller.classify()
    wait_for(lambda: plugin.controller.task is None)
    assert task.error is None
    assert len(_layers_named("colours classes")) == 2


@pytest.mark.shared_data
def test_classify_the_landsat_scene(plugin, landsat_rgb, tmp_path) -> None:
    model = make_band_mean_model(tmp_path / "band_mean.onnx", class_names=CLASS_NAMES)
    plugin.dock.output_file.setFilePath(str(tmp_path / "landsat.gpkg"))
    task = _run(plugin, landsat_rgb, model)

    (summary,) = task.result.summaries
    (layer,) = _layers_named("RGB.byte classes")
    assert layer.crs().authid() == "EPSG:32618"
    # 791 x 718 px in 32 px tiles, edge tiles shifted inward: 25 x 23 tiles
    assert summary.tiles_classified + summary.tiles_skipped == 25 * 23
    assert layer.featureCount() == summary.tiles_classified > 200
    with rasterio.open(landsat_rgb) as src:
        checked = 0
        for feature in layer.getFeatures():
            if feature["valid_fraction"] < 1.0:
                continue
            col_off = min(feature["col"] * 32, src.width - 32)
            row_off = min(feature["row"] * 32, src.height - 32)
            window = ((row_off, row_off + 32), (col_off, col_off + 32))
            means = src.read(window=window).reshape(3, -1).mean(axis=1)
            assert feature["class_id"] == int(np.argmax(means))
            checked += 1
    assert checked > 100
