"""Build the QGIS plugin zip that "Plugins > Manage and Install Plugins > Install from ZIP" takes.

    python scripts/build_plugin_zip.py [--output dist/] [--release]

The zip holds one top-level folder, ``snca_qgis/``, with the plugin's Python files,
``metadata.txt``, the icon and the licence; caches and editor files are left out. The version
in the file name is read from ``metadata.txt``. :func:`check_zip` applies the checks
plugins.qgis.org makes on upload; ``--release`` refuses a zip that fails any of them.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
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


#: metadata.txt keys plugins.qgis.org requires (``homepage`` and ``tracker`` are shown on the
#: plugin's page and expected too).
REQUIRED_METADATA = (
    "name",
    "qgisMinimumVersion",
    "description",
    "about",
    "version",
    "author",
    "email",
    "repository",
    "tracker",
    "homepage",
)
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def check_zip(archive: Path) -> list[str]:
    """What plugins.qgis.org would reject in the plugin zip ``archive`` (empty: nothing).

    One top-level folder named like the package, a ``metadata.txt`` with every required key
    and a plain version, the licence, and no compiled files, caches or macOS resource forks.
    """
    problems = []
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        tops = {name.split("/")[0] for name in names}
        if tops != {PLUGIN_NAME}:
            problems.append(f"the zip must hold one folder {PLUGIN_NAME}/, not {sorted(tops)}")
        for name in names:
            if "__pycache__" in name or name.endswith((".pyc", ".pyo")) or "__MACOSX" in name:
                problems.append(f"compiled or cache file {name}")
        if f"{PLUGIN_NAME}/LICENSE" not in names:
            problems.append("no LICENSE file in the plugin folder")
        try:
            text = bundle.read(f"{PLUGIN_NAME}/metadata.txt").decode("utf-8")
        except KeyError:
            return [*problems, "no metadata.txt"]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    general = parser["general"] if parser.has_section("general") else {}
    for key in REQUIRED_METADATA:
        if not str(general.get(key, "")).strip():
            problems.append(f"metadata.txt lacks {key}")
    if not VERSION.match(str(general.get("version", ""))):
        problems.append(f"version {general.get('version')!r} is not like 1.2.3")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist", help="folder for the zip")
    parser.add_argument(
        "--release", action="store_true", help="fail unless plugins.qgis.org would accept it"
    )
    args = parser.parse_args()
    archive = build_zip(args.output)
    print(archive)
    problems = check_zip(archive)
    for problem in problems:
        print(f"{'error' if args.release else 'warning'}: {problem}", file=sys.stderr)
    if problems and args.release:
        archive.unlink()
        sys.exit(1)


if __name__ == "__main__":
    main()
