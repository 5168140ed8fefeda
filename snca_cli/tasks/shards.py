"""Work units on a Dask cluster: embed a raster, or a band of its tile rows, into a shard.

A run is split into :class:`WorkUnit` s (one raster, or ``unit_tiles`` tiles' worth of grid rows
of a large one). Each unit runs on a worker, which keeps one onnxruntime session per model
(:func:`snca_cli.runtime.cluster.worker_model`), and writes its shard (``embeddings.npy``,
``probabilities.npy``, ``tiles.npy`` and ``shard.json`` with each file's sha256 and its own
checksum, as an index manifest) atomically (:func:`snca_cli.runtime.atomic.atomic_output`) into
the run's work folder beside the output. A shard is named after a hash of its raster, rows,
model and tiling options, so running the same command again reuses every finished shard
(verified by checksum; a damaged one is recomputed) and never recomputes it; the caller merges
the shards in unit order (input order, never completion order), so the tile ids, embeddings
and classes equal those of the single-process path whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.hooks import CancelHook, ProgressHook
from snca_cli.runtime.ann import normalize
from snca_cli.runtime.atomic import atomic_output, recover_outputs
from snca_cli.runtime.cluster import ClusterSpec, ModelSpec, open_cluster, worker_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.tile_stream import TileBatch, embed_raster
from snca_cli.tasks.index.store import TILE_DTYPE, file_digest, manifest_checksum

#: Tiles per work unit: rasters with more tiles are split into bands of whole tile rows.
UNIT_TILES = 20_000
SHARD_MANIFEST = "shard.json"
SHARD_FILES = ("embeddings.npy", "probabilities.npy", "tiles.npy", "valid_fraction.npy")
#: Seconds between two checks of the cancel hook while waiting on the cluster.
POLL_S = 0.2


@dataclass(frozen=True)
class WorkUnit:
    """Grid rows ``[row_start, row_stop)`` of a raster; ``number`` is its place in the run."""

    number: int
    raster: str  # the name GDAL opens
    row_start: int
    row_stop: int
    tiles: int  # tiles of the band (skipped ones included)

    def key(self, model_sha256: str, options: TilingOptions) -> str:
        """What the shard depends on, hashed: a changed model or option is never reused."""
        text = json.dumps(
            [self.raster, self.row_start, self.row_stop, model_sha256, asdict(options)],
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def folder(self, work_dir: Path, model_sha256: str, options: TilingOptions) -> Path:
        return Path(work_dir) / f"unit-{self.number:06d}-{self.key(model_sha256, options)}"


@dataclass
class Shard:
    """The results of one unit, as read back from its shard folder."""

    unit: WorkUnit
    tiles: np.ndarray  # TILE_DTYPE (raster 0), in grid order
    embeddings: np.ndarray  # N x D unit float32
    probabilities: np.ndarray  # N x C float32
    valid_fraction: np.ndarray  # N float64 (the tile table keeps float32)
    crs_wkt: str
    transform: list[float]  # the tiling grid (same for every unit of a raster)
    width: int
    height: int
    resampled: bool
    skipped: int
    scaling: dict = field(default_factory=dict)  # the raster's ValueScaling.record()


@dataclass
class UnitRun:
    """What running the units did: their shards in unit order, and how many were reused."""

    shards: list[Shard]
    reused: int
    dashboard: str | None = None


def plan_units(
    rasters: list[str], model: OnnxModel, options: TilingOptions, unit_tiles: int = UNIT_TILES
) -> list[WorkUnit]:
    """Open every raster (bad input fails here, before any work) and cut it into units of
    whole tile rows holding about ``unit_tiles`` tiles."""
    units: list[WorkUnit] = []
    for raster in rasters:
        with RasterTiling.open(raster, model.metadata, options) as tiling:
            n_rows, n_cols = tiling.grid.n_rows, tiling.grid.n_cols
        rows_per_unit = max(1, unit_tiles // max(1, n_cols))
        for start in range(0, n_rows, rows_per_unit):
            stop = min(n_rows, start + rows_per_unit)
            units.append(WorkUnit(len(units), raster, start, stop, (stop - start) * n_cols))
    return units


def tile_rows(batch: TileBatch, raster: int) -> np.ndarray:
    """The tile table rows (:data:`TILE_DTYPE`) of a batch of a raster's tiles."""
    rows = np.zeros(len(batch.tiles), dtype=TILE_DTYPE)
    rows["raster"] = raster
    rows["grid_id"] = [t.tile_id for t in batch.tiles]
    rows["row"] = [t.row for t in batch.tiles]
    rows["col"] = [t.col for t in batch.tiles]
    windows = np.array([t.window for t in batch.tiles], dtype=np.int64).reshape(-1, 4)
    bounds = np.array([t.bounds for t in batch.tiles], dtype=np.float64).reshape(-1, 4)
    for i, name in enumerate(("col_off", "row_off", "width", "height")):
        rows[name] = windows[:, i]
    for i, name in enumerate(("minx", "miny", "maxx", "maxy")):
        rows[name] = bounds[:, i]
    rows["valid_fraction"] = [t.valid_fraction for t in batch.tiles]
    rows["class_index"] = batch.probabilities.argmax(axis=1)
    rows["score"] = batch.probabilities.max(axis=1)
    return rows


