"""Build the QGIS plugin zip that "Plugins > Manage and Install Plugins > Install from ZIP" takes.

    python scripts/build_plugin_zip.py [--output dist/] [--wheel dist/snca-X-py3-none-any.whl]

The zip holds one top-level folder, ``snca_qgis/``, with the plugin's Python files,
``metadata.txt``, the icon and the licence; caches and editor files are left out. With
``--wheel`` the snca wheel goes into ``snca_qgis/wheels/``: the dock's Install runtime button
installs it (``scripts/release.py`` builds both). The version written into ``metadata.txt`` (and
the file name) is snca's own, read from ``snca_cli/__init__.py``: the one place it is kept.
:func:`check_zip` applies the checks plugins.qgis.org makes on upload (its validator).
"""

from __future__ import annotations

import argparse
import configparser
import io
import re
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "qgis_plugin" / "snca_qgis"
PLUGIN_NAME = PLUGIN_DIR.name
#: Files copied into the zip, by suffix.
INCLUDED_SUFFIXES = (".py", ".txt", ".png", ".svg", ".qml", ".md")
#: Parts of a path that keep it out of the zip (``runtime``: an install made from a checkout).
EXCLUDED_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache", "runtime", "wheels")
#: Where the snca wheel goes inside the plugin folder (see snca_qgis/installer.py).
WHEELS_FOLDER = "wheels"

#: metadata.txt keys plugins.qgis.org requires, and the ones its validator checks as links.
REQUIRED_METADATA = (
    "name",
    "description",
    "version",
    "qgisMinimumVersion",
    "author",
    "email",
    "about",
    "tracker",
    "repository",
)
URL_METADATA = ("tracker", "repository", "homepage")
#: Keys that have no true value in the checkout; a release passes them (scripts/release.py).
PUBLISHING_METADATA = ("email", "tracker", "repository", "homepage")
#: The largest zip plugins.qgis.org accepts, in bytes.
MAX_ZIP_BYTES = 25_000_000
FOLDER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9\-_]+$")
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def snca_version(root: Path = ROOT) -> str:
    """``__version__`` of ``snca_cli/__init__.py`` (read, not imported)."""
    text = (root / "snca_cli" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise SystemExit("error: snca_cli/__init__.py has no __version__")
    return match.group(1)


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


def stamped_metadata(plugin_dir: Path, values: dict[str, str]) -> str:
    """The plugin's ``metadata.txt`` with ``values`` (version, publishing links) set."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep qgisMinimumVersion's case
    parser.read(plugin_dir / "metadata.txt", encoding="utf-8")
    for key, value in values.items():
        if value:
            parser["general"][key] = value
    text = io.StringIO()
    parser.write(text, space_around_delimiters=False)
    return text.getvalue()


def build_zip(
    output_dir: Path,
    plugin_dir: Path = PLUGIN_DIR,
    wheel: Path | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``<output_dir>/<plugin>-<version>.zip`` (with ``wheel`` inside, and ``metadata``
    values set in metadata.txt) and return its path."""
    version = snca_version()
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{plugin_dir.name}-{version}.zip"
    tmp = target.with_name(f".{target.name}.tmp")
    top = plugin_dir.name
    text = stamped_metadata(plugin_dir, {"version": version, **(metadata or {})})
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in plugin_files(plugin_dir):
            if relative.as_posix() == "metadata.txt":
                archive.writestr(f"{top}/metadata.txt", text)
            else:
                archive.write(plugin_dir / relative, f"{top}/{relative.as_posix()}")
        licence = ROOT / "LICENSE"
        if licence.is_file():
            archive.write(licence, f"{top}/LICENSE")
        if wheel is not None:
            # a wheel is a zip already: stored as it is
            archive.write(wheel, f"{top}/{WHEELS_FOLDER}/{wheel.name}", zipfile.ZIP_STORED)
    tmp.replace(target)
    return target


def _bad_url(value: str) -> bool:
    parsed = urlparse(value)
    return not (parsed.scheme in ("http", "https") and parsed.netloc)


def check_zip(archive: Path) -> list[str]:
    """What plugins.qgis.org's validator would reject in the plugin zip ``archive`` (empty:
    nothing), apart from whether its links answer on the web.

    Size, one top-level folder with a valid name, no compiled files, caches, ``.git`` or macOS
    resource forks, no absolute or parent paths, the licence, every required metadata key, links
    with a scheme and a host, an author without "/", a plain version.
    """
    problems = []
    if archive.stat().st_size > MAX_ZIP_BYTES:
        problems.append(f"the zip is {archive.stat().st_size:,} bytes, over {MAX_ZIP_BYTES:,}")
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        tops = {name.split("/")[0] for name in names}
        if tops != {PLUGIN_NAME} or not FOLDER_NAME.match(PLUGIN_NAME):
            problems.append(f"the zip must hold one folder {PLUGIN_NAME}/, not {sorted(tops)}")
        for name in names:
            parts = name.split("/")
            if "__pycache__" in parts or "__MACOSX" in parts or ".git" in parts:
                problems.append(f"cache or repository folder in {name}")
            if name.endswith((".pyc", ".pyo")):
                problems.append(f"compiled file {name}")
            if name.startswith("/") or ".." in parts or "\\" in name:
                problems.append(f"unsafe path {name}")
        corrupt = bundle.testzip()
        if corrupt is not None:
            problems.append(f"corrupt member {corrupt}")
        if f"{PLUGIN_NAME}/LICENSE" not in names:
            problems.append("no LICENSE file in the plugin folder")
        try:
            text = bundle.read(f"{PLUGIN_NAME}/metadata.txt").decode("utf-8")
        except KeyError:
            return [*problems, "no metadata.txt"]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    general = parser["general"] if parser.has_section("general") else {}
    missing = [key for key in REQUIRED_METADATA if not str(general.get(key, "")).strip()]
    if missing:
        problems.append(f"metadata.txt lacks {', '.join(missing)}")
    for key in URL_METADATA:
        value = str(general.get(key, "")).strip()
        if key not in missing and _bad_url(value):
            problems.append(f"metadata.txt {key} is not a valid link: {value!r}")
    if "/" in str(general.get("author", "")):
        problems.append("the author name contains '/'")
    if not VERSION.match(str(general.get("version", ""))):
        problems.append(f"version {general.get('version')!r} is not like 1.2.3")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist", help="folder for the zip")
    parser.add_argument("--wheel", type=Path, help="the snca wheel to put inside the plugin")
    args = parser.parse_args()
    if args.wheel is not None and not args.wheel.is_file():
        sys.exit(f"error: no wheel {args.wheel}")
    print(build_zip(args.output, wheel=args.wheel))


if __name__ == "__main__":
    main()
