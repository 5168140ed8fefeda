"""`snca info`: show an exported model's metadata, the provider it would run on and its hash."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli.support import console, exit_on_error
from snca_cli.cli.tables import model_table
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("info")
    @exit_on_error
    def info(
        model_path: Path | None = typer.Argument(
            None, help="An snca ONNX model [default: the shipped model]."
        ),
        provider: str = typer.Option(
            "auto", help="onnxruntime provider to check: auto (best available), CPU, CUDA, ..."
        ),
    ) -> None:
        """Show a model's metadata, the onnxruntime provider it would use and its SHA-256."""
        console.print(
            model_table(
                OnnxModel(resolve_model(model_path, "name a model file"), provider=provider)
            )
        )
