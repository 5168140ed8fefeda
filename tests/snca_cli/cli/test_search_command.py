"""`snca search` through the CLI: one-line errors for bad queries and a missing index."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give a query: --xy, --lonlat, --tile-id, --point or --image"),
        (["--tile-id", "1", "--lonlat", "1", "2"], "--lonlat and --image each make a query"),
        (["--not-tile-id", "1"], "need a positive example as well"),
        (["--tile-id", "1", "--not-tile-id", "1"], "is both a positive and a negative"),
        (["--tile-id", "1", "--point", "3"], "--point takes X,Y"),
        (["--tile-id", "1", "--not-point", "a,b"], "--not-point takes X,Y"),
        (["--xy", "1", "2", "--raster", "a.tif"], "--raster goes with --tile-id"),
        (["--tile-id", "1", "--raster", "a.tif"], "raster 'a.tif' is not in the index"),
        (["--tile-id", "1", "--crs", "EPSG:4326"], "--crs goes with --xy"),
        (["--tile-id", "1", "--model", "m.onnx"], "--model goes with --image"),
        (["--tile-id", "99"], "tile id 99 is not in the index"),
        (["--lonlat", "100", "-80"], "is outside every raster of the index"),
        (["--tile-id", "1", "-k", "0"], "-k must be at least 1"),
        (["--tile-id", "1", "--class", "nope"], "class 'nope' is not one of"),
    ],
)
def test_cli_search_errors_are_one_line(
    index_dir: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(app, ["search", str(index_dir), *arguments])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_search_of_a_missing_index(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", str(tmp_path / "none"), "--tile-id", "1"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_search_refuses_a_bad_output_before_opening_the_index(tmp_path: Path) -> None:
    # the index does not even exist: the output is checked first
    out = tmp_path / "hits.txt"
    result = runner.invoke(
        app, ["search", str(tmp_path / "none"), "--tile-id", "1", "-o", str(out)]
    )
    assert result.exit_code == 2 and "use .gpkg or .geojson" in result.output
    (tmp_path / "hits.geojson").write_text("{}")
    args = ["search", str(tmp_path / "none"), "--tile-id", "1", "-o", str(tmp_path / "hits.gpkg")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "hits.geojson exists; use --force" in result.output
