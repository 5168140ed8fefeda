"""The plugin zip installs like "Install from ZIP": one top-level plugin folder that QGIS loads."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

import snca_cli  # noqa: E402

pytestmark = pytest.mark.qgis

ROOT = Path(__file__).resolve().parents[2]

LOAD_FROM_PLUGINS_DIR = textwrap.dedent(
    """
    import sys
    plugins_dir, root = sys.argv[1], sys.argv[2]
    sys.path[:0] = [plugins_dir, root]
    from qgis.core import QgsApplication
    app = QgsApplication([], True)
    app.initQgis()
    import snca_qgis
    from tests.qgis.qgis_interface import HeadlessQgisInterface
    print("loaded from", snca_qgis.__file__)
    plugin = snca_qgis.classFactory(HeadlessQgisInterface())
    plugin.initGui()
    print("algorithms", sorted(a.id() for a in plugin.provider.algorithms()))
    print("dock", plugin.dock.windowTitle())
    plugin.unload()
    print("unloaded")
    """
)


def test_build_zip_and_load_the_plugin_from_it(tmp_path) -> None:
    built = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_plugin_zip.py"), "--output", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    archive = Path(built.stdout.strip())
    assert archive == tmp_path / f"snca_qgis-{snca_cli.__version__}.zip"
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        metadata = bundle.read("snca_qgis/metadata.txt").decode()
        bundle.extractall(tmp_path / "plugins")
    assert {name.split("/")[0] for name in names} == {"snca_qgis"}
    for required in ("__init__.py", "metadata.txt", "icon.png", "plugin.py", "provider.py"):
        assert f"snca_qgis/{required}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    parser = configparser.ConfigParser()
    parser.read_string(metadata)
    general = parser["general"]
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["version"] == snca_cli.__version__
    assert general["icon"] == "icon.png" and general["experimental"] == "True"
    for key in ("name", "description", "about", "author"):
        assert general[key].strip()

    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_FROM_PLUGINS_DIR, str(tmp_path / "plugins"), str(ROOT)],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    lines = loaded.stdout.splitlines()
    assert lines[0] == f"loaded from {tmp_path / 'plugins' / 'snca_qgis' / '__init__.py'}"
    assert lines[1:] == [
        "algorithms ['snca:adaptmodel', 'snca:buildindex', 'snca:classifyraster', "
        "'snca:searchsimilar']",
        "dock SNCA Scene Search",
        "unloaded",
    ]
