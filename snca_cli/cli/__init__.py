"""The ``snca`` command line: train, evaluate, export, convert, adapt, chips, info, classify,
index, search, demo."""

from __future__ import annotations

import typer

from snca_cli import __version__
from snca_cli.cli.commands import (
    adapt,
    chips,
    classify,
    convert,
    demo,
    evaluate,
    export,
    index,
    info,
    search,
    train,
)

app = typer.Typer(
    name="snca",
    help="Remote-sensing scene embeddings (SNCA+CE): train, export to ONNX, classify GeoTIFF "
    "tiles and search similar tiles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"snca {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """snca command line."""


for module in (train, evaluate, export, convert, adapt, chips, info, classify, index, search, demo):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


