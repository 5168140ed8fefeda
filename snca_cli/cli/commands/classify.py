"""`snca classify`: classify every tile of one or more GeoTIFFs with an exported model."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli import options
from snca_cli.cli.support import (
    cluster_run,
    console,
    exit_on_error,
    model_line,
    recheck_line,
    say,
    tile_progress,
    warn,
)
from snca_cli.cli.tables import summary_table
from snca_cli.contract.tiling import tiling_options
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.storage import StorageMirror
from snca_cli.tasks.classify import (
    LIST_SUFFIX,
    ClassifyConfig,
    check_targets,
    expand_rasters,
    plan_targets,
)
from snca_cli.tasks.classify import classify as classify_job
from snca_cli.tasks.output_names import class_map_sidecars
from snca_cli.tasks.units import RunOptions, work_folder

HELP = """Classify every tile of one or more rasters with an snca ONNX model.

Writes a GeoPackage of tile polygons (raster CRS) with class_id, class_name, score and the top-k
classes, a GeoJSON copy in EPSG:4326, and with --class-map a class-map + confidence COG.
With several rasters or a folder, -o (and --geojson, --class-map) are folders holding
`RASTER.gpkg`, `RASTER.geojson` and `RASTER_classes.tif`. Classes get colours that mean what
they are (water blue, forest green, ...); the GeoPackage carries its QGIS style, the class map
its sidecars `.tif.aux.xml` (colour table, class names) and `.qml`: QGIS opens them styled.

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
        precision: str = options.PRECISION,
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
        workers: int = options.WORKERS,
        cluster: str | None = options.CLUSTER,
        connect_timeout: float = options.CONNECT_TIMEOUT,
        unit_tiles: str = options.UNIT_TILES,
        work_dir: str | None = options.WORK_DIR,
    ) -> None:
        tiling = tiling_options(overlap, resolution, bands, min_valid, stretch, edge)
        spec, settings = cluster_run(
            workers, cluster, threads, connect_timeout, unit_tiles, work_dir
        )
        expanded = expand_rasters(rasters)
        folder_input = any(r.is_dir() or r.suffix.lower() == LIST_SUFFIX for r in rasters)
        with StorageMirror() as mirror:
            targets = plan_targets(
                expanded,
                mirror.local(output),
                None if geojson is None else mirror.local(geojson),
                None if class_map is None else mirror.local(class_map),
                folder=folder_input or None,
            )
            config = ClassifyConfig(targets, tiling, top_k, unknown_threshold, force, batch_size)
            # refuse clashing or existing outputs before the model is loaded
            check_targets(targets, force)
            mirror.check([path for target in targets for path in target.paths()], force)
            if mirror.url(targets[0].output) is not None and settings["work_dir"] is None:
                settings["work_dir"] = str(work_folder(mirror.shown(targets[0].output)))
            model = OnnxModel(
                resolve_model(model_path), provider=provider, threads=threads, precision=precision
            )
            model_line(model)
            where = (
                f"{len(targets)} raster(s) on the cluster"
                if spec.distributed
                else (targets[0].raster.name if len(targets) == 1 else f"{len(targets)} rasters")
            )
            with tile_progress(where) as progress:
                run = RunOptions(progress=progress, cluster=spec, say=say, warn=warn, **settings)
                report = classify_job(config, model, run)
            mirror.publish()
            for summary in report.summaries:
                say(f"{summary.raster.name}: scaled by {summary.scaling_line}")
                console.print(summary_table(summary))
                written = [summary.output, summary.geojson] + (
                    [summary.class_map, *class_map_sidecars(summary.class_map)]
                    if summary.class_map
                    else []
                )
                units = f", {summary.units} work units" if summary.units > 1 else ""
                console.print(
                    f"{summary.tiles_total:,} tiles: {summary.tiles_classified:,} classified, "
                    f"{summary.tiles_skipped:,} skipped (< {config.tiling.min_valid:.0%} valid) "
                    f"in {summary.elapsed_s:.1f} s ({summary.tiles_per_second:,.1f} tiles/s, "
                    f"{summary.provider}{units}); wrote "
                    + ", ".join(mirror.shown(p) for p in written),
                    highlight=False,
                )
        recheck_line(model)
        if report.units and spec.distributed:
            console.print(
                f"{report.units} work units, {report.reused} reused from an earlier run",
                highlight=False,
            )
