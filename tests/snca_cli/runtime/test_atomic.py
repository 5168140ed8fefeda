"""Atomic outputs: nothing half-written, existing outputs refused without force."""

import os
import stat
from pathlib import Path

import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import (
    OUTPUT_FOLDER_MARKERS,
    OwnOutput,
    atomic_output,
    check_output_paths,
    real_output,
    unlisted_entry,
)
from snca_cli.tasks import chips, evaluate, units
from snca_cli.tasks.index import store


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


#: A folder holding only files named ``old`` and ``new`` (a test's own output).
MINE = OwnOutput("a test folder", lambda path: unlisted_entry(path, {"old", "new"}))


def test_directory_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "index"
    target.mkdir()
    (target / "old").write_text("x")
    with (
        pytest.raises(RuntimeError),
        atomic_output(target, force=True, directory=True, own=MINE) as tmp,
    ):
        (tmp / "new").write_text("y")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    with atomic_output(target, force=True, directory=True, own=MINE) as tmp:
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_force_replaces_a_folder_only_when_its_own_output_recognises_it(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with atomic_output(target, force=True, directory=True) as tmp:  # empty: nothing to lose
        (tmp / "new").write_text("y")
    (target / "user.txt").write_text("keep")
    for own, reason in [
        (None, "snca cannot tell what wrote it"),
        (MINE, "it holds user.txt, which snca did not write there"),
    ]:
        with (
            pytest.raises(SncaError, match=f"refusing to replace .*{reason}.*nothing was deleted"),
            atomic_output(target, force=True, directory=True, own=own),
        ):
            pass
    assert sorted(p.name for p in target.iterdir()) == ["new", "user.txt"]


def test_a_file_added_while_the_outputs_are_made_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(SncaError, match="it holds late.txt"):
        with atomic_output(target, directory=True, own=MINE) as tmp:
            (tmp / "new").write_text("y")
            target.mkdir()
            (target / "late.txt").write_text("keep")
    assert [p.name for p in target.iterdir()] == ["late.txt"]


def test_directory_gets_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "index"
    mask = os.umask(0o022)
    try:
        with atomic_output(target, directory=True) as tmp:
            (tmp / "file").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_outputs_are_checked_together_before_any_work(tmp_path: Path) -> None:
    from snca_cli.runtime.atomic import check_output_paths

    (tmp_path / "dir").mkdir()
    with pytest.raises(SncaError, match="two outputs are the same file"):
        check_output_paths([tmp_path / "a.gpkg", tmp_path / "x" / ".." / "a.gpkg"], False)
    with pytest.raises(SncaError, match="is an existing folder; name a file"):
        check_output_paths([tmp_path / "dir"], force=True)
    check_output_paths([tmp_path / "dir"], force=True, folders=[tmp_path / "dir"])
    with pytest.raises(SncaError, match="outputs must be local files"):
        check_output_paths([Path("/vsimem/a.gpkg")], False)
    assert (tmp_path / "dir").is_dir()


def test_a_set_is_published_together_across_folders(tmp_path: Path) -> None:
    from snca_cli.runtime.atomic import atomic_outputs

    targets = [tmp_path / "a" / "one.txt", tmp_path / "b" / "two.txt"]
    with atomic_outputs(targets) as outputs:
        for target in targets:
            outputs.path(target).write_text(target.name)
        assert not any(t.exists() for t in targets)
    assert [t.read_text() for t in targets] == ["one.txt", "two.txt"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "one.txt", "two.txt"]


def test_recovery_leaves_a_live_writer_alone_and_cleans_a_dead_one(tmp_path: Path) -> None:
    from snca_cli.runtime.atomic import STAGING_PREFIX, OutputSet, recover_outputs

    live = OutputSet([tmp_path / "a.txt"], force=False)
    live.path(tmp_path / "a.txt").write_text("new")
    recover_outputs(tmp_path)  # its owner lock is held: untouched
    assert live.path(tmp_path / "a.txt").read_text() == "new"
    live.commit()
    assert (tmp_path / "a.txt").read_text() == "new"
    dead = OutputSet([tmp_path / "a.txt"], force=True)
    dead.path(tmp_path / "a.txt").write_text("half")
    for staging in dead._staging.values():  # as if killed before its commit point
        staging.lock.release()
    recover_outputs(tmp_path)
    assert (tmp_path / "a.txt").read_text() == "new"
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_folders_are_exchanged_atomically_where_the_system_can(tmp_path: Path) -> None:
    import sys

    from snca_cli.runtime.atomic import exchange

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir()
    swapped = exchange(tmp_path / "a", tmp_path / "b")
    if sys.platform.startswith("linux"):
        assert swapped  # renameat2(RENAME_EXCHANGE): ext4, tmpfs, xfs, btrfs
    if swapped:
        assert (tmp_path / "b" / "x").read_text() == "a" and not any((tmp_path / "a").iterdir())


def test_output_folder_markers_are_the_files_the_tasks_write() -> None:
    assert dict(OUTPUT_FOLDER_MARKERS) == {
        (store.MANIFEST_NAME, store.TILES_NAME): "an snca index",
        (evaluate.METRICS_FILE, evaluate.CONFUSION_FILE): "an evaluation report",
        (chips.RECORD_NAME,): "a chips folder",
        (units.UNIT_MANIFEST, "tiles.npy"): "a work unit of a cluster run",
    }


def test_links_are_resolved_once_a_linked_file_is_replaced_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "real" / "old.txt").write_text("kept")
    (tmp_path / "real" / "named.txt").symlink_to("old.txt")
    assert real_output(tmp_path / "link" / "a.txt") == tmp_path / "real" / "a.txt"
    assert real_output(tmp_path / "link", folder=True) == tmp_path / "real"
    assert real_output(tmp_path / "link" / "named.txt") == tmp_path / "real" / "named.txt"
    with atomic_output(tmp_path / "link" / "named.txt", force=True) as tmp:
        tmp.write_text("new")
    assert (tmp_path / "real" / "named.txt").read_text() == "new"
    assert not (tmp_path / "real" / "named.txt").is_symlink()
    assert (tmp_path / "real" / "old.txt").read_text() == "kept"
    assert (tmp_path / "link").is_symlink()


def test_an_output_naming_no_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SncaError, match="names no file"):
        check_output_paths([tmp_path / "new" / ".."], force=True)
    assert list(tmp_path.iterdir()) == []
