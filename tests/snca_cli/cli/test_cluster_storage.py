"""Runs on a Dask cluster that shares no folder with the client: rasters, work units and outputs
on a local S3-compatible server (moto), the model sent to the workers by content, a scheduler
and two workers as processes of their own (tests.helpers.s3_cluster).

The outputs equal those of one process; a scheduler killed mid-run ends the command with one
line, and the rerun goes on from the units the workers had finished."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest

from snca_cli.tasks.index.store import read_index
from tests.helpers.classify_data import read_layer
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster
from tests.helpers.s3_cluster import DaskProcesses, s3_filesystem, s3_server, use_empty_bucket

pytestmark = pytest.mark.slow  # a scheduler, two worker processes and an S3 server
BUCKET = "snca-test"


@pytest.fixture(scope="module")
def s3_environment() -> Iterator[dict[str, str]]:
    """One S3 server for the module (moto keeps its buckets in the process)."""
    with s3_server() as env:
        yield env


@pytest.fixture
def s3(s3_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The S3 server's environment, set for this process and the commands it starts, with an
    empty bucket :data:`BUCKET`."""
    use_empty_bucket(s3_environment, monkeypatch, BUCKET)
    return s3_environment


def _fs() -> fsspec.AbstractFileSystem:
    return s3_filesystem()


def _upload_rasters(folder: Path, shapes: list[tuple[int, int]]) -> list[str]:
    """Painted rasters of ``shapes`` (tile rows, columns) uploaded to the bucket; their URLs."""
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for number, (rows, cols) in enumerate(shapes):
        local = painted_raster(folder / f"scene{number}.tif", colour_grid(rows, cols, number), TILE)
        url = f"s3://{BUCKET}/in/{local.name}"
        _fs().put_file(str(local), url)
        local.unlink()
        urls.append(url)
    return urls


