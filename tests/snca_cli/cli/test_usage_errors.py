"""Usage errors of the installed `snca` command: one `error:` line naming the help command and
exit code 2, never Typer's box or a traceback; a missing raster is refused before any model is
loaded."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snca_cli.cli.support import EXIT_BAD_INPUT


def _snca(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The `snca` console script as a user runs it (the module when no script is installed)."""
    script = shutil.which("snca", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "snca_cli.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "x.tif", "-o", "x.gpkg", "--nope"], "No such option: --nope"),
        (["classify"], "Missing argument 'rasters'"),
        (["nothere"], "No such command 'nothere'"),
        (["search", "idx", "-k", "many"], "Invalid value for '-k'"),
    ],
)
def test_a_usage_error_is_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _snca(*args, cwd=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[0].endswith("--help')")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_raster_is_refused_before_the_model_is_loaded(tmp_path: Path) -> None:
    missing_model = tmp_path / "no-model.onnx"
    result = _snca(
        "classify", "nothere.tif", "-m", str(missing_model), "-o", "out.gpkg", cwd=tmp_path
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr.strip() == "error: raster nothere.tif does not exist"
