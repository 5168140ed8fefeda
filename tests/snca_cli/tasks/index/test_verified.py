"""Index files verified once: the record in the user's cache lets the next open of unchanged
files skip the sha256 pass, and any change to a file is still caught."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.user_cache import CACHE_ENV
from snca_cli.tasks.index import store, verified
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import DATA_FILES, EMBEDDINGS_NAME, read_index

#: The files an index of one graph holds besides its manifest: each is hashed on a full check.
FILES = len(DATA_FILES)
#: How long a test waits after writing files for them to count as settled (RACY_S is lowered to
#: a few clock ticks of any file system a test runs on).
SETTLE_S = 0.05


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the sha256 passes and tile table checks the opens make; files settle after
    :data:`SETTLE_S` instead of :data:`verified.RACY_S`."""
    counts = {"hashed": 0, "tiles": 0}
    digest, check_tiles = store.file_digest, store._check_tiles

    def counted_digest(handle):  # type: ignore[no-untyped-def]
        counts["hashed"] += 1
        return digest(handle)

    def counted_tiles(*args):  # type: ignore[no-untyped-def]
        counts["tiles"] += 1
        return check_tiles(*args)

    monkeypatch.setattr(store, "file_digest", counted_digest)
    monkeypatch.setattr(store, "_check_tiles", counted_tiles)
    monkeypatch.setattr(verified, "RACY_S", SETTLE_S / 2)
    return counts


def _opened(index_dir: Path, checks: dict[str, int], **options: str) -> tuple[int, int]:
    """Open the index and search it (the graph is loaded from the file opened); the files
    hashed and the tile table checks that took. The hits are those of an exact search."""
    before = dict(checks)
    with TileIndex.open(index_dir, **options) as index:
        hits = [h.tile.tile_id for h in index.search_tile_id(0, k=3).hits]
    took = checks["hashed"] - before["hashed"], checks["tiles"] - before["tiles"]
    with TileIndex.open(index_dir, exact=True) as index:
        assert hits == [h.tile.tile_id for h in index.search_tile_id(0, k=3).hits]
    return took


@pytest.fixture
def settled(index_dir: Path) -> Path:
    """The index, its files settled."""
    time.sleep(SETTLE_S)
    return index_dir


def _records() -> list[Path]:
    return sorted((Path(os.environ[CACHE_ENV]) / verified.RECORDS_FOLDER).glob("*"))


def test_a_second_open_of_unchanged_files_hashes_nothing(
    settled: Path, checks: dict[str, int]
) -> None:
    assert _opened(settled, checks) == (FILES, 1)
    [record] = _records()
    assert record == verified.record_path(store.real_index_path(settled))
    saved = json.loads(record.read_text())
    assert saved["index"] == str(settled.resolve()) and sorted(saved["files"]) == sorted(DATA_FILES)
    assert _opened(settled, checks) == (0, 0)
    assert _opened(settled, checks) == (0, 0)
    # verify="always" checks every file however the record says, and keeps the record
    assert _opened(settled, checks, verify="always") == (FILES, 1)
    assert _opened(settled, checks) == (0, 0)
    assert _records() == [record]
    with pytest.raises(SncaError, match="verify must be auto or always"):
        TileIndex.open(settled, verify="never")


def test_files_checked_within_a_clock_tick_of_their_change_are_not_recorded(
    index_dir: Path, checks: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verified, "RACY_S", 3600.0)  # the index was written just now
    assert _opened(index_dir, checks) == (FILES, 1)
    assert _records() == []
    assert _opened(index_dir, checks) == (FILES, 1)


@pytest.mark.parametrize("name", DATA_FILES)
def test_a_byte_flipped_in_place_with_the_mtime_restored_is_caught(
    settled: Path, checks: dict[str, int], name: str
) -> None:
    assert _opened(settled, checks) == (FILES, 1)
    path = settled / name
    before = path.stat()
    with open(path, "r+b") as handle:  # same inode, same size
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    with pytest.raises(SncaError, match=f"{name} does not match its checksum"):
        TileIndex.open(settled)


def test_a_file_replaced_by_one_of_the_same_size_and_mtime_is_caught(
    settled: Path, checks: dict[str, int]
) -> None:
    assert _opened(settled, checks) == (FILES, 1)
    path = settled / EMBEDDINGS_NAME
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    (settled.parent / "replacement").write_bytes(bytes(data))
    os.utime(settled.parent / "replacement", ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(settled.parent / "replacement", path)
    with pytest.raises(SncaError, match=f"{EMBEDDINGS_NAME} does not match its checksum"):
        TileIndex.open(settled)


def test_a_copy_of_the_index_is_verified_on_its_own(
    settled: Path, checks: dict[str, int], tmp_path: Path
) -> None:
    assert _opened(settled, checks) == (FILES, 1)
    copy = tmp_path / "copy"
    shutil.copytree(settled, copy)
    time.sleep(SETTLE_S)
    assert _opened(copy, checks) == (FILES, 1)
    assert _opened(copy, checks) == (0, 0)
    assert len(_records()) == 2


def _garble(record: Path, other: Path) -> None:
    record.write_text(record.read_text()[:-7])


def _foreign(record: Path, other: Path) -> None:
    """Another index's record, under this index's name."""
    shutil.copy(verified.record_path(store.real_index_path(other)), record)


def _edited(record: Path, other: Path) -> None:
    """The record of these files but for one ctime (what another state of a file leaves)."""
    saved = json.loads(record.read_text())
    saved["files"][EMBEDDINGS_NAME][-1] += 1
    record.write_text(json.dumps(saved))


@pytest.mark.parametrize("damage", [_garble, _foreign, _edited, lambda r, o: r.write_text("[]")])
def test_a_garbled_or_foreign_record_is_ignored(
    settled: Path, checks: dict[str, int], tmp_path: Path, damage
) -> None:
    other = tmp_path / "other"
    shutil.copytree(settled, other)
    time.sleep(SETTLE_S)
    read_index(other)  # its record
    assert _opened(settled, checks) == (FILES, 1)
    damage(verified.record_path(store.real_index_path(settled)), other)
    assert _opened(settled, checks) == (FILES, 1)  # a full check, which renews the record
    assert _opened(settled, checks) == (0, 0)


def test_a_cache_that_cannot_be_written_only_costs_the_hashing(
    settled: Path, checks: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "a-file"))  # no folder can be made under it
    assert _opened(settled, checks) == (FILES, 1)
    assert _opened(settled, checks) == (FILES, 1)


def test_the_record_is_replaced_atomically(
    settled: Path, checks: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _opened(settled, checks) == (FILES, 1)
    [record] = _records()
    kept = record.read_text()
    written = Path.write_text

    def disk_full(path: Path, text: str, encoding: str | None = None) -> int:
        written(path, text[: len(text) // 2], encoding=encoding)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    saved = json.loads(kept)
    saved["manifest_sha256"] = "0" * 64
    assert not verified.save_record(saved, {})
    monkeypatch.undo()
    assert record.read_text() == kept  # the old record whole, nothing staged left beside it
    assert [p.name for p in record.parent.iterdir()] == [record.name]


def test_tiles_are_memory_mapped_and_dropped_on_close(settled: Path) -> None:
    index = TileIndex.open(settled)
    tiles = index._opened().tiles
    assert isinstance(tiles, np.memmap)
    assert index.tile(5).tile_id == 5
    index.close()
    assert index._files is None
    with pytest.raises(SncaError, match="was closed"):
        index.tile(5)
