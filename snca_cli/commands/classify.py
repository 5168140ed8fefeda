"""`snca classify`: classify every tile of one or more GeoTIFFs with an exported model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from snca_cli.atomic import check_writable
from snca_cli.classify import (
    ClassifySummary,
    ClassifyTarget,
    classify_raster,
    expand_rasters,
    plan_targets,
)
from snca_cli.cli_support import console, exit_on_error, tile_progress
from snca_cli.default_model import resolve_model
from snca_cli.errors import SncaError
from snca_cli.metadata import ModelMetadata
from snca_cli.model import OnnxModel
from snca_cli.tiling import RasterTiling, TilingOptions

#: Help of the --model option of the commands that embed tiles.
MODEL_HELP = "The snca ONNX model [default: the shipped model]."
#: Help of the --overlap option of the commands that tile rasters.
OVERLAP_HELP = (
    "Tile overlap: pixels (16) or percent of the tile (10%) "
    "[default: the model's tiles_overlap metadata]."
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


def parse_overlap(text: str) -> float:
    """``"10%"`` -> 0.10 (fraction of the tile); ``"16"`` -> 16.0 (pixels); ``"0.25"`` -> 0.25."""
    value = text.strip()
    try:
        if value.endswith("%"):
            fraction = float(value[:-1]) / 100.0
            if not 0 <= fraction < 1:
                raise SncaError(f"overlap must be under 100 % (got {text})")
            return fraction
        return float(value)
    except ValueError:
        raise SncaError(
            f"overlap must be pixels (16) or a percentage (10%), not {text!r}"
        ) from None


def parse_resolution(text: str) -> str | float:
    """``auto``, ``native`` or metres per pixel (``10`` or ``10m``)."""
    value = text.strip().lower()
    if value in ("auto", "native"):
        return value
    try:
        return float(value.removesuffix("m"))
    except ValueError:
        raise SncaError(
            f"resolution must be auto, native or metres per pixel (10 or 10m), not {text!r}"
        ) from None


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``"3,2,1"`` -> (3, 2, 1)."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SncaError(
            f"bands must be comma-separated band numbers like 3,2,1, not {text!r}"
        ) from None


def model_overlap(metadata: ModelMetadata) -> float:
    """The model's ``tiles_overlap`` metadata (percent) as an overlap fraction for tiling."""
    if not 0.0 <= metadata.tiles_overlap < 100.0:
        raise SncaError(
            f"the model's tiles_overlap of {metadata.tiles_overlap:g} % is not in 0..100 %; "
            "give --overlap"
        )
    return metadata.tiles_overlap / 100.0


def tiling_options(
    overlap: float | None,
    resolution: str,
    bands: str | None,
    min_valid: float,
    stretch: str | None,
    edge: str,
) -> TilingOptions:
    """Checked tiling options from the command-line values shared by classify and index."""
    options = TilingOptions(
        overlap=overlap or 0.0,
        resolution=parse_resolution(resolution),
        bands=parse_bands(bands),
        min_valid=min_valid,
        stretch=stretch,
        edge=edge,
    )
    options.check()
    return options


