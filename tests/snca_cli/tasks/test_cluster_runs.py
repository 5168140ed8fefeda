"""Classify and index on a Dask LocalCluster (snca_cli.tasks.units): the same results as the
single-process path, a killed worker, a cancelled run resumed from its finished units."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import distributed
import numpy as np
import pytest
import rasterio
import rasterio.shutil

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.runtime.cluster import ClusterSpec, model_loads, open_cluster
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.classify import ClassifyConfig, classify, classify_raster, plan_targets
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.store import read_index
from snca_cli.tasks.units import UNIT_MANIFEST, RunOptions, plan_units, read_unit, work_folder
from tests.helpers.classify_data import read_layer
from tests.helpers.index_data import TILE, colour_grid, expected_classes
from tests.helpers.rasters import painted_raster, truncated_geotiff, write_raster


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, shared by the module's tests."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local


def _rasters(root: Path) -> list[Path]:
    """Generated rasters: two painted ones (one with a no-data hole), one of noise and a VRT
    (a GDAL virtual raster) of another painted one."""
    root.mkdir(parents=True, exist_ok=True)
    painted = painted_raster(root / "painted.tif", colour_grid(5, 3, seed=3), TILE)
    holed = colour_grid(4, 6, seed=5)
    holed[1, 2] = 0
    hole = painted_raster(root / "hole.tif", holed, TILE, nodata=0)
    noise = np.random.default_rng(11).integers(1, 255, (3, 7 * TILE + 5, 2 * TILE + 3))
    behind = painted_raster(root / "behind.tif", colour_grid(2, 5, seed=6), TILE)
    rasterio.shutil.copy(behind, root / "virtual.vrt", driver="VRT")
    return [
        painted,
        hole,
        write_raster(root / "noise.tif", noise.astype(np.uint8)),
        root / "virtual.vrt",
    ]


def _index_state(index_dir: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """(manifest without the graph's and GPKG's file entries, tiles, embeddings) of an index."""
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest.pop("checksum")
    for name in ("index.hnsw", "tiles.gpkg"):  # hnswlib inserts with threads; GPKG has a date
        manifest["files"].pop(name)
    files = read_index(index_dir)
    files.close()
    return manifest, np.array(files.tiles), np.array(files.embeddings)


def test_index_on_two_workers_equals_the_single_process_index(
    tmp_path: Path, model: OnnxModel, cluster
) -> None:
    rasters = _rasters(tmp_path / "in")
    options = TilingOptions(overlap=0.25)
    build_index(rasters, model, tmp_path / "one", options)
    spec = ClusterSpec(address=cluster.scheduler_address)
    run = RunOptions(cluster=spec, unit_tiles=8)
    summary = build_index(rasters, model, tmp_path / "two", options, run=run)
    assert summary.units == len(plan_units([str(r) for r in rasters], model, options, 8).units) > 3
    one, two = _index_state(tmp_path / "one"), _index_state(tmp_path / "two")
    assert one[0] == two[0]  # manifest: counts, rasters, tile ids, sha256 of the arrays
    assert (one[1] == two[1]).all()
    np.testing.assert_array_equal(one[2], two[2])
    assert not work_folder(tmp_path / "two").exists()  # removed once published
    with distributed.Client(cluster) as client:
        loads = client.run(model_loads)
    path = model.named_path.name
    assert sum(w.get(path, 0) for w in loads.values()) <= len(loads) < summary.units
    assert all(w.get(path, 0) <= 1 for w in loads.values())  # one session per worker


def test_classify_on_two_workers_equals_the_single_process_outputs(
    tmp_path: Path, model: OnnxModel, cluster
) -> None:
    rasters = _rasters(tmp_path / "in")
    options = TilingOptions(overlap=0.25).for_model(model.metadata)
    single = plan_targets(rasters, tmp_path / "one", class_map=tmp_path / "one")
    for target in single:
        classify_raster(
            target.raster,
            model,
            target.output,
            options,
            geojson=target.geojson,
            class_map=target.class_map,
        )
    targets = plan_targets(rasters, tmp_path / "two", class_map=tmp_path / "two")
    spec = ClusterSpec(address=cluster.scheduler_address)
    run = RunOptions(cluster=spec, unit_tiles=8)
    summaries = classify(ClassifyConfig(targets, options), model, run).summaries
    for a, b, summary in zip(single, targets, summaries, strict=True):
        _, rings_a, fields_a = read_layer(a.output)
        _, rings_b, fields_b = read_layer(b.output)
        np.testing.assert_array_equal(rings_a, rings_b)
        assert fields_a.keys() == fields_b.keys()
        for name in fields_a:
            np.testing.assert_array_equal(fields_a[name], fields_b[name], err_msg=name)
        with rasterio.open(a.class_map) as x, rasterio.open(b.class_map) as y:
            np.testing.assert_array_equal(x.read(), y.read())
        assert summary.tiles_classified == len(fields_a["tile_id"]) > 0


def test_a_failing_unit_reaches_the_caller_as_its_own_error(
    tmp_path: Path, model: OnnxModel, cluster
) -> None:
    """Issue 28, item 13: a unit's SncaError carries GDAL's error behind it, which does not
    unpickle, so Dask sent a bare Exception instead ("error: unexpected Exception")."""
    raster = truncated_geotiff(tmp_path / "cut.tif")
    run = RunOptions(cluster=ClusterSpec(address=cluster.scheduler_address))
    options = TilingOptions(stretch="model")  # no sample is read: the worker meets the damage
    with pytest.raises(
        SncaError, match=r"^cannot read cut.tif \(corrupt or truncated\?\): "
    ) as caught:
        build_index([raster], model, tmp_path / "idx", options, run=run)
    assert not (tmp_path / "idx").exists()
    # issue 29: the line names the unit and the worker it failed on
    assert re.search(r" \(unit 0, on worker tcp://127\.0\.0\.1:\d+\)$", str(caught.value))


def test_a_worker_is_not_taken_for_the_scheduler(cluster) -> None:
    worker = next(iter(cluster.scheduler.workers))
    with pytest.raises(SncaError, match=rf"^{worker} is not a Dask scheduler: it is a Dask Worker"):
        with open_cluster(ClusterSpec(address=worker, connect_timeout_s=5)):
            pass


@pytest.mark.slow
def test_a_worker_killed_mid_run_does_not_change_the_index(tmp_path: Path) -> None:
    """SIGKILL of a worker that is embedding a unit: Dask runs the unit again elsewhere."""
    model = OnnxModel(resolve_model(None))  # the shipped model: about 0.1 s per tile here
    noise = np.random.default_rng(2).integers(1, 255, (3, 150 * 6, 150 * 4)).astype(np.uint8)
    raster = write_raster(tmp_path / "scene.tif", noise)
    build_index([raster], model, tmp_path / "one")
    killed: list[int] = []
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        pids = client.run(os.getpid)

        def kill_a_busy_worker(done: int, total: int) -> None:
            if killed or done == total:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                killed.append(pids[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)

        spec = ClusterSpec(address=local.scheduler_address)
        run = RunOptions(progress=kill_a_busy_worker, cluster=spec, unit_tiles=4)
        build_index([raster], model, tmp_path / "two", run=run)
    assert killed  # a worker with a unit in flight was killed
    one, two = _index_state(tmp_path / "one"), _index_state(tmp_path / "two")
    assert one[0] == two[0] and (one[1] == two[1]).all()
    np.testing.assert_allclose(one[2], two[2], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_a_cancelled_run_is_resumed_from_its_finished_units(
    tmp_path: Path, model: OnnxModel
) -> None:
    rasters = _rasters(tmp_path / "in")
    calls: list[int] = []

    def stop_after_two_units(done: int, total: int) -> None:
        calls.append(done)

    spec = ClusterSpec(workers=2)
    with pytest.raises(Cancelled):
        run = RunOptions(
            progress=stop_after_two_units,
            cancelled=lambda: len(calls) >= 2,
            cluster=spec,
            unit_tiles=4,
        )
        build_index(rasters, model, tmp_path / "idx", run=run)
    assert not (tmp_path / "idx").exists()
    work = work_folder(tmp_path / "idx")
    options = TilingOptions().for_model(model.metadata)
    units = plan_units([str(r) for r in rasters], model, options, 4).units
    finished = [
        u for u in units if read_unit(u.folder(work, model.identity, options), u) is not None
    ]
    assert 2 <= len(finished) < len(units)
    assert all(
        (u.folder(work, model.identity, options).path / UNIT_MANIFEST).is_file() for u in finished
    )
    summary = build_index(
        rasters, model, tmp_path / "idx", run=RunOptions(cluster=spec, unit_tiles=4)
    )
    assert summary.units == len(units) and summary.reused == len(finished)
    build_index(rasters, model, tmp_path / "ref")
    ref, resumed = _index_state(tmp_path / "ref"), _index_state(tmp_path / "idx")
    assert ref[0] == resumed[0] and (ref[1] == resumed[1]).all()
    np.testing.assert_array_equal(ref[2], resumed[2])


@pytest.mark.slow
def test_a_resumed_run_recomputes_the_units_of_a_raster_replaced_under_its_name(
    tmp_path: Path, model: OnnxModel
) -> None:
    """Issue 28 item 7: a run on 2 workers is cancelled with some units finished; the raster
    is then replaced under its name by one of the same size and mtime but other pixels (each
    tile's brightest band, the band-mean model's class, moved on by one): the resumed run
    reuses none of the old units and every tile gets the new raster's class."""
    old = colour_grid(6, 4, seed=3)
    new = np.roll(old, 1, axis=2)
    raster = painted_raster(tmp_path / "scene.tif", old, TILE)
    (target,) = plan_targets([raster], tmp_path / "out" / "scene.gpkg")
    calls: list[int] = []
    spec = ClusterSpec(workers=2)
    cancelling = RunOptions(
        progress=lambda done, total: calls.append(done),
        cancelled=lambda: len(calls) >= 2,
        cluster=spec,
        unit_tiles=4,
    )
    with pytest.raises(Cancelled):
        classify(ClassifyConfig([target]), model, cancelling)
    assert any(work_folder(target.output).path.glob("unit-*/" + UNIT_MANIFEST))
    before = os.stat(raster)
    painted_raster(raster, new, TILE)
    os.utime(raster, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(raster).st_size == before.st_size

    report = classify(ClassifyConfig([target]), model, RunOptions(cluster=spec, unit_tiles=4))

    assert report.reused == 0 and report.units == 6
    fields = read_layer(target.output)[2]
    classes, _ = expected_classes(new)
    assert (classes != expected_classes(old)[0]).all()
    np.testing.assert_array_equal(fields["class_id"], classes[fields["tile_id"]])


@pytest.mark.shared_data
def test_the_landsat_scene_on_two_workers_equals_the_single_process_run(
    tmp_path: Path, landsat_rgb: Path, cluster
) -> None:
    """The real scene with the shipped model: index and classify, cut into row bands."""
    model = OnnxModel(resolve_model(None))
    spec = ClusterSpec(address=cluster.scheduler_address)
    build_index([landsat_rgb], model, tmp_path / "one")
    build_index([landsat_rgb], model, tmp_path / "two", run=RunOptions(cluster=spec, unit_tiles=6))
    one, two = _index_state(tmp_path / "one"), _index_state(tmp_path / "two")
    assert one[0] == two[0] and (one[1] == two[1]).all() and len(one[1]) == 19
    np.testing.assert_allclose(one[2], two[2], atol=1e-6, rtol=0)
    options = TilingOptions().for_model(model.metadata)
    classify_raster(landsat_rgb, model, tmp_path / "one.gpkg", options)
    (target,) = plan_targets([landsat_rgb], tmp_path / "two.gpkg")
    classify(ClassifyConfig([target], options), model, RunOptions(cluster=spec, unit_tiles=6))
    fields_a, fields_b = read_layer(tmp_path / "one.gpkg")[2], read_layer(tmp_path / "two.gpkg")[2]
    assert (fields_a["class_name"] == fields_b["class_name"]).all()
    for name in ("score", "top1_prob", "top2_prob", "valid_fraction"):
        np.testing.assert_allclose(fields_a[name], fields_b[name], atol=1e-6, rtol=0)


def _worker_threads() -> list[int]:
    """The onnxruntime threads of the sessions this worker keeps."""
    from snca_cli.runtime.cluster import _MODELS

    return sorted({model.threads for model in _MODELS.values()})


def test_threads_per_worker_reach_the_workers_sessions(
    tmp_path: Path, model: OnnxModel, cluster
) -> None:
    """Issue 29: --threads was ignored on a cluster (each worker fixed at 1 thread)."""
    rasters = _rasters(tmp_path / "in")[:1]
    spec = ClusterSpec(address=cluster.scheduler_address, threads_per_worker=2)
    build_index(rasters, model, tmp_path / "idx", run=RunOptions(cluster=spec, unit_tiles=4))
    with distributed.Client(cluster) as client:
        threads = client.run(_worker_threads)
    assert any(2 in found for found in threads.values())


def test_the_cli_settings_of_a_cluster_run() -> None:
    from snca_cli.cli.support import cluster_run

    spec, settings = cluster_run(2, None, 0, 5.0, "5k", "s3:/bucket/run")
    assert (spec.workers, spec.threads_per_worker, spec.connect_timeout_s) == (2, 1, 5.0)
    assert settings == {"unit_tiles": 5000, "work_dir": "s3://bucket/run"}
    assert cluster_run(1, None, 3, 20.0, "20k", None)[0].threads_per_worker == 3
    with pytest.raises(SncaError, match=r"^--unit-tiles must be at least 1 tile"):
        cluster_run(1, None, 0, 20.0, "0", None)


def test_the_graphs_of_a_sharded_index_are_built_on_the_workers(
    tmp_path: Path, model: OnnxModel, cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 29: the client built every shard's graph itself, one after another."""
    from snca_cli.tasks.index import build as build_module
    from snca_cli.tasks.index.search import TileIndex

    rasters = _rasters(tmp_path / "in")
    one = build_index(rasters, model, tmp_path / "one", shard_size=10)

    def no_graph_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the client built a graph")

    monkeypatch.setattr(build_module, "save_graphs", no_graph_here)
    monkeypatch.setattr("snca_cli.tasks.index.shard_graphs.build_hnsw", no_graph_here)
    run = RunOptions(cluster=ClusterSpec(address=cluster.scheduler_address), unit_tiles=8)
    two = build_index(rasters, model, tmp_path / "two", shard_size=10, run=run)
    assert two.shards == one.shards == -(-one.count // 10) > 3
    assert not work_folder(tmp_path / "two").exists()
    with TileIndex.open(tmp_path / "one") as a, TileIndex.open(tmp_path / "two") as b:
        for row in range(0, one.count, 7):
            hits_a = a.search_tile(a.tile_at_row(row), 5).hits
            hits_b = b.search_tile(b.tile_at_row(row), 5).hits
            np.testing.assert_allclose(
                [h.similarity for h in hits_a], [h.similarity for h in hits_b], atol=1e-6
            )
