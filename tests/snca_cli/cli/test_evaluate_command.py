"""`snca evaluate` through the CLI: the report files and refused outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from tests.helpers.evaluate_data import (
    TEST,
    TRAIN,
    colour_model,
    write_split_file,
)


def test_cli_writes_report_and_refuses_existing_output(tmp_path: Path, scenes: Path) -> None:
    model = colour_model(tmp_path / "m.onnx")
    split = write_split_file(tmp_path / "mine.json", TRAIN, TEST)
    runner = CliRunner()
    args = ["evaluate", str(model), str(scenes), "--split", str(split)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kNN@1 accuracy" in result.output and "83.33" in result.output
    out = tmp_path / "m-eval"
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["knn@10"] == pytest.approx(5 / 6)
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "exists; use --force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "none.onnx"), str(scenes)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
