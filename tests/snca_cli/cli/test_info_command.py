"""`snca info`: metadata table, provider and hash; models without metadata refused."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.cli.tables import model_table
from snca_cli.contract.metadata import REQUIRED_KEYS
from snca_cli.runtime.onnx_model import OnnxModel, file_sha256
from tests.helpers.onnx_models import make_band_mean_model

runner = CliRunner()


def render(model: OnnxModel) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(model_table(model))
    return console.file.getvalue()


def test_info_shows_metadata_provider_and_hash(tmp_path: Path) -> None:
    path = make_band_mean_model(
        tmp_path / "m.onnx",
        bands=4,
        tile_size=48,
        class_names=["water", "forest"],
        embedding_dim=6,
        resolution_cm=250,
    )
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "water, forest" in result.stdout and "48 px" in result.stdout
    text = render(OnnxModel(path))
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in text.splitlines()
        if line.count("│") == 3
    }
    assert rows["sha256"] == file_sha256(path)
    assert rows["provider"] == "CPU"
    assert rows["classes"] == "2: water, forest"
    assert rows["tile size"] == "48 px"
    assert rows["input bands"] == "4"
    assert rows["embedding dim"] == "6"
    assert rows["resolution"] == "2.5 m/px"
    assert rows["input scale"] == "uint8 / 255, uint16 / 65535, float32 / 1"
    assert rows["input image"] == "tensor(float) ['N', 4, 'H', 'W']"
    assert rows["output embedding"] == "tensor(float) ['N', 6]"
    assert rows["orientations"] == "1 (each tile as it is)"


def test_model_without_metadata_is_refused_naming_the_keys(tmp_path: Path) -> None:
    path = make_band_mean_model(tmp_path / "bare.onnx", with_metadata=False)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: model bare.onnx lacks the snca metadata keys: {', '.join(REQUIRED_KEYS)} "
        "(export it with `snca export`)"
    ]


def test_missing_model_and_unknown_provider_are_one_line_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(tmp_path / "nope.onnx")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: model {tmp_path / 'nope.onnx'} does not exist"
    path = make_band_mean_model(tmp_path / "m.onnx")
    result = runner.invoke(app, ["info", str(path), "--provider", "Imaginary"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: onnxruntime provider 'Imaginary' is not available")
    assert len(result.stderr.strip().splitlines()) == 1


def test_info_without_a_model_shows_the_shipped_one(tmp_path: Path, monkeypatch) -> None:
    path = make_band_mean_model(tmp_path / "shipped.onnx", class_names=["water", "forest"])
    monkeypatch.setattr("snca_cli.runtime.default_model.default_model_path", lambda: path)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert file_sha256(path) in result.stdout.replace("\n", "").replace(" ", "").replace("│", "")
    assert "water, forest" in result.stdout


def test_a_50_mb_name_is_refused_in_one_line_at_once(tmp_path: Path) -> None:
    """Issue 28, item 12: `snca info` on a model whose backbone name is a 50 MB string never
    returned (rich folded it into a table); names have a limit, checked when the model is read."""
    path = make_band_mean_model(tmp_path / "big.onnx", backbone=json.dumps("x" * 50_000_000))
    done = subprocess.run(
        [sys.executable, "-m", "snca_cli.cli", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "error: model big.onnx has an invalid snca metadata value: backbone "
        f"'{'x' * 40}'... is 50,000,000 characters long; names have at most 1,000"
    ]


def test_the_table_is_bounded_however_large_the_metadata(tmp_path: Path) -> None:
    """5,000 classes, a 5 MB training value and 100 training keys: the table shows the first
    classes and keys and the start of each value, and how much there is."""
    training = {"notes": "y" * 5_000_000, **{f"k{i}": i for i in range(99)}}
    path = make_band_mean_model(
        tmp_path / "wide.onnx",
        class_names=[f"c{i}" for i in range(5000)],
        training=json.dumps(training),
    )
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout) < 20_000
    text = "".join(result.stdout.replace("│", "").split())  # rich folds long values
    assert "5000:c0,c1," in text and ",...and4,9" in text and "c4999" not in text
    assert "...(5,000,000characters)" in text
    assert "training.k28" in text and "training.k29" not in text
    assert "training...70morekeys" in text
