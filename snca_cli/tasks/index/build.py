"""Build an index from rasters, or extend one: embed every tile and write the index files.

An index folder is written atomically (built in a staging folder beside it, then published;
an ``add`` writes new versions of every file and swaps the folders: :mod:`snca_cli.runtime.atomic`),
so an interrupted build or add never leaves a broken index, and under the index's writer lock
(:func:`.store.index_lock`), so two writers never lose each other's tiles. The files: :mod:`.store`.

Tile ids are 0..count-1 in the order the rasters were given, tiles in grid order within a
raster; ``add`` continues them. Only tiles with enough valid pixels are indexed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.ann import (
    HnswSearch,
    IndexParams,
    build_hnsw,
    hnswlib_available,
    shard_ranges,
)
from snca_cli.runtime.atomic import atomic_output, check_output_paths
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.paths import absolute_source, gdal_path, is_remote, real_path
from snca_cli.tasks.index.shard_graphs import build_graphs_on_cluster
from snca_cli.tasks.index.store import (
    INDEX_OUTPUT,
    MANIFEST_NAME,
    TILE_DTYPE,
    IndexedRaster,
    IndexFiles,
    Manifest,
    check_model,
    graph_names,
    index_lock,
    read_index,
    write_index_files,
)
from snca_cli.tasks.units import (
    RunOptions,
    UnitRun,
    plan_units,
    remove_work_folder,
    run_units,
    work_folder,
)


@dataclass
class IndexSummary:
    """What a build or an add did."""

    index_dir: Path
    count: int  # tiles in the index now
    added: int  # tiles added by this run
    skipped: int  # tiles of the new rasters with too few valid pixels
    rasters: int  # rasters added by this run
    embedding_dim: int
    ann: str  # "hnswlib" or "exact"
    seconds: float
    shards: int = 1  # hnswlib graphs of the index
    units: int = 0  # work units run on a cluster (0: in this process)
    reused: int = 0  # of them, finished units of an earlier run reused
    warnings: list[str] = field(default_factory=list)  # one line each (e.g. resolution)


@dataclass
class _NewTiles:
    """What embedding some rasters produced."""

    rasters: list[IndexedRaster]
    tiles: np.ndarray
    embeddings: np.ndarray
    units: int = 0
    reused: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.rasters)

    @classmethod
    def join(
        cls,
        rasters: list[IndexedRaster],
        tile_parts: list[np.ndarray],
        embedding_parts: list[np.ndarray],
        dim: int,
        units: int = 0,
        reused: int = 0,
        warnings: list[str] | None = None,
    ) -> _NewTiles:
        """The rasters' tiles and embeddings joined in order (none: empty arrays)."""
        tiles = np.concatenate(tile_parts) if tile_parts else np.zeros(0, TILE_DTYPE)
        embeddings = (
            np.concatenate(embedding_parts) if embedding_parts else np.zeros((0, dim), np.float32)
        )
        return cls(rasters, tiles, embeddings, units, reused, list(warnings or []))


def _raster_paths(rasters: Sequence[Path | str], known: Sequence[str] = ()) -> list[Path]:
    """Absolute raster paths; refuse none, duplicates and rasters already indexed."""
    if not rasters:
        raise SncaError("give at least one raster to index")
    names = [absolute_source(r) for r in rasters]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SncaError(f"raster {name} is given twice")
        if name in known:
            raise SncaError(f"raster {name} is already in the index")
        seen.add(name)
    return [Path(name) for name in names]


def _relative_path(path: Path, index_dir: Path) -> str:
    """``path`` relative to the index folder (absolute when on another drive; a remote
    source as it is)."""
    if is_remote(path):
        return gdal_path(path)
    try:
        return os.path.relpath(path, real_path(index_dir))
    except ValueError:
        return str(path)


def _layer_name(crs: CRS, known: dict[str, str]) -> str:
    """The tiles.gpkg layer of a CRS: ``tiles_epsg_<code>`` or ``tiles_crs_<n>``."""
    wkt = crs.to_wkt()
    if wkt not in known:
        epsg = crs.to_epsg()
        known[wkt] = f"tiles_epsg_{epsg}" if epsg else f"tiles_crs_{len(known) + 1}"
    return known[wkt]


