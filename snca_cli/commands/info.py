"""`snca info`: show an exported model's metadata, the provider it would run on and its hash."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import typer
from rich.table import Table

from snca_cli.cli_support import console, exit_on_error
from snca_cli.default_model import resolve_model
from snca_cli.model import OnnxModel


def model_table(model: OnnxModel) -> Table:
    """The model's metadata, inputs and outputs, provider and SHA-256 as a two-column table."""
    meta = model.metadata
    table = Table(title=f"snca model {model.path.name}", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    resolution = "none (native)" if meta.resolution_m is None else f"{meta.resolution_m:g} m/px"
    rows = [
        ("file", str(model.path)),
        ("sha256", model.sha256),
        ("provider", model.provider_name),
        ("providers available", ", ".join(ort.get_available_providers())),
        ("model type", meta.model_type),
        ("backbone", meta.backbone or "-"),
        ("snca version", meta.snca_version or "-"),
        ("classes", f"{meta.num_classes}: {', '.join(meta.class_names)}"),
        ("tile size", f"{meta.tile_size} px"),
        ("input bands", str(meta.input_bands)),
        ("input scale", ", ".join(f"{k} / {v:g}" for k, v in meta.input_scale.items())),
        ("resolution", resolution),
        ("tiles overlap", f"{meta.tiles_overlap:g} %"),
        ("embedding dim", str(meta.embedding_dim)),
        (
            "orientations",
            "1 (each tile as it is)"
            if meta.orientations == 1
            else f"{meta.orientations} (outputs averaged over the flips and quarter turns)",
        ),
    ]
    for tensor in model.session.get_inputs():
        rows.append((f"input {tensor.name}", f"{tensor.type} {tensor.shape}"))
    for tensor in model.session.get_outputs():
        rows.append((f"output {tensor.name}", f"{tensor.type} {tensor.shape}"))
    for key, value in meta.training.items():
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append((f"training.{key}", text))
    for key, value in rows:
        table.add_row(key, value)
    return table


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
