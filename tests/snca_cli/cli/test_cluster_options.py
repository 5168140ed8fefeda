"""`--workers`, `--cluster`, `--shard-size`, raster lists and `snca index merge` through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.cluster import ANSWER_GRACE_S
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.store import read_index
from snca_cli.tasks.units import UNIT_MANIFEST, work_folder
from tests.helpers.classify_data import read_layer
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.peers import http_error_peer, silent_peer
from tests.helpers.rasters import painted, painted_raster, truncated_geotiff, write_raster

runner = CliRunner()


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    """A text file listing two rasters (one relative to it), with a comment and a blank line."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    painted_raster(folder / "a.tif", colour_grid(3, 4, seed=1), TILE)
    second = painted_raster(tmp_path / "b.tif", colour_grid(2, 3, seed=2), TILE)
    listing = folder / "rasters.txt"
    listing.write_text(f"# two scenes\na.tif\n\n{second}\n")
    return listing


@pytest.mark.slow  # starts a Dask cluster of worker processes
def test_index_build_on_two_workers_from_a_raster_list(
    tmp_path: Path, model: OnnxModel, listed: Path
) -> None:
    idx = tmp_path / "idx"
    built = runner.invoke(
        app,
        [
            "index",
            "build",
            str(listed),
            "-m",
            str(model.path),
            "-o",
            str(idx),
            "--workers",
            "2",
            "--shard-size",
            "10",
        ],
    )
    assert built.exit_code == 0, built.output
    out = _words(built.output)
    assert "Dask dashboard: http://" in out
    assert "indexed 18 tiles of 2 raster(s)" in out and "in 2 shards" in out
    assert "2 work units, 0 reused" in out
    manifest = json.loads((idx / "manifest.json").read_text())
    assert [Path(r["path"]).name for r in manifest["rasters"]] == ["a.tif", "b.tif"]
    single = runner.invoke(
        app, ["index", "build", str(listed), "-m", str(model.path), "-o", str(tmp_path / "one")]
    )
    assert single.exit_code == 0, single.output
    np.testing.assert_array_equal(
        read_index(idx).embeddings, read_index(tmp_path / "one").embeddings
    )


@pytest.mark.slow  # starts a Dask cluster of worker processes
def test_classify_on_two_workers_writes_the_same_layers(
    tmp_path: Path, model: OnnxModel, listed: Path
) -> None:
    for name, extra in (("one", []), ("two", ["--workers", "2"])):
        done = runner.invoke(
            app,
            ["classify", str(listed), "-m", str(model.path), "-o", str(tmp_path / name), *extra],
        )
        assert done.exit_code == 0, done.output
    for stem in ("a", "b"):
        one = read_layer(tmp_path / "one" / f"{stem}.gpkg")[2]
        two = read_layer(tmp_path / "two" / f"{stem}.gpkg")[2]
        for field in one:
            np.testing.assert_array_equal(one[field], two[field], err_msg=field)


