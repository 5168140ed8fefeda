"""Adapt the model to a labelled layer: from a memory point layer (the dock's task and the
Processing algorithm), the new model is loaded and classifies with the labelled classes, and
tiles unlike every label come out ``unknown``.

The band-mean model's embedding is a tile's normalised mean colour, so the outcome of every
tile is known: the labelled warm and leafy tiles keep their classes, the pure blue ones match
neither.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from tests.qgis.events import wait_for  # noqa: E402
from tests.qgis.rasters import TILE_SIZE, tile_bounds  # noqa: E402

pytestmark = pytest.mark.qgis

#: Labelled tiles (row, col) of the colour raster: brightest band red -> "warm", green ->
#: "leafy"; nothing blue is labelled.
LABELS = {"warm": [(0, 0), (0, 3), (1, 2)], "leafy": [(0, 1), (1, 0), (1, 3)]}
#: Pure blue tiles: unlike both labelled classes.
BLUE_TILES = [(0, 2), (1, 1)]


def point_labels(labels: dict[str, list[tuple[int, int]]]) -> QgsVectorLayer:
    """A memory point layer (EPSG:32633) with a point at the centre of each labelled tile."""
    layer = QgsVectorLayer("Point?crs=EPSG:32633&field=cover:string", "my labels", "memory")
    features = []
    for name, cells in labels.items():
        for row, col in cells:
            minx, miny, maxx, maxy = tile_bounds(row, col, TILE_SIZE)
            feature = QgsFeature(layer.fields())
            feature.setGeometry(
                QgsGeometry.fromPointXY(QgsPointXY((minx + maxx) / 2, (miny + maxy) / 2))
            )
            feature.setAttribute("cover", name)
            features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    layer.updateExtents()
    return layer


def _classes_by_cell(layer: QgsVectorLayer) -> dict[tuple[int, int], str]:
    return {(f["row"], f["col"]): f["class_name"] for f in layer.getFeatures()}


def test_dock_adapts_from_a_point_layer_loads_the_model_and_classifies_with_it(
    plugin, colour_raster: Path, band_mean_model: Path, tmp_path: Path
) -> None:
    project = QgsProject.instance()
    raster = QgsRasterLayer(str(colour_raster), colour_raster.stem)
    labels = point_labels(LABELS)
    project.addMapLayers([raster, labels])
    dock, controller = plugin.dock, plugin.controller
    dock.layer_combo.setLayer(raster)
    dock.model_file.setFilePath(str(band_mean_model))
    dock.labels_combo.setLayer(labels)
    dock.label_field.setField("cover")
    adapted = tmp_path / "adapted.onnx"
    dock.adapted_file.setFilePath(str(adapted))

    task = controller.adapt()
    assert task is not None and not dock.adapt_button.isEnabled()
    wait_for(lambda: controller.task is None)
    assert task.error is None and not task.was_cancelled

    # the new model is loaded at once, its accuracy shown
    assert adapted.is_file() and dock.model_file.filePath() == str(adapted)
    assert controller.model is not None and controller.model.path == adapted
    assert controller.model.metadata.class_names == ["leafy", "warm"]
    assert controller.model.metadata.open_set is not None
    shown = dock.adapt_result.toolTip() or dock.adapt_result.text()
    assert "6 labelled tiles, 2 classes: cross-validated accuracy 100.0% (3 folds)" in shown
    assert "leafy 100%" in shown and "warm 100%" in shown
    card = adapted.with_suffix(".card.md").read_text()
    assert "file `layer my labels`, field `cover`" in card
    # the embedding is the base model's: indexes built with it stay valid
    assert controller.model.embedding_sha256 == OnnxModel(band_mean_model).embedding_sha256

    # classify with the adapted model
    dock.output_file.setFilePath(str(tmp_path / "classes.gpkg"))
    task = controller.classify()
    assert task is not None
    wait_for(lambda: controller.task is None)
    assert task.error is None
    (layer,) = project.mapLayersByName("colours classes")
    by_cell = _classes_by_cell(layer)
    for name, cells in LABELS.items():
        assert [by_cell[cell] for cell in cells] == [name] * len(cells)
    assert [by_cell[cell] for cell in BLUE_TILES] == ["unknown", "unknown"]
    categories = [c.value() for c in layer.renderer().categories()]
    assert categories[:2] == ["leafy", "warm"] and "unknown" in categories


def test_dock_refuses_a_label_layer_without_the_field(
    plugin, colour_raster: Path, band_mean_model: Path
) -> None:
    raster = QgsRasterLayer(str(colour_raster), colour_raster.stem)
    labels = point_labels(LABELS)
    QgsProject.instance().addMapLayers([raster, labels])
    dock = plugin.dock
    dock.layer_combo.setLayer(raster)
    dock.model_file.setFilePath(str(band_mean_model))
    dock.labels_combo.setLayer(labels)
    dock.label_field.setField("")
    assert plugin.controller.adapt() is None
    assert dock.status_text() == (
        "error: choose the field of 'my labels' that holds the class names"
    )


def test_adapt_model_algorithm_from_a_point_layer(
    provider, colour_raster: Path, band_mean_model: Path, tmp_path: Path
) -> None:
    import processing

    labels = point_labels(LABELS)
    output = tmp_path / "processing.onnx"
    results = processing.run(
        "snca:adaptmodel",
        {
            "INPUT": [str(colour_raster)],
            "LABELS": labels,
            "FIELD": "cover",
            "MODEL": str(band_mean_model),
            "MIN_VALID": 0.5,
            "FOLDS": 5,
            "OUTPUT": str(output),
        },
        feedback=QgsProcessingFeedback(),
    )
    assert results["OUTPUT"] == str(output) and output.is_file()
    assert results["CV_ACCURACY"] == 1.0
    rule = OnnxModel(output).metadata.open_set
    assert rule is not None and results["UNKNOWN_THRESHOLD"] == pytest.approx(rule.threshold)
    assert Path(results["CARD"]).read_text().count("| warm | 3 |") == 1

    with pytest.raises(QgsProcessingException, match=r"^layer 'my labels' has no field 'x'"):
        processing.run(
            "snca:adaptmodel",
            {
                "INPUT": [str(colour_raster)],
                "LABELS": labels,
                "FIELD": "x",
                "MODEL": str(band_mean_model),
                "OUTPUT": str(tmp_path / "bad.onnx"),
            },
            feedback=QgsProcessingFeedback(),
        )
    assert not (tmp_path / "bad.onnx").exists()
