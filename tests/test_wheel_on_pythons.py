"""The user's path on every supported Python: install the wheel from binary wheels alone, then
``snca demo``.

The wheel is built once; for each of Python 3.10 to 3.13 a fresh venv installs it with
``pip install --only-binary=:all: WHEEL[demo]`` and no compiler (``CC`` and ``CXX`` are
``/bin/false``), so a dependency without a wheel for that Python fails the case instead of
quietly building from source. ``snca demo`` then runs offline on the scene shipped in the
package and must write all its outputs.

Interpreters are found as ``python3.X`` on PATH or under ``$(pyenv root)/versions/3.X*/``; a
missing one skips its case, unless ``SNCA_REQUIRE_PYTHONS=1`` (CI), which fails it. Needs the
package index (pip downloads the wheels); a minute or two per Python.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyogrio
import pytest

from snca_cli.tasks.demo import demo_outputs
from snca_cli.tasks.output_names import geojson_beside
from tests.helpers.wheel import build_wheel, clean_environment, create_venv, run_in

pytestmark = pytest.mark.slow

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def runs_as(candidate: str | Path, version: str) -> bool:
    """Whether ``candidate`` starts and is Python ``version`` (a pyenv shim of a Python that is
    not selected is on PATH but exits with an error)."""
    try:
        result = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def pyenv_root() -> Path | None:
    """``pyenv root``, or None without pyenv."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    result = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def find_python(version: str) -> Path | None:
    """An interpreter of Python ``version``: ``python3.X`` on PATH, else the newest pyenv
    install of it; None when there is none."""
    name = f"python{version}"
    candidates = [shutil.which(name)]
    root = pyenv_root()
    if root is not None:
        installs = sorted(root.glob(f"versions/{version}*/bin/{name}"), key=_version_key)
        candidates += reversed(installs)
    return next((Path(c) for c in candidates if c and runs_as(c, version)), None)


def _version_key(path: Path) -> tuple[int, ...]:
    """``.../versions/3.12.10/bin/python3.12`` -> (3, 12, 10); other names sort first."""
    parts = path.parents[1].name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (0,)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """snca's wheel, built once for every Python."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.mark.parametrize("version", PYTHONS)
def test_wheel_installs_from_binaries_and_runs_the_demo(
    version: str, wheel: Path, tmp_path: Path
) -> None:
    python = find_python(version)
    if python is None:
        message = f"no Python {version}: neither python{version} on PATH nor a pyenv install"
        if os.environ.get("SNCA_REQUIRE_PYTHONS") == "1":
            pytest.fail(message + " (SNCA_REQUIRE_PYTHONS=1)")
        pytest.skip(message)
    venv_python = create_venv(tmp_path / "venv", python)
    no_compiler = clean_environment(CC="/bin/false", CXX="/bin/false")
    install = run_in(
        [venv_python, "-m", "pip", "install", "--only-binary=:all:", f"{wheel}[demo]"],
        timeout=900,
        env=no_compiler,
    )
    assert "does not provide the extra" not in install.stdout + install.stderr
    out = tmp_path / "demo"
    demo = run_in([venv_python.parent / "snca", "demo", "--output", out], 600, cwd=tmp_path)
    assert "quick-look" in demo.stdout
    outputs = demo_outputs(out)  # of this checkout: the installed wheel must write the same
    for role, path in outputs.items():
        assert (path / "manifest.json" if role == "index" else path).is_file(), role
    assert geojson_beside(outputs["search"]).is_file()
    # the shipped 900 x 900 px scene in 150 px tiles: 6 x 6
    assert pyogrio.read_info(out / "tiles.gpkg", layer=0)["features"] == 36
    assert pyogrio.read_info(out / "similar.gpkg", layer="similar_tiles")["features"] == 10
    assert (out / "quicklook.png").stat().st_size > 10_000
