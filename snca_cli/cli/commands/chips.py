"""`snca chips`: labelled tiles of rasters as georeferenced image chips in class folders."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli import options
from snca_cli.cli.support import console, exit_on_error, progress_bars, warn
from snca_cli.cli.tables import class_count_table
from snca_cli.contract.tiling import tiling_options
from snca_cli.tasks.chips import RECORD_NAME, ChipsConfig, write_chips

HELP = """Write labelled tiles as image chips in class folders, for `snca train`.

Labels: points or polygons (GeoPackage, GeoJSON, Shapefile; any CRS) with a class field over the
RASTERS. A point labels the tile under it, a polygon every tile at least half inside it; tiles
are cut for the model (default: the shipped one) as `snca classify` cuts them. Each chip,
OUT/CLASS/<raster>_r<row>_c<col>.tif, is the tile as the model sees it when classifying (the
raster's value scaling, as 8-bit), georeferenced on its tile. CLASS and <raster> are the class
value and the raster's name made safe file names (`a/b` becomes `a_b`; names that collide get a
short suffix). OUT/chips.json records the labels, the scaling, the folder of each class value and
every chip. Then e.g. `snca train OUT --init RUN` fine-tunes a network on them.
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("chips", help=HELP)
    @exit_on_error
    def chips(
        rasters: list[Path] = typer.Argument(..., help="Rasters the labels lie on."),
        labels: Path = typer.Option(..., "--labels", help="Points or polygons with a class field."),
        field: str = typer.Option(..., "--field", help="The class field of --labels."),
        output: Path = typer.Option(..., "--output", "-o", help="Folder of class folders."),
        model_path: Path | None = options.MODEL,
        overlap: str | None = options.OVERLAP,
        resolution: str = options.RESOLUTION,
        bands: str | None = options.BANDS,
        min_valid: float = options.MIN_VALID,
        stretch: str | None = options.STRETCH,
        edge: str = options.EDGE,
        force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
    ) -> None:
        config = ChipsConfig(
            output=output,
            rasters=list(rasters),
            labels=labels,
            field_name=field,
            model=model_path,
            tiling=tiling_options(overlap, resolution, bands, min_valid, stretch, edge),
            force=force,
        )
        with progress_bars() as progress:
            summary = write_chips(config, progress)
        for warning in summary.warnings:
            warn(warning)
        console.print(class_count_table("chips", summary.counts))
        console.print(
            f"wrote {sum(summary.counts.values())} chips of {len(summary.counts)} classes to "
            f"{summary.output} ({RECORD_NAME} beside them) in {summary.seconds:.1f} s",
            highlight=False,
            markup=False,
        )
