"""Build every release artifact with one command.

    python scripts/release.py [--output dist/] [--base-url URL]
                              [--for-plugins-qgis-org] [--email E --tracker URL ...]

Writes into ``--output``:

- ``snca-X.tar.gz`` and ``snca-X-py3-none-any.whl`` (``python -m build``: the wheel is built from
  the sdist, so nothing stale from a checkout gets in), checked with ``twine check``;
- ``snca_qgis-X.zip``: the QGIS plugin with the wheel inside (``snca_qgis/wheels/``), which its
  Install runtime button installs;
- ``plugins.xml``: a QGIS plugin repository listing the zip at ``--base-url`` (default: the
  output folder as a ``file://`` URL), for Plugins > Manage and Install Plugins > Settings > Add;
- ``SHA256SUMS`` of all of them.

The version is snca's, from ``snca_cli/__init__.py``. The plugin's email and links come from
``[tool.snca.plugin]`` in pyproject.toml or the options; ``--for-plugins-qgis-org`` refuses to
build until all four are set, and fails when plugins.qgis.org's checks fail on the zip.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_plugin_zip import (  # noqa: E402
    PLUGIN_NAME,
    PUBLISHING_METADATA,
    ROOT,
    build_zip,
    check_zip,
)


def publishing_metadata(options: argparse.Namespace) -> dict[str, str]:
    """The plugin's email and links: the options, else ``[tool.snca.plugin]``."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        configured = tomllib.load(handle).get("tool", {}).get("snca", {}).get("plugin", {})
    return {
        key: (getattr(options, key) or str(configured.get(key, ""))).strip()
        for key in PUBLISHING_METADATA
    }


def build_python_packages(output: Path) -> tuple[Path, Path]:
    """sdist and wheel into ``output`` (the wheel built from the sdist), checked by twine."""
    with tempfile.TemporaryDirectory(prefix="snca-build-") as work:
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", work, str(ROOT)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        built = sorted(Path(work).iterdir())
        subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, built)],
                       check=True)  # fmt: skip
        for path in built:
            shutil.copy2(path, output / path.name)
    (sdist,) = (output / p.name for p in built if p.name.endswith(".tar.gz"))
    (wheel,) = (output / p.name for p in built if p.suffix == ".whl")
    return sdist, wheel


def repository_xml(archive: Path, base_url: str) -> str:
    """A QGIS plugin repository (``plugins.xml``) listing the plugin zip ``archive``."""
    with zipfile.ZipFile(archive) as bundle:
        text = bundle.read(f"{PLUGIN_NAME}/metadata.txt").decode("utf-8")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    general = parser["general"]
    root = ElementTree.Element("plugins")
    plugin = ElementTree.SubElement(
        root, "pyqgis_plugin", name=general["name"], version=general["version"]
    )
    fields = {
        "description": general["description"],
        "about": general["about"],
        "version": general["version"],
        "qgis_minimum_version": general["qgisMinimumVersion"],
        "homepage": general.get("homepage", ""),
        "file_name": archive.name,
        "icon": general.get("icon", ""),
        "author_name": general["author"],
        "download_url": base_url.rstrip("/") + "/" + archive.name,
        "uploaded_by": general["author"],
        "experimental": general.get("experimental", "False"),
        "deprecated": general.get("deprecated", "False"),
        "tracker": general.get("tracker", ""),
        "repository": general.get("repository", ""),
        "tags": general.get("tags", ""),
    }
    for key, value in fields.items():
        ElementTree.SubElement(plugin, key).text = value
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )


def write_checksums(paths: list[Path], output: Path) -> Path:
    """``SHA256SUMS`` (``sha256sum -c`` format) of ``paths``."""
    lines = []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.name}\n")
    target = output / "SHA256SUMS"
    target.write_text("".join(lines), encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist", help="folder for artifacts")
    parser.add_argument("--base-url", help="where the zip will be downloaded from (plugins.xml)")
    parser.add_argument(
        "--for-plugins-qgis-org",
        action="store_true",
        help="the upload to plugins.qgis.org: refuse unless its checks pass",
    )
    for key in PUBLISHING_METADATA:
        parser.add_argument(f"--{key}", default="", help=f"the plugin's {key} (metadata.txt)")
    options = parser.parse_args(argv)
    metadata = publishing_metadata(options)
    if options.for_plugins_qgis_org:
        unset = [key for key in PUBLISHING_METADATA if not metadata[key]]
        if unset:
            print(
                f"error: plugins.qgis.org needs the plugin's {', '.join(unset)}: set them in "
                "[tool.snca.plugin] of pyproject.toml or pass "
                + " ".join(f"--{key}" for key in unset),
                file=sys.stderr,
            )
            return 1
    output = options.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    sdist, wheel = build_python_packages(output)
    archive = build_zip(output, wheel=wheel, metadata=metadata)
    if options.for_plugins_qgis_org:
        problems = check_zip(archive)
        if problems:
            for problem in problems:
                print(f"error: {archive.name}: {problem}", file=sys.stderr)
            return 1
    base_url = options.base_url or output.as_uri()
    repository = output / "plugins.xml"
    repository.write_text(repository_xml(archive, base_url), encoding="utf-8")
    sums = write_checksums([sdist, wheel, archive, repository], output)
    for path in (sdist, wheel, archive, repository, sums):
        print(f"{path.stat().st_size:>12,}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
