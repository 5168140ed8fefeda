"""Missing dependencies: the plugin still starts, offers to install its runtime, lists its
Processing algorithms (which say how to install it) and never crashes; without hnswlib the
exact search is used, without a word."""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    Qgis,
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)

from tests.qgis.events import wait_for  # noqa: E402

pytestmark = pytest.mark.qgis

#: What each Processing algorithm answers without the runtime.
NOT_INSTALLED = (
    "SNCA's runtime is not installed: open the SNCA dock and press Install runtime (or run "
    "python3 -m snca_qgis.dependencies in the plugins folder)"
)
ALGORITHMS = {
    "snca:classifyraster": "Classify raster",
    "snca:buildindex": "Build index",
    "snca:searchsimilar": "Search similar tiles",
    "snca:adaptmodel": "Adapt model to a labelled layer",
}


def without_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the runtime were not installed: snca_cli and each of its modules fail to import,
    and the plugin's modules are imported afresh (none loaded with the runtime is reused)."""
    for name in ["snca_cli", *sys.modules]:
        if name.split(".")[0] == "snca_cli":
            monkeypatch.setitem(sys.modules, name, None)
        elif name.split(".")[0] == "snca_qgis":
            monkeypatch.delitem(sys.modules, name)


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


@pytest.mark.parametrize("missing", ["onnxruntime", "snca_cli"])
def test_plugin_starts_without_a_required_module_and_offers_to_install_it(
    iface, monkeypatch, missing
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` now raises ImportError
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    try:
        report = plugin.dependencies
        assert report.missing == [missing] and report.installable
        dock = plugin.dock
        assert f"(missing: {missing}). Press Install runtime" in dock.message_label.text()
        assert dock.message_label.isVisibleTo(dock)
        assert dock.install_button.isVisibleTo(dock)
        assert dock.install_button.text() == "Install runtime"
        assert not dock.install_log.isVisibleTo(dock)
        (item,) = iface.bar.items()
        assert item.level() == Qgis.Critical
        assert html.unescape(item.text()).endswith(
            f"SNCA's runtime is not installed in QGIS's Python (missing: {missing})."
        )
        assert plugin.controller is None
        assert QgsApplication.processingRegistry().providerById("snca") is plugin.provider
        assert plugin.provider.unavailable.startswith("SNCA's runtime is not installed: ")
        assert not dock.classify_button.isEnabled()
        assert not dock.find_button.isEnabled()
    finally:
        plugin.unload()
    assert iface.toolbar.actions() == []


def test_without_the_runtime_the_algorithms_are_listed_and_say_how_to_install_it(
    iface, monkeypatch, colour_raster: Path, tmp_path: Path
) -> None:
    import processing

    without_the_runtime(monkeypatch)
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    try:
        registry = QgsApplication.processingRegistry()
        assert registry.providerById("snca") is plugin.provider
        algorithms = plugin.provider.algorithms()
        assert {a.id(): a.displayName() for a in algorithms} == ALGORITHMS
        for algorithm in algorithms:
            assert algorithm.parameterDefinitions()  # the dialog's fields, without snca_cli
            assert algorithm.create().canExecute() == (False, NOT_INSTALLED)  # the dialog's
        output = tmp_path / "tiles.gpkg"
        parameters = {"INPUT": str(colour_raster), "OUTPUT": str(output)}
        with pytest.raises(QgsProcessingException) as raised:  # as qgis_process, batch mode
            processing.run("snca:classifyraster", parameters, feedback=QgsProcessingFeedback())
        assert str(raised.value).splitlines()[-1] == NOT_INSTALLED
        # a script running the algorithm itself skips checkParameterValues: the same line
        algorithm = registry.createAlgorithmById("snca:classifyraster")
        with pytest.raises(QgsProcessingException, match="^SNCA's runtime is not installed: "):
            algorithm.processAlgorithm(parameters, QgsProcessingContext(), QgsProcessingFeedback())
        assert not output.exists()
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("snca") is None


def test_once_the_runtime_is_installed_the_algorithms_run(iface, monkeypatch) -> None:
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    plugin.initGui()
    try:
        algorithm = plugin.provider.algorithm("classifyraster")
        assert algorithm.create().canExecute() == (False, plugin.provider.unavailable)
        monkeypatch.undo()  # the Install runtime button's task has installed it
        plugin._installed(SimpleNamespace(error=None, result=None))
        assert plugin.controller is not None
        assert QgsApplication.processingRegistry().providerById("snca") is plugin.provider
        algorithm = plugin.provider.algorithm("classifyraster")
        assert algorithm.create().canExecute() == (True, "")
    finally:
        plugin.unload()


def test_without_hnswlib_the_index_is_exact_and_search_still_works(
    iface, monkeypatch, colour_raster, band_mean_model
) -> None:
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    import snca_qgis

    plugin = snca_qgis.classFactory(iface)
    plugin.initGui()
    try:
        assert iface.bar.items() == []  # the exact search needs no message
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
    assert report.processing_line() == report.message()  # no install helps


def test_the_smoke_run_passes_on_a_working_runtime() -> None:
    from snca_qgis.dependencies import check_dependencies, smoke_test

    assert smoke_test() is None
    report = check_dependencies()
    assert report.ok and report.smoke_error is None


def test_a_runtime_that_imports_but_breaks_is_reported_with_a_repair_button(
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
    assert report.message().endswith("Press Repair runtime in the SNCA dock to install it again.")
    assert report.processing_line().startswith("SNCA's runtime fails a test run (SncaError: ")
    assert report.processing_line().endswith(
        "open the SNCA dock and press Repair runtime (or run python3 -m snca_qgis.dependencies "
        "in the plugins folder)"
    )
    assert report.installable
