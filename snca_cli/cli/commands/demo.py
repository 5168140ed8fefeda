"""``snca demo``: classify, index and search a real Sentinel-2 scene offline with the default
model, writing everything into ``./snca-demo/``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from snca_cli.cli.support import console, exit_on_error, tile_progress
from snca_cli.cli.tables import files_table, results_table, summary_table

HELP = """Run the main job offline on a real Sentinel-2 scene that ships with snca (9 x 9 km of
the Virginia coast at 10 m): classify every tile with the default model (or --model), build a
similarity index, find the tiles most similar to one tile, and write GPKG, GeoJSON, a class-map
COG and a PNG quick-look to OUTPUT.
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command(help=HELP)
    @exit_on_error
    def demo(
        output: Path = typer.Option(Path("snca-demo"), "--output", "-o", help="Output folder."),
        model: Path | None = typer.Option(
            None, "--model", "-m", help="An snca ONNX model (default: the shipped one)."
        ),
        k: int = typer.Option(10, "-k", "--hits", help="How many similar tiles to find."),
        force: bool = typer.Option(False, "--force", help="Overwrite earlier demo outputs."),
    ) -> None:
        from snca_cli.tasks.demo import DemoConfig, run_demo

        with contextlib.ExitStack() as stack:

            def progress(label: str):
                return stack.enter_context(tile_progress(label))

            report = run_demo(DemoConfig(output=output, model=model, k=k, force=force), progress)
        console.print(
            f"model [bold]{report.model.name}[/] on {report.provider}, {report.precision}; "
            f"{report.classify.tiles_classified:,} tiles classified in "
            f"{report.classify.elapsed_s:.1f} s ({report.classify.tiles_per_second:,.1f} tiles/s)",
            highlight=False,
        )
        console.print(summary_table(report.classify))
        console.print(results_table(report.search))
        console.print(
            files_table(
                [
                    ("scene (Sentinel-2 RGB, 10 m)", report.raster),
                    ("tiles by class (GeoPackage)", report.classify.output),
                    ("tiles by class (GeoJSON, EPSG:4326)", report.classify.geojson),
                    ("class map + confidence (COG)", report.classify.class_map),
                    ("similarity index", report.index.index_dir),
                    *[("similar tiles", path) for path in report.search_files],
                    ("quick-look", report.quicklook),
                ]
            )
        )