def _embed(
    paths: list[Path],
    model: OnnxModel,
    options: TilingOptions,
    index_dir: Path,
    first_tile_id: int,
    first_raster: int,
    layers: dict[str, str],
    batch_size: int,
    run: RunOptions,
) -> _NewTiles:
    """Embed every tile of ``paths`` through the executor (:mod:`snca_cli.tasks.units`), in
    this process or on ``run.cluster``; tile ids start at ``first_tile_id``."""
    names = [absolute_source(p) for p in paths]
    plan = plan_units(names, model, options, run.planned_unit_tiles, run.warn)
    stats = UnitRun()
    rasters, tile_parts, embedding_parts = [], [], []
    next_id = first_tile_id
    results = run_units(plan, model, options, batch_size, run, index_dir, stats=stats)
    for number, (path, result) in enumerate(zip(paths, results, strict=True)):
        tiles = result.tiles
        tiles["raster"] = first_raster + number
        tile_parts.append(tiles)
        assert result.embeddings is not None
        embedding_parts.append(result.embeddings)
        crs = CRS.from_wkt(result.crs_wkt)
        rasters.append(
            IndexedRaster(
                path=result.unit.raster,
                relative_path=_relative_path(path, index_dir),
                crs_wkt=crs.to_wkt(),
                epsg=crs.to_epsg(),
                transform=result.transform,
                width=result.width,
                height=result.height,
                resampled=result.resampled,
                first_tile_id=next_id,
                tile_count=len(tiles),
                skipped=result.skipped,
                layer=_layer_name(crs, layers),
                scaling=result.scaling,
            )
        )
        next_id += len(tiles)
    return _NewTiles.join(
        rasters,
        tile_parts,
        embedding_parts,
        model.metadata.embedding_dim,
        units=stats.units if run.distributed else 0,
        reused=stats.reused,
        warnings=plan.warnings,
    )


def save_graphs(
    directory: Path,
    embeddings: np.ndarray,
    params: IndexParams,
    shard_size: int,
    existing: list[HnswSearch] | None = None,
) -> int:
    """Write the hnswlib graph of every shard of ``embeddings`` (rows = tile ids) into
    ``directory``; ``existing`` graphs (of an index being extended) get their shard's new
    vectors added instead of being built again. Returns the number of shards."""
    existing = existing or []
    ranges = shard_ranges(len(embeddings), shard_size)
    for number, (name, (start, stop)) in enumerate(
        zip(graph_names(len(embeddings), shard_size), ranges, strict=True)
    ):
        if number < len(existing):
            graph = existing[number]
            first_new = start + len(graph)
            if first_new < stop:
                graph.add(embeddings[first_new:stop], np.arange(first_new, stop, dtype=np.int64))
        else:
            ids = np.arange(start, stop, dtype=np.int64)
            graph = build_hnsw(np.ascontiguousarray(embeddings[start:stop]), params, ids)
        graph.save(directory / name)
    return len(ranges)


