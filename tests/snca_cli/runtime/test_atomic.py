"""Atomic outputs: nothing half-written, existing outputs refused without force."""

import os
import stat
from pathlib import Path

import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import atomic_output


def test_file_appears_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with atomic_output(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert list(tmp_path.iterdir()) == [target]


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(SncaError, match="--force"), atomic_output(target):
        pass
    with atomic_output(target, force=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_directory_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "index"
    target.mkdir()
    (target / "old").write_text("x")
    with pytest.raises(RuntimeError), atomic_output(target, force=True, directory=True) as tmp:
        (tmp / "new").write_text("y")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    with atomic_output(target, force=True, directory=True) as tmp:
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_directory_gets_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "index"
    mask = os.umask(0o022)
    try:
        with atomic_output(target, directory=True) as tmp:
            (tmp / "file").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
