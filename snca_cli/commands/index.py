"""`snca index build|add`: embed every tile of some rasters into a similar-tile index."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from snca_cli.ann import IndexParams, hnswlib_available
from snca_cli.classify import expand_rasters
from snca_cli.cli_support import console, error_console, exit_on_error, tile_progress
from snca_cli.commands.classify import (
    MODEL_HELP,
    OVERLAP_HELP,
    model_overlap,
    parse_overlap,
    tiling_options,
)
from snca_cli.default_model import resolve_model
from snca_cli.index import IndexSummary, add_to_index, build_index
from snca_cli.model import OnnxModel

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

index_app = typer.Typer(name="index", help=HELP, no_args_is_help=True)


def _report(summary: IndexSummary, verb: str) -> None:
    search = "hnswlib" if summary.ann == "hnswlib" else "exact search (hnswlib not installed)"
    console.print(
        f"{verb} {summary.added:,} tiles of {summary.rasters} raster(s) "
        f"({summary.skipped:,} skipped for too few valid pixels) in {summary.seconds:.1f} s; "
        f"index [bold]{summary.index_dir}[/] holds {summary.count:,} tiles, "
        f"{summary.embedding_dim}-d, {search}",
        highlight=False,
        soft_wrap=True,
    )


@index_app.command("build", help=BUILD_HELP)
@exit_on_error
def build(
    rasters: list[Path] = typer.Argument(..., help="Rasters (GeoTIFF...) or folders of them."),
    model_path: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="The index folder to create."),
    overlap: str | None = typer.Option(None, help=OVERLAP_HELP),
    resolution: str = typer.Option(
        "auto", help="auto (the model's resolution if it has one), native, or metres per pixel."
    ),
    bands: str | None = typer.Option(
        None, help="1-based bands to feed the model, e.g. 3,2,1 [default: the first ones]."
    ),
    min_valid: float = typer.Option(
        0.5, "--min-valid", help="Skip tiles with a smaller fraction of valid pixels."
    ),
    stretch: str | None = typer.Option(
        None, help="percentile: map each band's 2-98 % range to [0, 1]."
    ),
    edge: str = typer.Option("shift", help="shift: edge tiles moved inward; pad: padded."),
    m: int = typer.Option(IndexParams.M, "--M", help="hnswlib links per node."),
    ef_construction: int = typer.Option(
        IndexParams.ef_construction, "--ef-construction", help="hnswlib build-time search width."
    ),
    ef: int = typer.Option(
        IndexParams.ef, "--ef", help="hnswlib query-time search width (recall vs speed)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Tiles per model run."),
    provider: str = typer.Option("auto", help="onnxruntime provider: auto, CPU, CUDA, ..."),
    threads: int = typer.Option(0, help="onnxruntime intra-op threads (0: its default)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing index."),
) -> None:
    overlap_value = None if overlap is None else parse_overlap(overlap)
    options = tiling_options(overlap_value, resolution, bands, min_valid, stretch, edge)
    params = IndexParams(M=m, ef_construction=ef_construction, ef=ef)
    paths = expand_rasters(rasters)
    model = OnnxModel(resolve_model(model_path), provider=provider, threads=threads)
    if overlap_value is None:
        options = replace(options, overlap=model_overlap(model.metadata))
    if not hnswlib_available():
        error_console.print("hnswlib is not installed: the index will be searched exactly")
    with tile_progress(f"indexing {len(paths)} raster(s)", transient=False) as progress:
        summary = build_index(
            paths, model, output, options, params, force, batch_size, progress=progress
        )
    _report(summary, "indexed")


@index_app.command("add", help=ADD_HELP)
@exit_on_error
def add(
    index_dir: Path = typer.Argument(..., help="The index folder."),
    rasters: list[Path] = typer.Argument(..., help="Rasters (GeoTIFF...) or folders of them."),
    model_path: Path | None = typer.Option(
        None, "--model", "-m", help="The index's ONNX model [default: the shipped model]."
    ),
    batch_size: int = typer.Option(32, "--batch-size", help="Tiles per model run."),
    provider: str = typer.Option("auto", help="onnxruntime provider: auto, CPU, CUDA, ..."),
    threads: int = typer.Option(0, help="onnxruntime intra-op threads (0: its default)."),
) -> None:
    paths = expand_rasters(rasters)
    model = OnnxModel(resolve_model(model_path), provider=provider, threads=threads)
    with tile_progress(f"adding {len(paths)} raster(s)", transient=False) as progress:
        summary = add_to_index(index_dir, paths, model, batch_size=batch_size, progress=progress)
    _report(summary, "added")


def register(app: typer.Typer) -> None:
    """Add ``snca index build|add`` to the snca app."""
    app.add_typer(index_app, name="index")
