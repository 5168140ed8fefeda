"""Which Python packages the plugin needs in QGIS's own Python, and the exact pip command.

The plugin never installs anything itself: when a package is missing it shows one message with
the command to run, for the Python interpreter QGIS really uses (inside QGIS ``sys.executable``
is the QGIS program, not Python: ``/usr/bin/qgis`` on Linux). When every package imports, a smoke
run (:func:`smoke_test`: a tiny in-memory GeoTIFF read with rasterio, the shipped model run on
one tile) catches a runtime that imports but breaks at the first click.
"""

from __future__ import annotations

import importlib
import ntpath
import os
import posixpath
import shlex
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field

#: The oldest Python the snca package supports.
MINIMUM_PYTHON = (3, 10)


@dataclass(frozen=True)
class Requirement:
    """A module the plugin imports and the pip requirement that provides it."""

    module: str
    pip_name: str
    required: bool = True


#: The pip name of the snca package: it declares everything else the plugin needs.
SNCA_PACKAGE = "snca"

REQUIREMENTS = (
    Requirement("snca_cli", SNCA_PACKAGE),
    Requirement("numpy", "numpy"),
    Requirement("onnxruntime", "onnxruntime"),
    Requirement("rasterio", "rasterio"),
    Requirement("pyogrio", "pyogrio"),
    # optional: without it indexes are searched exactly (slower on large indexes)
    Requirement("hnswlib", "hnswlib", required=False),
)


@dataclass
class DependencyReport:
    """The outcome of :func:`check_dependencies`."""

    python: str
    missing: list[Requirement] = field(default_factory=list)
    missing_optional: list[Requirement] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    python_too_old: bool = False
    numpy_major: int | None = None
    externally_managed: bool = False
    #: Why the smoke run failed (one line), None when it passed or was not run.
    smoke_error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every required package imports and the smoke run passed (the optional
        packages may be missing)."""
        return not self.missing and not self.python_too_old and self.smoke_error is None

    def install_command(self, include_optional: bool = True) -> str:
        """The pip command for QGIS's Python that installs what is missing, or "" if nothing is.

        When ``snca`` itself is missing the command is :func:`full_install_command` (``snca``
        declares everything else the plugin needs); otherwise it names the missing packages.
        """
        if self.smoke_error is not None and not self.missing:
            return pip_command(
                self.python,
                [SNCA_PACKAGE],
                self.numpy_major,
                self.externally_managed,
                upgrade=True,
            )
        wanted = list(self.missing) + (list(self.missing_optional) if include_optional else [])
        if not wanted:
            return ""
        names = list(dict.fromkeys(req.pip_name for req in wanted))
        if SNCA_PACKAGE in names:
            names = [SNCA_PACKAGE]
        return pip_command(self.python, names, self.numpy_major, self.externally_managed)

    def message(self) -> str:
        """One clear message for the message bar and the dock, or "" when all is there."""
        if self.python_too_old:
            version = ".".join(map(str, MINIMUM_PYTHON))
            return (
                f"SNCA needs Python {version} or newer; this QGIS runs Python "
                f"{sys.version.split()[0]}. Use a QGIS release that ships Python {version}+."
            )
        if self.missing:
            names = ", ".join(req.module for req in self.missing)
            return (
                f"SNCA cannot run: {names} missing from QGIS's Python. Install with: "
                f"{self.install_command()}  (then restart QGIS)"
            )
        if self.smoke_error is not None:
            return (
                f"SNCA cannot run: its runtime in QGIS's Python fails a test run "
                f"({self.smoke_error}). Repair it with: {self.install_command()}  (then restart "
                "QGIS)"
            )
        if self.missing_optional:
            return (
                "hnswlib is not installed: similarity search uses the exact (slower) search. "
                f"Install it with: {self.install_command()}"
            )
        return ""


def pip_command(
    python: str,
    names: list[str],
    numpy_major: int | None,
    externally_managed: bool,
    upgrade: bool = False,
) -> str:
    """``python -m pip install [flags] NAMES...``, quoted for the user's shell.

    QGIS's compiled modules are built against the numpy QGIS runs: when that is numpy 1 the
    command pins ``numpy<2`` so that pip does not upgrade it underneath QGIS (with numpy 2, as
    in current QGIS builds, nothing is pinned). A distribution's Python marked externally
    managed (PEP 668, e.g. Debian 12) gets a ``--user`` install, which pip only allows there with
    ``--break-system-packages``; it leaves the system's own packages untouched. ``upgrade``
    adds ``--upgrade`` (a broken runtime: brings its dependencies to the versions it declares).
    """
    names = list(names)
    if numpy_major is not None and numpy_major < 2 and "numpy" not in names:
        names.append("numpy<2")
    flags = ["--upgrade"] if upgrade else []
    flags += ["--user", "--break-system-packages"] if externally_managed else []
    return " ".join([quote(python), "-m", "pip", "install", *flags, *map(quote, names)])


def full_install_command() -> str:
    """The command that installs everything the plugin needs into the Python running this code
    (QGIS's), whatever is installed already: the command docs/qgis.md gives."""
    return pip_command(
        qgis_python_executable(qgis_prefix=_qgis_prefix()),
        [SNCA_PACKAGE],
        _numpy_major(),
        is_externally_managed(),
    )


def _numpy_major() -> int | None:
    """The major version of the numpy this Python imports, or None without one."""
    try:
        import numpy
    except Exception:  # a broken numpy is reported as missing by check_dependencies
        return None
    try:
        return int(str(numpy.__version__).split(".")[0])
    except (AttributeError, ValueError):
        return None


def quote(argument: str, platform: str = sys.platform) -> str:
    """Quote one command-line argument for the user's shell (cmd.exe on Windows)."""
    if platform.startswith("win"):
        needs = any(c in argument for c in ' <>|&^"') or not argument
        return f'"{argument}"' if needs else argument
    return shlex.quote(argument)


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


def is_externally_managed() -> bool:
    """Whether pip refuses to install into this Python (PEP 668): a distribution's Python,
    outside any virtual environment, whose standard library holds ``EXTERNALLY-MANAGED``."""
    if sys.prefix != sys.base_prefix:
        return False
    return os.path.isfile(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))


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
    """Import every requirement (never installing anything) and report what is missing; when
    all required ones import and ``smoke`` is set, run :func:`smoke_test`."""
    report = DependencyReport(
        python=qgis_python_executable(qgis_prefix=_qgis_prefix()),
        externally_managed=is_externally_managed(),
    )
    report.python_too_old = sys.version_info[:2] < MINIMUM_PYTHON
    for requirement in REQUIREMENTS:
        error = _try_import(requirement.module)
        if error is None:
            continue
        report.errors[requirement.module] = error
        (report.missing if requirement.required else report.missing_optional).append(requirement)
    report.numpy_major = _numpy_major()
    if smoke and not report.missing and not report.python_too_old:
        report.smoke_error = smoke_test()
    return report


if __name__ == "__main__":  # python -m snca_qgis.dependencies: the full install command
    print(full_install_command())
