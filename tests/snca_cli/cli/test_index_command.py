"""`snca index build/add` through the CLI, then `snca search` over the index they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rasterio.warp import transform as transform_coords
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.store import index_lock, read_index
from snca_cli.tasks.units import RunOptions
from tests.helpers.index_data import (
    TILE,
    colour_grid,
    read_layer,
)
from tests.helpers.rasters import (
    ORIGIN,
    PIXEL,
    painted_raster,
)

runner = CliRunner()


def test_cli_build_add_and_search(tmp_path: Path, model: OnnxModel, colours: np.ndarray) -> None:
    first = painted_raster(tmp_path / "first.tif", colours, TILE)
    second = painted_raster(tmp_path / "second.tif", colour_grid(1, 2, seed=3), TILE)
    idx = str(tmp_path / "idx")
    built = runner.invoke(
        app, ["index", "build", str(first), "-m", str(model.path), "-o", idx, "--M", "8"]
    )
    assert built.exit_code == 0, built.output
    assert "indexed 12 tiles of 1 raster(s)" in " ".join(built.output.split())
    added = runner.invoke(app, ["index", "add", idx, str(second), "-m", str(model.path)])
    assert added.exit_code == 0, added.output
    assert "holds 14 tiles" in " ".join(added.output.split())
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["index"]["M"] == 8

    x, y = ORIGIN[0] + (2 * TILE + 3) * PIXEL, ORIGIN[1] - (TILE + 5) * PIXEL
    (lon,), (lat,) = transform_coords("EPSG:32633", "EPSG:4326", [x], [y])
    out = tmp_path / "hits.gpkg"
    for query in (
        ["--tile-id", "6"],
        ["--xy", str(x), str(y)],
        ["--xy", str(x), str(y), "--crs", "EPSG:32633"],
        ["--lonlat", str(lon), str(lat), "--exact"],
    ):
        searched = runner.invoke(app, ["search", idx, *query, "-k", "3", "-o", str(out), "--force"])
        assert searched.exit_code == 0, searched.output
        assert "query: tile 6 (row 1, col 2) of first.tif" in searched.output
        assert "3 most similar to tile 6" in searched.output
        fields, _ = read_layer(out, "similar_tiles")
        assert fields["rank"].tolist() == [1, 2, 3] and 6 not in fields["tile_id"].tolist()
    assert (tmp_path / "hits.geojson").is_file()

    # tile 1 exists in both rasters (grid ids, as snca classify numbers tiles): name one
    ambiguous = runner.invoke(app, ["search", idx, "--tile-id", "1"])
    assert ambiguous.exit_code == 2 and "name the raster" in ambiguous.output
    named = runner.invoke(app, ["search", idx, "--tile-id", "1", "--raster", "second.tif"])
    assert named.exit_code == 0 and "query: tile 1 (row 0, col 1) of second.tif" in named.output

    # several examples: positives by id and by point, a negative; all written to layer query
    examples = ["--tile-id", "6", "--point", f"{x},{y}", "--tile-id", "2", "--not-tile-id", "3"]
    searched = runner.invoke(
        app,
        ["search", idx, *examples, "--raster", "first.tif", "-k", "4", "-o", str(out), "--force"],
    )
    assert searched.exit_code == 0, searched.output
    assert "unlike: tile 3 (row 0, col 3) of first.tif" in searched.output
    query_fields, _ = read_layer(out, "query")
    assert query_fields["example"].tolist() == ["positive"] * 2 + ["negative"]
    assert query_fields["tile_id"].tolist() == [6, 2, 3]  # tile 6 given twice counts once
    fields, _ = read_layer(out, "similar_tiles")
    assert len(fields["rank"]) == 4 and not {2, 3, 6} & set(fields["tile_id"].tolist())


def test_cli_uses_the_shipped_model_without_model(
    tmp_path: Path, model: OnnxModel, colours: np.ndarray, monkeypatch
) -> None:
    monkeypatch.setattr("snca_cli.runtime.default_model.default_model_path", lambda: model.path)
    first = painted_raster(tmp_path / "first.tif", colours, TILE)
    second = painted_raster(tmp_path / "second.tif", colour_grid(1, 2, seed=3), TILE)
    idx = str(tmp_path / "idx")
    assert runner.invoke(app, ["index", "build", str(first), "-o", idx]).exit_code == 0
    added = runner.invoke(app, ["index", "add", idx, str(second)])
    assert added.exit_code == 0 and "holds 14 tiles" in " ".join(added.output.split())
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert model.sha256 in json.dumps(manifest)
    colour = np.array(colours[1, 2], dtype=np.uint8)  # tile 6's colour: an exact match
    Image.fromarray(np.tile(colour, (TILE, TILE, 1))).save(tmp_path / "query.png")
    searched = runner.invoke(app, ["search", idx, "--image", str(tmp_path / "query.png")])
    assert searched.exit_code == 0, searched.output
    rows = [[c.strip() for c in line.split("│")[1:4]] for line in searched.stdout.splitlines()]
    assert ["1", "1.0000", "6"] in rows  # rank 1: tile 6, similarity 1


#: What a writer says while another one holds the index's lock.
WAITING = "is being written by another process"


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """The real CLI in a fresh interpreter, its stderr going to ``log``."""
    with open(log, "w") as stream:
        return subprocess.Popen(
            [sys.executable, "-m", "snca_cli.cli", *args],
            stdout=subprocess.DEVNULL,
            stderr=stream,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _said_or_ended(process: subprocess.Popen, log: Path, text: str) -> str:
    """What ``process`` wrote to ``log`` once it wrote ``text`` or ended (at most 120 s)."""
    deadline = time.monotonic() + 120
    while text not in log.read_text() and process.poll() is None:
        assert time.monotonic() < deadline, f"no {text!r} in 120 s"
        time.sleep(0.05)
    return log.read_text()


def _raster_names(index_dir: Path) -> list[str]:
    return [Path(r.path).name for r in read_index(index_dir).manifest.rasters]


@pytest.mark.skipif(sys.platform == "win32", reason="runs the CLI beside a thread holding a lock")
def test_issue_28_case_3_a_merge_onto_an_index_never_loses_a_running_add(
    tmp_path: Path, model: OnnxModel, index_dir: Path
) -> None:
    big = painted_raster(tmp_path / "big.tif", colour_grid(2, 3, seed=9), TILE)
    other = painted_raster(tmp_path / "other.tif", colour_grid(1, 2, seed=3), TILE)
    build_index([other], model, tmp_path / "b")
    adding, merge_waits = threading.Event(), threading.Event()

    def pause(done: int, total: int) -> None:  # the add holds the index's lock here
        adding.set()
        merge_waits.wait(timeout=120)

    adder = threading.Thread(
        target=add_to_index, args=(index_dir, [big], model), kwargs={"run": RunOptions(pause)}
    )
    adder.start()
    try:
        assert adding.wait(timeout=120)
        log = tmp_path / "merge.log"
        args = ["index", "merge", str(index_dir), str(tmp_path / "b"), "-o", str(index_dir)]
        merge = _start([*args, "--force"], log)
        assert WAITING in _said_or_ended(merge, log, WAITING)
    finally:
        merge_waits.set()  # the add goes on and publishes; then the merge takes the lock
        adder.join()
    assert merge.wait(timeout=120) == 0, log.read_text()
    assert _raster_names(index_dir) == ["painted.tif", "big.tif", "other.tif"]
    assert read_index(index_dir).manifest.count == 12 + 6 + 2


@pytest.mark.parametrize("how", ["add", "build --force", "merge --force"])
def test_issue_28_case_9_an_index_written_through_a_link_is_the_real_index(
    tmp_path: Path, model: OnnxModel, index_dir: Path, how: str
) -> None:
    link = tmp_path / "idxlink"
    link.symlink_to(index_dir)
    second = painted_raster(tmp_path / "second.tif", colour_grid(2, 3, seed=9), TILE)
    build_index([second], model, tmp_path / "b")
    runs = {
        "add": ["index", "add", str(link), str(second)],
        "build --force": ["index", "build", str(second), "-o", str(link), "--force"],
        "merge --force": ["index", "merge", str(link), str(tmp_path / "b"), "-o", str(link)],
    }
    args = runs[how] + (["--force"] if how == "merge --force" else ["-m", str(model.path)])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(index_dir)
    expected = {"add": ["painted.tif", "second.tif"], "build --force": ["second.tif"]}
    assert _raster_names(index_dir) == expected.get(how, ["painted.tif", "second.tif"])
    searched = runner.invoke(app, ["search", str(link), "--tile-id", "4", "--raster", "second.tif"])
    assert searched.exit_code == 0 and "query: tile 4" in searched.output, searched.output


@pytest.mark.skipif(sys.platform == "win32", reason="runs the CLI beside a held lock")
def test_issue_28_case_9_both_spellings_of_an_index_take_one_lock(
    tmp_path: Path, model: OnnxModel, index_dir: Path
) -> None:
    link = tmp_path / "idxlink"
    link.symlink_to(index_dir)
    second = painted_raster(tmp_path / "second.tif", colour_grid(2, 3, seed=9), TILE)
    log = tmp_path / "add.log"
    with index_lock(index_dir):  # a writer of the index by its real name
        add = _start(["index", "add", str(link), str(second), "-m", str(model.path)], log)
        said = _said_or_ended(add, log, WAITING)
        assert f"index {link} {WAITING} (pid {os.getpid()})" in said, said
    assert add.wait(timeout=120) == 0, log.read_text()
    assert link.is_symlink() and _raster_names(index_dir) == ["painted.tif", "second.tif"]
