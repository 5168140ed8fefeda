"""The project's wheel installed into fresh virtual environments, as a user installs it.

The packaging tests build the wheel once (:func:`build_wheel`), make a venv with some Python
(:func:`create_venv`) and run commands there with :func:`run_in` (the environment of
:func:`clean_environment`: no ``PYTHONPATH`` pointing back at the checkout).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without ``PYTHONPATH``, plus ``extra``: a PYTHONPATH naming
    the checkout would show pip and importlib its snca.egg-info and its source tree instead of
    what the venv installed."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update(extra)
    return environment


def run_in(
    command: Sequence[str | Path],
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``command`` (text output captured) in ``env`` (default :func:`clean_environment`);
    a non-zero exit fails the calling test with the command and the end of its output."""
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=clean_environment() if env is None else env,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}:\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result


def build_wheel(folder: Path) -> Path:
    """Build snca's wheel from the checkout into ``folder`` (no dependencies, no build
    isolation: this Python's setuptools) and return its path."""
    run_in(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            folder,
            ROOT,
        ],
        timeout=600,
    )
    (wheel,) = folder.glob("snca-*.whl")
    return wheel


def create_venv(folder: Path, python: str | Path = sys.executable) -> Path:
    """A fresh virtual environment (with pip) made by ``python``; returns its interpreter."""
    run_in([python, "-m", "venv", folder], timeout=300)
    return folder / "bin" / "python"
