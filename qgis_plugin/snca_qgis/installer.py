"""Install snca's runtime for QGIS's own Python into a folder the plugin owns.

The plugin zip carries the snca wheel (``wheels/``). Installing runs QGIS's Python's pip twice:

1. a dry run (``--dry-run --report``) resolves the wheel's dependencies from binary wheels only,
   constrained to the exact versions of every package QGIS's Python already has (numpy,
   matplotlib, attrs, ...): when snca would need a different version of one of them, pip says
   so and nothing is installed;
2. every resolved package that QGIS's Python does not have yet is installed (``--no-deps
   --target``) into a staging folder, which then replaces ``runtime/py3.X`` in one rename.

The folder goes at the end of ``sys.path`` (:func:`activate`): QGIS's own packages always come
first, and nothing is written to the user site or the system. Removing the plugin removes the
runtime with it. ``python -m snca_qgis.dependencies`` runs the same install from a terminal.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
#: Where the release puts the snca wheel inside the plugin.
WHEELS_DIR = PLUGIN_DIR / "wheels"
#: Where runtimes are installed, one folder per Python version.
RUNTIME_ROOT = PLUGIN_DIR / "runtime"
#: What the install wrote, inside the runtime folder.
RECORD_NAME = "snca-runtime.json"
#: Seconds pip waits for the package index, and how often it retries (no network: fail fast).
PIP_TIMEOUT_S = 20
PIP_RETRIES = 1

#: Constraints that pip cannot know: (package QGIS has, oldest version that works, constraint
#: when QGIS's is older). affine 3 declares attrs>=21.3 but fails with attrs < 23.2 (Debian 12).
UNDECLARED_NEEDS = (("attrs", (23, 2), "affine<3"),)

#: pip output that means the package index could not be reached.
NETWORK_ERRORS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No route to host",
    "Connection refused",
    "ConnectTimeout",
    "Read timed out",
    "ProxyError",
)

#: Environment variables pip must not see: they would install elsewhere or add packages.
HIDDEN_ENVIRONMENT = ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PYTHONPATH", "PYTHONHOME")

Log = Callable[[str], None]
Cancelled = Callable[[], bool]


class InstallError(Exception):
    """The install did not happen; the message is one line for the user. Nothing was changed."""


@dataclass
class InstallResult:
    """What :func:`install_runtime` put where."""

    folder: Path
    installed: list[str]  # "name==version", the wheel's own distribution first
    kept: list[str]  # packages QGIS's Python already had, used as they are
    seconds: float


def runtime_folder(root: Path = RUNTIME_ROOT) -> Path:
    """The runtime folder for the Python running this code (``runtime/py3.11``)."""
    return root / f"py{sys.version_info[0]}.{sys.version_info[1]}"


def activate(folder: Path | None = None) -> bool:
    """Put the runtime folder at the end of ``sys.path`` (if it holds an install) and make new
    imports see it; True when it is on the path."""
    folder = runtime_folder() if folder is None else folder
    if not (folder / RECORD_NAME).is_file():
        return False
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    importlib.invalidate_caches()
    return True


def bundled_wheel(wheels_dir: Path = WHEELS_DIR) -> Path | None:
    """The snca wheel inside the plugin, or None (a plugin not built by the release)."""
    wheels = sorted(wheels_dir.glob("snca-*.whl"))
    return wheels[-1] if wheels else None


def canonical_name(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def present_distributions(exclude: Path = RUNTIME_ROOT) -> dict[str, str]:
    """``{name: version}`` of every distribution importable from ``sys.path``, leaving out the
    plugin's own runtimes under ``exclude``; the first one on the path wins, as for imports."""
    exclude = exclude.resolve()
    search = [path for path in sys.path if not Path(path or ".").resolve().is_relative_to(exclude)]
    present: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=search):
        name = dist.metadata["Name"]
        if name:
            present.setdefault(canonical_name(name), dist.version)
    return present


