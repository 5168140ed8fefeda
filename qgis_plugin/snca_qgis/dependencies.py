"""Whether QGIS's own Python can run snca, and the command-line install of its runtime.

The plugin imports snca only after :func:`check_dependencies` found it. When it is missing, the
dock offers to install it (:mod:`snca_qgis.installer`: the snca wheel inside the plugin, its
dependencies from the package index, into a folder the plugin owns). Inside QGIS
``sys.executable`` is the QGIS program, not Python (``/usr/bin/qgis`` on Linux):
:func:`qgis_python_executable` finds the interpreter that pip must run with. When every package
imports, a smoke run (:func:`smoke_test`: a tiny in-memory GeoTIFF read with rasterio, the
shipped model run on one tile) catches a runtime that imports but breaks at the first click.

From a terminal (administrators; in the folder that holds ``snca_qgis``)::

    python3 -m snca_qgis.dependencies           # install (or repair) the runtime
    python3 -m snca_qgis.dependencies --check   # say whether it works
"""

from __future__ import annotations

import argparse
import importlib
import ntpath
import os
import posixpath
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from .installer import InstallError, activate, install_runtime, runtime_folder

#: The oldest Python the snca package supports.
MINIMUM_PYTHON = (3, 10)

#: Modules the plugin imports (``snca_cli`` is the snca package; it declares the others).
REQUIRED_MODULES = ("snca_cli", "numpy", "onnxruntime", "rasterio", "pyogrio")


@dataclass
class DependencyReport:
    """The outcome of :func:`check_dependencies`."""

    python: str
    missing: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    python_too_old: bool = False
    #: Why the smoke run failed (one line), None when it passed or was not run.
    smoke_error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every required module imports and the smoke run passed."""
        return not self.missing and not self.python_too_old and self.smoke_error is None

    @property
    def installable(self) -> bool:
        """Whether the dock's install button can help (not when Python itself is too old)."""
        return not self.ok and not self.python_too_old

    def message(self) -> str:
        """One clear message for the message bar and the dock, or "" when all is there."""
        if self.python_too_old:
            version = ".".join(map(str, MINIMUM_PYTHON))
            return (
                f"SNCA needs Python {version} or newer; this QGIS runs Python "
                f"{sys.version.split()[0]}. Use a QGIS release that ships Python {version}+."
            )
        if self.missing:
            return (
                "SNCA's runtime is not installed in QGIS's Python (missing: "
                f"{', '.join(self.missing)}). Press Install runtime in the SNCA dock: it "
                "downloads the packages QGIS lacks into the plugin's own folder and leaves "
                "QGIS's packages as they are."
            )
        if self.smoke_error is not None:
            return (
                f"SNCA's runtime fails a test run ({self.smoke_error}). Press Repair runtime in "
                "the SNCA dock to install it again."
            )
        return ""

    def processing_line(self) -> str:
        """One line for the Processing algorithms (dialog, ``qgis_process``) when the runtime
        does not work: how to install it, or, when Python is too old, :meth:`message`."""
        if self.python_too_old:
            return self.message()
        if self.missing:
            problem, button = "is not installed", "Install runtime"
        else:
            problem, button = f"fails a test run ({self.smoke_error})", "Repair runtime"
        return (
            f"SNCA's runtime {problem}: open the SNCA dock and press {button} (or run "
            "python3 -m snca_qgis.dependencies in the plugins folder)"
        )


def _looks_like_python(path: str, windows: bool) -> bool:
    name = (ntpath if windows else posixpath).basename(path)
    return name.lower().startswith("python")


def _inside(path: str, prefix: str) -> bool:
    """Whether ``path`` lies in the folder ``prefix`` (POSIX paths)."""
    prefix = posixpath.normpath(prefix)
    return posixpath.commonpath([posixpath.normpath(path), prefix]) == prefix


