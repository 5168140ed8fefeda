"""Build index and Find similar: a click on the map (any CRS) lists the most similar tiles."""

from __future__ import annotations

import json
import time
from itertools import pairwise

import numpy as np
import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGraduatedSymbolRenderer,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
)
from qgis.gui import QgsMapMouseEvent  # noqa: E402
from qgis.PyQt.QtCore import QEvent, QPoint, Qt  # noqa: E402

from tests.qgis.events import wait_for  # noqa: E402
from tests.qgis.rasters import (  # noqa: E402
    CLASS_NAMES,
    ORIGIN,
    TILE_COLOURS,
    TILE_SIZE,
    expected_band_mean,
    tile_bounds,
    write_tile_colours,
)

pytestmark = pytest.mark.qgis

QUERY_ROW, QUERY_COL = 1, 1
QUERY_ID = QUERY_ROW * 4 + QUERY_COL
K = 5


def expected_hits(query: int, k: int, class_id: int | None = None) -> tuple[list[int], list[float]]:
    """Tile ids and cosine similarities of the k tiles most like ``query`` (itself excluded)."""
    embedding, probabilities = expected_band_mean(TILE_COLOURS, classes=3)
    similarity = embedding.astype(np.float64) @ embedding[query].astype(np.float64)
    ids = [i for i in range(len(embedding)) if i != query]
    if class_id is not None:
        ids = [i for i in ids if probabilities[i].argmax() == class_id]
    ids.sort(key=lambda i: (-similarity[i], i))
    return ids[:k], [float(similarity[i]) for i in ids[:k]]


def _prepare(plugin, raster, model, canvas_crs: str = "EPSG:4326") -> QgsRasterLayer:
    project = QgsProject.instance()
    layer = QgsRasterLayer(str(raster), raster.stem)
    project.addMapLayer(layer)
    crs = QgsCoordinateReferenceSystem(canvas_crs)
    project.setCrs(crs)
    canvas = plugin.iface.mapCanvas()
    canvas.setDestinationCrs(crs)
    to_canvas = QgsCoordinateTransform(layer.crs(), crs, project)
    canvas.setExtent(to_canvas.transformBoundingBox(layer.extent()))
    plugin.dock.layer_combo.setLayer(layer)
    plugin.dock.model_file.setFilePath(str(model))
    return layer


def _build_index(plugin) -> None:
    task = plugin.controller.build_index()
    assert task is not None
    wait_for(lambda: plugin.controller.task is None)
    assert task.error is None, task.error


def click(
    plugin,
    layer: QgsRasterLayer,
    x: float,
    y: float,
    modifiers: Qt.KeyboardModifiers = Qt.NoModifier,
) -> None:
    """Left-click the map at raster coordinates (x, y) through the Find similar map tool, with
    the keyboard ``modifiers`` held (Ctrl: one more example, Shift: one to rank away from)."""
    canvas = plugin.iface.mapCanvas()
    plugin.dock.find_button.setChecked(True)
    tool = canvas.mapTool()
    assert tool is plugin.controller.map_tool
    to_canvas = QgsCoordinateTransform(
        layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance()
    )
    pixel = canvas.getCoordinateTransform().transform(to_canvas.transform(QgsPointXY(x, y)))
    event = QgsMapMouseEvent(
        canvas,
        QEvent.MouseButtonRelease,
        QPoint(round(pixel.x()), round(pixel.y())),
        Qt.LeftButton,
        Qt.LeftButton,
        modifiers,
    )
    tool.canvasReleaseEvent(event)


def _centre(row: int, col: int) -> tuple[float, float]:
    minx, miny, maxx, maxy = tile_bounds(row, col, TILE_SIZE)
    return (minx + maxx) / 2, (miny + maxy) / 2


