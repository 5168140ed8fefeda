"""`snca index build|add|export`: embed every tile of some rasters into a similar-tile index;
write an index out as GeoParquet."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from snca_cli.cli import options
from snca_cli.cli.support import (
    cluster_run,
    console,
    error_console,
    exit_on_error,
    model_line,
    parse_count,
    recheck_line,
    say,
    tile_progress,
    warn,
)
from snca_cli.contract.tiling import tiling_options
from snca_cli.runtime.ann import IndexParams, hnswlib_available
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.storage import StorageMirror, StoredFolder, restored_url
from snca_cli.tasks.classify import expand_rasters
from snca_cli.tasks.index.build import (
    IndexSummary,
    add_to_index,
    build_index,
    merge_indexes,
)
from snca_cli.tasks.index.geoparquet import export_geoparquet
from snca_cli.tasks.index.store import MANIFEST_NAME, recorded_precision
from snca_cli.tasks.units import RunOptions, work_folder

HELP = """Build or extend an index of tile embeddings for `snca search`."""

BUILD_HELP = """Embed every tile of the rasters with an snca ONNX model and write an index folder.

The folder holds manifest.json (model sha256, hnswlib parameters, tiling options, each raster's
path, CRS and grid), index.hnsw (hnswlib graph, cosine), embeddings.npy (float32), tiles.npy and
tiles.gpkg (one polygon layer per CRS: tile id, raster, window, predicted class and score).
Tiles are cut as by `snca classify` (same tiling options); tiles with fewer than --min-valid
valid pixels are not indexed. The folder is written atomically: an interrupted build leaves
nothing behind.
"""

ADD_HELP = """Append the tiles of more rasters to an index, without rebuilding it.

The model must be the one the index was built with (checked by sha256); the index's tiling
options are used. Tile ids continue after the last one. The index is replaced atomically: an
interrupted add leaves the old index as it was.
"""

MERGE_HELP = """Join indexes built separately with the same model and tiling into one.

Tile ids follow the order of the indexes given; the hnswlib graphs are rebuilt (--shard-size
tiles per graph). The result equals building one index from all their rasters.
"""

EXPORT_HELP = """Write an index's tiles and embeddings as one GeoParquet 1.1 file.

