"""`snca colours`: show, set and write the colour of each class of a model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from snca_cli.cli import options
from snca_cli.cli.support import console, exit_on_error
from snca_cli.runtime.default_model import resolve_model
from snca_cli.tasks.colours import parse_colour_settings, recolour_model

HELP = """Show the colour of each class of a model, or write a copy with colours set.

Every output of classify and search is styled with these colours. Without `-o` the colours
are shown; `--set Forest=#1b6e34` (repeatable) changes one, and `-o` writes a copy of the
model carrying every class's colour in its metadata (`-o` the model itself with `--force`).
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("colours", help=HELP)
    @exit_on_error
    def colours(
        model_path: Path | None = typer.Argument(None, help=options.MODEL_HELP),
        settings: list[str] = typer.Option(
            [], "--set", help="CLASS=#rrggbb: that class's colour (repeatable)."
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write a copy of the model with the colours."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
    ) -> None:
        """Show or write the class colours of a model."""
        result = recolour_model(
            resolve_model(model_path, "name a model file"),
            parse_colour_settings(settings),
            output,
            force,
        )
        table = Table("class", "colour", title="class colours")
        for name, colour in result.colours.items():
            table.add_row(name, f"[on {colour}]    [/] {colour}")
        console.print(table)
        if result.output is not None:
            console.print(f"wrote {result.output} with {len(result.colours)} class colours")
