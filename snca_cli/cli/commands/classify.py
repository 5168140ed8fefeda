"""`snca classify`: classify every tile of one or more GeoTIFFs with an exported model."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli import options
from snca_cli.cli.support import (
    console,
    error_console,
    exit_on_error,
    tile_progress,
    warn_resolution,
)
from snca_cli.cli.tables import summary_table
from snca_cli.contract.tiling import TilingOptions, tiling_options
from snca_cli.runtime.atomic import check_output_paths
from snca_cli.runtime.cluster import ClusterSpec
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.tasks.classify import (
    LIST_SUFFIX,
    ClassifySummary,
    ClassifyTarget,
    classify_on_cluster,
    classify_raster,
    expand_rasters,
    plan_targets,
)

HELP = """Classify every tile of one or more rasters with an snca ONNX model.

Writes a GeoPackage of tile polygons (raster CRS) with class_id, class_name, score and the top-k
classes, a GeoJSON copy in EPSG:4326, and with --class-map a class-map + confidence COG.
With several rasters or a folder, -o (and --geojson, --class-map) are folders holding
`RASTER.gpkg`, `RASTER.geojson` and `RASTER_classes.tif`.

Tiles come from windowed reads at the model's tile size. Edge tiles are shifted inward so the
whole raster is covered (--edge pad keeps the stride and pads with no-data instead). No-data
pixels (no-data value, alpha or mask) are filled with the tile's mean valid value per band;
tiles with fewer than --min-valid valid pixels are skipped and counted.
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("classify", help=HELP)
    @exit_on_error
    def classify(
        rasters: list[Path] = typer.Argument(..., help="Rasters (GeoTIFF...) or folders of them."),
        model_path: Path | None = options.MODEL,
        output: Path = typer.Option(
            ..., "--output", "-o", help="Output .gpkg (a folder with several rasters)."
        ),
        geojson: Path | None = typer.Option(
            None, help="EPSG:4326 GeoJSON copy (default: beside the GeoPackage)."
        ),
        class_map: Path | None = typer.Option(
            None, "--class-map", help="Also write a class id + confidence COG here."
        ),
        overlap: str | None = options.OVERLAP,
        resolution: str = options.RESOLUTION,
        bands: str | None = options.BANDS,
        min_valid: float = options.MIN_VALID,
        stretch: str | None = options.STRETCH,
        edge: str = options.EDGE,
        top_k: int = typer.Option(3, "--top-k", help="Best classes recorded per tile."),
        unknown_threshold: float | None = typer.Option(
            None,
            "--unknown-threshold",
            help="Adapted models: a tile whose best cosine similarity to the class prototypes "
            "is below this is `unknown` [default: the model's calibrated value; -1: never].",
        ),
        batch_size: int = options.BATCH_SIZE,
        provider: str = options.PROVIDER,
        threads: int = options.THREADS,
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
        workers: int = options.WORKERS,
        cluster: str | None = options.CLUSTER,
    ) -> None:
        spec = ClusterSpec(workers=workers, address=cluster)
        tiling = tiling_options(overlap, resolution, bands, min_valid, stretch, edge)
        expanded = expand_rasters(rasters)
        folder_input = any(r.is_dir() or r.suffix.lower() == LIST_SUFFIX for r in rasters)
        targets = plan_targets(expanded, output, geojson, class_map, folder=folder_input or None)
        # refuse clashing or existing outputs before any work
        check_output_paths([path for target in targets for path in target.paths()], force)
        model = OnnxModel(resolve_model(model_path), provider=provider, threads=threads)
        meta = model.metadata
        tiling = tiling.for_model(meta)
        console.print(
            f"model [bold]{model.path.name}[/]: {meta.num_classes} classes, "
            f"{meta.tile_size} px tiles, {meta.input_bands} bands; provider [bold]"
            f"{model.provider_name}[/]"
        )
        for target in targets:  # refuse any bad raster before writing anything
            RasterTiling.open(target.raster, meta, tiling).close()
        warn_resolution([target.raster for target in targets], meta, tiling)
        if spec.distributed:
            with tile_progress(f"{len(targets)} raster(s) on the cluster") as progress:
                summaries = classify_on_cluster(
                    targets, model, tiling, spec, batch_size, top_k, force, progress,
                    say=lambda line: error_console.print(line, highlight=False),
                    unknown_threshold=unknown_threshold,
                )
        else:
            summaries = (
                _classify_one(target, model, tiling, batch_size, top_k, force, unknown_threshold)
                for target in targets
            )
        for summary in summaries:
            error_console.print(
                f"{summary.raster.name}: scaled by {summary.scaling_line}", highlight=False
            )
            console.print(summary_table(summary))
            written = [summary.output, summary.geojson] + (
                [summary.class_map] if summary.class_map else []
            )
            console.print(
                f"{summary.tiles_total:,} tiles: {summary.tiles_classified:,} classified, "
                f"{summary.tiles_skipped:,} skipped (< {tiling.min_valid:.0%} valid) in "
                f"{summary.elapsed_s:.1f} s ({summary.tiles_per_second:,.1f} tiles/s, "
                f"{summary.provider}); wrote {', '.join(str(p) for p in written)}",
                highlight=False,
            )


def _classify_one(
    target: ClassifyTarget,
    model: OnnxModel,
    options: TilingOptions,
    batch_size: int,
    top_k: int,
    force: bool,
    unknown_threshold: float | None,
) -> ClassifySummary:
    """Classify one raster with a progress bar on stderr."""
    with tile_progress(target.raster.name) as progress:
        return classify_raster(
            target.raster,
            model,
            target.output,
            options,
            batch_size=batch_size,
            geojson=target.geojson,
            class_map=target.class_map,
            top_k=top_k,
            force=force,
            progress=progress,
            unknown_threshold=unknown_threshold,
        )
