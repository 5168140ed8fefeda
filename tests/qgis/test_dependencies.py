"""Missing dependencies: the plugin still starts, says what to install for QGIS's Python, and
never crashes; without hnswlib the exact search is used."""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402

from tests.qgis.events import wait_for  # noqa: E402

pytestmark = pytest.mark.qgis

ROOT = Path(__file__).resolve().parents[2]
#: What docs/qgis.md and the plugin tell a Debian 12 user (QGIS 3.22 from apt) to run.
DEBIAN_COMMAND = "/usr/bin/python3 -m pip install --user --break-system-packages snca 'numpy<2'"


def test_the_python_of_qgis_is_found_on_each_platform() -> None:
    from snca_qgis.dependencies import qgis_python_executable

    assert qgis_python_executable("/usr/bin/python3", "/usr", "linux") == "/usr/bin/python3"
    osgeo4w = r"C:\OSGeo4W\apps\Python39"
    assert (
        qgis_python_executable(
            r"C:\OSGeo4W\bin\qgis-bin.exe",
            osgeo4w,
            "win32",
            exists=lambda path: path == osgeo4w + r"\python.exe",
        )
        == r"C:\OSGeo4W\apps\Python39\python.exe"
    )
    macos = "/Applications/QGIS.app/Contents/MacOS"
    assert (
        qgis_python_executable(
            f"{macos}/QGIS",
            "/Applications/QGIS.app/Contents/Frameworks",
            "darwin",
            qgis_prefix=macos,
            exists=lambda path: path == f"{macos}/bin/python3",
        )
        == f"{macos}/bin/python3"
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert qgis_python_executable("/usr/bin/qgis", "/usr", "linux", exists=lambda _: False) == (
        version
    )
    # an embedded Python on Linux reports the first python3 on the PATH: a shim is not QGIS's
    assert (
        qgis_python_executable(
            "/root/.pyenv/shims/python3",
            "/usr",
            "linux",
            exists=lambda path: path == f"/usr/bin/{version}",
        )
        == f"/usr/bin/{version}"
    )


def test_install_command_names_what_is_missing_and_keeps_numpy_1() -> None:
    from snca_qgis.dependencies import REQUIREMENTS, DependencyReport

    by_module = {r.module: r for r in REQUIREMENTS}
    report = DependencyReport(
        python="/opt/qgis python/bin/python3",
        missing=[by_module["snca_cli"], by_module["onnxruntime"]],
        missing_optional=[by_module["hnswlib"]],
        numpy_major=1,
    )
    assert not report.ok
    # snca declares onnxruntime, hnswlib, ...: the command names snca only
    assert report.install_command() == (
        "'/opt/qgis python/bin/python3' -m pip install snca 'numpy<2'"
    )
    assert report.message() == (
        "SNCA cannot run: snca_cli, onnxruntime missing from QGIS's Python. Install with: "
        "'/opt/qgis python/bin/python3' -m pip install snca 'numpy<2'"
        "  (then restart QGIS)"
    )
    broken_runtime = DependencyReport(
        python="python3", missing=[by_module["onnxruntime"]], numpy_major=2
    )
    assert broken_runtime.install_command() == "python3 -m pip install onnxruntime"
    optional_only = DependencyReport(python="python3", missing_optional=[by_module["hnswlib"]])
    assert optional_only.ok
    assert optional_only.install_command() == "python3 -m pip install hnswlib"
    debian = DependencyReport(
        python="/usr/bin/python3",
        missing=[by_module["snca_cli"]],
        numpy_major=1,
        externally_managed=True,
    )
    assert debian.install_command() == DEBIAN_COMMAND
    assert DEBIAN_COMMAND in (ROOT / "docs" / "qgis.md").read_text()


def test_the_full_command_is_the_one_this_environment_was_built_with() -> None:
    """scripts/setup.sh builds .venv-qgis with `python -m snca_qgis.dependencies` (the checkout
    for snca): for QGIS 3.22's numpy 1 that is `pip install snca 'numpy<2'`."""
    import numpy

    from snca_qgis.dependencies import full_install_command

    pin = " 'numpy<2'" if numpy.__version__.startswith("1.") else ""
    assert full_install_command() == f"{sys.executable} -m pip install snca{pin}"


def test_windows_arguments_are_quoted_for_cmd() -> None:
    from snca_qgis.dependencies import quote

    assert quote(r"C:\Program Files\QGIS 3.22\apps\Python39\python.exe", "win32") == (
        r'"C:\Program Files\QGIS 3.22\apps\Python39\python.exe"'
    )
    assert quote("numpy<2", "win32") == '"numpy<2"'
    assert quote("snca", "win32") == "snca"


@pytest.mark.parametrize("missing", ["onnxruntime", "snca_cli"])
def test_plugin_starts_without_a_required_module_and_says_how_to_install_it(
    iface, monkeypatch, missing
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` now raises ImportError
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    try:
        report = plugin.dependencies
        assert [r.module for r in report.missing] == [missing]
        command = f"{report.python} -m pip install {'snca' if missing == 'snca_cli' else missing}"
        assert command in plugin.dock.message_label.text()
        assert plugin.dock.message_label.isVisibleTo(plugin.dock)
        (item,) = iface.bar.items()
        assert item.level() == Qgis.Critical
        assert f"{missing} missing from QGIS's Python" in html.unescape(item.text())
        assert plugin.controller is None and plugin.provider is None
        assert QgsApplication.processingRegistry().providerById("snca") is None
        assert not plugin.dock.classify_button.isEnabled()
        assert not plugin.dock.find_button.isEnabled()
    finally:
        plugin.unload()
    assert iface.toolbar.actions() == []


def test_without_hnswlib_the_index_is_exact_and_search_still_works(
    iface, monkeypatch, colour_raster, band_mean_model
) -> None:
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    try:
        (item,) = iface.bar.items()
        assert item.level() == Qgis.Info
        assert "exact (slower) search" in item.text()
        assert plugin.controller is not None

        layer = QgsRasterLayer(str(colour_raster), "colours")
        QgsProject.instance().addMapLayer(layer)
        plugin.dock.layer_combo.setLayer(layer)
        plugin.dock.model_file.setFilePath(str(band_mean_model))
        task = plugin.controller.build_index()
        wait_for(lambda: plugin.controller.task is None)
        assert task.error is None
        index_dir = colour_raster.with_name("colours_snca_index")
        assert json.loads((index_dir / "manifest.json").read_text())["index"]["library"] == "exact"
        assert not (index_dir / "index.hnsw").exists()

        result = plugin.controller.find_similar_at(layer.extent().center(), layer.crs())
        assert result.backend == "exact"
        assert plugin.controller.similar_layer().featureCount() == 10
    finally:
        plugin.unload()


def test_a_python_older_than_snca_supports_is_named(monkeypatch) -> None:
    from snca_qgis.dependencies import check_dependencies

    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    monkeypatch.setattr(sys, "version", "3.9.18 (main) [MSC v.1929 64 bit (AMD64)]")
    report = check_dependencies()
    assert not report.ok
    assert report.message() == (
        "SNCA needs Python 3.10 or newer; this QGIS runs Python 3.9.18. "
        "Use a QGIS release that ships Python 3.10+."
    )


def test_the_smoke_run_passes_on_a_working_runtime() -> None:
    from snca_qgis.dependencies import check_dependencies, smoke_test

    assert smoke_test() is None
    report = check_dependencies()
    assert report.ok and report.smoke_error is None


def test_a_runtime_that_imports_but_breaks_is_reported_with_a_repair_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from snca_cli.runtime import default_model
    from snca_qgis.dependencies import check_dependencies

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    monkeypatch.setattr(default_model, "default_model_path", lambda: broken)
    report = check_dependencies()
    assert not report.missing
    assert report.smoke_error is not None and report.smoke_error.startswith("SncaError: ")
    assert not report.ok
    assert "fails a test run (SncaError: " in report.message()
    command = report.install_command()
    assert " -m pip install --upgrade " in command and " snca" in command