def run_unit(
    unit: WorkUnit,
    model_spec: ModelSpec,
    model_sha256: str,
    options: TilingOptions,
    batch_size: int,
    work_dir: str,
) -> tuple[str, bool]:
    """On a worker: embed one unit into its shard folder; return the folder and whether a
    finished shard was reused."""
    folder = unit.folder(Path(work_dir), model_sha256, options)
    if read_shard(folder, unit) is not None:
        return str(folder), True
    model = worker_model(model_spec)
    tiles, embeddings, probabilities, fractions = [], [], [], []
    rows = (unit.row_start, unit.row_stop)
    with embed_raster(unit.raster, model, options, batch_size, rows=rows) as run:
        tiling = run.tiling
        for batch in run:
            tiles.append(tile_rows(batch, 0))
            embeddings.append(normalize(batch.embedding))
            probabilities.append(batch.probabilities.astype(np.float32))
            fractions.extend(t.valid_fraction for t in batch.tiles)
        skipped = run.stats.skipped
    meta = model.metadata
    arrays = {
        "tiles.npy": np.concatenate(tiles) if tiles else np.zeros(0, TILE_DTYPE),
        "embeddings.npy": (
            np.concatenate(embeddings) if embeddings
            else np.zeros((0, meta.embedding_dim), np.float32)
        ),
        "probabilities.npy": (
            np.concatenate(probabilities) if probabilities
            else np.zeros((0, meta.num_classes), np.float32)
        ),
        "valid_fraction.npy": np.array(fractions, dtype=np.float64),
    }
    with atomic_output(folder, force=True, directory=True) as tmp:
        files = {}
        for name, values in arrays.items():
            np.save(tmp / name, values, allow_pickle=False)
            with open(tmp / name, "rb") as handle:
                files[name] = {"bytes": os.fstat(handle.fileno()).st_size,
                               "sha256": file_digest(handle)}
        payload = {
            "unit": asdict(unit),
            "crs_wkt": tiling.crs.to_wkt(),
            "transform": list(tiling.transform)[:6],
            "width": tiling.width,
            "height": tiling.height,
            "resampled": tiling.resampled,
            "scaling": tiling.scaling.record(),
            "skipped": skipped,
            "files": files,
        }
        payload["checksum"] = manifest_checksum(payload)
        (tmp / SHARD_MANIFEST).write_text(json.dumps(payload))
    return str(folder), False


