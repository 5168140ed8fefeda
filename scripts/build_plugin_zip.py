"""Build the QGIS plugin zip that "Plugins > Manage and Install Plugins > Install from ZIP" takes.

    python scripts/build_plugin_zip.py [--output dist/]

The zip holds one top-level folder, ``snca_qgis/``, with the plugin's Python files,
``metadata.txt``, the icon and the licence; caches and editor files are left out. The version
in the file name is read from ``metadata.txt``.
"""

from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "qgis_plugin" / "snca_qgis"
PLUGIN_NAME = PLUGIN_DIR.name
#: Files copied into the zip, by suffix.
INCLUDED_SUFFIXES = (".py", ".txt", ".png", ".svg", ".qml", ".md")
#: Parts of a path that keep it out of the zip.
EXCLUDED_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache")


def plugin_version(plugin_dir: Path = PLUGIN_DIR) -> str:
    """The ``version`` from the plugin's ``metadata.txt``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(plugin_dir / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def plugin_files(plugin_dir: Path = PLUGIN_DIR) -> list[Path]:
    """The plugin's files to ship, sorted, relative to ``plugin_dir``."""
    files = []
    for path in sorted(plugin_dir.rglob("*")):
        relative = path.relative_to(plugin_dir)
        if not path.is_file() or any(part in EXCLUDED_PARTS for part in relative.parts):
            continue
        if relative.name.startswith(".") or path.suffix not in INCLUDED_SUFFIXES:
            continue
        files.append(relative)
    return files


def build_zip(output_dir: Path, plugin_dir: Path = PLUGIN_DIR) -> Path:
    """Write ``<output_dir>/<plugin>-<version>.zip`` and return its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{plugin_dir.name}-{plugin_version(plugin_dir)}.zip"
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in plugin_files(plugin_dir):
            archive.write(plugin_dir / relative, f"{plugin_dir.name}/{relative.as_posix()}")
        licence = ROOT / "LICENSE"
        if licence.is_file():
            archive.write(licence, f"{plugin_dir.name}/LICENSE")
    tmp.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist", help="folder for the zip")
    args = parser.parse_args()
    print(build_zip(args.output))


if __name__ == "__main__":
    main()