def _snca(*args: object, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter, in ``cwd``."""
    cwd.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "snca_cli.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _download(url: str, folder: Path) -> Path:
    _fs().get(url.rstrip("/") + "/", str(folder), recursive=True)
    return folder


def _index_arrays(index_dir: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """(manifest rasters and counts, tiles, embeddings) of an index."""
    files = read_index(index_dir)
    files.close()
    manifest = json.loads((index_dir / "manifest.json").read_text())
    kept = {k: manifest[k] for k in ("count", "model", "tiling", "shard_size") if k in manifest}
    kept["rasters"] = [
        {k: r[k] for k in ("path", "first_tile_id", "tile_count", "skipped")}
        for r in manifest["rasters"]
    ]
    return kept, np.array(files.tiles), np.array(files.embeddings)


def _words(text: str) -> str:
    return " ".join(text.split())


def test_index_and_classify_on_a_cluster_sharing_no_folder_equal_one_process(
    tmp_path: Path, s3: dict[str, str]
) -> None:
    urls = _upload_rasters(tmp_path / "made", [(5, 3), (4, 6), (3, 3)])
    client = tmp_path / "client"
    (client / "model").mkdir(parents=True)
    model = make_band_mean_model(client / "model" / "band_mean.onnx", tile_size=TILE)
    one = _snca("index", "build", *urls, "-m", model, "-o", "one.index", cwd=client)
    assert one.returncode == 0, one.stderr
    with DaskProcesses(tmp_path / "cluster", s3) as dask:
        built = _snca(
            "index", "build", *urls, "-m", model, "-o", f"s3://{BUCKET}/out/region.index",
            "--cluster", dask.address, "--unit-tiles", "4", cwd=client,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        classified = _snca(
            "classify", *urls, "-m", model, "-o", f"s3://{BUCKET}/out/classes",
            "--cluster", dask.address, "--unit-tiles", "4", cwd=client,
        )  # fmt: skip
        assert classified.returncode == 0, classified.stderr
    assert f"index s3://{BUCKET}/out/region.index holds 48 tiles" in _words(built.stdout)
    assert "12 work units, 0 reused" in _words(built.stdout)
    remote = _download(f"s3://{BUCKET}/out/region.index", tmp_path / "remote.index")
    mine, theirs = _index_arrays(client / "one.index"), _index_arrays(remote)
    assert mine[0] == theirs[0]
    np.testing.assert_array_equal(mine[1], theirs[1])
    np.testing.assert_array_equal(mine[2], theirs[2])
    assert not _fs().exists(f"s3://{BUCKET}/out/.region.index.units")  # removed once published
    # every worker received the model by content, into its own cache, not by the client's path
    for n in range(2):
        cached = list((tmp_path / "cluster" / f"worker-{n}" / "models").rglob("band_mean.onnx"))
        assert [p.read_bytes() for p in cached] == [model.read_bytes()]
    single = _snca("classify", *urls, "-m", model, "-o", "classes", cwd=client)
    assert single.returncode == 0, single.stderr
    downloaded = _download(f"s3://{BUCKET}/out/classes", tmp_path / "classes")
    for url in urls:
        stem = Path(url).stem
        _, rings_a, fields_a = read_layer(client / "classes" / f"{stem}.gpkg")
        _, rings_b, fields_b = read_layer(downloaded / f"{stem}.gpkg")
        np.testing.assert_array_equal(rings_a, rings_b)
        for name in fields_a:
            np.testing.assert_array_equal(fields_a[name], fields_b[name], err_msg=name)
        assert (downloaded / f"{stem}.geojson").is_file()


def test_a_scheduler_killed_mid_run_is_one_line_and_the_rerun_goes_on(
    tmp_path: Path, s3: dict[str, str]
) -> None:
    urls = _upload_rasters(tmp_path / "made", [(12, 10), (10, 12)])
    client = tmp_path / "client"
    client.mkdir()
    model = make_band_mean_model(client / "band_mean.onnx", tile_size=TILE)
    output = f"s3://{BUCKET}/out/big.index"
    units = f"{BUCKET}/out/.big.index.units/*/unit.json"
    command = [
        "index", "build", *urls, "-m", model, "-o", output, "--unit-tiles", "2",
    ]  # fmt: skip
    dask = DaskProcesses(tmp_path / "cluster", s3)
    try:
        address = dask.start()
        run = subprocess.Popen(
            [sys.executable, "-m", "snca_cli.cli", *map(str, command), "--cluster", address],
            cwd=client,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not _fs().glob(units) and time.monotonic() < deadline:
            time.sleep(0.05)
        dask.kill_scheduler()
        _, stderr = run.communicate(timeout=120)
        kept = len(_fs().glob(units))
        assert run.returncode == 2, stderr
        assert "Traceback" not in stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines[0].startswith("Dask dashboard: ")  # said when the run started
        lines = lines[1:]
        assert len(lines) == 1, stderr
        assert lines[0].startswith(f"error: lost the Dask scheduler at {address} mid-run; ")
        said = int(lines[0].split("mid-run; ")[1].split(" of 22 work units")[0])
        assert f"finished and kept in s3://{BUCKET}/out/.big.index.units" in _words(lines[0])
        assert 1 <= kept < 22 and not _fs().exists(output)  # 22 units: one tile row each
        dask.stop()
        address = dask.start()
        rerun = _snca(*command, "--cluster", address, cwd=client)
    finally:
        dask.stop()
    assert rerun.returncode == 0, rerun.stderr
    reused = int(_words(rerun.stdout).split("22 work units, ")[1].split(" reused")[0])
    assert 1 <= said <= kept <= reused  # workers may finish a unit after the scheduler died
    one = _snca("index", "build", *urls, "-m", model, "-o", "one.index", cwd=client)
    assert one.returncode == 0, one.stderr
    remote = _download(output, tmp_path / "remote.index")
    mine, theirs = _index_arrays(client / "one.index"), _index_arrays(remote)
    assert mine[0] == theirs[0]
    np.testing.assert_array_equal(mine[1], theirs[1])
    np.testing.assert_array_equal(mine[2], theirs[2])
