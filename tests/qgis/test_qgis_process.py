"""The Processing algorithms from the command line: `qgis_process run snca:...` on the real
Landsat raster, with the plugin installed from its zip into a fresh profile and enabled there.

Debian 12's ``/usr/bin/qgis_process`` wrapper passes ``QGIS_OPTS='--noversioncheck'`` from
``/etc/default/qgis``, which ``qgis_process`` rejects ("Command --noversioncheck not known!"),
so the test runs ``qgis_process.bin`` as docs/qgis.md tells users to. The snca runtime comes
from the environment these tests run in (built as users build it), put before the system's
packages on ``PYTHONPATH`` as a ``--user`` install is; without it (and without user
packages) QGIS's Python has no runtime, as on a fresh install: the system's Python has no
onnxruntime (Debian packages none).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

import pyogrio  # noqa: E402

pytestmark = [pytest.mark.qgis, pytest.mark.shared_data, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "snca_cli" / "models" / "snca-aid150-lite0.onnx"
NOT_INSTALLED = (
    "SNCA's runtime is not installed: open the SNCA dock and press Install runtime (or run "
    "python3 -m snca_qgis.dependencies in the plugins folder)"
)


def qgis_process_binary() -> str:
    """``qgis_process.bin`` (Debian) or ``qgis_process``; a missing one fails under CI."""
    for name in ("qgis_process.bin", "qgis_process"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("SNCA_REQUIRE_QGIS") == "1":
        pytest.fail("qgis_process is missing: apt-get install qgis")
    pytest.skip("needs qgis_process (Debian: apt-get install qgis)")


@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory: pytest.TempPathFactory):
    """Run ``qgis_process ARGS...`` in a fresh profile holding the plugin from its zip; with
    ``runtime=False`` without the snca runtime on the path."""
    binary = qgis_process_binary()
    root = tmp_path_factory.mktemp("qgis_process")
    built = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_plugin_zip.py"), "--output", str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    config = root / "config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(built.stdout.strip()) as bundle:
        bundle.extractall(plugins)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "QGIS_CUSTOM_CONFIG_PATH": str(config),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
    }
    bare = {key: value for key, value in env.items() if key != "PYTHONPATH"}
    bare["PYTHONNOUSERSITE"] = "1"

    def run(*args: str, runtime: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary, *args],
            capture_output=True,
            text=True,
            env=env if runtime else bare,
            timeout=300,
            cwd=root,
        )

    enabled = run("plugins", "enable", "snca_qgis")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return run


def run_json(qgis_process, algorithm: str, **parameters: str) -> dict:
    """``qgis_process --json run ALGORITHM -- KEY=VALUE...``: its JSON (``results``, ``log``)."""
    args = [f"{key}={value}" for key, value in parameters.items()]
    done = qgis_process("--json", "run", algorithm, "--", *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_algorithms_are_listed(qgis_process) -> None:
    listed = qgis_process("list")
    assert listed.returncode == 0, listed.stderr
    algorithms = ("snca:classifyraster", "snca:buildindex", "snca:searchsimilar", "snca:adaptmodel")
    for algorithm in algorithms:
        assert algorithm in listed.stdout


def test_classify_index_and_search_from_the_command_line(
    qgis_process, landsat_rgb: Path, tmp_path: Path
) -> None:
    tiles = tmp_path / "tiles.gpkg"
    classified = run_json(
        qgis_process, "snca:classifyraster", INPUT=str(landsat_rgb), OUTPUT=str(tiles)
    )
    # no MODEL: the shipped model (QGIS 3.22's qgis_process ignores a file parameter's default)
    assert classified["log"]["info"][0] == f"model {MODEL.name} on onnxruntime CPU"
    # 791 x 718 px in 150 px tiles: 6 x 5 = 30, of which 11 are mostly no-data and skipped
    assert classified["results"]["TILES"] == 19
    assert pyogrio.read_info(tiles, layer=0)["features"] == 19
    # 300 m pixels: the task's warning reaches the Processing log
    (warning,) = classified["log"]["warning"]
    assert warning.startswith("warning: RGB.byte.tif: the raster's 300 m/px is far coarser")
    index = tmp_path / "index"
    built = run_json(
        qgis_process, "snca:buildindex", INPUT=str(landsat_rgb), MODEL=str(MODEL),
        INDEX=str(index),
    )["results"]  # fmt: skip
    assert built["COUNT"] == 19
    assert (index / "manifest.json").is_file()
    similar = tmp_path / "similar.gpkg"
    # the centre of the raster, in its own CRS (EPSG:32618)
    found = run_json(
        qgis_process, "snca:searchsimilar", INDEX=str(index),
        POINT="220650,2719200 [EPSG:32618]", K="5", OUTPUT=str(similar),
    )["results"]  # fmt: skip
    assert Path(found["OUTPUT"]) == similar
    assert pyogrio.read_info(similar, layer=0)["features"] == 5


def test_without_the_runtime_each_algorithm_says_how_to_install_it(
    qgis_process, landsat_rgb: Path, tmp_path: Path
) -> None:
    listed = qgis_process("list", runtime=False)
    assert "snca:classifyraster" in listed.stdout
    tiles = tmp_path / "tiles.gpkg"
    done = qgis_process(
        "run", "snca:classifyraster", "--", f"INPUT={landsat_rgb}", f"OUTPUT={tiles}",
        runtime=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "not found" not in done.stdout + done.stderr
    assert f"\t{NOT_INSTALLED}\n" in done.stderr
    assert not tiles.exists()