def test_build_index_then_click_finds_the_most_similar_tiles(
    plugin, colour_raster, band_mean_model
) -> None:
    layer = _prepare(plugin, colour_raster, band_mean_model)
    _build_index(plugin)
    index_dir = colour_raster.with_name("colours_snca_index")
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["index"]["count"] == 12
    assert manifest["index"]["library"] == "hnswlib"

    plugin.dock.k.setValue(K)
    click(plugin, layer, *_centre(QUERY_ROW, QUERY_COL))

    ids, similarities = expected_hits(QUERY_ID, K)
    result_layer = plugin.controller.similar_layer()
    assert result_layer.crs().authid() == "EPSG:32633"
    features = sorted(result_layer.getFeatures(), key=lambda f: f["rank"])
    assert result_layer.featureCount() == K
    assert [f["rank"] for f in features] == [1, 2, 3, 4, 5]
    assert [f["tile_id"] for f in features] == ids
    assert QUERY_ID not in [f["tile_id"] for f in features]
    assert [f["similarity"] for f in features] == pytest.approx(similarities, abs=1e-5)
    assert all(a["similarity"] >= b["similarity"] for a, b in pairwise(features))
    for feature in features:
        box = feature.geometry().boundingBox()
        row, col = divmod(feature["tile_id"], 4)
        assert (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()) == pytest.approx(
            tile_bounds(row, col, TILE_SIZE)
        )
        expected_class = CLASS_NAMES[int(np.argmax(TILE_COLOURS[row][col]))]
        assert feature["class"] == expected_class
    assert isinstance(result_layer.renderer(), QgsGraduatedSymbolRenderer)
    assert result_layer.renderer().classAttribute() == "similarity"

    (query,) = plugin.controller.query_layer().getFeatures()
    assert query["tile_id"] == QUERY_ID and query["class"] == "blue"
    box = query.geometry().boundingBox()
    assert (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()) == pytest.approx(
        tile_bounds(QUERY_ROW, QUERY_COL, TILE_SIZE)
    )

    table = plugin.dock.results_table
    assert table.rowCount() == K
    assert [int(table.item(r, 3).text().split()[0]) for r in range(K)] == ids
    assert table.item(0, 1).text() == f"{similarities[0]:.4f}"


def test_ctrl_and_shift_clicks_add_examples_and_the_layers_are_readable(
    plugin, colour_raster, band_mean_model
) -> None:
    from snca_cli.runtime.styles import SIMILARITY_BREAKS

    layer = _prepare(plugin, colour_raster, band_mean_model)
    _build_index(plugin)
    plugin.dock.k.setValue(K)
    click(plugin, layer, *_centre(QUERY_ROW, QUERY_COL))
    click(plugin, layer, *_centre(0, 0), Qt.ControlModifier)
    click(plugin, layer, *_centre(2, 3), Qt.ShiftModifier)

    examples = {f["tile_id"]: f["example"] for f in plugin.controller.query_layer().getFeatures()}
    assert examples == {QUERY_ID: "positive", 0: "positive", 2 * 4 + 3: "negative"}
    index = plugin.controller.open_index(colour_raster.with_name("colours_snca_index"))
    expected = index.search_examples(
        [index.tile(QUERY_ID), index.tile(0)], [index.tile(2 * 4 + 3)], k=K
    )
    features = sorted(plugin.controller.similar_layer().getFeatures(), key=lambda f: f["rank"])
    assert [f["tile_id"] for f in features] == [h.tile.tile_id for h in expected.hits]
    assert [f["similarity"] for f in features] == pytest.approx(
        [h.similarity for h in expected.hits], abs=1e-5
    )
    assert "2 example(s), 1 unlike" in plugin.dock.status_label.text()

    similar = plugin.controller.similar_layer()
    renderer = similar.renderer()
    assert [(r.lowerValue(), r.upperValue()) for r in renderer.ranges()] == [
        (low, high) for low, high, _ in SIMILARITY_BREAKS
    ]  # the same ramp in every search
    assert renderer.orderByEnabled()  # rank 1 drawn last, on top
    assert similar.labelsEnabled()
    assert similar.labeling().settings().fieldName == "'#' || \"rank\""

    plugin.dock.clear_button.click()
    click(plugin, layer, *_centre(0, 0))
    (query,) = plugin.controller.query_layer().getFeatures()
    assert (query["tile_id"], query["example"]) == (0, "positive")


