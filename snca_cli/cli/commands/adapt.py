"""`snca adapt`: a model for the user's own classes, from labels on the map or an image folder."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli import options
from snca_cli.cli.support import console, exit_on_error, progress_bars, warn
from snca_cli.cli.tables import adapt_table
from snca_cli.contract.tiling import tiling_options
from snca_cli.tasks.adapt import AdaptConfig, adapt_model

HELP = """Adapt a model to your classes from labelled examples, in seconds, without torch.

Labels on the map: points or polygons (GeoPackage, GeoJSON, Shapefile; any CRS) with a class
field (--labels FILE --field NAME) over the RASTERS. A point labels the tile under it, a polygon
every tile at least half inside it; tiles are cut as `snca classify` cuts them. Or an image
folder (--images DATA, laid out DATA/CLASS/IMAGE). A --resolution in metres becomes the new
model's resolution, so that `snca classify` cuts its tiles as the labelled ones were cut.

The labelled tiles are embedded with the model (default: the shipped one), a class-balanced
logistic-regression head is fitted on their backbone features, several-stage features or
embeddings, whichever cross-validates best (--head-input), and a new ONNX model is written:
the same graph and `embedding` output (indexes built with the base model stay valid), the
new head and class names, and a calibrated rule that makes `snca classify` write `unknown`
for tiles unlike every labelled class. Beside it: OUT.card.md / .card.json (the labels used,
per-class precision and recall), OUT.adapt.json and OUT.confusion.png.
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("adapt", help=HELP)
    @exit_on_error
    def adapt(
        rasters: list[Path] | None = typer.Argument(None, help="Rasters the labels lie on."),
        labels: Path | None = typer.Option(
            None, "--labels", help="Points or polygons with a class field."
        ),
        field: str | None = typer.Option(None, "--field", help="The class field of --labels."),
        images: Path | None = typer.Option(
            None, "--images", help="An image folder DATA/CLASS/IMAGE instead of labels."
        ),
        model_path: Path | None = options.MODEL,
        output: Path = typer.Option(..., "--output", "-o", help="The adapted model (.onnx)."),
        folds: int = typer.Option(5, "--folds", help="Cross-validation folds (at most)."),
        head_input: str = typer.Option(
            "auto",
            "--head-input",
            help="What the new head reads: auto (the best under cross-validation of what the "
            "model offers), features (the backbone's pooled features), stages (several "
            "EfficientNet-Lite stages and the pooled features) or embedding.",
        ),
        overlap: str | None = options.OVERLAP,
        resolution: str = options.RESOLUTION,
        bands: str | None = options.BANDS,
        min_valid: float = options.MIN_VALID,
        stretch: str | None = options.STRETCH,
        edge: str = options.EDGE,
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    ) -> None:
        config = AdaptConfig(
            output=output,
            model=model_path,
            rasters=list(rasters or []),
            labels=labels,
            field=field,
            images=images,
            tiling=tiling_options(overlap, resolution, bands, min_valid, stretch, edge),
            folds=folds,
            head_input=head_input,
            force=force,
        )
        with progress_bars() as progress:
            report = adapt_model(config, progress)
        for warning in report.warnings:
            warn(warning)
        console.print(adapt_table(report))
        console.print(report.summary_line(), highlight=False)
        written = [report.model, report.card, report.card_json, report.report_json]
        console.print(
            f"wrote {', '.join(str(p) for p in [*written, report.confusion_png])}",
            highlight=False,
        )
