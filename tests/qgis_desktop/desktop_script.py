"""Run inside the real QGIS desktop (``qgis --code desktop_script.py``): use the plugin's dock as a
person does, with real clicks, then write what was seen to a JSON file and quit QGIS.

The configuration comes as a JSON file named by ``$SNCA_DESKTOP_CONFIG``::

    {"raster": ..., "work": ..., "click": [x, y], "result": ..., "screenshots": ...}

``click`` is a point in the raster's CRS. Everything is done from one timer callback once the
main window is up; the waits process events so that QGIS's tasks run and finish. QGIS is left
through its own exit action (``QgsApplication.exit()`` crashes QGIS 3.22 on teardown).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsFeature,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QPoint, Qt, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QAction, QDockWidget, QStyle
from qgis.utils import iface, plugin_paths, plugins

PLUGIN = "snca_qgis"
#: Seconds to wait for one task (classify, index, adapt) before giving up.
TASK_TIMEOUT_S = 120.0
#: Seconds the runtime install may take (downloads from the package index).
INSTALL_TIMEOUT_S = 600.0
#: Warnings and errors written to QGIS's log while the script runs: (tag, level, message).
LOG_WARNINGS: list[list] = []


def _log_received(message: str, tag: str, level) -> None:
    if level in (Qgis.Warning, Qgis.Critical):
        LOG_WARNINGS.append([tag, int(level), message])


QgsApplication.messageLog().messageReceived.connect(_log_received)


def plugin_path(name: str) -> str:
    """The folder QGIS loaded the plugin ``name`` from."""
    return next(str(Path(root) / name) for root in plugin_paths if (Path(root) / name).is_dir())


def wait(seconds: float) -> None:
    """Process events for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        time.sleep(0.01)


def wait_until(condition, timeout: float, what: str) -> None:
    """Process events until ``condition()`` holds; RuntimeError naming ``what`` on a timeout."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        QCoreApplication.processEvents()
        time.sleep(0.02)


def click(widget) -> None:
    """A real left click in the middle of ``widget`` (it must be visible and enabled)."""
    if not widget.isVisible() or not widget.isEnabled():
        name = widget.text() if hasattr(widget, "text") else widget
        raise RuntimeError(f"{name} is not clickable")
    QTest.mouseClick(widget, Qt.LeftButton)
    QCoreApplication.processEvents()


def layer_named(name: str):
    layers = QgsProject.instance().mapLayersByName(name)
    return layers[0] if layers else None


def features(layer, fields: list[str]) -> list[dict]:
    return [{f: feature[f] for f in fields} for feature in layer.getFeatures()]


def screenshot(folder: Path, name: str, shots: list[str], widget=None) -> None:
    """Grab the real main window (or ``widget`` of it): QGIS's own rendering, at full size
    (without a window manager the X screen can keep a stale, smaller copy of a resized window)."""
    wait(0.5)
    image = (widget or iface.mainWindow()).grab()
    path = folder / f"{name}.png"
    image.save(str(path))
    shots.append(str(path))


def geometry(dock) -> dict:
    """What a person sees of the dock: its width, a horizontal scrollbar, the table's rows."""
    table = dock.results_table
    viewport = table.viewport().rect()
    full_rows = 0
    for row in range(table.rowCount()):
        rect = table.visualRect(table.model().index(row, 0))
        if rect.top() >= 0 and rect.bottom() <= viewport.bottom():
            full_rows += 1
    return {
        "dock_width": dock.width(),
        "window_width": iface.mainWindow().width(),
        "horizontal_scrollbars": [
            name
            for name, bar in dock.horizontal_scrollbars().items()
            if bar.isVisible() and bar.maximum() > 0
        ],
        "table_rows": table.rowCount(),
        "table_rows_fully_visible": full_rows,
        "table_visible": table.isVisible() and not table.visibleRegion().isEmpty(),
    }


