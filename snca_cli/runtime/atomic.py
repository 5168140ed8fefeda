"""Write the outputs of one command as one transaction: all of them or none, never half of one.

Protocol (:class:`OutputSet`):

1. **Check** every output path before any work (:func:`check_output_paths`): the paths are
   distinct, none is an existing folder unless the output is a folder by design (an index), an
   existing output needs ``force``, and no parent is a file. ``force`` only ever replaces an
   output; it never deletes a folder given in place of a file.
2. **Stage**: every output is written into a staging folder ``.snca-staging-<token>`` beside
   it (one per output folder, so every final rename stays on one file system). The staging
   folder holds a lock file (an advisory ``flock``/``msvcrt`` lock held by the writer for its
   whole life), so another process can tell a live writer's staging folder from a leftover.
3. **Commit**: the staged files are flushed to disk, then a journal naming each
   ``(staged, target)`` pair and the staged entry's inode is written atomically into the first
   staging folder: that is the commit point. Each pair is then published by ``os.replace``
   (files: the target is the old or the new file at every instant) or, for a folder that
   already exists, by an atomic exchange of the two folders (Linux ``renameat2
   RENAME_EXCHANGE``; elsewhere two renames, recovered on the next run).
4. **Recover**: :func:`recover_outputs` (called by every writer before it starts, and by
   :func:`snca_cli.tasks.index.store.read_index` when an index is absent) finishes a committed
   journal whose writer died (roll forward: every target becomes the new one) and deletes the
   staging folders of writers that died before their commit point (the old outputs stay).

A kill at any moment therefore leaves each target as its old or new complete version, and the
next run completes the set to the new one or leaves the old one. ``SNCA_FAULT_AT=N`` (a test
hook) kills the process with SIGKILL at the N-th file operation of a commit.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyogrio.errors import DataLayerError, DataSourceError
from rasterio.errors import RasterioError

from snca_cli.errors import SncaError, check_utf8_path, first_line
from snca_cli.runtime.file_lock import FileLock
from snca_cli.runtime.paths import is_remote

#: Name prefix of staging folders (hidden; recognised and cleaned by :func:`recover_outputs`).
STAGING_PREFIX = ".snca-staging-"
#: The lock file a writer holds in its staging folder.
OWNER_NAME = "owner.lock"
#: The commit journal in the first staging folder of a set.
JOURNAL_NAME = "journal.json"
#: In the other staging folders of a set: the path of the first one.
PRIMARY_NAME = "primary"
#: Seconds after which a staging folder without lock file is a leftover (killed while made).
ORPHAN_AGE_S = 60.0
#: Errors of the writers (the OS, GDAL through rasterio, OGR through pyogrio) that a failed
#: output write raises; they become one-line SncaErrors.
WRITE_ERRORS = (OSError, RasterioError, DataSourceError, DataLayerError)
#: Free bytes under which a failed write is taken for a full disk (GDAL and SQLite do not
#: always say so: "Failed to commit transaction").
LOW_SPACE_BYTES = 1 << 20
#: Environment variable of the fault-injection test hook.
FAULT_ENV = "SNCA_FAULT_AT"

_fault_count = 0


def fault_point() -> None:
    """Count one file operation; with ``SNCA_FAULT_AT=N`` SIGKILL the process at the N-th.

    A test hook: it lets tests kill a writer between every pair of file operations.
    """
    global _fault_count
    target = os.environ.get(FAULT_ENV)
    if not target:
        return
    _fault_count += 1
    if _fault_count == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


# -- path checks -------------------------------------------------------------------------------


def check_output_paths(
    paths: Sequence[Path], force: bool, folders: Sequence[Path] = ()
) -> list[Path]:
    """Check a command's output paths before any work; return them as given.

    Raises SncaError when two outputs are one path, an output is an existing folder (unless it
    is one of ``folders``, the outputs that are folders by design), an output exists and
    ``force`` is not set, or a parent is not a folder. Makes the parent folders.
    """
    seen: dict[str, Path] = {}
    folder_keys = {_key(Path(f)) for f in folders}
    for path in map(Path, paths):
        check_utf8_path(path, "output")
        if is_remote(path):
            raise SncaError(f"cannot write {path}: outputs must be local files")
        key = _key(path)
        if key in seen:
            raise SncaError(f"two outputs are the same file {path} ({seen[key]}); name them apart")
        seen[key] = path
        if path.is_dir() and key not in folder_keys:
            raise SncaError(
                f"output {path} is an existing folder; name a file (nothing was deleted)"
            )
        if (path.exists() or path.is_symlink()) and not force:
            raise SncaError(f"{path} exists; use --force to overwrite it")
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            raise SncaError(f"cannot write {path}: {parent} is not a folder")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SncaError(f"cannot create folder {parent}: {exc.strerror or exc}") from None
    return [Path(p) for p in paths]


def check_writable(path: Path, force: bool) -> None:
    """:func:`check_output_paths` for one output file."""
    check_output_paths([Path(path)], force)


def _key(path: Path) -> str:
    """What identifies an output path (its absolute, normalised form)."""
    return os.path.normcase(os.path.abspath(path))


# -- the transaction ---------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class _Staging:
    """The staging folder of one output folder."""

    directory: Path
    lock: FileLock


class OutputSet:
    """The outputs of one command, staged and published together (see the module docstring).

    Use :func:`atomic_outputs`; :meth:`path` gives where to write each output.
    """

    def __init__(self, targets: Sequence[Path], force: bool, folders: Sequence[Path] = ()) -> None:
        self.targets = check_output_paths(targets, force, folders)
        self._folders = {_key(Path(f)) for f in folders}
        for parent in {t.parent for t in self.targets}:
            recover_outputs(parent)
        self._staging: dict[str, _Staging] = {}
        self._paths: dict[str, Path] = {}
        try:
            for target in self.targets:
                staging = self._staging_for(target.parent)
                staged = staging.directory / target.name
                if _key(target) in self._folders:
                    staged.mkdir()
                    staged.chmod(0o777 & ~_umask())
                self._paths[_key(target)] = staged
        except BaseException:
            self.abort()
            raise

    def _staging_for(self, parent: Path) -> _Staging:
        key = _key(parent)
        if key not in self._staging:
            directory = parent / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
            try:
                directory.mkdir()
            except OSError as exc:
                raise _write_error(exc, parent) from None
            lock = FileLock(directory / f"{OWNER_NAME}.new")
            lock.acquire(blocking=True)
            # the lock file appears under its name only once held: a recovery never sees it free
            os.replace(lock.path, directory / OWNER_NAME)
            lock.path = directory / OWNER_NAME
            if self._staging:  # not the first: point to the first, which holds the journal
                first = next(iter(self._staging.values())).directory
                (directory / PRIMARY_NAME).write_text(os.path.abspath(first))
            self._staging[key] = _Staging(directory, lock)
        return self._staging[key]

    def path(self, target: Path) -> Path:
        """Where to write ``target`` (a path inside a staging folder)."""
        return self._paths[_key(Path(target))]

    def commit(self) -> None:
        """Flush, journal and publish every output (see the module docstring)."""
        pairs = []
        for target in self.targets:
            staged = self.path(target)
            if not (staged.exists() or staged.is_symlink()):
                raise SncaError(f"internal error: {target.name} was not written")
            _flush(staged)
            pairs.append(
                {
                    "staged": os.path.abspath(staged),
                    "target": os.path.abspath(target),
                    "inode": staged.stat().st_ino,
                }
            )
        primary = next(iter(self._staging.values())).directory
        journal = primary / JOURNAL_NAME
        part = primary / f"{JOURNAL_NAME}.part"
        part.write_text(json.dumps({"pairs": pairs}))
        _fsync_file(part)
        fault_point()
        os.replace(part, journal)  # the commit point
        _fsync_dir(primary)
        fault_point()
        _publish(pairs)
        self.abort()

    def space_left(self) -> int:
        """The fewest free bytes on the file systems of the staging folders."""
        free = []
        for staging in self._staging.values():
            with contextlib.suppress(OSError):
                free.append(shutil.disk_usage(staging.directory).free)
        return min(free, default=LOW_SPACE_BYTES)

    def abort(self) -> None:
        """Remove the staging folders (on success: what was replaced); idempotent."""
        for staging in reversed(list(self._staging.values())):
            staging.lock.release()
            fault_point()
            shutil.rmtree(staging.directory, ignore_errors=True)
        self._staging.clear()


@contextlib.contextmanager
def atomic_outputs(
    targets: Sequence[Path], force: bool = False, folders: Sequence[Path] = ()
) -> Iterator[OutputSet]:
    """Stage ``targets`` and publish them together when the block succeeds.

    On any exception (KeyboardInterrupt included) the staged files are removed and every target
    is left exactly as it was. ``folders`` are the targets that are folders (made empty in the
    staging area; an existing one is swapped whole). A write that fails for lack of space or
    permission raises SncaError naming the cause.
    """
    outputs = OutputSet(targets, force, folders)
    try:
        yield outputs
        outputs.commit()
    except BaseException as exc:
        full = _is_disk_full(exc) or (
            isinstance(exc, WRITE_ERRORS) and outputs.space_left() < LOW_SPACE_BYTES
        )
        outputs.abort()
        if full:
            raise SncaError(_disk_full_message(outputs.targets)) from None
        if isinstance(exc, OSError):
            raise _write_error(exc, outputs.targets[0].parent) from None
        if isinstance(exc, WRITE_ERRORS):
            names = ", ".join(str(t) for t in outputs.targets)
            message = f"cannot write {names}: {first_line(exc)}; nothing was changed"
            raise SncaError(message) from None
        raise


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path for one output (a folder with ``directory``); see
    :func:`atomic_outputs`."""
    path = Path(path)
    with atomic_outputs([path], force, folders=[path] if directory else ()) as outputs:
        yield outputs.path(path)


