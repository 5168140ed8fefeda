"""Test configuration: markers for optional parts, and the shared real data.

* ``shared_data`` tests read ``$SNCA_SHARED_DATA`` (the folder holding ``aid150/`` and
  ``geotiff/``); they are skipped when it is unset. CI sets it, and then a missing folder fails.
* ``torch`` tests need the ``[train]`` extra; they are skipped without torch unless
  ``SNCA_REQUIRE_TORCH=1`` (set by CI), which turns the skip into a failure.
* ``slow`` tests take more than a few seconds; ``pytest -m "not slow"`` is the fast lane, plain
  ``pytest`` (CI) runs everything.

Two guards of the run itself: a selection of no test at all (a mistyped ``-m`` or ``-k``) is an
error, never pytest's "no tests ran" (exit 5), and a ``-m`` naming an unregistered marker is
refused; a run that leaves new untracked files in the checkout fails, naming them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _shared_data() -> Path | None:
    value = os.environ.get("SNCA_SHARED_DATA")
    return Path(value) if value else None


ROOT = Path(__file__).resolve().parents[1]
#: markers pytest itself registers (they may appear in ``-m`` as well)
BUILTIN_MARKERS = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
BUILTIN_MARKERS |= {"tryfirst", "trylast"}  # (registered by pytest, for old-style hooks)
#: the words of ``-m``'s grammar that are not marker names
MARK_EXPRESSION_WORDS = {"and", "or", "not", "True", "False", "None"}
_UNTRACKED_BEFORE = pytest.StashKey[set | None]()
_LEFT_BEHIND = pytest.StashKey[list]()
_SKIPPED_MODULES: list[str] = []  # collected files that skipped themselves (importorskip)


def _untracked_files() -> set[str] | None:
    """The checkout's untracked, not ignored paths (``git status``'s ``??``; an untracked folder
    counts once), or None where the tests do not run from a git checkout of their own."""
    try:
        top = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
            return None
        status = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=normal", "-z"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode != 0:
        return None
    return {entry[3:] for entry in status.stdout.split("\0") if entry.startswith("?? ")}


def _allowed_output(path: str) -> bool:
    """Whether ``path`` (relative to the checkout) is a folder the run was asked to write to:
    ``SNCA_SCREENSHOT_DIR`` (the desktop test's screenshots for the docs)."""
    folder = os.environ.get("SNCA_SCREENSHOT_DIR")
    if not folder:
        return False
    return (ROOT / path).resolve().is_relative_to((ROOT / folder).resolve())


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_UNTRACKED_BEFORE] = _untracked_files()


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Refuse a ``-m`` expression that names an unregistered marker (``-m "not slwo"`` would
    otherwise select every test, ``-m slwo`` none)."""
    expression = session.config.getoption("markexpr") or ""
    expression = re.sub(r"(?<=\w)\([^)]*\)", "", expression)  # marker(keyword=value) arguments
    names = set(re.findall(r"[\w:+\-.\[\]]+", expression)) - MARK_EXPRESSION_WORDS
    registered = BUILTIN_MARKERS | {
        line.split(":")[0].split("(")[0].strip() for line in session.config.getini("markers")
    }
    unknown = sorted(names - registered)
    if unknown:
        raise pytest.UsageError(
            f"-m {expression!r} names unregistered marker(s) {unknown}; "
            f"the markers are {sorted(registered - BUILTIN_MARKERS)}"
        )


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _SKIPPED_MODULES.append(report.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that selects no test is an error, not a pass: a lane must not silently test
    nothing (pytest's own "no tests ran", exit 5, is easy to mistake for success)."""
    if not session.items and not session.testsfailed:  # (collection errors: pytest says so)
        selection = " ".join(
            f"{flag} {value!r}"
            for flag, value in (
                ("-m", session.config.getoption("markexpr")),
                ("-k", session.config.getoption("keyword")),
            )
            if value
        )
        why = f"selected by {selection}" if selection else "collected"
        if _SKIPPED_MODULES:
            why += f" ({len(_SKIPPED_MODULES)} module(s) skipped themselves)"
        raise pytest.UsageError(
            f"no test {why}: a run of no tests is refused, not passed (the README's test "
            "section names the lanes)"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when it left new untracked files in the checkout: tests write under their
    temporary folders only (a stray ``grid_data`` from Deepness was once committed)."""
    before = session.config.stash.get(_UNTRACKED_BEFORE, None)
    if before is None:
        return
    after = _untracked_files() or set()
    left = sorted(path for path in after - before if not _allowed_output(path))
    session.config.stash[_LEFT_BEHIND] = left
    if left and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    left = config.stash.get(_LEFT_BEHIND, [])
    if left:
        terminalreporter.section("files left in the checkout", red=True)
        terminalreporter.write_line(
            "the run wrote these untracked files into the repository (tests must write under "
            "tmp_path; see tests/conftest.py):"
        )
        for path in left:
            terminalreporter.write_line(f"  {path}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shared = _shared_data()
    has_torch = importlib.util.find_spec("torch") is not None
    require_torch = os.environ.get("SNCA_REQUIRE_TORCH") == "1"
    for item in items:
        if "shared_data" in item.keywords and shared is None:
            item.add_marker(
                pytest.mark.skip(reason="set SNCA_SHARED_DATA to run shared-data tests")
            )
        if "torch" in item.keywords and not has_torch and not require_torch:
            item.add_marker(pytest.mark.skip(reason='needs torch: pip install ".[train]"'))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (``aid150/``, ``geotiff/RGB.byte.tif``)."""
    path = _shared_data()
    assert path is not None, "SNCA_SHARED_DATA is unset"
    assert path.is_dir(), f"SNCA_SHARED_DATA={path} is not a folder"
    return path


@pytest.fixture(scope="session")
def landsat_rgb(shared_data: Path) -> Path:
    """The real georeferenced Landsat RGB (791 x 718 px, 300 m, EPSG:32618, nodata 0)."""
    path = shared_data / "geotiff" / "RGB.byte.tif"
    assert path.is_file(), f"{path} is missing"
    return path


@pytest.fixture(scope="session")
def aid_dir(shared_data: Path) -> Path:
    """AID at 150 px: 30 class folders of real aerial scenes."""
    path = shared_data / "aid150"
    assert path.is_dir(), f"{path} is missing"
    return path


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread during each test, then restored: the tests' tensors are tiny, and on
    a busy 2-core machine two OpenMP threads waiting for each other make them many times slower."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """What `snca export` wrote for a small random-weight checkpoint (written once per run; see
    tests.helpers.export_run). Needs torch: only the export tests ask for it."""
    from tests.helpers.export_run import make_exported

    return make_exported(tmp_path_factory.mktemp("export"))


@pytest.fixture(autouse=True)
def own_cache_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """snca's cache folder (``SNCA_CACHE_DIR``) a fresh one per test, the commands it runs
    included: no test reads or writes the user's cache, nor another test's records."""
    monkeypatch.setenv("SNCA_CACHE_DIR", str(tmp_path_factory.mktemp("snca-cache")))
