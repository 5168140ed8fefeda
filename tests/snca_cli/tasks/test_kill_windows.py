"""Issue case 5: a writer killed (SIGKILL) between any two file operations of its commit leaves
every output as its old or new complete version, never absent, and the next writer's recovery
completes the set (all new) or leaves it all old.

The kills come from ``SNCA_FAULT_AT`` (:func:`snca_cli.runtime.atomic.fault_point`), in children
forked by ``tests/helpers/fault_runs.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.classify import classify_raster
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.search import TileIndex
from tests.helpers.classify_data import COLOURS
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted, painted_raster, write_raster

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.slow,  # each test runs a campaign of killed child processes
]


def _campaign(work: Path, scenario: str, *extra: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.fault_runs", scenario, str(work), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.splitlines()[-1])
    assert runs[-1]["killed"] is False and "error" not in runs[-1], runs[-1]
    assert sum(r["killed"] for r in runs) >= 3, runs  # the commit has several file operations
    return runs


def _assert_old_or_new(runs: list[dict], absent_allowed: bool = False) -> None:
    for run in runs:
        after = set(run["after"].values())
        assert after in ({"old"}, {"new"}), run  # the set, after recovery
        allowed = {"old", "new", "absent"} if absent_allowed else {"old", "new"}
        assert set(run["before"].values()) <= allowed, run  # each output, at the kill
        assert run["left"] == 0, run  # the recovery cleaned up what the kill left
    assert set(runs[-1]["after"].values()) == {"new"}
    assert set(runs[0]["after"].values()) == {"old"}  # killed before its commit point


@pytest.fixture
def index_work(tmp_path: Path) -> Path:
    make_band_mean_model(tmp_path / "m.onnx", tile_size=TILE)
    first = painted_raster(tmp_path / "first.tif", colour_grid(3, 4, seed=1), TILE)
    painted_raster(tmp_path / "second.tif", colour_grid(2, 3, seed=2), TILE)
    build_index([first], OnnxModel(tmp_path / "m.onnx"), tmp_path / "pristine")
    return tmp_path


@pytest.mark.parametrize("scenario", ["add", "build"])
def test_a_killed_index_writer_leaves_the_old_or_new_index(index_work: Path, scenario: str) -> None:
    _assert_old_or_new(_campaign(index_work, scenario))


@pytest.mark.parametrize("scenario", ["add", "build"])
def test_without_an_atomic_exchange_the_next_open_recovers_the_index(
    index_work: Path, scenario: str
) -> None:
    runs = _campaign(index_work, scenario, "fallback")
    _assert_old_or_new(runs, absent_allowed=True)
    # the one window of two renames: absent at the kill, the new index after recovery
    assert [r["after"] for r in runs if r["before"]["index"] == "absent"] == [{"index": "new"}]


def test_a_killed_classify_leaves_all_old_or_all_new_outputs(tmp_path: Path) -> None:
    old = make_band_mean_model(tmp_path / "old.onnx", tile_size=16, class_names=["old_0", "b", "c"])
    make_band_mean_model(tmp_path / "new.onnx", tile_size=16, class_names=["new_0", "b", "c"])
    raster = write_raster(tmp_path / "r.tif", painted(COLOURS, 16))
    (tmp_path / "out").mkdir()
    classify_raster(
        raster,
        OnnxModel(old),
        tmp_path / "old" / "a.gpkg",
        top_k=1,
        class_map=tmp_path / "old" / "a_classes.tif",
    )
    _assert_old_or_new(_campaign(tmp_path, "classify"))


def test_a_killed_search_output_leaves_both_files_old_or_new(index_work: Path) -> None:
    shutil.copytree(index_work / "pristine", index_work / "idx")
    (index_work / "out").mkdir()
    with TileIndex.open(index_work / "idx") as index:
        index.search_tile_id(5, k=2).write(index_work / "old" / "s.gpkg")
    _assert_old_or_new(_campaign(index_work, "search"))