def build_index(
    rasters: Sequence[Path | str],
    model: OnnxModel,
    index_dir: Path | str,
    options: TilingOptions | None = None,
    params: IndexParams | None = None,
    force: bool = False,
    batch_size: int = 32,
    shard_size: int = 0,
    run: RunOptions | None = None,
) -> IndexSummary:
    """Embed every tile of ``rasters`` with ``model`` and write a new index to ``index_dir``.

    Args:
        rasters: georeferenced rasters; their tiles get ids 0.. in this order.
        model: the ONNX model (its sha256 is recorded; searches and adds must use the same).
        index_dir: the index folder to create; an existing one is replaced only with ``force``
            (and only when it is an snca index; an empty folder counts as absent).
        options: tiling options (overlap, resolution, bands, min_valid, stretch, edge), kept in
            the manifest for every later ``add``.
        params: hnswlib parameters (M, ef_construction, ef).
        batch_size: tiles per model run.
        shard_size: tiles per hnswlib graph (0: one graph); a sharded index is searched by
            fan-out over its shards.
        run: hooks (progress over the tiles of all rasters; cancel, which leaves nothing
            behind; ``waiting`` when another writer holds the index's lock; ``warn`` for each
            warning line, which the summary lists too) and the cluster the tiles are embedded
            on (:class:`snca_cli.tasks.units.RunOptions`).

    Without hnswlib the index is written without graph and searched exactly. An index named
    through a symbolic link is written where the link points (:func:`index_lock`).
    """
    start = time.perf_counter()
    options = (options or TilingOptions()).for_model(model.metadata)
    params = params or IndexParams()
    options.check()
    shown = Path(index_dir)
    _check_index_target(shown, force)  # early, as named; again under the lock
    paths = _raster_paths(rasters)
    ann = "hnswlib" if hnswlib_available() else "exact"
    if shard_size < 0:
        raise SncaError(f"--shard-size must be 0 (one graph) or more tiles; got {shard_size}")
    run = run or RunOptions()
    with index_lock(shown, run.cancelled, run.waiting) as index_dir:
        if index_dir.is_dir() and not any(index_dir.iterdir()):
            index_dir.rmdir()  # an empty folder (made by a file dialog) is not an index to keep
        _check_index_target(index_dir, force)  # again: another writer may have made one
        with atomic_output(index_dir, force, directory=True, own=INDEX_OUTPUT) as tmp:
            new = _embed(paths, model, options, index_dir, 0, 0, {}, batch_size, run)
            if len(new.tiles) == 0:
                raise SncaError(
                    f"no tile of the {len(paths)} raster(s) has enough valid pixels "
                    f"(min valid {options.min_valid}); nothing to index"
                )
            shards = 0
            if ann == "hnswlib" and run.distributed:
                assert run.cluster is not None
                work_dir = work_folder(index_dir, run.work_dir)
                shards, _ = build_graphs_on_cluster(
                    tmp, new.embeddings, params, shard_size, run.cluster, work_dir, run.cancelled
                )
            elif ann == "hnswlib":
                shards = save_graphs(tmp, new.embeddings, params, shard_size)
            metadata = model.metadata
            manifest = Manifest(
                model_sha256=model.embedding_sha256,
                model_name=model.path.name,
                embedding_dim=metadata.embedding_dim,
                class_names=list(metadata.class_names),
                tile_size=metadata.tile_size,
                model_resolution_m=metadata.resolution_m,
                input_bands=metadata.input_bands,
                precision=model.precision,
                tiling=options,
                params=params,
                ann=ann,
                count=len(new.tiles),
                graph_bytes=0,
                rasters=new.rasters,
                shard_size=shard_size,
            )
            write_index_files(tmp, manifest, new.tiles, new.embeddings)
        remove_work_folder(run, index_dir)
    return IndexSummary(
        index_dir=shown,
        count=len(new.tiles),
        added=len(new.tiles),
        skipped=new.skipped,
        rasters=len(paths),
        embedding_dim=metadata.embedding_dim,
        ann=ann,
        seconds=time.perf_counter() - start,
        shards=shards,
        units=new.units,
        reused=new.reused,
        warnings=new.warnings,
    )


def _check_index_target(index_dir: Path, force: bool) -> None:
    """Refuse to build over anything but an snca index (:data:`INDEX_OUTPUT`) replaced with
    ``force`` (an empty folder, as a file dialog makes, counts as absent)."""
    if index_dir.is_dir() and not any(index_dir.iterdir()):
        return
    check_output_paths([index_dir], force, folders=[index_dir], own={index_dir: INDEX_OUTPUT})


def add_to_index(
    index_dir: Path | str,
    rasters: Sequence[Path | str],
    model: OnnxModel,
    options: TilingOptions | None = None,
    batch_size: int = 32,
    run: RunOptions | None = None,
) -> IndexSummary:
    """Append the tiles of new ``rasters`` to an index without rebuilding it.

    The model must be the index's (same sha256); the tiling options are the index's
    (``options``, when given, must equal them). Tile ids continue after the last one. New
    versions of every file are written into a temporary folder that replaces the index only
    when complete: on any error or cancel the old index is left as it was. The whole add holds
    the index's writer lock (a second writer waits; ``run.waiting(message)`` says so). New
    tiles fill the last hnswlib shard of a sharded index, then new shards. ``run``: as for
    :func:`build_index`. An index named through a symbolic link is extended where the link
    points (:func:`index_lock`).
    """
    run = run or RunOptions()
    with index_lock(index_dir, run.cancelled, run.waiting) as real:
        summary = _add_locked(real, rasters, model, options, batch_size, run)
    remove_work_folder(run, real)
    return replace(summary, index_dir=Path(index_dir))