def qgis_python_executable(
    executable: str = sys.executable,
    exec_prefix: str = sys.exec_prefix,
    platform: str = sys.platform,
    qgis_prefix: str | None = None,
    exists: Callable[[str], bool] = os.path.isfile,
) -> str:
    """The Python interpreter that QGIS embeds.

    Inside QGIS ``sys.executable`` is the QGIS program (``/usr/bin/qgis`` on Linux,
    ``qgis-bin.exe`` on Windows, the QGIS app on macOS); the interpreter is the one of this
    Python's version in ``sys.exec_prefix`` (Linux: ``/usr/bin/python3.11``; OSGeo4W:
    ``apps/Python3x/python.exe``) or in the QGIS prefix (``QGIS.app/Contents/MacOS/bin/python3``),
    never whatever ``python3`` comes first on the PATH: an embedded Python on Linux sets
    ``sys.executable`` to the first ``python3`` on the PATH (a pyenv shim, say), so outside
    Windows it is only taken when it lies in ``exec_prefix``. Only when none exists:
    ``python3.X``.
    """
    windows = platform.startswith("win")
    if (
        executable
        and _looks_like_python(executable, windows)
        and (windows or _inside(executable, exec_prefix))
    ):
        return executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    roots = [exec_prefix] + ([qgis_prefix] if qgis_prefix else [])
    if windows:
        names = [("python.exe",), ("python3.exe",)]
    else:
        names = [("bin", f"python{version}"), ("bin", "python3"), ("bin", "python")]
    join = ntpath.join if windows else posixpath.join
    for root in roots:
        for name in names:
            candidate = join(root, *name)
            if exists(candidate):
                return candidate
    return "python" if windows else f"python{version}"


def _qgis_prefix() -> str | None:
    try:
        from qgis.core import QgsApplication
    except ImportError:
        return None
    return QgsApplication.prefixPath() or None


def _try_import(module: str) -> str | None:
    """Import ``module``; return None on success, else the one-line reason it failed."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken binary raises more than ImportError
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0] if text else ''}"
    return None


def smoke_test() -> str | None:
    """Run the runtime once for real: write a tiny GeoTIFF into a rasterio ``MemoryFile``, read
    one tile of it back (windowed, through its affine transform) and run the shipped model on
    it. None when that works, else the one-line reason (type and first line of the error)."""
    try:
        import numpy as np
        from rasterio.io import MemoryFile
        from rasterio.transform import from_origin
        from rasterio.windows import Window

        from snca_cli.runtime.default_model import default_model_path
        from snca_cli.runtime.onnx_model import OnnxModel

        model = OnnxModel(default_model_path(), threads=1)
        size, bands = model.metadata.tile_size, model.metadata.input_bands
        profile = {
            "driver": "GTiff", "width": size, "height": size, "count": bands,
            "dtype": "uint8", "crs": "EPSG:32633",
            "transform": from_origin(500000.0, 5000000.0, 2.0, 2.0),
        }  # fmt: skip
        with MemoryFile() as memory:
            with memory.open(**profile) as target:
                target.write(np.full((bands, size, size), 128, dtype=np.uint8))
            with memory.open() as source:
                source.xy(size // 2, size // 2)  # affine arithmetic (broken by an old attrs)
                pixels = source.read(window=Window(0, 0, size, size)).astype(np.float32) / 255.0
        outputs = model.run(pixels[None])
        if not np.isfinite(outputs.embedding).all():
            return "the model returned non-finite values"
    except Exception as exc:  # any failure means the runtime is broken: say which
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0] if text else ''}"
    return None


def check_dependencies(smoke: bool = True) -> DependencyReport:
    """Import every required module (after putting the plugin's runtime, if installed, on the
    path) and report what is missing; when all import and ``smoke`` is set, run
    :func:`smoke_test`."""
    activate()
    report = DependencyReport(python=qgis_python_executable(qgis_prefix=_qgis_prefix()))
    report.python_too_old = sys.version_info[:2] < MINIMUM_PYTHON
    for module in REQUIRED_MODULES:
        error = _try_import(module)
        if error is not None:
            report.errors[module] = error
            report.missing.append(module)
    if smoke and not report.missing and not report.python_too_old:
        report.smoke_error = smoke_test()
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m snca_qgis.dependencies``: install the runtime (pip's log, then one line),
    or with ``--check`` say whether it works; the exit code is 0 when it does."""
    parser = argparse.ArgumentParser(
        prog="python -m snca_qgis.dependencies",
        description="Install snca's runtime for this Python into the plugin's own folder.",
    )
    parser.add_argument("--check", action="store_true", help="only say whether it works")
    args = parser.parse_args(argv)
    if not args.check:
        try:
            result = install_runtime(sys.executable)
        except InstallError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(
            f"installed {len(result.installed)} packages into {result.folder} in "
            f"{result.seconds:.0f} s (kept {len(result.kept)} of this Python's own)"
        )
    report = check_dependencies()
    if not report.ok:
        print(f"error: {report.message()}", file=sys.stderr)
        return 1
    print(f"snca's runtime works in {report.python} ({runtime_folder()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