def _release(version: str) -> tuple[int, ...] | None:
    match = re.match(r"^(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def constraints_for(present: dict[str, str]) -> list[str]:
    """pip constraints that keep every package QGIS's Python has at its version, plus
    :data:`UNDECLARED_NEEDS`. Versions pip cannot read (Debian's "0.0.0" placeholders) are
    left out: such a package is still never installed over (see :func:`plan_install`)."""
    lines = []
    for name, version in sorted(present.items()):
        release = _release(version)
        if release is None or not any(release):
            continue
        lines.append(f"{name}=={version}")
    for name, oldest, constraint in UNDECLARED_NEEDS:
        release = _release(present.get(name, ""))
        if release is not None and release < oldest:
            lines.append(constraint)
    return lines


def pip_command(python: str, *arguments: str) -> list[str]:
    """``python -m pip`` with the flags every call uses: no prompt, no version check, a short
    network timeout (a machine without network fails in seconds, not minutes)."""
    return [
        python, "-m", "pip", "--disable-pip-version-check", "--no-input",
        "--timeout", str(PIP_TIMEOUT_S), "--retries", str(PIP_RETRIES), *arguments,
    ]  # fmt: skip


def _environment() -> dict[str, str]:
    """The environment for pip: nothing that would send it elsewhere than ``--target`` or show
    it other packages than QGIS's Python has."""
    return {key: value for key, value in os.environ.items() if key not in HIDDEN_ENVIRONMENT}


def run_pip(command: list[str], log: Log, cancelled: Cancelled) -> tuple[int, list[str]]:
    """Run pip, passing each line of its output to ``log``; its exit code and lines."""
    log("$ " + " ".join(command))
    lines = []
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=_environment(),
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            lines.append(line)
            log(line)
            if cancelled():
                process.terminate()
                process.wait()
                raise InstallError("cancelled: nothing was installed")
        return process.wait(), lines


def explain_pip_failure(lines: list[str]) -> str:
    """One line for the user from pip's failed output."""
    text = "\n".join(lines)
    if any(marker in text for marker in NETWORK_ERRORS):
        return (
            "no network: pip could not reach the package index; connect this computer and "
            "press Install again"
        )
    if "ResolutionImpossible" in text or "conflicting dependencies" in text:
        causes = _conflict_causes(lines)
        cause = f" ({'; '.join(causes[:2])})" if causes else ""
        return (
            "snca's dependencies conflict with the packages of QGIS's own Python" + cause
            + ": nothing was installed and QGIS's packages are unchanged"
        )  # fmt: skip
    missing = re.search(r"No matching distribution found for (\S+)", text)
    if missing:
        return (
            f"no binary wheel of {missing.group(1)} for this Python and platform: nothing was "
            "installed"
        )
    useful = [line.strip() for line in lines if line.strip() and not line.startswith("$ ")]
    return useful[-1] if useful else "pip failed without a message"


def _conflict_causes(lines: list[str]) -> list[str]:
    """The lines pip prints under "The conflict is caused by:"."""
    causes: list[str] = []
    inside = False
    for line in lines:
        if line.strip() == "The conflict is caused by:":
            inside = True
        elif inside and line.strip():
            causes.append(line.strip())
        elif inside:
            break
    return causes


def check_pip(python: str, log: Log) -> None:
    """InstallError when ``python`` has no usable pip."""
    try:
        done = subprocess.run(
            pip_command(python, "--version"),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=_environment(),
            timeout=60,
        )
    except OSError as exc:
        raise InstallError(f"cannot run QGIS's Python {python}: {exc.strerror}") from None
    if done.returncode != 0:
        raise InstallError(
            f"QGIS's Python ({python}) has no pip: install it (Debian/Ubuntu: apt install "
            "python3-pip) and press Install again"
        )
    log(done.stdout.strip())


def plan_install(
    python: str, wheel: Path, present: dict[str, str], log: Log, cancelled: Cancelled
) -> tuple[list[str], list[str]]:
    """Resolve ``wheel`` and its dependencies from binary wheels in QGIS's Python, its packages
    pinned to their versions: ``(to install, kept)``, each as ``name==version`` (the wheel itself
    first, by path); ``kept`` are the requirements QGIS's Python already satisfies."""
    with tempfile.TemporaryDirectory(prefix="snca-plan-") as work:
        constraints = Path(work) / "constraints.txt"
        constraints.write_text("\n".join(constraints_for(present)) + "\n", encoding="utf-8")
        report = Path(work) / "report.json"
        code, lines = run_pip(
            pip_command(
                python, "install", "--dry-run", "--only-binary=:all:", "--report", str(report),
                "--constraint", str(constraints), str(wheel),
            ),
            log,
            cancelled,
        )  # fmt: skip
        if code != 0 or not report.is_file():
            raise InstallError(explain_pip_failure(lines))
        resolved = json.loads(report.read_text(encoding="utf-8"))["install"]
    install, required = [], set()
    for item in resolved:
        metadata = item["metadata"]
        required |= {_requirement_name(text) for text in metadata.get("requires_dist", [])
                     if "extra ==" not in text}  # fmt: skip
        if item.get("is_direct"):
            install.insert(0, str(wheel))
        elif canonical_name(metadata["name"]) not in present:  # else: QGIS's own is kept
            install.append(f"{metadata['name']}=={metadata['version']}")
    kept = [f"{name}=={present[name]}" for name in sorted(required & present.keys())]
    return install, kept


def _requirement_name(requirement: str) -> str:
    """The distribution name of a ``Requires-Dist`` line."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return canonical_name(match.group(1)) if match else ""


def install_runtime(
    python: str,
    wheel: Path | None = None,
    folder: Path | None = None,
    log: Log = print,
    cancelled: Cancelled = lambda: False,
) -> InstallResult:
    """Install the snca ``wheel`` (default: the plugin's) and what it needs that QGIS's Python
    lacks into ``folder`` (default: :func:`runtime_folder`), replacing what was there; then
    :func:`activate` it. InstallError (one line) when it cannot be done; nothing is left
    half-written and nothing outside the runtime folder is touched."""
    started = time.monotonic()
    wheel = bundled_wheel() if wheel is None else wheel
    if wheel is None or not wheel.is_file():
        raise InstallError(
            "this copy of the plugin carries no snca wheel: install the plugin from a release "
            "zip (docs/install.md)"
        )
    folder = runtime_folder() if folder is None else folder
    distribution, version = wheel.name.split("-")[:2]  # PEP 427: NAME-VERSION-...whl
    check_pip(python, log)
    present = present_distributions(exclude=folder.parent)
    present.pop(canonical_name(distribution), None)  # an older snca is replaced
    install, kept = plan_install(python, wheel, present, log, cancelled)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        code, lines = run_pip(
            pip_command(
                python, "install", "--no-deps", "--only-binary=:all:", "--no-compile",
                "--target", str(staging), *install,
            ),
            log,
            cancelled,
        )  # fmt: skip
        if code != 0:
            raise InstallError(explain_pip_failure(lines))
        installed = [f"{distribution}=={version}", *install[1:]]
        record = {
            "python": python,
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "wheel": wheel.name,
            "installed": installed,
            "kept": kept,
        }
        (staging / RECORD_NAME).write_text(json.dumps(record, indent=2), encoding="utf-8")
        _replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    activate(folder)
    return InstallResult(folder, installed, kept, time.monotonic() - started)


def _replace(staging: Path, folder: Path) -> None:
    """Put ``staging`` where ``folder`` is, in renames: a reader sees the old or the new one."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
        folder.rename(old)
    staging.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
