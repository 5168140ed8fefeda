"""The plugin loads through classFactory into a (headless) QGIS and unloads cleanly."""

from __future__ import annotations

import pytest

pytest.importorskip("qgis.core")

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402
from qgis.PyQt.QtCore import Qt  # noqa: E402

from snca_cli.contract.tiling import MAX_OVERLAP  # noqa: E402

pytestmark = pytest.mark.qgis

ALGORITHMS = {"snca:classifyraster", "snca:buildindex", "snca:searchsimilar", "snca:adaptmodel"}


def test_init_gui_adds_dock_button_menu_and_provider_and_unload_removes_them(iface) -> None:
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    registry = QgsApplication.processingRegistry()
    assert iface.window.dockWidgetArea(plugin.dock) == Qt.RightDockWidgetArea
    assert plugin.action in iface.toolbar.actions()
    assert [a.text() for a in iface.plugin_submenus["&SNCA Scene Search"].actions()] == [
        "SNCA Scene Search"
    ]
    assert registry.providerById("snca") is plugin.provider
    assert {a.id() for a in plugin.provider.algorithms()} == ALGORITHMS
    assert plugin.controller is not None
    assert not plugin.dock.message_label.isVisibleTo(plugin.dock)
    assert plugin.dock.classify_button.isEnabled()
    assert iface.bar.items() == []

    dock = plugin.dock
    plugin.unload()
    assert registry.providerById("snca") is None
    assert iface.toolbar.actions() == []
    assert iface.plugin_submenus == {}
    assert iface.window.dockWidgetArea(dock) == Qt.NoDockWidgetArea
    assert plugin.dock is None and plugin.controller is None


def test_dock_shows_model_metadata_provider_and_band_mapping(
    plugin, band_mean_model, colour_raster, project
) -> None:
    layer = QgsRasterLayer(str(colour_raster), "colours")
    project.addMapLayer(layer)
    dock = plugin.dock
    dock.layer_combo.setLayer(layer)
    dock.model_file.setFilePath(str(band_mean_model))

    assert plugin.controller.model is not None
    info = dock.model_info.text()
    assert "3 classes: red, green, blue" in info
    assert "tiles 32 x 32 px" in info
    assert "3 band(s) in; 3-d embedding" in info
    assert dock.provider_label.text() == "CPU (onnxruntime CPUExecutionProvider)"
    assert dock.bands() == (1, 2, 3)
    dock.band_boxes[0].setBand(3)
    dock.band_boxes[2].setBand(1)
    dock.overlap.setValue(25)
    options = plugin.controller.tiling_options()
    assert options.bands == (3, 2, 1)
    assert options.overlap == 0.25
    assert dock.overlap.maximum() == round(MAX_OVERLAP * 100) == 75  # snca's own limit
    dock.overlap.setValue(90)
    assert plugin.controller.tiling_options().overlap == 0.75
    assert [dock.class_filter.itemText(i) for i in range(dock.class_filter.count())] == [
        "any class",
        "red",
        "green",
        "blue",
    ]


def test_a_bad_model_file_is_one_clear_message(plugin, tmp_path, iface) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    plugin.dock.model_file.setFilePath(str(broken))

    assert plugin.controller.model is None
    assert plugin.dock.status_label.text().startswith("error: cannot load model")
    assert "broken.onnx" in iface.bar.items()[-1].text()
    assert plugin.dock.model_info.text().startswith("Choose an snca model")


def test_actions_without_model_or_layer_explain_what_is_missing(plugin) -> None:
    # the shipped model is chosen when the dock opens: the buttons work, a layer is missing
    assert plugin.controller.model is not None
    assert plugin.dock.classify_button.isEnabled()
    assert plugin.controller.classify() is None
    assert plugin.dock.status_label.text() == "error: choose a raster layer first"
    plugin.dock.model_file.setFilePath("")
    assert not plugin.dock.classify_button.isEnabled()
    assert plugin.controller.classify() is None
    assert plugin.dock.status_label.text() == "error: choose an snca ONNX model first"
    assert QgsProject.instance().mapLayers() == {}