def test_index_merge_joins_two_indexes(tmp_path: Path, model: OnnxModel, listed: Path) -> None:
    a = painted_raster(tmp_path / "x.tif", colour_grid(3, 4, seed=8), TILE)
    b = painted_raster(tmp_path / "y.tif", colour_grid(1, 2, seed=9), TILE)
    for raster, name in ((a, "ia"), (b, "ib")):
        assert (
            runner.invoke(
                app,
                ["index", "build", str(raster), "-m", str(model.path), "-o", str(tmp_path / name)],
            ).exit_code
            == 0
        )
    merged = runner.invoke(
        app,
        ["index", "merge", str(tmp_path / "ia"), str(tmp_path / "ib"), "-o", str(tmp_path / "m")],
    )
    assert merged.exit_code == 0, merged.output
    assert "merged 14 tiles of 2 raster(s)" in _words(merged.output)
    again = runner.invoke(
        app,
        ["index", "merge", str(tmp_path / "ia"), str(tmp_path / "ib"), "-o", str(tmp_path / "m")],
    )
    assert again.exit_code == 2 and again.output.startswith("error: ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "give --workers or --cluster"),
        (["--cluster", "127.0.0.1:8786"], "it has no scheme"),
        (["--cluster", "foo://x"], "snca reaches a scheduler by tcp://, tls://, ws:// or wss://"),
        (["--cluster", ":notaport"], "it has no scheme"),
        (["--cluster", "tcp://"], "it names no host"),
        (["--cluster", "inproc://x"], "inproc:// reaches only a scheduler inside the snca"),
        (["--shard-size", "lots"], "--shard-size takes a tile count"),
    ],
)
def test_bad_cluster_options_are_one_line(
    tmp_path: Path, model: OnnxModel, listed: Path, extra: list[str], message: str
) -> None:
    done = runner.invoke(
        app,
        ["index", "build", str(listed), "-m", str(model.path), "-o", str(tmp_path / "i"), *extra],
    )
    assert done.exit_code == 2
    assert done.output.startswith("error: ") and message in done.output
    assert len(done.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_ctrl_c_then_the_same_command_reuses_the_finished_shards(tmp_path: Path) -> None:
    """A real SIGINT to `snca index build --workers 2` once a unit has finished: exit 130, no
    index; the rerun computes only the units that had not finished."""
    model = make_band_mean_model(tmp_path / "model.onnx", tile_size=8)
    colours = np.random.default_rng(4).integers(1, 255, (512, 256, 3))
    raster = write_raster(tmp_path / "big.tif", painted(colours, 8))  # 131,072 tiles: 7 units
    idx = tmp_path / "idx"
    command = [
        sys.executable,
        "-m",
        "snca_cli.cli",
        "index",
        "build",
        str(raster),
        "-m",
        str(model),
        "-o",
        str(idx),
        "--workers",
        "2",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    work = work_folder(idx).path
    deadline = time.monotonic() + 120
    while not list(work.glob(f"unit-*/{UNIT_MANIFEST}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted: stopped cleanly" in stderr and not idx.exists()
    finished = len(list(work.glob(f"unit-*/{UNIT_MANIFEST}")))
    assert 1 <= finished < 7
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"7 work units, {finished} reused from an earlier run" in _words(rerun.stdout)
    assert "holds 131,072 tiles" in _words(rerun.stdout) and not work.exists()


def _snca(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter (Dask's workers write to its stderr)."""
    command = [sys.executable, "-m", "snca_cli.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # waits out the 20 s connect timeout
def test_a_scheduler_that_accepts_and_says_nothing_ends_within_the_timeout(
    tmp_path: Path, model: OnnxModel, listed: Path
) -> None:
    """Issue 28, item 12: such a peer held `--cluster` for 636 s despite the 20 s timeout."""
    with silent_peer() as address:
        started = time.monotonic()
        done = _snca(
            "index", "build", listed, "-m", model.path, "-o", tmp_path / "i", "--cluster", address
        )
        took = time.monotonic() - started
    assert done.returncode == 2 and took < 20 + ANSWER_GRACE_S + 10, (took, done.stderr)
    assert done.stderr.strip().splitlines() == [
        f"error: the Dask scheduler at {address} did not answer within 20 s: it accepts "
        "connections but says nothing (is it a Dask scheduler?)"
    ]
    assert not (tmp_path / "i").exists()


def test_an_http_server_as_the_scheduler_is_one_line(
    tmp_path: Path, model: OnnxModel, listed: Path
) -> None:
    """Issue 28, item 13: it ended in `unexpected MemoryError: Unable to allocate 3.07 EiB`."""
    before = set(tmp_path.iterdir())
    with http_error_peer() as address:
        done = _snca(
            "index", "build", listed, "-m", model.path, "-o", tmp_path / "i", "--cluster", address
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {address} is not a Dask scheduler: it does not speak Dask's protocol (give the "
        "address the scheduler printed, usually port 8786)"
    ]
    assert set(tmp_path.iterdir()) == before, "nothing left behind (no empty work folder)"


@pytest.mark.slow  # starts a Dask cluster of worker processes
def test_a_failing_unit_is_one_line_without_dask_s_traceback(
    tmp_path: Path, model: OnnxModel
) -> None:
    """Issue 28, item 13: a worker's "Compute Failed ... Traceback:" block reached the terminal
    before the error line, and the line was "unexpected Exception"."""
    raster = truncated_geotiff(tmp_path / "cut.tif")  # header fine, strips unreadable
    idx = tmp_path / "idx"
    args = ["index", "build", raster, "-m", model.path, "-o", idx, "--workers", "2"]
    done = _snca(*args, "--stretch", "model")  # no sample read: the workers meet the damage
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot read cut.tif (corrupt or truncated?): "), lines
    assert [line for line in lines if not line.startswith("Dask dashboard: ")] == lines[-1:]
    assert not idx.exists()


def test_a_read_only_output_folder_with_workers_is_one_line(
    tmp_path: Path, model: OnnxModel
) -> None:
    """Issue 28, item 13: the units' work folder beside the output could not be made:
    "unexpected OSError" (a read-only tmpfs: needs root)."""
    raster = painted_raster(tmp_path / "r.tif", colour_grid(2, 3, seed=1), TILE)
    folder = tmp_path / "ro"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]
    if os.geteuid() != 0 or shutil.which("mount") is None or subprocess.run(mount).returncode:
        pytest.skip("needs root and mount(8) for a read-only tmpfs")
    try:
        args = ["classify", str(raster), "-m", str(model.path), "-o", str(folder / "a.gpkg")]
        done = runner.invoke(app, [*args, "--workers", "2"])
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert done.exit_code == 2
    assert done.stderr.strip() == (
        f"error: cannot write in {folder}: Read-only file system; nothing was changed"
    )