def _add_locked(
    index_dir: Path,
    rasters: Sequence[Path | str],
    model: OnnxModel,
    options: TilingOptions | None,
    batch_size: int,
    run: RunOptions,
) -> IndexSummary:
    start = time.perf_counter()
    files = read_index(index_dir, mmap=False)
    manifest = files.manifest
    model = model.following(manifest.precision)
    check_model(manifest, model, index_dir, same_classes=True)
    if options is not None and options.for_model(model.metadata) != manifest.tiling:
        raise SncaError(
            f"index {index_dir} was built with tiling options {asdict(manifest.tiling)}; "
            f"adding with other options ({asdict(options)}) would mix tilings"
        )
    if manifest.ann == "hnswlib" and not hnswlib_available():
        raise SncaError(f"index {index_dir} has an hnswlib graph; adding to it needs hnswlib")
    paths = _raster_paths(rasters, known=[r.path for r in manifest.rasters])
    layers = {r.crs_wkt: r.layer for r in manifest.rasters}
    with atomic_output(index_dir, True, directory=True, own=INDEX_OUTPUT) as tmp:
        new = _embed(
            paths,
            model,
            manifest.tiling,
            index_dir,
            manifest.count,
            len(manifest.rasters),
            layers,
            batch_size,
            run,
        )
        tiles = np.concatenate([files.tiles, new.tiles])
        embeddings = np.concatenate([files.embeddings, new.embeddings])
        shards = 0
        if manifest.ann == "hnswlib":
            shards = save_graphs(
                tmp, embeddings, manifest.params, manifest.shard_size, files.load_shards()
            )
        manifest.rasters.extend(new.rasters)
        manifest.count += len(new.tiles)
        write_index_files(tmp, manifest, tiles, embeddings)
    return IndexSummary(
        index_dir=index_dir,
        count=manifest.count,
        added=len(new.tiles),
        skipped=new.skipped,
        rasters=len(paths),
        embedding_dim=manifest.embedding_dim,
        ann=manifest.ann,
        seconds=time.perf_counter() - start,
        shards=shards,
        units=new.units,
        reused=new.reused,
        warnings=new.warnings,
    )


@dataclass
class IndexUpdate:
    """What :func:`plan_index_update` decided for some rasters and an index folder.

    Attributes:
        index_dir: the index folder.
        rebuild: True to build the index anew from ``rasters``, False to add them to it.
        rasters: the rasters to embed: all of them for a rebuild, else those not yet indexed
            (empty when every raster is already in the index: nothing to do).
    """

    index_dir: Path
    rebuild: bool
    rasters: list[Path]


def plan_index_update(
    index_dir: Path | str, rasters: Sequence[Path | str], replace: bool
) -> IndexUpdate:
    """Build or extend: the one rule the dock and the Processing algorithm follow.

    With ``replace``, or when ``index_dir`` holds no index yet, the index is built from all
    ``rasters``; otherwise the rasters not yet in it are added (a raster already indexed is
    left as it is, so pressing the button twice does no work twice).
    """
    index_dir = Path(index_dir)
    paths = [real_path(r) for r in rasters]
    if replace or not (index_dir / MANIFEST_NAME).is_file():
        return IndexUpdate(index_dir, True, paths)
    indexed = {r.path for r in read_index(index_dir).manifest.rasters}
    return IndexUpdate(index_dir, False, [p for p in paths if str(p) not in indexed])


def update_index(
    update: IndexUpdate,
    model: OnnxModel,
    options: TilingOptions | None = None,
    batch_size: int = 32,
    run: RunOptions | None = None,
) -> IndexSummary | None:
    """Carry out a :class:`IndexUpdate` (None when it has nothing to do); a rebuild replaces
    an existing index."""
    if update.rebuild:
        return build_index(
            update.rasters,
            model,
            update.index_dir,
            options,
            force=True,
            batch_size=batch_size,
            run=run,
        )
    if not update.rasters:
        return None
    return add_to_index(
        update.index_dir, update.rasters, model, options, batch_size=batch_size, run=run
    )