def run(config: dict) -> dict:
    out: dict = {"steps": []}
    shots: list[str] = []
    out["screenshots"] = shots
    shot_dir = Path(config["screenshots"])
    shot_dir.mkdir(parents=True, exist_ok=True)
    work = Path(config["work"])

    window = iface.mainWindow()
    window.showNormal()
    window.setGeometry(0, 0, 1600, 1000)
    wait(1.0)
    started_from_zip = time.monotonic()
    plugin = install_plugin_and_runtime(config, out, shot_dir, shots)
    dock = plugin.dock
    controller = plugin.controller
    out["dependency_problem"] = dock.message_label.text() if dock.message_label.isVisible() else ""
    from snca_qgis.dependencies import qgis_python_executable

    out["qgis_python"] = {
        "named": qgis_python_executable(),
        "real": f"{sys.exec_prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}",
        "sys_executable": sys.executable,
    }
    if controller is None:
        raise RuntimeError(f"the plugin found no runtime: {out['dependency_problem']}")
    detour = time.monotonic()
    cancel_and_close_mid_task(dock, controller, config, out)
    started_from_zip += time.monotonic() - detour  # the scripted detours are not the user's path
    out["model_preselected"] = dock.model_file.filePath()
    out["model_info"] = dock.model_info.text()
    out["buttons_enabled_with_model"] = dock.classify_button.isEnabled()

    raster = Path(config["raster"])
    layer = QgsRasterLayer(str(raster), raster.stem)
    if not layer.isValid():
        raise RuntimeError(f"QGIS cannot open {raster}")
    project = QgsProject.instance()
    project.addMapLayer(layer)
    project.setCrs(layer.crs())
    canvas = iface.mapCanvas()
    canvas.setExtent(layer.extent())
    canvas.refresh()
    wait(1.0)
    dock.layer_combo.setLayer(layer)
    dock.output_file.setFilePath(str(work / f"{raster.stem}_snca.gpkg"))
    dock.index_dir.setFilePath(str(work / f"{raster.stem}_snca_index"))
    out["resolution_warning"] = dock.warning_text()
    out["geometry_start"] = geometry(dock)

    started = time.monotonic()
    click(dock.classify_button)
    wait_until(lambda: controller.task is None, TASK_TIMEOUT_S, "classify")
    out["steps"].append(
        {
            "step": "classify",
            "seconds": time.monotonic() - started,
            "status": dock.status_label.text(),
        }
    )
    classes = layer_named(f"{raster.stem} classes")
    if classes is None:
        raise RuntimeError(f"no classes layer after classify: {dock.status_label.text()}")
    out["zip_to_classified_layer_s"] = time.monotonic() - started_from_zip
    out["classes_layer"] = {
        "features": classes.featureCount(),
        "legend_expanded": plugin_legend_expanded(classes),
    }
    screenshot(shot_dir, "qgis_classes", shots)

    started = time.monotonic()
    click(dock.index_button)
    wait_until(lambda: controller.task is None, TASK_TIMEOUT_S, "index")
    out["steps"].append(
        {"step": "index", "seconds": time.monotonic() - started, "status": dock.status_label.text()}
    )

    click(dock.find_button)
    x, y = config["click"]
    pixel = canvas.getCoordinateTransform().transform(x, y)
    where = QPoint(int(round(pixel.x())), int(round(pixel.y())))
    QTest.mouseClick(canvas.viewport(), Qt.LeftButton, Qt.NoModifier, where)
    wait_until(lambda: controller.last_result is not None, 30, "the search")
    wait(1.0)
    out["status_after_search"] = dock.status_label.text()
    query = controller.query_layer()
    similar = controller.similar_layer()
    out["query_layer"] = {
        "name": query.name(),
        "features": features(query, ["example", "tile_id", "row", "col", "raster", "class"]),
    }
    out["similar_layer"] = {
        "name": similar.name(),
        "features": features(similar, ["rank", "tile_id", "row", "col", "raster", "similarity"]),
        "legend_expanded": plugin_legend_expanded(similar),
        "labels": similar.labelsEnabled(),
    }
    table = dock.results_table
    out["table"] = {
        "headers": [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())],
        "rows": [
            [table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())
        ],
    }
    out["geometry_results"] = geometry(dock)
    screenshot(shot_dir, "qgis_window", shots)
    screenshot(shot_dir, "qgis_dock", shots, widget=dock)

    # zoom to rank 1 from the table, as a person does (double click on its row)
    rect = table.visualRect(table.model().index(0, 0))
    QTest.mouseClick(table.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    QTest.mouseDClick(table.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    wait(1.0)
    out["highlighted"] = controller.highlighted_tile()
    screenshot(shot_dir, "qgis_zoomed", shots)

    canvas.setExtent(layer.extent())
    canvas.refresh()
    wait(1.0)
    shift_and_ctrl_clicks(canvas, controller, out)
    out["adapt"] = adapt_to_labels(dock, controller, classes, work)
    tab_bar = dock.tabs.tabBar()
    QTest.mouseClick(tab_bar, Qt.LeftButton, Qt.NoModifier, tab_bar.tabRect(0).center())
    out["adapted_search_classes"] = search_with_the_adapted_model(
        dock, controller, canvas, work, *config["click"]
    )
    out["layouts"] = {
        f"{w}x{h}": layout_with_toolbox(dock, w, h, shot_dir, shots)
        for w, h in ((1600, 1000), (1366, 768))
    }
    out["qgis_packages_after"] = qgis_packages()
    out["log_warnings"] = LOG_WARNINGS
    return out


def click_map(canvas, x: float, y: float, modifiers=Qt.NoModifier) -> None:
    """A real click (press and release) on the map canvas's viewport at map point (x, y)."""
    pixel = canvas.getCoordinateTransform().transform(x, y)
    where = QPoint(int(round(pixel.x())), int(round(pixel.y())))
    QTest.mouseClick(canvas.viewport(), Qt.LeftButton, modifiers, where)
    QCoreApplication.processEvents()


def ranking(controller) -> list[int]:
    return [hit.tile.tile_id for hit in controller.last_result.hits]


def tile_centre(controller, rank: int) -> tuple[float, float]:
    """The centre of the similar tile at ``rank`` (1-based), in the similar layer's CRS."""
    layer = controller.similar_layer()
    feature = next(f for f in layer.getFeatures() if f["rank"] == rank)
    point = feature.geometry().centroid().asPoint()
    return point.x(), point.y()


def shift_and_ctrl_clicks(canvas, controller, out: dict) -> None:
    """Shift+click the current rank-1 tile (rank it away), then Ctrl+click the new rank-2 tile
    (search for it too), through the canvas as a person does."""
    before = ranking(controller)
    clicked = before[0]
    previous = controller.last_result
    click_map(canvas, *tile_centre(controller, 1), Qt.ShiftModifier)
    wait_until(lambda: controller.last_result is not previous, 30, "the Shift+click search")
    query = controller.query_layer()
    out["shift_click"] = {
        "clicked_tile": clicked,
        "ranking_before": before,
        "ranking_after": ranking(controller),
        "negatives": [tile.tile_id for tile in controller.negatives],
        "query_examples": [f["example"] for f in query.getFeatures()],
    }
    previous = controller.last_result
    click_map(canvas, *tile_centre(controller, 2), Qt.ControlModifier)
    wait_until(lambda: controller.last_result is not previous, 30, "the Ctrl+click search")
    out["ctrl_click"] = {
        "positives": [tile.tile_id for tile in controller.positives],
        "ranking_after": ranking(controller),
    }


def start_big_classify(dock, controller, raster_layer, output: Path):
    """Click Classify on the big raster and wait until its task runs; the task."""
    dock.layer_combo.setLayer(raster_layer)
    dock.output_file.setFilePath(str(output))
    click(dock.classify_button)
    wait_until(
        lambda: controller.task is not None and dock.progress.value() > 0,
        TASK_TIMEOUT_S,
        "the big classify to run",
    )
    return controller.task


def cancel_and_close_mid_task(dock, controller, config: dict, out: dict) -> None:
    """Cancel a running classify with the dock's button; then close the project (Project >
    Close) while another runs: its layer must not land in the next project."""
    work = Path(config["work"])
    project = QgsProject.instance()
    big = QgsRasterLayer(config["big_raster"], "big")
    project.addMapLayer(big)
    task = start_big_classify(dock, controller, big, work / "big_cancelled.gpkg")
    ends: list[str] = []
    task.taskCompleted.connect(lambda: ends.append("complete"))
    task.taskTerminated.connect(lambda: ends.append("terminated"))
    click(dock.cancel_button)
    wait_until(lambda: controller.task is None and ends, TASK_TIMEOUT_S, "the cancel")
    wait(0.5)
    out["cancelled"] = {
        "task_was_running": True,
        "task_status": ends[0],
        "status": dock.status_text(),
        "status_visible": not dock.status_label.visibleRegion().isEmpty(),
        "left_behind": sorted(p.name for p in work.glob("big_cancelled*")),
    }

    output = work / "big_closed.gpkg"
    start_big_classify(dock, controller, big, output)
    running = controller.task is not None
    project.setDirty(False)
    # QGIS counts layers under the system's temporary folder (where the test's files are) as
    # temporary ones, and would ask before closing the project
    QgsSettings().setValue("askToSaveMemoryLayers", False, QgsSettings.App)
    iface.mainWindow().findChild(QAction, "mActionCloseProject").trigger()  # Project > Close
    wait_until(lambda: controller.task is None, TASK_TIMEOUT_S, "the classify of a closed project")
    wait(0.5)
    out["project_closed"] = {
        "task_was_running": running,
        "layers_after": [layer.name() for layer in QgsProject.instance().mapLayers().values()],
        "dirty_after": QgsProject.instance().isDirty(),
        "status": dock.status_text(),
        "written": output.is_file(),
    }


def shown_characters(table, column: int) -> list[list[int]]:
    """For each row: how many characters of the cell in ``column`` show, and its length."""
    metrics = table.fontMetrics()
    margin = 2 * (table.style().pixelMetric(QStyle.PM_FocusFrameHMargin, None, table) + 1)
    shown = []
    for row in range(table.rowCount()):
        text = table.item(row, column).text()
        elided = metrics.elidedText(text, Qt.ElideMiddle, table.columnWidth(column) - margin)
        shown.append([len(elided.replace("\u2026", "")), len(text)])
    return shown


def fully_shown(widget) -> bool:
    """Whether all of ``widget`` is on screen (not clipped by the dock or a scroll area)."""
    return widget.isVisible() and widget.visibleRegion().boundingRect().size() == widget.size()


def layout_with_toolbox(dock, width: int, height: int, shot_dir: Path, shots: list[str]) -> dict:
    """Dock the Processing Toolbox below the SNCA dock (same side), size the window, and report
    what of the dock a person sees."""
    window = iface.mainWindow()
    toolbox = next(
        d for d in window.findChildren(QDockWidget) if "Processing Toolbox" in d.windowTitle()
    )
    toolbox.setFloating(False)
    window.addDockWidget(Qt.RightDockWidgetArea, toolbox)
    window.splitDockWidget(dock, toolbox, Qt.Vertical)
    toolbox.show()
    window.showNormal()
    window.setGeometry(0, 0, width, height)
    wait(1.5)
    tab_bar = dock.tabs.tabBar()
    QTest.mouseClick(tab_bar, Qt.LeftButton, Qt.NoModifier, tab_bar.tabRect(0).center())
    wait(0.5)
    table = dock.results_table
    buttons = (dock.classify_button, dock.index_button, dock.find_button, dock.clear_button,
               dock.cancel_button)  # fmt: skip
    seen = geometry(dock)
    seen.update(
        window=[window.width(), window.height()],
        dock_height=dock.height(),
        toolbox_beside=(
            toolbox.isVisible()
            and window.dockWidgetArea(toolbox) == window.dockWidgetArea(dock)
            and abs(toolbox.geometry().left() - dock.geometry().left()) < 5
        ),
        buttons_hidden=[button.text() for button in buttons if not fully_shown(button)],
        status_visible=fully_shown(dock.status_label),
        shown_characters={
            "Class": shown_characters(table, 2),
            "Raster": shown_characters(table, 4),
        },
    )
    screenshot(shot_dir, f"qgis_{width}x{height}_toolbox", shots)
    return seen


def qgis_packages() -> dict:
    """Version and file of the packages QGIS itself imports, as this QGIS imports them."""
    seen = {}
    for name in ("numpy", "matplotlib", "attr"):
        module = importlib.import_module(name)
        seen[name] = {"version": module.__version__, "file": module.__file__}
    return seen


def install_plugin_and_runtime(config: dict, out: dict, shot_dir: Path, shots: list[str]):
    """Install the plugin zip with the Plugin Manager's "Install from ZIP" code, then press the
    dock's Install runtime button and wait until the plugin has enabled itself."""
    import pyplugin_installer

    out["snca_importable_before"] = importlib.util.find_spec("snca_cli") is not None
    out["qgis_packages_before"] = qgis_packages()
    pyplugin_installer.instance().installFromZipFile(config["plugin_zip"])
    wait_until(lambda: PLUGIN in plugins, 30, "the plugin to load")
    plugin = plugins[PLUGIN]
    dock = plugin.dock
    wait(0.5)
    out["before_install"] = {
        "problem": dock.message_label.text(),
        "button": dock.install_button.text(),
        "button_visible": dock.install_button.isVisible(),
        "classify_enabled": dock.classify_button.isEnabled(),
    }
    screenshot(shot_dir, "qgis_install_runtime", shots)
    started = time.monotonic()
    click(dock.install_button)
    wait_until(lambda: plugin.install_task is None, INSTALL_TIMEOUT_S, "the runtime install")
    wait(0.5)
    log = dock.install_log.toPlainText().splitlines()
    folder = Path(plugin_path(PLUGIN)) / "runtime"
    records = sorted(folder.glob("py*/snca-runtime.json"))
    out["install"] = {
        "seconds": time.monotonic() - started,
        "problem": dock.message_label.text() if dock.problem_box.isVisible() else "",
        "log_lines": len(log),
        "log_tail": log[-5:],
        "controller": plugin.controller is not None,
        "record": json.loads(records[0].read_text()) if records else None,
        "record_path": str(records[0]) if records else None,
    }
    if plugin.controller is None:
        raise RuntimeError(f"the runtime install did not enable the plugin: {out['install']}")
    return plugin


def long_class_name(name: str) -> str:
    """A long class name for the adapted model (the results table must stay readable)."""
    return f"{name.lower()}_and_its_surroundings"


def search_with_the_adapted_model(dock, controller, canvas, work: Path, x: float, y: float):
    """Index the raster with the adapted model (loaded by Adapt) and search from (x, y): the
    table then lists the adapted model's long class names."""
    dock.index_dir.setFilePath(str(work / "adapted_index"))
    click(dock.index_button)
    wait_until(lambda: controller.task is None, TASK_TIMEOUT_S, "the adapted index")
    click(dock.clear_button)
    previous = controller.last_result
    click_map(canvas, x, y)
    wait_until(lambda: controller.last_result is not previous, 30, "the adapted search")
    table = dock.results_table
    return sorted({table.item(row, 2).text() for row in range(table.rowCount())})


def adapt_to_labels(dock, controller, classes, work: Path) -> dict:
    """Label the centres of classified tiles of the two commonest classes in a point layer,
    adapt the model to it with the dock's button, and report the model loaded after."""
    by_class: dict[str, list] = {}
    for feature in classes.getFeatures():
        by_class.setdefault(feature["class_name"], []).append(feature)
    common = sorted(by_class, key=lambda name: -len(by_class[name]))[:2]
    labels = QgsVectorLayer(
        f"Point?crs={classes.crs().authid()}&field=cover:string", "my labels", "memory"
    )
    points = []
    for name in common:
        for tile in by_class[name][:4]:
            point = QgsFeature(labels.fields())
            point.setGeometry(tile.geometry().centroid())
            point.setAttribute("cover", long_class_name(name))
            points.append(point)
    labels.dataProvider().addFeatures(points)
    QgsProject.instance().addMapLayer(labels)
    tab_bar = dock.tabs.tabBar()
    QTest.mouseClick(tab_bar, Qt.LeftButton, Qt.NoModifier, tab_bar.tabRect(2).center())
    wait(0.3)
    dock.labels_combo.setLayer(labels)
    dock.label_field.setField("cover")
    adapted = work / "adapted.onnx"
    dock.adapted_file.setFilePath(str(adapted))
    started = time.monotonic()
    click(dock.adapt_button)
    wait_until(lambda: controller.task is None, TASK_TIMEOUT_S, "adapt")
    return {
        "classes": [long_class_name(name) for name in common],
        "labels": len(points),
        "seconds": time.monotonic() - started,
        "status": dock.status_label.text(),
        "model_loaded": dock.model_file.filePath(),
        "model_classes": list(controller.model.metadata.class_names) if controller.model else [],
        "written": adapted.is_file(),
    }


def plugin_legend_expanded(layer) -> bool:
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    return bool(node is not None and node.isExpanded())


def main() -> None:
    config = json.loads(Path(os.environ["SNCA_DESKTOP_CONFIG"]).read_text())
    result_path = Path(config["result"])
    try:
        out = run(config)
        out["ok"] = True
    except Exception as exc:  # reported in the JSON, then QGIS quits all the same
        out = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=str))
    tmp.replace(result_path)
    # a task still running (after an error) would make QGIS ask before quitting
    QgsApplication.taskManager().cancelAll()
    wait_until(lambda: QgsApplication.taskManager().countActiveTasks() == 0, 60, "tasks to end")
    # the result layers are memory layers: without them QGIS quits without asking to save
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().setDirty(False)
    iface.actionExit().trigger()


QTimer.singleShot(2000, main)