def test_queries_reuse_the_open_index_and_answer_in_milliseconds(
    plugin, colour_raster, band_mean_model
) -> None:
    layer = _prepare(plugin, colour_raster, band_mean_model)
    _build_index(plugin)
    index_dir = colour_raster.with_name("colours_snca_index")
    click(plugin, layer, *_centre(0, 0))
    opened = plugin.controller.open_index(index_dir)
    timings = []
    for row, col in [(0, 1), (2, 3), (1, 2)]:
        started = time.perf_counter()
        click(plugin, layer, *_centre(row, col))
        timings.append(time.perf_counter() - started)
        assert plugin.controller.last_result.query.tile_id == row * 4 + col
    assert plugin.controller.open_index(index_dir) is opened
    assert max(timings) < 0.25  # search, layers and table; the search itself is sub-ms


def test_class_filter_double_click_zoom_and_click_outside(
    plugin, colour_raster, band_mean_model
) -> None:
    layer = _prepare(plugin, colour_raster, band_mean_model, canvas_crs="EPSG:3857")
    _build_index(plugin)
    plugin.dock.class_filter.setCurrentText("red")
    plugin.dock.k.setValue(10)
    click(plugin, layer, *_centre(QUERY_ROW, QUERY_COL))
    ids, similarities = expected_hits(QUERY_ID, 10, class_id=0)
    features = sorted(plugin.controller.similar_layer().getFeatures(), key=lambda f: f["rank"])
    assert len(ids) == 4  # only four red tiles exist
    assert [f["tile_id"] for f in features] == ids
    assert {f["class"] for f in features} == {"red"}

    plugin.dock.results_table.cellDoubleClicked.emit(1, 0)
    canvas = plugin.iface.mapCanvas()
    to_canvas = QgsCoordinateTransform(
        layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance()
    )
    row, col = divmod(ids[1], 4)
    wanted = to_canvas.transformBoundingBox(QgsRectangle(*tile_bounds(row, col, TILE_SIZE)))
    wanted.scale(3.0)  # the tile with a margin of one tile, fitted to the canvas' shape
    extent = canvas.extent()
    assert extent.center().x() == pytest.approx(wanted.center().x(), abs=1e-6)
    assert extent.center().y() == pytest.approx(wanted.center().y(), abs=1e-6)
    assert extent.contains(wanted)
    fit = min(extent.width() / wanted.width(), extent.height() / wanted.height())
    assert fit == pytest.approx(1.0, rel=1e-6)

    click(plugin, layer, 400_000.0, 4_000_000.0)
    assert "is outside every raster of the index" in plugin.dock.status_label.text()
    assert plugin.controller.similar_layer().featureCount() == 4  # previous result kept


def test_build_index_extends_the_index_with_another_layer_and_reuses_it(
    plugin, colour_raster, band_mean_model, tmp_path
) -> None:
    _prepare(plugin, colour_raster, band_mean_model)
    index_dir = tmp_path / "shared_index"
    plugin.dock.index_dir.setFilePath(str(index_dir))
    _build_index(plugin)
    assert plugin.controller.build_index() is None  # already indexed: nothing to do
    assert "already in index shared_index" in plugin.dock.status_label.text()

    flipped = np.asarray(TILE_COLOURS)[::-1, ::-1]
    east = (ORIGIN[0] + 10_000.0, ORIGIN[1])  # beside the first raster, 10 km east
    other = write_tile_colours(tmp_path / "flipped.tif", flipped, TILE_SIZE, origin=east)
    other_layer = QgsRasterLayer(str(other), "flipped")
    QgsProject.instance().addMapLayer(other_layer)
    plugin.dock.layer_combo.setLayer(other_layer)
    _build_index(plugin)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["index"]["count"] == 24
    assert [r["first_tile_id"] for r in manifest["rasters"]] == [0, 12]

    plugin.dock.k.setValue(1)
    minx, miny, maxx, maxy = tile_bounds(2, 3, TILE_SIZE, origin=east)
    click(plugin, other_layer, (minx + maxx) / 2, (miny + maxy) / 2)  # it is the original (0, 0)
    (hit,) = plugin.controller.similar_layer().getFeatures()
    query = plugin.controller.last_result.query
    assert (query.tile_id, query.index_row, query.raster.name) == (11, 12 + 11, other.name)
    assert hit["tile_id"] == 0 and hit["similarity"] == pytest.approx(1.0, abs=1e-6)
