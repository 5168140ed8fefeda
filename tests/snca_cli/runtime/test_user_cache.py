"""snca's cache folder: SNCA_CACHE_DIR, else the platform's user cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from snca_cli.runtime import user_cache
from snca_cli.runtime.user_cache import CACHE_ENV, cache_folder


def test_snca_cache_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "mine"


@pytest.mark.parametrize(
    ("xdg", "expected"),
    [("/xdg/cache", Path("/xdg/cache/snca")), ("relative", None), ("", None)],
)
def test_the_xdg_cache_home_when_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str, expected: Path | None
) -> None:
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setattr(user_cache.sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert cache_folder() == (expected or tmp_path / ".cache" / "snca")


@pytest.mark.skipif(sys.platform == "win32", reason="HOME is not the home folder on Windows")
def test_windows_and_macos_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    monkeypatch.setattr(user_cache.sys, "platform", "win32")
    assert cache_folder() == tmp_path / "local" / "snca" / "Cache"
    monkeypatch.setattr(user_cache.sys, "platform", "darwin")
    assert cache_folder() == tmp_path / "Library" / "Caches" / "snca"
