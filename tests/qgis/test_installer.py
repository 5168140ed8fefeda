"""The plugin's runtime installer (snca_qgis.installer) with QGIS's Python's real pip, offline:
tiny wheels made here stand in for snca and a dependency, served from a local folder.

What QGIS's Python already has is kept and never installed again; a requirement that would need
another version of one of QGIS's packages is refused; no network, no pip and a cancel each end
in one line with nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest

pytest.importorskip("qgis.core")  # QGIS's own Python, where the installer runs

pytestmark = pytest.mark.qgis


def make_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A pure-Python wheel ``name`` with one module of the same name and ``requires``."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    metadata = "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
        name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)
    )
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: "
        "py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only the wheels in the returned folder: no configuration files, no index."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


def test_what_qgis_has_is_kept_and_the_rest_installed_into_the_plugin_folder(
    local_index: Path, tmp_path: Path
) -> None:
    from snca_qgis.installer import RECORD_NAME, activate, install_runtime

    make_wheel(local_index, "tinydep", "1.2", [])
    wheel = make_wheel(tmp_path / "plugin", "snca", "9.0.1", ["tinydep>=1", "numpy>=1.20"])
    folder = tmp_path / "runtime" / "py3.x"
    lines: list[str] = []
    result = install_runtime(sys.executable, wheel, folder, log=lines.append)
    try:
        assert result.folder == folder
        assert result.installed == ["snca==9.0.1", "tinydep==1.2"]
        assert result.kept == [f"numpy=={numpy.__version__}"]  # QGIS's own, not installed
        assert sorted(p.name for p in folder.iterdir() if p.suffix == ".py") == [
            "snca.py", "tinydep.py"
        ]  # fmt: skip
        assert not (folder / "numpy").exists()
        record = json.loads((folder / RECORD_NAME).read_text())
        assert record["installed"] == result.installed and record["kept"] == result.kept
        assert any(line.startswith("$ ") and "--dry-run" in line for line in lines)
        # at the end of sys.path: whatever QGIS has comes first
        assert activate(folder) and sys.path[-1] == str(folder)
        assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging
    finally:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))


def test_a_requirement_against_qgis_own_packages_is_refused(
    local_index: Path, tmp_path: Path
) -> None:
    from snca_qgis.installer import InstallError, install_runtime

    wheel = make_wheel(tmp_path / "plugin", "snca", "9.0.1", ["numpy>=99"])
    folder = tmp_path / "runtime" / "py3.x"
    with pytest.raises(InstallError) as error:
        install_runtime(sys.executable, wheel, folder, log=lambda _line: None)
    message = str(error.value)
    assert message.startswith("snca's dependencies conflict with the packages of QGIS's own")
    assert "numpy>=99" in message and "QGIS's packages are unchanged" in message
    assert "\n" not in message
    assert not folder.parent.exists() or not any(folder.parent.iterdir())


def test_without_network_one_line_says_so(tmp_path: Path, monkeypatch) -> None:
    from snca_qgis.installer import InstallError, install_runtime

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    wheel = make_wheel(tmp_path / "plugin", "snca", "9.0.1", ["tinydep-not-here>=1"])
    folder = tmp_path / "runtime" / "py3.x"
    with pytest.raises(InstallError) as error:
        install_runtime(sys.executable, wheel, folder, log=lambda _line: None)
    assert str(error.value) == (
        "no network: pip could not reach the package index; connect this computer and press "
        "Install again"
    )
    assert not folder.exists()


def test_no_pip_and_no_wheel_are_named(tmp_path: Path) -> None:
    from snca_qgis.installer import InstallError, install_runtime

    wheel = make_wheel(tmp_path / "plugin", "snca", "9.0.1", [])
    with pytest.raises(InstallError, match=r"^QGIS's Python \(/bin/false\) has no pip"):
        install_runtime("/bin/false", wheel, tmp_path / "runtime" / "py", log=lambda _: None)
    with pytest.raises(InstallError, match="carries no snca wheel"):
        install_runtime(sys.executable, tmp_path / "none.whl", tmp_path / "r", log=lambda _: None)


def test_a_cancel_leaves_nothing(local_index: Path, tmp_path: Path) -> None:
    from snca_qgis.installer import InstallError, install_runtime

    wheel = make_wheel(tmp_path / "plugin", "snca", "9.0.1", [])
    folder = tmp_path / "runtime" / "py3.x"
    with pytest.raises(InstallError, match="^cancelled: nothing was installed$"):
        install_runtime(sys.executable, wheel, folder, log=lambda _: None, cancelled=lambda: True)
    assert not folder.exists()


def test_constraints_keep_qgis_versions_and_old_attrs_rules_out_affine_3() -> None:
    from snca_qgis.installer import constraints_for

    debian = {"numpy": "1.24.2", "attrs": "22.2.0", "kiwisolver": "0.0.0", "lz4": "4.0.2+dfsg"}
    assert constraints_for(debian) == [
        "attrs==22.2.0", "lz4==4.0.2+dfsg", "numpy==1.24.2", "affine<3"
    ]  # fmt: skip
    assert constraints_for({"attrs": "25.3.0"}) == ["attrs==25.3.0"]


def test_the_command_line_route_says_what_is_missing() -> None:
    """``python -m snca_qgis.dependencies`` from a checkout: no wheel inside, one line, exit 1;
    ``--check`` on this working runtime: exit 0."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "qgis_plugin"))
    install = subprocess.run(
        [sys.executable, "-m", "snca_qgis.dependencies"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert install.returncode == 1
    assert install.stderr.strip().splitlines() == [
        "error: this copy of the plugin carries no snca wheel: install the plugin from a "
        "release zip (docs/install.md)"
    ]
    check = subprocess.run(
        [sys.executable, "-m", "snca_qgis.dependencies", "--check"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("snca's runtime works in ")
