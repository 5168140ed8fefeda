"""The one executor of tile jobs: plan work units, run them here or on Dask, merge in input order.

``snca classify`` and ``snca index build/add`` run through it, in this process or on a cluster:

1. **Plan** (:func:`plan_units`): every raster is opened once (bad input fails here, before any
   work) and cut into :class:`WorkUnit` s: a whole raster in this process, or ``unit_tiles``
   tiles' worth of grid rows of a large raster on a cluster. The plan also holds the rasters'
   warnings (a resolution far from the model's), so every face shows the same ones.
2. **Run** (:func:`run_units`): each unit is embedded by :func:`embed_unit`, the only code that
   turns a unit into a :class:`UnitResult`. In this process that is a loop (the one-worker
   case); on Dask (:mod:`snca_cli.runtime.cluster`) each worker keeps one onnxruntime session
   per model and writes its unit's result (``embeddings.npy``, ``probabilities.npy``,
   ``tiles.npy``, ``valid_fraction.npy`` and ``unit.json`` with each file's sha256 and its own
   checksum) atomically into the run's work folder beside the output. A unit folder is named
   after a hash of its raster's name and content (:mod:`snca_cli.runtime.raster_identity`),
   rows, model and tiling options, so running the same command again reuses every finished
   unit (verified by checksum; a damaged one, or one of a raster whose content changed, is
   recomputed).
3. **Merge** (:func:`merge_rasters`): the units of each raster are joined in unit order (input
   order, never completion order), so tile ids, embeddings and classes are the same whatever
   the number of workers.

"Unit" is a piece of Dask work; "shard" is a part of an index's hnswlib graph
(:mod:`snca_cli.runtime.ann`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from snca_cli.contract.scaling import ValueScaling
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError, debugging, first_line
from snca_cli.hooks import CancelHook, ProgressHook
from snca_cli.runtime.ann import normalize
from snca_cli.runtime.atomic import OwnOutput, unlisted_entry
from snca_cli.runtime.cluster import (
    ClusterSpec,
    ModelSpec,
    cancel_all,
    cluster_lost,
    finished_in_turn,
    model_files,
    open_cluster,
    portable_errors,
    worker_address,
    worker_model,
)
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.storage import StoredFolder, content_record, matches_record
from snca_cli.runtime.tile_stream import TileBatch, embed_raster
from snca_cli.tasks.index.store import TILE_DTYPE, manifest_checksum

if TYPE_CHECKING:
    import distributed

#: Tiles per work unit on a cluster: rasters with more tiles are cut into bands of whole rows.
UNIT_TILES = 20_000
UNIT_MANIFEST = "unit.json"
UNIT_FILES = ("embeddings.npy", "probabilities.npy", "tiles.npy", "valid_fraction.npy")


@dataclass
class RunOptions:
    """How a job runs: its hooks and where its units go.

    Attributes:
        progress: ``progress(done, total)`` over the tiles of all rasters.
        cancelled: polled; returning True stops the run (:class:`snca_cli.errors.Cancelled`);
            nothing is left behind but the finished units of a cluster run, reused by the rerun.
        waiting: called with a message when another writer holds an index's lock.
        cluster: where the units run (None or no workers/address: in this process).
        say: called with lines for the user (the Dask dashboard address).
        warn: called with each warning line as soon as it is known (a job's report lists
            them too).
        unit_tiles: tiles per work unit on a cluster (larger rasters are cut into row bands).
        work_dir: the work folder of a cluster run (a local path or a storage URL that every
            worker and this process reach); None: beside the output.
    """

    progress: ProgressHook | None = None
    cancelled: CancelHook | None = None
    waiting: Callable[[str], None] | None = None
    cluster: ClusterSpec | None = None
    say: Callable[[str], None] | None = None
    warn: Callable[[str], None] | None = None
    unit_tiles: int = UNIT_TILES
    work_dir: str | None = None

    @property
    def distributed(self) -> bool:
        """Whether units go to Dask rather than running in this process."""
        return self.cluster is not None and self.cluster.distributed

    @property
    def planned_unit_tiles(self) -> int:
        """Tiles per unit to plan: ``unit_tiles`` on a cluster, whole rasters (0) here."""
        return self.unit_tiles if self.distributed else 0


@dataclass(frozen=True)
class WorkUnit:
    """Grid rows ``[row_start, row_stop)`` of a raster; ``number`` is its place in the run;
    ``identity`` the raster's content identity (:meth:`RasterTiling.content_identity`) when the
    unit is planned for a cluster, whose unit files a rerun reuses."""

    number: int
    raster: str  # the name GDAL opens
    row_start: int
    row_stop: int
    tiles: int  # tiles of the band (skipped ones included)
    identity: str = ""

    def key(self, model_identity: str, options: TilingOptions) -> str:
        """What the result depends on, hashed: a changed raster content, model or option is
        never reused."""
        text = json.dumps(
            [
                self.raster,
                self.identity,
                self.row_start,
                self.row_stop,
                model_identity,
                asdict(options),
            ],
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def folder(
        self, work_dir: StoredFolder, model_identity: str, options: TilingOptions
    ) -> StoredFolder:
        return work_dir.child(f"unit-{self.number:06d}-{self.key(model_identity, options)}")


@dataclass
class UnitPlan:
    """The units of a run, one warning line per raster that has one, and each raster's value
    scaling as chosen when it was planned (reused by the units run in this process)."""

    units: list[WorkUnit]
    warnings: list[str] = field(default_factory=list)
    scalings: dict[str, ValueScaling] = field(default_factory=dict)

    @property
    def rasters(self) -> list[str]:
        """The rasters, in input order."""
        return list(dict.fromkeys(unit.raster for unit in self.units))

    @property
    def tiles(self) -> int:
        """Tiles of every unit (skipped ones included)."""
        return sum(unit.tiles for unit in self.units)


@dataclass
class UnitResult:
    """What one unit produced (tiles with enough valid pixels only), and its raster's grid."""

    unit: WorkUnit
    tiles: np.ndarray  # TILE_DTYPE (raster 0), in grid order
    embeddings: np.ndarray | None  # N x D unit float32; None when not kept
    probabilities: np.ndarray  # N x C float32
    valid_fraction: np.ndarray  # N float64 (the tile table keeps float32)
    crs_wkt: str
    transform: list[float]  # the tiling grid (same for every unit of a raster)
    width: int
    height: int
    resampled: bool
    skipped: int
    scaling: dict = field(default_factory=dict)  # the raster's ValueScaling.record()
    seconds: float = 0.0  # time spent embedding the unit
    units: int = 1  # the units joined in it (:func:`merge_rasters`)
    tiles_run: int = 0  # tiles the model ran for it
    tiles_rechecked: int = 0  # of them, re-checked in fp32 (int8 runs)


