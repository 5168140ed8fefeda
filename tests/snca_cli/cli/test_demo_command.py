"""`snca demo` through the CLI: refused outputs and a run with the shipped model."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.runtime.default_model import default_model_path
from tests.helpers.onnx_models import make_band_mean_model


def test_demo_refuses_existing_outputs_without_force(tmp_path: Path) -> None:
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=150)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "tiles.gpkg").write_text("old")
    result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "demo"), "-m", str(model)])
    assert result.exit_code == 2
    assert "exists; use --force" in result.output
    assert (tmp_path / "demo" / "tiles.gpkg").read_text() == "old"


@pytest.mark.slow
def test_demo_runs_with_the_shipped_model(tmp_path: Path) -> None:
    assert default_model_path().is_file(), "the shipped model is missing from the package"
    result = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "quick-look" in result.output
    # classes without a tile are summed up in one line, not listed
    assert "with no tile not shown" in result.output
    assert (tmp_path / "demo" / "quicklook.png").stat().st_size > 10_000
