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


@pytest.mark.parametrize("command", ["evaluate", "adapt"])
def test_an_empty_class_folder_is_named_not_dropped(
    tmp_path: Path, scenes: Path, command: str
) -> None:
    """Issue 28, item 14: a class folder without images was dropped silently (evaluate, adapt
    --images and train read the folder the same way)."""
    (scenes / "purple").mkdir()
    (scenes / "purple" / "notes.txt").write_text("the images are still on the camera")
    model = colour_model(tmp_path / "m.onnx")
    out = tmp_path / ("report" if command == "evaluate" else "adapted.onnx")
    args = [str(model), str(scenes), "-o", str(out)]
    if command == "adapt":
        args = ["--images", str(scenes), "-m", str(model), "-o", str(out)]
    result = CliRunner().invoke(app, [command, *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: data folder {scenes} has 1 class folder(s) without images (.jpg, .jpeg, .png, "
        ".tif, .tiff): 'purple'; a class without images can be neither learned nor evaluated: "
        "add its images or remove the folder"
    ]
    assert not out.exists()
