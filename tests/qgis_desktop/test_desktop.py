"""The plugin in the real QGIS desktop, installed the way a user installs it: Debian's ``qgis``
under Xvfb, a fresh profile, nothing from this checkout in QGIS's Python and no compiler
(``CC``/``CXX`` are ``/bin/false``). The release artifacts are built (``scripts/release.py``); a
startup script (``desktop_script.py``) installs the plugin zip through the Plugin Manager's own
"Install from ZIP" code, presses the dock's Install runtime button, then classifies, indexes,
clicks the map to search and adapts the model, all with real clicks.

QGIS's own packages (numpy, matplotlib, attrs, ...) must be the same before and after, inside
QGIS and for every other Python program of the user (``pip list`` of QGIS's Python).

Skipped when ``qgis`` or ``xvfb-run`` are missing, unless ``SNCA_REQUIRE_QGIS=1``.
``SNCA_SCREENSHOT_DIR`` names a folder that receives the screenshots (``docs/img`` for the docs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("desktop_script.py")
#: QGIS's own Python on Debian (python3-qgis).
QGIS_PYTHON = "/usr/bin/python3"
#: Tile of the Landsat scene that is clicked: (row, col) of the classify grid, inside the scene.
CLICK_TILE = (2, 2)
#: The Landsat scene under a long, Sentinel-2-like file name (the results table must show it).
RASTER_NAME = "S2B_MSIL2A_20230615T103629_N0509_R008_T32UNE_20230615T142312_TCI_10m.tif"
STEM = RASTER_NAME.removesuffix(".tif")
#: Side of the generated raster that keeps a task running long enough to cancel it (px).
BIG_SIDE = 4500
#: Seconds QGIS may take for the whole run (start, runtime install from the package index,
#: classify, index, search, adapt, quit).
TIMEOUT_S = 900

pytestmark = [pytest.mark.qgis, pytest.mark.shared_data, pytest.mark.slow]  # a real QGIS run


def _requirements() -> str | None:
    """Why the desktop test cannot run here, or None."""
    for program in ("qgis", "xvfb-run"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install qgis xvfb)"
    return None


def qgis_pip_list() -> list[dict]:
    """``pip list`` of QGIS's Python as any program of the user sees it (user site included)."""
    listed = subprocess.run(
        [QGIS_PYTHON, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    return json.loads(listed.stdout)


def _user_environment(config: Path) -> dict[str, str]:
    """The environment of a user's QGIS: no compiler, nothing of this checkout or its venvs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("QT_QPA_PLATFORM", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(SNCA_DESKTOP_CONFIG=str(config), CC="/bin/false", CXX="/bin/false")
    env["PATH"] = os.pathsep.join(
        part for part in env["PATH"].split(os.pathsep) if not part.startswith(str(ROOT))
    )
    return env


@pytest.fixture(scope="module")
def desktop_run(tmp_path_factory: pytest.TempPathFactory, landsat_rgb: Path) -> dict:
    """Run QGIS once with the startup script; its JSON report plus what the test needs."""
    missing = _requirements()
    if missing is not None:
        if os.environ.get("SNCA_REQUIRE_QGIS") == "1":
            pytest.fail(f"real-desktop test required: {missing}")
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("desktop")
    work = base / "work"
    work.mkdir()
    raster = work / RASTER_NAME
    shutil.copy(landsat_rgb, raster)
    big = _big_raster(base / "big.tif", raster)

    # the release artifacts users download
    dist = base / "dist"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "release.py"), "--output", str(dist)],
        check=True,
        capture_output=True,
    )
    profile = base / "profiles" / "profiles" / "default"
    (profile / "QGIS").mkdir(parents=True)
    (profile / "QGIS" / "QGIS3.ini").write_text(
        "[qgis]\ncheckVersion=false\nshowTips322=false\nshowTips=false\n"
        "[core]\nNewsFeed\\httpsfeedqgisorg\\disabled=true\n"
    )

    x, y = _tile_centre(raster, *CLICK_TILE)
    result = base / "result.json"
    shots = base / "screenshots"
    config = base / "config.json"
    config.write_text(
        json.dumps(
            {"raster": str(raster), "work": str(work), "click": [x, y], "result": str(result),
             "screenshots": str(shots), "plugin_zip": str(next(dist.glob("snca_qgis-*.zip"))),
             "big_raster": str(big)}
        )
    )  # fmt: skip
    packages_before = qgis_pip_list()
    command = [
        "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24",
        "qgis", "--profiles-path", str(base / "profiles"), "--nologo", "--noversioncheck",
        "--code", str(SCRIPT),
    ]  # fmt: skip
    run = subprocess.run(
        command,
        env=_user_environment(config),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.is_file(), f"QGIS wrote no report (rc {run.returncode}): {run.stderr[-3000:]}"
    report = json.loads(result.read_text())
    assert report["ok"], report.get("traceback") or report
    copy_to = os.environ.get("SNCA_SCREENSHOT_DIR")
    if copy_to:
        for shot in report["screenshots"]:
            shutil.copy(shot, Path(copy_to) / Path(shot).name)
    return {
        "report": report,
        "work": work,
        "raster": raster,
        "returncode": run.returncode,
        "stderr": run.stderr,
        "profile": profile,
        "packages_before": packages_before,
        "packages_after": qgis_pip_list(),
    }


def _big_raster(path: Path, like: Path) -> Path:
    """A large RGB GeoTIFF in the CRS of ``like``: classifying it takes seconds."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(like) as src:
        crs, (west, north) = src.crs, (src.bounds.left, src.bounds.top)
    rows = np.linspace(0, 255, BIG_SIDE, dtype=np.float32)
    band = (np.add.outer(rows, rows[::-1]) / 2).astype(np.uint8)
    profile = {
        "driver": "GTiff", "width": BIG_SIDE, "height": BIG_SIDE, "count": 3, "dtype": "uint8",
        "crs": crs, "transform": from_origin(west, north, 2.0, 2.0), "tiled": True,
        "compress": "deflate",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        for index in (1, 2, 3):
            dst.write(np.roll(band, 300 * index, axis=1), index)
    return path


def _tile_centre(raster: Path, row: int, col: int) -> tuple[float, float]:
    """The centre of grid tile (row, col) in the raster's CRS."""
    import rasterio

    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.onnx_model import OnnxModel

    size = OnnxModel(default_model_path()).metadata.tile_size
    with rasterio.open(raster) as src:
        return src.xy(row * size + size // 2, col * size + size // 2)


def test_qgis_quits_cleanly(desktop_run: dict) -> None:
    assert desktop_run["returncode"] == 0


def test_shipped_model_is_preselected(desktop_run: dict) -> None:
    report = desktop_run["report"]
    assert Path(report["model_preselected"]).name == "snca-aid150-lite0.onnx"
    assert "30 classes" in report["model_info"]
    assert report["buttons_enabled_with_model"]
    assert report["dependency_problem"] == ""


def test_the_python_named_is_the_one_qgis_runs(desktop_run: dict) -> None:
    python = desktop_run["report"]["qgis_python"]
    assert python["named"] == python["real"], python
    assert Path(python["named"]).is_file()


def test_dock_fits_its_default_width_and_shows_the_results(desktop_run: dict) -> None:
    report = desktop_run["report"]
    for seen in (report["geometry_start"], report["geometry_results"]):
        # QGIS's default: a dock of about a fifth of the window, no horizontal scrolling
        assert seen["dock_width"] < 0.25 * seen["window_width"], seen
        assert seen["horizontal_scrollbars"] == [], seen
    results = report["geometry_results"]
    assert results["table_rows"] == 10
    assert results["table_visible"]
    assert results["table_rows_fully_visible"] >= 5, results


@pytest.mark.parametrize("size", ["1600x1000", "1366x768"])
def test_controls_status_and_five_rows_show_with_the_toolbox_docked_beside(
    desktop_run: dict, size: str
) -> None:
    """The Processing Toolbox docked on the same side (below the dock): the buttons, the status
    line and five result rows still show, and no class or raster name is cut below 8
    characters (the long file name is elided in the middle, in full in its tooltip)."""
    seen = desktop_run["report"]["layouts"][size]
    assert seen["window"] == [int(v) for v in size.split("x")], seen
    assert seen["toolbox_beside"], seen
    assert seen["buttons_hidden"] == [], seen
    assert seen["status_visible"], seen
    assert seen["table_rows_fully_visible"] >= 5, seen
    assert seen["horizontal_scrollbars"] == [], seen
    assert max(length for _shown, length in seen["shown_characters"]["Class"]) >= 20
    for column in ("Class", "Raster"):
        for shown, length in seen["shown_characters"][column]:
            assert shown >= min(8, length), (column, shown, length, seen)


def test_a_clicked_tile_has_one_id_everywhere(desktop_run: dict) -> None:
    """The clicked tile: its id in the classify GeoPackage, the query layer, the status line, and
    `snca search --tile-id` of the same index, whose hits are the table's rows."""
    import geopandas as gpd
    from shapely.geometry import Point

    report, work = desktop_run["report"], desktop_run["work"]
    classes = gpd.read_file(work / f"{STEM}_snca.gpkg")
    assert len(classes) == report["classes_layer"]["features"] == 19
    x, y = json.loads((work.parent / "config.json").read_text())["click"]
    under = classes[classes.contains(Point(x, y))]
    assert len(under) == 1
    clicked = under.iloc[0]
    assert (int(clicked["tile_id"]), int(clicked["row"]), int(clicked["col"])) == (
        CLICK_TILE[0] * 6 + CLICK_TILE[1],
        *CLICK_TILE,
    )  # 6 columns of 150 px tiles in the 791 px wide scene

    (query,) = report["query_layer"]["features"]
    assert query["example"] == "positive"
    assert (query["tile_id"], query["row"], query["col"]) == (
        int(clicked["tile_id"]),
        int(clicked["row"]),
        int(clicked["col"]),
    )
    assert query["raster"] == RASTER_NAME
    assert (
        f"tile {query['tile_id']} (row {query['row']}, col {query['col']})"
        in (report["status_after_search"])
    )

    out = work.parent / "cli_search.gpkg"
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "snca"), "search", str(work / f"{STEM}_snca_index"),
         "--tile-id", str(query["tile_id"]), "--raster", RASTER_NAME, "-o", str(out)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    cli_query = gpd.read_file(out, layer="query")
    assert cli_query["tile_id"].tolist() == [query["tile_id"]]
    cli_hits = gpd.read_file(out, layer="similar_tiles").sort_values("rank")
    layer_hits = report["similar_layer"]["features"]
    rows = report["table"]["rows"]
    assert report["table"]["headers"] == ["#", "Sim.", "Class", "Tile", "Raster"]
    assert len(cli_hits) == len(layer_hits) == len(rows) == 10
    for hit, feature, row in zip(cli_hits.itertuples(), layer_hits, rows, strict=True):
        assert (feature["rank"], feature["tile_id"], feature["row"], feature["col"]) == (
            hit.rank,
            hit.tile_id,
            hit.row,
            hit.col,
        )
        assert row[0] == str(hit.rank)
        assert row[3] == str(hit.tile_id) and row[4] == RASTER_NAME
        assert abs(float(row[1]) - hit.similarity) < 1e-3
        # the classify GeoPackage names the same tile by the same id
        same = classes[classes["tile_id"] == hit.tile_id]
        assert (int(same["row"].iloc[0]), int(same["col"].iloc[0])) == (hit.row, hit.col)
    assert query["tile_id"] not in {f["tile_id"] for f in layer_hits}


def test_similar_tiles_are_readable(desktop_run: dict) -> None:
    report = desktop_run["report"]
    similar = report["similar_layer"]
    assert similar["labels"]
    assert similar["legend_expanded"]
    assert report["classes_layer"]["legend_expanded"]
    similarities = [f["similarity"] for f in similar["features"]]
    assert similarities == sorted(similarities, reverse=True)
    # a double click on rank 1 in the table zooms to it and outlines it
    first = similar["features"][0]
    assert report["highlighted"] == {
        "rank": 1,
        "tile_id": first["tile_id"],
        "raster": RASTER_NAME,
    }


def test_the_resolution_warning_names_the_rule(desktop_run: dict) -> None:
    warning = desktop_run["report"]["resolution_warning"]
    assert "300 m/px" in warning and "0.5-8 m/px" in warning and "4x" in warning


def test_screenshots_of_the_real_window(desktop_run: dict) -> None:
    from PIL import Image

    report = desktop_run["report"]
    names = [Path(p).name for p in report["screenshots"]]
    assert names == [
        "qgis_install_runtime.png", "qgis_classes.png", "qgis_window.png", "qgis_dock.png",
        "qgis_zoomed.png", "qgis_1600x1000_toolbox.png", "qgis_1366x768_toolbox.png",
    ]  # fmt: skip
    for shot in report["screenshots"]:
        with Image.open(shot) as image:
            name = Path(shot).name
            if name == "qgis_dock.png":
                assert image.width == report["geometry_results"]["dock_width"]
            elif name == "qgis_1366x768_toolbox.png":
                assert image.size == (1366, 768)
            else:
                assert image.size == (1600, 1000)
            assert len(image.convert("L").resize((64, 40)).getcolors(4096)) > 20  # not blank


def test_one_button_installs_the_runtime_from_the_plugin_zip(desktop_run: dict) -> None:
    report, profile = desktop_run["report"], desktop_run["profile"]
    assert not report["snca_importable_before"]
    before = report["before_install"]
    assert before["button"] == "Install runtime" and before["button_visible"]
    assert "not installed" in before["problem"] and not before["classify_enabled"]
    install = report["install"]
    assert install["controller"] and install["problem"] == "", install
    record = install["record"]
    # the wheel inside the plugin, into the plugin's own folder of the profile
    assert record["wheel"].startswith("snca-") and record["installed"][0].startswith("snca==")
    expected = profile / "python" / "plugins" / "snca_qgis" / "runtime"
    assert Path(install["record_path"]).parent.parent == expected
    installed = {entry.split("==")[0].lower() for entry in record["installed"]}
    assert {"onnxruntime", "rasterio", "pyogrio"} <= installed
    # what QGIS's Python has is used as it is, never installed again
    kept = {entry.split("==")[0].lower() for entry in record["kept"]}
    assert {"numpy", "matplotlib", "attrs"} <= kept
    assert not installed & kept
    assert install["log_lines"] > 10  # pip's own log, line by line in the dock


def test_qgis_own_packages_are_untouched(desktop_run: dict) -> None:
    report = desktop_run["report"]
    assert report["qgis_packages_after"] == report["qgis_packages_before"]
    for seen in report["qgis_packages_after"].values():
        assert "snca_qgis" not in seen["file"]  # QGIS's own copy, not one from the runtime
    # every other Python program of the user sees the same packages as before
    assert desktop_run["packages_after"] == desktop_run["packages_before"]


def test_no_warning_from_snca_in_qgis_log(desktop_run: dict) -> None:
    """No Python warning (deprecations, unclosed files, a second matplotlib) and nothing at
    warning level in the plugin's own log; the message bar's lines are the dock's messages."""
    log = desktop_run["report"]["log_warnings"]
    assert [entry for entry in log if entry[0] in ("Python warning", "SNCA")] == []


def test_adapt_loads_a_model_of_the_labelled_classes(desktop_run: dict) -> None:
    adapt = desktop_run["report"]["adapt"]
    assert adapt["written"], adapt
    assert Path(adapt["model_loaded"]).name == "adapted.onnx"
    assert set(adapt["classes"]) <= set(adapt["model_classes"]), adapt


def test_shift_click_through_the_canvas_ranks_a_tile_away(desktop_run: dict) -> None:
    """Ctrl and Shift clicks sent to the map canvas's viewport, as a person clicks: Shift adds
    a negative example and the ranking changes; Ctrl adds a positive one."""
    shift = desktop_run["report"]["shift_click"]
    assert shift["negatives"] == [shift["clicked_tile"]]
    assert shift["ranking_after"] != shift["ranking_before"]
    assert shift["clicked_tile"] not in shift["ranking_after"][:1]
    assert "negative" in shift["query_examples"]
    ctrl = desktop_run["report"]["ctrl_click"]
    assert len(ctrl["positives"]) == 2 and ctrl["ranking_after"] != shift["ranking_after"]


def test_closing_the_project_mid_task_adds_nothing_to_the_next(desktop_run: dict) -> None:
    closed = desktop_run["report"]["project_closed"]
    assert closed["task_was_running"]
    assert closed["layers_after"] == [] and not closed["dirty_after"], closed
    assert "project it was started in was closed" in closed["status"]
    assert closed["written"]  # the outputs are on disk all the same


def test_a_cancel_is_shown_as_cancelled(desktop_run: dict) -> None:
    cancel = desktop_run["report"]["cancelled"]
    assert cancel["task_was_running"]
    assert cancel["status"].startswith("cancelled: nothing was written (classify big.tif)")
    assert cancel["status_visible"]
    assert cancel["task_status"] == "complete"  # QGIS does not report it as a failed task
    assert cancel["left_behind"] == []
