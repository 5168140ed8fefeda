"""The issue's attack through the CLI: a ``.snca-staging-*`` folder planted in an output folder
(its ``primary`` pointing at a folder outside, its journal naming files outside) makes neither
``snca classify`` into that folder nor ``snca search`` of a missing index there delete or
replace anything; the command works as without it and names the folder in one warning line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from tests.helpers.classify_data import COLOURS, NAMES
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted, write_raster
from tests.helpers.staging_attacks import ISSUE_CASES, PLANTED, Site

runner = CliRunner()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """The site, with its output folder as the working folder (``../victim`` is the victim)."""
    site = Site(tmp_path)
    monkeypatch.chdir(site.out)
    return site


def _staging_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if PLANTED in line]


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_classify_into_a_folder_with_a_planted_staging_folder(
    tmp_path: Path, site: Site, case: str
) -> None:
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=NAMES)
    raster = write_raster(tmp_path / "r.tif", painted(COLOURS, 16))
    staging = site.plant(case)
    args = ["classify", str(raster), "-m", str(model), "-o", str(site.out / "a.gpkg")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert site.untouched()
    assert (site.out / "a.gpkg").is_file() and not (site.out / "stolen.txt").exists()
    lines = _staging_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"warning: left {staging} alone"), lines
    assert staging.is_dir()


@pytest.mark.parametrize("case", ISSUE_CASES[:3])
def test_search_of_a_missing_index_beside_a_planted_staging_folder(site: Site, case: str) -> None:
    staging = site.plant(case)
    result = runner.invoke(app, ["search", str(site.out / "idx"), "--tile-id", "1"])
    assert result.exit_code == 2
    assert site.untouched()
    lines = _staging_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"warning: left {staging} alone"), lines
    assert result.stderr.splitlines()[-1].startswith("error: index")
