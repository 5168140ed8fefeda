"""``scripts/release.py``: every release artifact from one command, as users download them.

The sdist and wheel pass ``twine check``; the plugin zip carries that very wheel and snca's
version; ``plugins.xml`` lists the zip for QGIS's Plugin Manager; ``SHA256SUMS`` matches. The
upload to plugins.qgis.org is refused while the plugin's email and links are unset, and with
test values the zip passes the repository's checks and ``qgis-plugin-ci package``.
"""

from __future__ import annotations

import configparser
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

import snca_cli

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "scripts" / "release.py"
#: Stand-ins for the plugin's publishing metadata (the project has no true values yet).
TEST_METADATA = {
    "email": "maintainers@example.org",
    "tracker": "https://example.org/snca/issues",
    "repository": "https://example.org/snca",
    "homepage": "https://example.org/snca/docs",
}
BASE_URL = "https://example.org/snca/releases/0.1.0/"

pytestmark = pytest.mark.slow  # builds the sdist and the wheel in isolated environments


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifacts of a plugins.qgis.org release made with the test metadata."""
    output = tmp_path_factory.mktemp("dist")
    options = [f"--{key}={value}" for key, value in TEST_METADATA.items()]
    done = subprocess.run(
        [sys.executable, str(RELEASE), "--output", str(output), "--base-url", BASE_URL,
         "--for-plugins-qgis-org", *options],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PASSED" in done.stdout  # twine check, for the sdist and the wheel
    return output


def test_one_command_writes_every_artifact_with_one_version(release: Path) -> None:
    version = snca_cli.__version__
    wheel = release / f"snca-{version}-py3-none-any.whl"
    archive = release / f"snca_qgis-{version}.zip"
    assert sorted(p.name for p in release.iterdir()) == sorted(
        ["SHA256SUMS", "plugins.xml", f"snca-{version}.tar.gz", wheel.name, archive.name]
    )
    with zipfile.ZipFile(archive) as bundle:
        inside = bundle.read(f"snca_qgis/wheels/{wheel.name}")
        metadata = bundle.read("snca_qgis/metadata.txt").decode()
        assert "MIT License" in bundle.read("snca_qgis/LICENSE").decode()
    assert inside == wheel.read_bytes()  # the very wheel of the release
    general = configparser.ConfigParser(interpolation=None)
    general.read_string(metadata)
    assert general["general"]["version"] == version
    for key, value in TEST_METADATA.items():
        assert general["general"][key] == value
    with zipfile.ZipFile(wheel) as bundle:
        names = bundle.namelist()
    assert f"snca-{version}.dist-info/METADATA" in names
    assert "snca_cli/models/snca-aid150-lite0.onnx" in names
    assert not [n for n in names if n.startswith(("tests/", "train/", "export/"))]

    sums = dict(
        reversed(line.split("  ")) for line in (release / "SHA256SUMS").read_text().splitlines()
    )
    assert set(sums) == {p.name for p in release.iterdir()} - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((release / name).read_bytes()).hexdigest() == digest


def test_plugins_xml_lists_the_zip_for_the_plugin_manager(release: Path) -> None:
    root = ElementTree.parse(release / "plugins.xml").getroot()
    (plugin,) = root.findall("pyqgis_plugin")
    version = snca_cli.__version__
    assert plugin.get("name") == "SNCA Scene Search" and plugin.get("version") == version
    assert plugin.findtext("file_name") == f"snca_qgis-{version}.zip"
    assert plugin.findtext("download_url") == f"{BASE_URL}snca_qgis-{version}.zip"
    assert plugin.findtext("qgis_minimum_version") == "3.22"
    assert plugin.findtext("repository") == TEST_METADATA["repository"]


def test_the_upload_is_refused_until_the_publishing_metadata_is_set(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(RELEASE), "--output", str(tmp_path / "dist"),
         "--for-plugins-qgis-org", "--email", TEST_METADATA["email"]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: plugins.qgis.org needs the plugin's tracker, repository, homepage: set them in "
        "[tool.snca.plugin] of pyproject.toml or pass --tracker --repository --homepage"
    ]
    assert not (tmp_path / "dist").exists()  # refused before building anything


def test_qgis_plugin_ci_packages_the_zip(release: Path, tmp_path: Path) -> None:
    """``qgis-plugin-ci package`` on the zip's content, as a repository of its own."""
    repository = tmp_path / "plugin-repo"
    with zipfile.ZipFile(next(release.glob("snca_qgis-*.zip"))) as bundle:
        bundle.extractall(repository)
    shutil.copy(repository / "snca_qgis" / "LICENSE", repository / "LICENSE")
    (repository / ".qgis-plugin-ci").write_text(
        "plugin_path: snca_qgis\ngithub_organization_slug: example\nproject_slug: snca\n"
    )
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", "init", "-q"], cwd=repository, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repository, check=True)
    subprocess.run([*git, "commit", "-qm", "release"], cwd=repository, check=True)
    tool = Path(sys.executable).with_name("qgis-plugin-ci")
    done = subprocess.run(
        [str(tool), "package", snca_cli.__version__],
        cwd=repository, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    packaged = repository / f"snca_qgis.{snca_cli.__version__}.zip"
    with zipfile.ZipFile(packaged) as bundle:
        names = bundle.namelist()
    assert "snca_qgis/LICENSE" in names and "snca_qgis/metadata.txt" in names


def test_the_repository_checks_name_what_a_bad_zip_lacks(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from build_plugin_zip import check_zip
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as bundle:
        bundle.writestr("snca_qgis/metadata.txt", "[general]\nname=x\nversion=0.1-dev\n"
                        "tracker=not a link\nauthor=a/b\n")  # fmt: skip
        bundle.writestr("snca_qgis/__pycache__/plugin.cpython-311.pyc", b"")
        bundle.writestr("other/x.py", "")
    problems = check_zip(bad)
    assert "the zip must hold one folder snca_qgis/, not ['other', 'snca_qgis']" in problems
    assert "cache or repository folder in snca_qgis/__pycache__/plugin.cpython-311.pyc" in problems
    assert "compiled file snca_qgis/__pycache__/plugin.cpython-311.pyc" in problems
    assert "no LICENSE file in the plugin folder" in problems
    assert (
        "metadata.txt lacks description, qgisMinimumVersion, email, about, repository" in problems
    )
    assert "metadata.txt tracker is not a valid link: 'not a link'" in problems
    assert "the author name contains '/'" in problems
    assert "version '0.1-dev' is not like 1.2.3" in problems