def summary_table(summary: ClassifySummary) -> Table:
    """Tiles and area of each class that has tiles, and the skipped tiles."""
    km2 = summary.class_area_km2
    empty = sum(1 for count in summary.class_tiles.values() if count == 0)
    table = Table(
        title=f"{summary.raster.name} ({summary.crs})",
        title_justify="left",
        caption=f"{empty} class(es) with no tile not shown" if empty else None,
        caption_justify="left",
    )
    table.add_column("class")
    table.add_column("tiles", justify="right")
    table.add_column("share", justify="right")
    table.add_column(f"area ({'km²' if km2 is not None else summary.area_unit})", justify="right")
    total_area = sum(summary.class_area.values()) + summary.skipped_area
    for name, count in summary.class_tiles.items():
        if count == 0:
            continue
        area = km2[name] if km2 is not None else summary.class_area[name]
        share = summary.class_area[name] / total_area if total_area else 0.0
        table.add_row(name, f"{count:,}", f"{share:.1%}", f"{area:,.3f}")
    skipped_area = summary.skipped_area_km2 if km2 is not None else summary.skipped_area
    share = summary.skipped_area / total_area if total_area else 0.0
    table.add_row(
        "[dim](skipped)[/]", f"{summary.tiles_skipped:,}", f"{share:.1%}", f"{skipped_area:,.3f}"
    )
    return table


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("classify", help=HELP)
    @exit_on_error
    def classify(
        rasters: list[Path] = typer.Argument(..., help="Rasters (GeoTIFF...) or folders of them."),
        model_path: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
        output: Path = typer.Option(
            ..., "--output", "-o", help="Output .gpkg (a folder with several rasters)."
        ),
        geojson: Path | None = typer.Option(
            None, help="EPSG:4326 GeoJSON copy (default: beside the GeoPackage)."
        ),
        class_map: Path | None = typer.Option(
            None, "--class-map", help="Also write a class id + confidence COG here."
        ),
        overlap: str | None = typer.Option(None, help=OVERLAP_HELP),
        resolution: str = typer.Option(
            "auto",
            help="auto (the model's resolution if it has one), native, or metres per pixel; "
            "resamples in the raster's CRS (geographic: metres at the centre latitude).",
        ),
        bands: str | None = typer.Option(
            None, help="1-based bands to feed the model, e.g. 3,2,1 (default: the first ones)."
        ),
        min_valid: float = typer.Option(
            0.5, "--min-valid", help="Skip tiles with a smaller fraction of valid pixels."
        ),
        stretch: str | None = typer.Option(
            None,
            help="percentile: map each band's 2-98 % range to [0, 1] instead of the model's "
            "input_scale.",
        ),
        edge: str = typer.Option(
            "shift", help="shift: edge tiles moved inward; pad: padded with no-data."
        ),
        top_k: int = typer.Option(3, "--top-k", help="Best classes recorded per tile."),
        batch_size: int = typer.Option(32, "--batch-size", help="Tiles per model run."),
        provider: str = typer.Option(
            "auto", help="onnxruntime provider: auto (best available), CPU, CUDA, ..."
        ),
        threads: int = typer.Option(0, help="onnxruntime intra-op threads (0: its default)."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    ) -> None:
        overlap_value = None if overlap is None else parse_overlap(overlap)
        options = tiling_options(overlap_value, resolution, bands, min_valid, stretch, edge)
        expanded = expand_rasters(rasters)
        folder_input = any(r.is_dir() for r in rasters)
        targets = plan_targets(expanded, output, geojson, class_map, folder=folder_input or None)
        for target in targets:  # refuse existing outputs before any work
            for path in target.paths():
                check_writable(path, force)
        model = OnnxModel(resolve_model(model_path), provider=provider, threads=threads)
        meta = model.metadata
        if overlap_value is None:
            options = replace(options, overlap=model_overlap(meta))
        console.print(
            f"model [bold]{model.path.name}[/]: {meta.num_classes} classes, "
            f"{meta.tile_size} px tiles, {meta.input_bands} bands; provider [bold]"
            f"{model.provider_name}[/]"
        )
        for target in targets:  # refuse any bad raster before writing anything
            RasterTiling.open(target.raster, meta, options).close()
        for target in targets:
            summary = _classify_one(target, model, options, batch_size, top_k, force)
            console.print(summary_table(summary))
            written = [summary.output, summary.geojson] + (
                [summary.class_map] if summary.class_map else []
            )
            console.print(
                f"{summary.tiles_total:,} tiles: {summary.tiles_classified:,} classified, "
                f"{summary.tiles_skipped:,} skipped (< {options.min_valid:.0%} valid) in "
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
        )