def merge_indexes(
    sources: Sequence[Path | str],
    output: Path | str,
    force: bool = False,
    shard_size: int | None = None,
    waiting: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Join indexes built separately (same model, tiling options and hnswlib parameters) into
    one at ``output``: tile ids follow the order of ``sources``, as if their rasters had been
    built in one run, and the graphs are rebuilt with ``shard_size`` tiles per shard (default:
    the first index's).

    The output's writer lock is taken before any index is read and held until the merged index
    is published atomically, so a build or add running on the output (which may be one of the
    ``sources``) is waited for and never lost; each source is read as one version of its folder
    (:func:`read_index`). An output named through a symbolic link is written where it points.
    """
    start = time.perf_counter()
    shown = Path(output)
    if len(sources) < 2:
        raise SncaError("give at least two indexes to merge")
    _check_index_target(shown, force)  # early, as named; again under the lock
    with index_lock(shown, None, waiting) as output:
        _check_index_target(output, force)
        opened = [read_index(source, mmap=True) for source in sources]
        manifest, tiles, embeddings = _merged(opened, output, shard_size)
        with atomic_output(output, force, directory=True, own=INDEX_OUTPUT) as tmp:
            shards = (
                save_graphs(tmp, embeddings, manifest.params, manifest.shard_size)
                if manifest.ann == "hnswlib"
                else 0
            )
            write_index_files(tmp, manifest, tiles, embeddings)
    return IndexSummary(
        index_dir=shown,
        count=len(tiles),
        added=len(tiles),
        skipped=sum(r.skipped for r in manifest.rasters),
        rasters=len(manifest.rasters),
        embedding_dim=manifest.embedding_dim,
        ann=manifest.ann,
        seconds=time.perf_counter() - start,
        shards=shards,
    )


def _merged(
    opened: list[IndexFiles], output: Path, shard_size: int | None
) -> tuple[Manifest, np.ndarray, np.ndarray]:
    """The manifest, tile table and embeddings of the indexes ``opened`` joined in order (their
    graph files are closed); SncaError when they do not merge."""
    first = opened[0].manifest
    for files in opened[1:]:
        other = files.manifest
        for what, mine, theirs in (
            ("model (sha256)", first.model_sha256, other.model_sha256),
            ("model precision", first.precision, other.precision),
            ("tiling options", first.tiling, other.tiling),
            ("hnswlib parameters", first.params, other.params),
            ("search library", first.ann, other.ann),
        ):
            if mine != theirs:
                raise SncaError(
                    f"index {files.directory} was built with another {what} than "
                    f"{opened[0].directory}; indexes of one model and tiling merge"
                )
    shard_size = first.shard_size if shard_size is None else shard_size
    if shard_size < 0:
        raise SncaError(f"--shard-size must be 0 (one graph) or more tiles; got {shard_size}")
    rasters: list[IndexedRaster] = []
    seen: set[str] = set()
    layers: dict[str, str] = {}
    tile_parts = []
    for files in opened:
        files.close()
        offset = len(rasters)
        for raster in files.manifest.rasters:
            if raster.path in seen:
                raise SncaError(f"raster {raster.path} is in two of the indexes")
            seen.add(raster.path)
            first_id = sum(r.tile_count for r in rasters)
            rasters.append(
                IndexedRaster(
                    **{
                        **asdict(raster),
                        "relative_path": _relative_path(Path(raster.path), output),
                        "first_tile_id": first_id,
                        "layer": _layer_name(raster.crs, layers),
                    }
                )
            )
        tiles = np.array(files.tiles)
        tiles["raster"] += offset
        tile_parts.append(tiles)
    tiles = np.concatenate(tile_parts)
    embeddings = np.concatenate([np.asarray(f.embeddings) for f in opened])
    manifest = Manifest(
        **{
            **{
                k: getattr(first, k)
                for k in (
                    "model_sha256",
                    "model_name",
                    "embedding_dim",
                    "class_names",
                    "tile_size",
                    "model_resolution_m",
                    "input_bands",
                    "precision",
                    "tiling",
                    "params",
                    "ann",
                )
            },
            "count": len(tiles),
            "graph_bytes": 0,
            "rasters": rasters,
            "shard_size": shard_size,
        }
    )
    return manifest, tiles, embeddings
