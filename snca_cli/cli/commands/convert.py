"""`snca convert`: a copy of an snca model that Deepness or GeoDeep runs (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli import options
from snca_cli.cli.support import console, exit_on_error
from snca_cli.contract.metadata import resolution_cm_from_m
from snca_cli.runtime.default_model import resolve_model
from snca_cli.tasks.convert import ConvertOptions, convert_model

HELP = """Write a copy of an snca model for Deepness or GeoDeep.

`--to deepness`: the embedding output only, model_type Recognition (Deepness's similarity
search). `--to segmentor`: the tile classes as an N x (1 + C) x H x W probability map,
model_type Segmentor (Deepness and GeoDeep); channel 0 is `unclassified`, what a tile becomes
when its best probability is below the tool's threshold (written seg_thresh: 0, so by default
every tile gets its best class, as `snca classify` gives it).
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("convert", help=HELP)
    @exit_on_error
    def convert(
        model_path: Path | None = typer.Argument(None, help=options.MODEL_HELP),
        target: str = typer.Option(..., "--to", help="deepness or segmentor."),
        output: Path = typer.Option(..., "--output", "-o", help="The converted .onnx file."),
        resolution: float | None = typer.Option(
            None, "--resolution", help="Ground resolution to write into the copy, m/px."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
    ) -> None:
        """Write the Deepness or GeoDeep copy of a model."""
        result = convert_model(
            resolve_model(model_path, "name a model file"),
            ConvertOptions(
                target,
                output,
                resolution_cm=None if resolution is None else resolution_cm_from_m(resolution),
                force=force,
            ),
        )
        shape = " x ".join(str(d) for d in result.output_shape)
        console.print(
            f"{result.path}: model_type {result.model_type}, output {result.output_name} "
            f"({shape}), {len(result.class_names)} class names"
        )
