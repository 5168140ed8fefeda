"""`snca chips` through the command line, with the labels' class in the ``cover`` field."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.onnx_model import OnnxModel


def run_chips(model: OnnxModel, raster: Path, labels: Path, out: Path, *extra: str) -> Result:
    """Run ``snca chips RASTER --labels LABELS --field cover -m MODEL -o OUT EXTRA...``."""
    return CliRunner().invoke(
        app,
        ["chips", str(raster), "--labels", str(labels), "--field", "cover",
         "-m", str(model.path), "-o", str(out), *extra],
    )  # fmt: skip
