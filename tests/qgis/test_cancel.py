"""Cancelling a running task stops snca and leaves no output, not even half of one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qgis.core")

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsTask  # noqa: E402

from tests.helpers.onnx_models import make_band_mean_model  # noqa: E402
from tests.qgis.events import wait_for  # noqa: E402
from tests.qgis.rasters import write_tile_colours  # noqa: E402

pytestmark = pytest.mark.qgis

#: Tiles of 8 px in a 96 x 96 grid: 9216 tiles, run one by one, take seconds to classify.
SMALL_TILE = 8
GRID = 96


@pytest.fixture
def big_job(plugin, tmp_path):
    """The dock set up to classify (one tile per batch) a raster of many small tiles."""
    colours = np.random.default_rng(7).integers(0, 256, size=(GRID, GRID, 3))
    raster = write_tile_colours(tmp_path / "big.tif", colours, SMALL_TILE)
    model = make_band_mean_model(tmp_path / "small.onnx", tile_size=SMALL_TILE)
    layer = QgsRasterLayer(str(raster), "big")
    QgsProject.instance().addMapLayer(layer)
    plugin.dock.layer_combo.setLayer(layer)
    plugin.dock.model_file.setFilePath(str(model))
    plugin.dock.batch_size.setValue(1)
    plugin.dock.class_map.setChecked(True)
    return plugin, tmp_path


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix not in (".tif", ".onnx"))


def test_cancel_from_the_dock_while_classifying(big_job) -> None:
    plugin, folder = big_job
    progress: list[float] = []
    task = plugin.controller.classify()
    task.progressChanged.connect(progress.append)
    wait_for(lambda: task.status() == QgsTask.Running and progress, timeout=30)
    plugin.dock.cancel_button.click()
    wait_for(lambda: plugin.controller.task is None, timeout=30)

    assert task.was_cancelled and task.error is None and task.result is None
    assert 0 < progress[0] < 100  # it was running when cancelled
    # a clean cancel is not a failure: QGIS's task manager does not say "Task failed"
    assert task.status() == QgsTask.Complete
    assert _leftovers(folder) == []  # no gpkg, geojson, class map or temporary file
    assert sorted(p.name for p in folder.glob("*.tif")) == ["big.tif"]
    assert plugin.dock.status_label.text() == "cancelled: nothing was written (classify big.tif)"
    assert plugin.dock.progress.value() == 0
    assert plugin.dock.classify_button.isEnabled()
    assert QgsProject.instance().mapLayersByName("big classes") == []


def test_cancel_while_building_the_index_keeps_no_index(big_job) -> None:
    plugin, folder = big_job
    task = plugin.controller.build_index()
    task.progressChanged.connect(lambda value: task.cancel() if value > 0 else None)
    wait_for(lambda: plugin.controller.task is None, timeout=30)

    assert task.was_cancelled and task.result is None
    assert _leftovers(folder) == []
    assert not (folder / "big_snca_index").exists()


def test_unloading_the_plugin_during_a_task_cancels_it_safely(big_job) -> None:
    plugin, folder = big_job
    task = plugin.controller.classify()
    ends: list[str] = []
    task.taskTerminated.connect(lambda: ends.append("terminated"))
    task.taskCompleted.connect(lambda: ends.append("completed"))
    wait_for(lambda: task.status() == QgsTask.Running, timeout=30)
    plugin.unload()
    wait_for(lambda: ends, timeout=30)  # the task manager then deletes the task
    for _ in range(10):
        QgsApplication.processEvents()  # its end must not reach the deleted dock
    assert ends == ["completed"]  # cancelled cleanly: nothing written, no "Task failed"
    assert task.was_cancelled
    assert _leftovers(folder) == []