@dataclass
class UnitRun:
    """What running the units did, filled in as the run goes."""

    units: int = 0  # units of the run
    reused: int = 0  # of them, finished units of an earlier run reused
    dashboard: str | None = None  # the Dask dashboard's address


def plan_units(
    rasters: list[str],
    model: OnnxModel,
    options: TilingOptions,
    unit_tiles: int = 0,
    warn: Callable[[str], None] | None = None,
) -> UnitPlan:
    """Open every raster once (bad input fails here, before any work), note its resolution
    warning (also given to ``warn``), and cut it into units of whole tile rows holding about
    ``unit_tiles`` tiles (0: one unit per raster, run here). Units for a cluster
    (``unit_tiles`` > 0), whose files a rerun reuses, carry their raster's content identity:
    a raster replaced under its name is computed again."""
    plan = UnitPlan([])
    units = plan.units
    for raster in rasters:
        with RasterTiling.open(raster, model.metadata, options) as tiling:
            n_rows, n_cols = tiling.grid.n_rows, tiling.grid.n_cols
            warning = tiling.resolution_warning(model.metadata)
            plan.scalings[raster] = tiling.scaling
            identity = tiling.content_identity() if unit_tiles > 0 else ""
        if warning is not None:
            plan.warnings.append(f"{Path(raster).name}: {warning}")
            if warn is not None:
                warn(plan.warnings[-1])
        rows_per_unit = n_rows if unit_tiles <= 0 else max(1, unit_tiles // max(1, n_cols))
        for start in range(0, n_rows, rows_per_unit):
            stop = min(n_rows, start + rows_per_unit)
            tiles = (stop - start) * n_cols
            units.append(WorkUnit(len(units), raster, start, stop, tiles, identity))
    return plan


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


def embed_unit(
    unit: WorkUnit,
    model: OnnxModel,
    options: TilingOptions,
    batch_size: int,
    progress: ProgressHook | None = None,
    cancelled: CancelHook | None = None,
    keep_embeddings: bool = True,
    scaling: ValueScaling | None = None,
) -> UnitResult:
    """Embed the tiles of one unit: the one implementation, in this process or on a worker.
    ``scaling``: the raster's value scaling when already chosen (:class:`UnitPlan`)."""
    started = time.perf_counter()
    meta = model.metadata
    ran, rechecked = model.tiles_run, model.tiles_rechecked
    tiles, embeddings, probabilities, fractions = [], [], [], []
    rows = (unit.row_start, unit.row_stop)
    with embed_raster(
        unit.raster, model, options, batch_size, progress, cancelled, rows, scaling
    ) as run:
        tiling = run.tiling
        for batch in run:
            if batch.embedding.shape[1] != meta.embedding_dim:
                raise SncaError(
                    f"model {model.path.name} produced {batch.embedding.shape[1]}-d "
                    f"embeddings; its metadata says {meta.embedding_dim}"
                )
            tiles.append(tile_rows(batch, 0))
            if keep_embeddings:
                embeddings.append(normalize(batch.embedding))
            probabilities.append(batch.probabilities.astype(np.float32))
            fractions.extend(t.valid_fraction for t in batch.tiles)
        skipped = run.stats.skipped
    return UnitResult(
        unit=unit,
        tiles=_joined(tiles, np.zeros(0, TILE_DTYPE)),
        embeddings=(
            _joined(embeddings, np.zeros((0, meta.embedding_dim), np.float32))
            if keep_embeddings
            else None
        ),
        probabilities=_joined(probabilities, np.zeros((0, meta.num_classes), np.float32)),
        valid_fraction=np.array(fractions, dtype=np.float64),
        crs_wkt=tiling.crs.to_wkt(),
        transform=list(tiling.transform)[:6],
        width=tiling.width,
        height=tiling.height,
        resampled=tiling.resampled,
        skipped=skipped,
        scaling=tiling.scaling.record(),
        seconds=time.perf_counter() - started,
        tiles_run=model.tiles_run - ran,
        tiles_rechecked=model.tiles_rechecked - rechecked,
    )


def _joined(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(parts) if parts else empty


def _unit_mismatch(folder: Path) -> str | None:
    """Why ``folder`` is not a unit folder snca wrote (None when it is): it holds nothing but
    a unit's files (a damaged unit is replaced by its new result)."""
    return unlisted_entry(folder, {UNIT_MANIFEST, *UNIT_FILES})


#: A unit's folder in a run's work folder, which a rerun replaces when it does not verify.
UNIT_OUTPUT = OwnOutput("a work unit", _unit_mismatch)


def _array_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


def save_unit(folder: StoredFolder, result: UnitResult) -> None:
    """Write a unit's result into ``folder`` (local or on object storage) with checksums:
    :data:`UNIT_MANIFEST` last (:meth:`StoredFolder.write_files`)."""
    arrays = {
        "tiles.npy": result.tiles,
        "embeddings.npy": result.embeddings,
        "probabilities.npy": result.probabilities,
        "valid_fraction.npy": result.valid_fraction,
    }
    data = {name: _array_bytes(values) for name, values in arrays.items()}
    payload = {
        "unit": asdict(result.unit),
        "crs_wkt": result.crs_wkt,
        "transform": result.transform,
        "width": result.width,
        "height": result.height,
        "resampled": result.resampled,
        "scaling": result.scaling,
        "skipped": result.skipped,
        "seconds": result.seconds,
        "tiles_run": result.tiles_run,
        "tiles_rechecked": result.tiles_rechecked,
        "files": {name: content_record(raw) for name, raw in data.items()},
    }
    payload["checksum"] = manifest_checksum(payload)
    data[UNIT_MANIFEST] = json.dumps(payload).encode()
    folder.write_files(data, last=UNIT_MANIFEST, own=UNIT_OUTPUT)


def read_unit(folder: StoredFolder, unit: WorkUnit) -> UnitResult | None:
    """The result in ``folder`` when it is complete, of ``unit`` and matches its checksums;
    None otherwise (missing or damaged: the unit is computed again)."""
    try:
        payload = json.loads(folder.read_bytes(UNIT_MANIFEST))
        if payload.pop("checksum", None) != manifest_checksum(payload):
            return None
        if WorkUnit(**payload["unit"]) != unit:
            return None
        arrays = {}
        for name in UNIT_FILES:
            raw = folder.read_bytes(name)
            if not matches_record(raw, payload["files"][name]):
                return None
            arrays[name] = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if arrays["tiles.npy"].dtype != TILE_DTYPE:
        return None
    return UnitResult(
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
        seconds=float(payload.get("seconds", 0.0)),
        tiles_run=int(payload.get("tiles_run", 0)),
        tiles_rechecked=int(payload.get("tiles_rechecked", 0)),
    )


@portable_errors
def run_unit_on_worker(
    unit: WorkUnit,
    model_spec: ModelSpec,
    model_data: dict[str, bytes],
    options: TilingOptions,
    batch_size: int,
    work_dir: str,
) -> tuple[str, bool]:
    """On a worker: embed one unit into its folder of ``work_dir`` (local or a storage URL);
    return the folder and whether a finished result was reused. ``model_data``: the model's
    files (:func:`snca_cli.runtime.cluster.model_files`), sent once to each worker. An error
    names the unit and the worker."""
    folder = unit.folder(StoredFolder.of(work_dir), model_spec.identity, options)
    try:
        if read_unit(folder, unit) is not None:
            return str(folder), True
        model = worker_model(model_spec, model_data)
        save_unit(folder, embed_unit(unit, model, options, batch_size))
    except SncaError as exc:
        raise SncaError(f"{exc} (unit {unit.number}, on worker {worker_address()})") from None
    except Exception as exc:
        if debugging():
            raise
        raise SncaError(
            f"unit {unit.number} ({Path(unit.raster).name}) failed on worker "
            f"{worker_address()}: unexpected {type(exc).__name__}: {first_line(exc)}"
        ) from None
    return str(folder), False


def work_folder(output: Path | str, work_dir: str | None = None) -> StoredFolder:
    """The work folder of a cluster run writing ``output``: ``work_dir`` when given (a local
    path or a storage URL every worker can write), else ``.<name>.units`` beside the output
    (on object storage when the output is)."""
    if work_dir:
        return StoredFolder.of(work_dir)
    folder = StoredFolder.of(output)
    return folder.sibling(f".{folder.name}.units")


def run_units(
    plan: UnitPlan,
    model: OnnxModel,
    options: TilingOptions,
    batch_size: int,
    run: RunOptions,
    output: Path | str,
    keep_embeddings: bool = True,
    stats: UnitRun | None = None,
) -> Iterator[UnitResult]:
    """Run every unit of ``plan``, in this process or on ``run.cluster``; yield each raster's
    results (:func:`merge_rasters`) in input order.

    ``run.progress(done, total)`` counts the tiles of the whole run; ``run.cancelled`` is
    polled. In this process a raster is yielded as soon as its units are done, so only one
    raster's results are held at a time. On a cluster the units go through the work folder of
    ``output`` (:func:`work_folder`; ``run.work_dir`` when given): a unit whose worker dies is
    run again by Dask on another worker, a cancelled or failed run keeps its finished units for
    the rerun, and ``keep_embeddings`` is ignored (the unit files always hold them). ``stats``
    gets the counts.
    """
    stats = stats if stats is not None else UnitRun()
    stats.units = len(plan.units)
    if run.distributed:
        work = work_folder(output, run.work_dir)
        folders = _run_on_cluster(plan, model, options, batch_size, run, work, stats)
        for raster in plan.rasters:  # one raster's units read back at a time
            units = [u for u in plan.units if u.raster == raster]
            results = [_read_back(u, folders[u.number], work) for u in units]
            for result in results:  # the workers' copies of the model ran them
                model.count_elsewhere(result.tiles_run, result.tiles_rechecked)
            yield from merge_rasters(results)
        return
    total, before = plan.tiles, 0
    for raster in plan.rasters:
        results = []
        for unit in (u for u in plan.units if u.raster == raster):

            def report(done: int, _total: int, offset: int = before) -> None:
                if run.progress is not None:
                    run.progress(offset + done, total)

            results.append(
                embed_unit(
                    unit,
                    model,
                    options,
                    batch_size,
                    report,
                    run.cancelled,
                    keep_embeddings,
                    plan.scalings[raster],
                )
            )
            before += unit.tiles
        yield from merge_rasters(results)


@contextlib.contextmanager
def _work_folder_of_run(work_dir: StoredFolder) -> Iterator[None]:
    """Make the work folder of a cluster run (recovering what workers killed mid-write left
    in it); remove it again when the run fails before any unit was kept there (a scheduler
    out of reach leaves no empty folder behind)."""
    work_dir.make()
    try:
        yield
    except BaseException:
        work_dir.remove_if_empty()  # kept units let a rerun resume
        raise


def _run_on_cluster(
    plan: UnitPlan,
    model: OnnxModel,
    options: TilingOptions,
    batch_size: int,
    run: RunOptions,
    work_dir: StoredFolder,
    stats: UnitRun,
) -> dict[int, str]:
    """Every unit on Dask; the folder of each unit's result, by unit number."""
    assert run.cluster is not None
    spec = ModelSpec.of(model, run.cluster.threads_per_worker)
    folders: dict[int, tuple[str, bool]] = {}
    with _work_folder_of_run(work_dir), open_cluster(run.cluster) as client:
        stats.dashboard = getattr(client, "dashboard_link", None)
        if run.say is not None and stats.dashboard:
            run.say(f"Dask dashboard: {stats.dashboard}")
        try:
            _wait_for_units(client, plan, spec, model, options, batch_size, run, work_dir, folders)
        except (SncaError, Cancelled, KeyboardInterrupt):
            cancel_all(client)
            raise
        except Exception as exc:
            cancel_all(client)
            raise cluster_lost(run.cluster, exc, _units_kept(plan, work_dir)) from None
    stats.reused = sum(reused for _, reused in folders.values())
    return {number: folder for number, (folder, _) in folders.items()}


def _read_back(unit: WorkUnit, folder: str, work_dir: StoredFolder) -> UnitResult:
    """The result of ``unit`` from its folder in the work folder."""
    result = read_unit(StoredFolder.of(folder), unit)
    if result is None:
        raise SncaError(
            f"the result of unit {unit.number} ({unit.raster}) cannot be read back from "
            f"{work_dir} (damaged, or not on storage this machine reaches: give the workers "
            "and this machine one work folder, --work-dir); rerun"
        )
    return result


def _wait_for_units(
    client: distributed.Client,
    plan: UnitPlan,
    spec: ModelSpec,
    model: OnnxModel,
    options: TilingOptions,
    batch_size: int,
    run: RunOptions,
    work_dir: StoredFolder,
    folders: dict[int, tuple[str, bool]],
) -> None:
    """Submit every unit (the model's files sent once to each worker) and wait for them,
    filling ``folders`` (unit number -> folder, reused) and reporting progress."""

    [data] = client.scatter([model_files(model)], broadcast=True)
    futures = {
        client.submit(
            run_unit_on_worker,
            unit,
            spec,
            data,
            options,
            batch_size,
            str(work_dir),
            key=f"snca-unit-{unit.number}-{unit.key(model.identity, options)}",
        ): unit
        for unit in plan.units
    }
    done = 0
    for future in finished_in_turn(list(futures), run.cancelled):
        unit = futures[future]
        folders[unit.number] = future.result()
        done += unit.tiles
        if run.progress is not None:
            run.progress(done, plan.tiles)


def _units_kept(plan: UnitPlan, work_dir: StoredFolder) -> str:
    """How many units are kept in the work folder (some finished by workers after the
    scheduler's last word)."""
    try:
        found = len(work_dir.glob(f"unit-*/{UNIT_MANIFEST}"))
    except SncaError:
        return f"the finished ones of {len(plan.units)} work units kept in {work_dir}"
    return f"{found} of {len(plan.units)} work units finished and kept in {work_dir}"


def merge_rasters(results: list[UnitResult]) -> list[UnitResult]:
    """The units' results joined per raster (one result whose unit spans the raster's rows),
    rasters in input order, tiles in grid order."""
    by_raster: dict[str, list[UnitResult]] = {}
    for result in results:
        by_raster.setdefault(result.unit.raster, []).append(result)
    merged = []
    for parts in by_raster.values():
        first, last = parts[0], parts[-1]
        embeddings = [p.embeddings for p in parts]
        merged.append(
            replace(
                first,
                unit=replace(
                    first.unit, row_stop=last.unit.row_stop, tiles=sum(p.unit.tiles for p in parts)
                ),
                tiles=np.concatenate([p.tiles for p in parts]),
                embeddings=(
                    None if any(e is None for e in embeddings) else np.concatenate(embeddings)
                ),
                probabilities=np.concatenate([p.probabilities for p in parts]),
                valid_fraction=np.concatenate([p.valid_fraction for p in parts]),
                skipped=sum(p.skipped for p in parts),
                seconds=sum(p.seconds for p in parts),
                units=len(parts),
                tiles_run=sum(p.tiles_run for p in parts),
                tiles_rechecked=sum(p.tiles_rechecked for p in parts),
            )
        )
    return merged


def remove_work_folder(run: RunOptions, output: Path | str) -> None:
    """Delete the work folder of a cluster run writing ``output`` once it is published."""
    if run.distributed:
        work_folder(output, run.work_dir).remove()