One row per tile: tile_id, raster, window (row, col, col_off, row_off, width, height),
class_id, class_name, score, valid_fraction, embedding (fixed-size float32 list), bbox and the
footprint polygon (the index's CRS; EPSG:4326 for an index over several CRSs). The file metadata
names the model and its SHA-256. Opens in geopandas, DuckDB, QGIS (GDAL 3.8+).
"""

index_app = typer.Typer(name="index", help=HELP, no_args_is_help=True)


def _report(summary: IndexSummary, verb: str, shown: str | None = None) -> None:
    """The summary line; ``shown``: how to name the index (its URL when on storage)."""
    search = "hnswlib" if summary.ann == "hnswlib" else "exact search (hnswlib not installed)"
    console.print(
        f"{verb} {summary.added:,} tiles of {summary.rasters} raster(s) "
        f"({summary.skipped:,} skipped for too few valid pixels) in {summary.seconds:.1f} s; "
        f"index [bold]{escape(shown or str(summary.index_dir))}[/] holds {summary.count:,} tiles, "
        f"{summary.embedding_dim}-d, {search}"
        + (f" in {summary.shards} shards" if summary.shards > 1 else "")
        + (
            f"; {summary.units} work units, {summary.reused} reused from an earlier run"
            if summary.units
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )


@index_app.command("build", help=BUILD_HELP)
@exit_on_error
def build(
    rasters: list[Path] = typer.Argument(..., help="Rasters (GeoTIFF...) or folders of them."),
    model_path: Path | None = options.MODEL,
    output: Path = typer.Option(..., "--output", "-o", help="The index folder to create."),
    overlap: str | None = options.OVERLAP,
    resolution: str = options.RESOLUTION,
    bands: str | None = options.BANDS,
    min_valid: float = options.MIN_VALID,
    stretch: str | None = options.STRETCH,
    edge: str = options.EDGE,
    m: int = typer.Option(IndexParams.M, "--M", help="hnswlib links per node."),
    ef_construction: int = typer.Option(
        IndexParams.ef_construction, "--ef-construction", help="hnswlib build-time search width."
    ),
    ef: int = typer.Option(
        IndexParams.ef, "--ef", help="hnswlib query-time search width (recall vs speed)."
    ),
    batch_size: int = options.BATCH_SIZE,
    provider: str = options.PROVIDER,
    threads: int = options.THREADS,
    precision: str = options.PRECISION,
    force: bool = typer.Option(False, "--force", help="Replace an existing index."),
    shard_size: str = typer.Option(
        "0", "--shard-size", help="Tiles per hnswlib graph, e.g. 5M (0: one graph)."
    ),
    workers: int = options.WORKERS,
    cluster: str | None = options.CLUSTER,
    connect_timeout: float = options.CONNECT_TIMEOUT,
    unit_tiles: str = options.UNIT_TILES,
    work_dir: str | None = options.WORK_DIR,
) -> None:
    tiling = tiling_options(overlap, resolution, bands, min_valid, stretch, edge)
    params = IndexParams(M=m, ef_construction=ef_construction, ef=ef)
    spec, settings = cluster_run(workers, cluster, threads, connect_timeout, unit_tiles, work_dir)
    paths = expand_rasters(rasters)
    size = parse_count(shard_size, "--shard-size")
    with StorageMirror() as mirror:
        index_dir = mirror.local(output)
        mirror.check([index_dir], force)
        if mirror.url(index_dir) is not None and settings["work_dir"] is None:
            settings["work_dir"] = str(work_folder(restored_url(output)))
        model = OnnxModel(
            resolve_model(model_path), provider=provider, threads=threads, precision=precision
        )
        model_line(model)
        if not hnswlib_available():
            error_console.print("hnswlib is not installed: the index will be searched exactly")
        with tile_progress(f"indexing {len(paths)} raster(s)", transient=False) as progress:
            run = RunOptions(
                progress=progress, waiting=say, cluster=spec, say=say, warn=warn, **settings
            )
            summary = build_index(
                paths, model, index_dir, tiling, params, force, batch_size, size, run
            )
        if mirror.url(index_dir) is not None:
            StoredFolder(restored_url(output)).remove()  # checked above: --force
            mirror.publish(last=MANIFEST_NAME)
        shown = mirror.shown(index_dir)
    recheck_line(model)
    _report(summary, "indexed", shown)


@index_app.command("add", help=ADD_HELP)
@exit_on_error
def add(
    index_dir: Path = typer.Argument(..., help="The index folder."),
    rasters: list[Path] = typer.Argument(..., help="Rasters (GeoTIFF...) or folders of them."),
    model_path: Path | None = typer.Option(
        None, "--model", "-m", help="The index's ONNX model [default: the shipped model]."
    ),
    batch_size: int = options.BATCH_SIZE,
    provider: str = options.PROVIDER,
    threads: int = options.THREADS,
    precision: str = options.PRECISION,
    workers: int = options.WORKERS,
    cluster: str | None = options.CLUSTER,
    connect_timeout: float = options.CONNECT_TIMEOUT,
    unit_tiles: str = options.UNIT_TILES,
    work_dir: str | None = options.WORK_DIR,
) -> None:
    spec, settings = cluster_run(workers, cluster, threads, connect_timeout, unit_tiles, work_dir)
    paths = expand_rasters(rasters)
    if precision == "auto":
        precision = recorded_precision(index_dir)
    model = OnnxModel(
        resolve_model(model_path), provider=provider, threads=threads, precision=precision
    )
    model_line(model)
    with tile_progress(f"adding {len(paths)} raster(s)", transient=False) as progress:
        run = RunOptions(
            progress=progress, waiting=say, cluster=spec, say=say, warn=warn, **settings
        )
        summary = add_to_index(index_dir, paths, model, batch_size=batch_size, run=run)
    recheck_line(model)
    _report(summary, "added")


@index_app.command("merge", help=MERGE_HELP)
@exit_on_error
def merge(
    indexes: list[Path] = typer.Argument(..., help="The indexes to join, in tile id order."),
    output: Path = typer.Option(..., "--output", "-o", help="The index folder to create."),
    shard_size: str | None = typer.Option(
        None, "--shard-size", help="Tiles per hnswlib graph, e.g. 5M [default: the first's]."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing index."),
) -> None:
    size = None if shard_size is None else parse_count(shard_size, "--shard-size")
    summary = merge_indexes(indexes, output, force, size, waiting=say)
    _report(summary, "merged")


@index_app.command("export", help=EXPORT_HELP)
@exit_on_error
def export(
    index_dir: Path = typer.Argument(..., help="The index folder."),
    output: Path = typer.Option(..., "--output", "-o", help="The .parquet file to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    summary = export_geoparquet(index_dir, output, force=force)
    console.print(
        f"wrote {summary.count:,} tiles ({summary.embedding_dim}-d embeddings, {summary.crs}) "
        f"to [bold]{summary.path}[/]",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``snca index build|add|merge|export`` to the snca app."""
    app.add_typer(index_app, name="index")
