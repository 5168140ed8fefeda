"""`snca classify` with default options on real Sentinel-2 bands as delivered (the demo scene
shipped in the package: uint16 reflectance x 10,000, values mostly 400-1,700): the default
scaling notices that the values use a small part of their type's range, stretches them, says so
and records it in the outputs."""

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.tasks.classify import SCALING_METADATA
from snca_cli.tasks.demo import demo_scene_path

pytestmark = pytest.mark.slow  # four classify runs of the shipped model


def classify(raster: Path, output: Path, *options: str) -> tuple[list[str], str]:
    """The class of every tile (in tile order) of a CLI run with ``options``, and its stderr."""
    result = CliRunner().invoke(app, ["classify", str(raster), "-o", str(output), *options])
    assert result.exit_code == 0, result.output
    return list(pyogrio.read_dataframe(output)["class_name"]), result.stderr


def eight_bit_copy(source: Path, output: Path) -> Path:
    """An 8-bit copy of ``source`` stretched 2-98 % per band over the whole raster (a
    quick-look, as gdal_translate -scale makes one)."""
    with rasterio.open(source) as src:
        data, profile = src.read().astype(np.float64), src.profile
    low, high = np.percentile(data, [2, 98], axis=(1, 2), keepdims=True)
    eight = np.clip(np.round((data - low) / (high - low) * 255), 0, 255).astype(np.uint8)
    profile.update(dtype="uint8")
    with rasterio.open(output, "w", **profile) as dst:
        dst.write(eight)
    return output


def test_default_scaling_of_uint16_reflectance_matches_the_demo(tmp_path: Path) -> None:
    scene = demo_scene_path()
    default, said = classify(scene, tmp_path / "default.gpkg")
    # the demo's path: the percentile stretch of the same uint16 stack
    demo, _ = classify(scene, tmp_path / "demo.gpkg", "--stretch", "percentile")
    # an independent 8-bit quick-look, stretched over the whole raster, scaled by input_scale
    eight, eight_said = classify(
        eight_bit_copy(scene, tmp_path / "s2_8bit.tif"), tmp_path / "8.gpkg"
    )
    # what the old default did: uint16 / 65535, nearly black tiles
    black, _ = classify(scene, tmp_path / "model.gpkg", "--stretch", "model")
    assert len(default) == len(demo) == len(eight) == len(black) == 36

    def agreement(a: list[str], b: list[str]) -> float:
        return float(np.mean([x == y for x, y in zip(a, b, strict=True)]))

    assert agreement(default, demo) >= 0.9  # 36 of 36
    assert agreement(default, eight) >= 0.85  # 36 of 36: percentiles of a sample, not all
    assert agreement(black, demo) < 0.3  # the old default: every tile one class (Desert)
    assert max(black.count(name) for name in set(black)) >= 34
    # said in one line, recorded in both outputs
    assert "percentile stretch" in said and "values use 2% of the model's uint16 range" in said
    assert "the model's input_scale" in eight_said and "100% of the model's uint8" in eight_said
    record = json.loads(
        pyogrio.read_info(tmp_path / "default.gpkg", layer=0)["layer_metadata"][SCALING_METADATA]
    )
    assert record["method"] == "percentile"
    low, high = np.array(record["low"]), np.array(record["high"])
    assert np.all((low > 300) & (low < 1000)) and np.all((high > 1400) & (high < 1700))
    description = json.loads((tmp_path / "default.geojson").read_text())["description"]
    assert json.loads(description.removeprefix(f"{SCALING_METADATA}: ")) == record
