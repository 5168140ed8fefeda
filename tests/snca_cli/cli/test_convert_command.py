"""`snca convert` through the CLI: what it prints and writes, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
from typer.testing import CliRunner

from snca_cli.cli import app
from tests.helpers.onnx_models import make_band_mean_model

runner = CliRunner()


def test_convert_writes_the_segmentor_copy(tmp_path: Path) -> None:
    model = make_band_mean_model(tmp_path / "bm.onnx", tile_size=8)
    out = tmp_path / "seg.onnx"
    args = ["convert", str(model), "--to", "segmentor", "-o", str(out), "--resolution", "0.25"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "model_type Segmentor, output class_map (N x 4 x 8 x 8), 4 class names" in text
    props = ort.InferenceSession(str(out)).get_modelmeta().custom_metadata_map
    assert props["resolution"] == "25.0"


def test_convert_errors_are_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.onnx"
    result = runner.invoke(
        app, ["convert", str(tmp_path / "no.onnx"), "--to", "deepness", "-o", str(out)]
    )
    assert result.exit_code != 0
    assert result.output.strip().startswith("error: ") and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_an_infinite_resolution_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """1e307 m is infinite centimetres: it once wrote a model whose resolution snca refuses."""
    model = make_band_mean_model(tmp_path / "bm.onnx", tile_size=8)
    out = tmp_path / "seg.onnx"
    for value in ("inf", "nan", "0", "-0", "1e307", "1e-320"):
        result = runner.invoke(
            app, ["convert", str(model), "--to", "segmentor", "-o", str(out), "--resolution", value]
        )
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert lines == [
            "error: --resolution takes metres per pixel from 0.000001 to 1,000,000, e.g. 0.5; "
            f"got {float(value):g}"
        ]
        assert not out.exists()