def read_shard(folder: Path, unit: WorkUnit) -> Shard | None:
    """The shard in ``folder`` when it is complete, of ``unit`` and matches its checksums;
    None otherwise (missing or damaged: the unit is computed again)."""
    try:
        payload = json.loads((folder / SHARD_MANIFEST).read_text())
        if payload.pop("checksum", None) != manifest_checksum(payload):
            return None
        if WorkUnit(**payload["unit"]) != unit:
            return None
        arrays = {}
        for name in SHARD_FILES:
            with open(folder / name, "rb") as handle:
                expected = payload["files"][name]
                if os.fstat(handle.fileno()).st_size != expected["bytes"]:
                    return None
                if file_digest(handle) != expected["sha256"]:
                    return None
                arrays[name] = np.load(handle, allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if arrays["tiles.npy"].dtype != TILE_DTYPE:
        return None
    return Shard(
        unit=unit,
        tiles=arrays["tiles.npy"],
        embeddings=arrays["embeddings.npy"],
        probabilities=arrays["probabilities.npy"],
        valid_fraction=arrays["valid_fraction.npy"],
        crs_wkt=payload["crs_wkt"],
        transform=[float(v) for v in payload["transform"]],
        width=int(payload["width"]),
        height=int(payload["height"]),
        resampled=bool(payload["resampled"]),
        skipped=int(payload["skipped"]),
        scaling=dict(payload.get("scaling", {})),
    )


def work_folder(output: Path) -> Path:
    """The work folder of a run writing ``output``: ``.<name>.units`` beside it (a shared
    path when the output is on one, so that remote workers reach it)."""
    output = Path(output).absolute()
    return output.with_name(f".{output.name}.units")


def run_units(
    units: list[WorkUnit],
    model: OnnxModel,
    options: TilingOptions,
    batch_size: int,
    work_dir: Path,
    cluster: ClusterSpec,
    progress: ProgressHook | None = None,
    cancelled: CancelHook | None = None,
    say: Callable[[str], None] | None = None,
) -> UnitRun:
    """Run every unit on the cluster; return their shards in unit order.

    ``progress(done, total)`` counts the tiles of finished units over the whole cluster;
    ``cancelled`` is polled (the units in flight are cancelled, finished shards are kept for
    the rerun); ``say`` gets the Dask dashboard address. A unit whose worker dies is run again
    by Dask on another worker; a unit that fails raises its error here.
    """
    import distributed

    work_dir = Path(work_dir).absolute()
    work_dir.mkdir(parents=True, exist_ok=True)
    recover_outputs(work_dir)  # staging folders of workers killed mid-write
    spec = ModelSpec.of(model, cluster.threads_per_worker)
    total = sum(u.tiles for u in units)
    folders: dict[int, tuple[str, bool]] = {}
    with open_cluster(cluster) as client:
        dashboard = getattr(client, "dashboard_link", None)
        if say is not None and dashboard:
            say(f"Dask dashboard: {dashboard}")
        futures = {
            client.submit(
                run_unit, unit, spec, model.sha256, options, batch_size, str(work_dir),
                key=f"snca-unit-{unit.number}-{unit.key(model.sha256, options)}",
            ): unit
            for unit in units
        }
        remaining = set(futures)
        done = 0
        try:
            while remaining:
                if cancelled is not None and cancelled():
                    raise Cancelled()
                try:
                    finished, _ = distributed.wait(
                        list(remaining), timeout=POLL_S, return_when="FIRST_COMPLETED"
                    )
                except TimeoutError:
                    continue
                for future in sorted(finished, key=lambda f: futures[f].number):
                    remaining.discard(future)
                    unit = futures[future]
                    folders[unit.number] = future.result()
                    done += unit.tiles
                    if progress is not None:
                        progress(done, total)
        except BaseException:
            client.cancel(list(futures))
            raise
    shards = []
    for unit in units:
        shard = read_shard(Path(folders[unit.number][0]), unit)
        if shard is None:
            raise SncaError(f"the shard of unit {unit.number} ({unit.raster}) is damaged; rerun")
        shards.append(shard)
    return UnitRun(shards, sum(reused for _, reused in folders.values()), dashboard)


def remove_work_folder(work_dir: Path) -> None:
    """Delete a run's work folder once its outputs are published."""
    shutil.rmtree(work_dir, ignore_errors=True)