def _is_disk_full(exc: BaseException) -> bool:
    """Whether an error (an OSError, or GDAL's and OGR's) says the disk is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk is full" in text


def _disk_full_message(targets: Sequence[Path]) -> str:
    names = ", ".join(str(t) for t in targets)
    return f"no space left on the device to write {names}; nothing was changed"


def _write_error(exc: OSError, where: Path) -> SncaError:
    """A one-line error for a failed write (the outputs were left as they were)."""
    if _is_disk_full(exc):
        return SncaError(f"no space left on the device in {where}; nothing was changed")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SncaError(f"cannot write in {where}: {exc.strerror}; nothing was changed")
    return SncaError(f"cannot write in {where}: {exc.strerror or exc}; nothing was changed")


# -- publishing and recovery -------------------------------------------------------------------


def _flush(path: Path) -> None:
    """fsync a staged file, or every file of a staged folder, and the folder itself."""
    if path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                _fsync_file(child)
        _fsync_dir(path)
    else:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - folders cannot be opened there
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system cannot, and nothing was changed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _publish(pairs: list[dict]) -> None:
    """Make every target its staged version; idempotent (a recovery runs it again)."""
    for number, pair in enumerate(pairs):
        staged, target = Path(pair["staged"]), Path(pair["target"])
        if _inode(target) == pair["inode"]:
            continue  # published before a kill
        if not (staged.exists() or staged.is_symlink()):
            continue  # published and its folder already cleaned
        if staged.is_dir() and target.exists():
            fault_point()
            if not exchange(staged, target):  # portable: two renames, recovered if killed
                os.rename(target, staged.parent / f"replaced-{number}")
                fault_point()
                os.rename(staged, target)
        else:
            fault_point()
            os.replace(staged, target)
        _fsync_dir(target.parent)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def recover_outputs(directory: Path) -> None:
    """Finish or clean what writers killed in ``directory`` left (see the module docstring).

    Staging folders whose lock is held belong to a live writer and are left alone. Never
    raises for a folder it cannot read or change.
    """
    try:
        entries = [p for p in Path(directory).iterdir() if p.name.startswith(STAGING_PREFIX)]
    except OSError:
        return
    for staging in entries:
        with contextlib.suppress(OSError):
            _recover_one(staging)


def _recover_one(staging: Path) -> None:
    lock = FileLock(staging / OWNER_NAME)
    try:
        if not lock.acquire(blocking=False, create=False):
            return  # a live writer's
    except FileNotFoundError:  # being set up, or killed before it had a lock
        if time.time() - staging.stat().st_mtime > ORPHAN_AGE_S:
            shutil.rmtree(staging, ignore_errors=True)
        return
    try:
        pointer = staging / PRIMARY_NAME
        if pointer.is_file():
            primary = Path(pointer.read_text().strip())
            if primary.is_dir() and primary != staging:
                _recover_one(primary)  # finishes the set (or drops it) first
                if primary.is_dir():
                    return  # its writer lives: this folder is still its
        journal = staging / JOURNAL_NAME
        if journal.is_file():
            _publish(json.loads(journal.read_text())["pairs"])
    finally:
        lock.release()
    shutil.rmtree(staging, ignore_errors=True)
