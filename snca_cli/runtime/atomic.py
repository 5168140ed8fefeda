"""Write the outputs of one command as one transaction: all of them or none, never half of one.

Protocol (:class:`OutputSet`):

1. **Check** every output path before any work (:func:`check_output_paths`), symbolic links
   resolved once (:func:`real_output`): the paths are distinct, none lies inside another or
   inside a folder snca wrote as an output (:func:`output_folder_kind`), none is an existing
   folder unless the output is a folder by design (an index), an existing output needs
   ``force``, and no parent is a file. ``force`` only ever replaces what
   the command itself would have written: a file the user named, or an output that its
   :class:`OwnOutput` recognises as written by snca (a folder by design, a file written beside
   a named one); it never deletes a folder given in place of a file, nor a folder or a sibling
   file snca cannot tell it wrote. The check is made again just before publishing.
2. **Stage**: every output is written into a staging folder ``.snca-staging-<token>`` beside
   it (one per output folder, so every final rename stays on one file system; only its owner
   may enter it). The staging folder holds a random owner token (``owner.token``, readable by
   its owner only) and a lock file (an advisory ``flock``/``msvcrt`` lock held by the writer for
   its whole life), so another process can tell a live writer's staging folder from a leftover.
3. **Commit**: the staged files are flushed to disk, then each staging folder gets a journal
   naming its outputs (plain file names: staged in the staging folder, published into its
   parent) and each staged entry's inode, with a checksum keyed with the folder's token. The
   other staging folders' journals name the first one; the first one's journal, written last
   and naming the others, is the commit point. Each output is then published by
   ``os.replace`` (files: the target is the old or the new file at every instant) or, for a
   folder that already exists, by an atomic exchange of the two folders (Linux ``renameat2
   RENAME_EXCHANGE``; elsewhere two renames, recovered on the next run).
4. **Recover**: :func:`recover_outputs` (called by every writer before it starts, and by
   :func:`snca_cli.tasks.index.store.read_index` when an index is absent) finishes a committed
   set whose writer died (roll forward: every target becomes the new one) and deletes the
   staging folders of writers that died before their commit point (the old outputs stay).

A kill at any moment therefore leaves each target as its old or new complete version, and the
next run completes the set to the new one or leaves the old one. ``SNCA_FAULT_AT=N`` (a test
hook) kills the process with SIGKILL at the N-th file operation of a commit.

Recovery trusts only what snca wrote: a staging folder is acted on only when it is a real
folder of the running user whose journal matches its checksum and names plain files of the
folder's own parent that stay inside it after resolving symbolic links; another staging folder
of its set is followed only when it verifies the same way and names it back. Anything else is
left alone and reported in one warning line (:func:`recovery_warnings`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from pyogrio.errors import DataLayerError, DataSourceError
from rasterio.errors import RasterioError

from snca_cli.errors import SncaError, check_utf8_path, first_line
from snca_cli.runtime.file_lock import FileLock
from snca_cli.runtime.paths import is_remote, real_path

#: Name prefix of staging folders (hidden; recognised and cleaned by :func:`recover_outputs`).
STAGING_PREFIX = ".snca-staging-"
#: The lock file a writer holds in its staging folder.
OWNER_NAME = "owner.lock"
#: The random token of a staging folder (hex), the key of its journal's checksum.
TOKEN_NAME = "owner.token"
#: The journal of a staging folder (the first one's is the commit point of the set).
JOURNAL_NAME = "journal.json"
#: The journal format recovery accepts (earlier ones named absolute paths: never trusted).
JOURNAL_FORMAT = 2
#: Bytes of an owner token, and the most bytes of a journal recovery reads.
TOKEN_BYTES, MAX_JOURNAL_BYTES = 32, 1 << 20
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
#: The name of a staging folder (its token is 12 hex digits).
_STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + "[0-9a-f]{12}")
#: Opens that refuse a symbolic link as the last component (where the system has them).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_fault_count = 0
_log = logging.getLogger(__name__)
#: Where recovery warnings go (see :func:`recovery_warnings`), each with the folders it named.
_sinks: list[tuple[Callable[[str], None], set[str]]] = []
#: The folders reported through the log (outside :func:`recovery_warnings`).
_logged: set[str] = set()


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


@dataclass(frozen=True)
class OwnOutput:
    """How to recognise an existing output that snca wrote, which ``force`` may replace
    although the user did not name it as a file (a folder by design, a file beside a named
    one).

    ``what`` names it in messages ("a chips folder"); ``mismatch(path)`` says why the existing
    ``path`` is not one (None when it is).
    """

    what: str
    mismatch: Callable[[Path], str | None]


def unlisted_entry(folder: Path, files: set[str]) -> str | None:
    """Why ``folder`` holds more than ``files`` (paths relative to it, ``/``-separated; their
    folders are implied), or None: the first other entry (symbolic links are not followed)."""
    errors: list[OSError] = []
    for root, dirs, names in os.walk(folder, onerror=errors.append):
        for name in sorted(dirs + names):
            relative = Path(root, name).relative_to(folder).as_posix()
            listed = relative in files if name in names else _holds(files, relative)
            if not listed or os.path.islink(Path(root, name)):
                return f"it holds {relative}, which snca did not write there"
    if errors:
        return f"cannot read {errors[0].filename}: {errors[0].strerror}"
    return None


def read_record(path: Path) -> tuple[object, str | None]:
    """The JSON value of a record file by which an :class:`OwnOutput` recognises an output
    (a manifest, ``chips.json``), and None; or None and why it cannot be one."""
    try:
        return json.loads(path.read_bytes()), None
    except FileNotFoundError:
        return None, f"it has no {path.name}"
    except OSError as exc:
        return None, f"cannot read its {path.name}: {exc.strerror or exc}"
    except ValueError:
        return None, f"its {path.name} is not JSON"


def _holds(files: set[str], folder: str) -> bool:
    return any(name.startswith(f"{folder}/") for name in files)


#: Files that mark a folder as one output snca wrote (every file of a row present), with what
#: it is: nothing is ever written inside such a folder but that output itself.
OUTPUT_FOLDER_MARKERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("manifest.json", "tiles.npy"), "an snca index"),
    (("metrics.json", "confusion.png"), "an evaluation report"),
    (("chips.json",), "a chips folder"),
    (("unit.json", "tiles.npy"), "a work unit of a cluster run"),
)


@dataclass(frozen=True)
class _Output:
    """One output of a command: as named (for messages) and where it is written."""

    given: Path
    real: Path  # where it is written (:func:`real_output`)
    folder: bool  # a folder by design (an index, a report)
    own: OwnOutput | None  # what recognises it as snca's (:func:`check_replaceable`)


def real_output(path: Path, folder: bool = False) -> Path:
    """Where an output is written: its absolute path with symbolic links resolved, once, so
    that a run writes where it checked even if a link changes meanwhile.

    A folder output is resolved whole (an index named through a link is written where the link
    points, and the link stays a link); a file output's folder is resolved, not the file (a link
    named as the file is replaced, never written through).
    """
    path = Path(path)
    if folder:
        return real_path(path)
    return real_path(path.parent) / path.name


def output_folder_kind(folder: Path) -> str | None:
    """What output of snca ``folder`` is (a staging folder, or one of
    :data:`OUTPUT_FOLDER_MARKERS`: "an snca index", ...), or None for any other folder."""
    if folder.name.startswith(STAGING_PREFIX):
        return "an snca staging folder"
    for names, kind in OUTPUT_FOLDER_MARKERS:
        if all((folder / name).is_file() for name in names):
            return kind
    return None


def check_output_paths(
    paths: Sequence[Path],
    force: bool,
    folders: Sequence[Path] = (),
    own: Mapping[Path, OwnOutput] | None = None,
) -> list[Path]:
    """Check a command's output paths before any work; return them as given.

    Symbolic links are resolved once (:func:`real_output`), so two spellings of one file are
    one output. Raises SncaError when two outputs are one path or one lies inside another, an
    output would land inside a folder snca wrote as an output (an index, an evaluation report,
    a chips folder, a staging folder: :func:`output_folder_kind`), an output is an existing
    folder (unless it is one of ``folders``, the outputs that are folders by design), an
    existing output is not replaceable (:func:`check_replaceable`; ``own`` recognises the
    outputs snca wrote that the user did not name as files), an output exists and ``force`` is
    not set, or a parent is not a folder. Makes the parent folders.
    """
    return [output.given for output in _check_outputs(paths, force, folders, own)]


def _check_outputs(
    paths: Sequence[Path],
    force: bool,
    folders: Sequence[Path] = (),
    own: Mapping[Path, OwnOutput] | None = None,
) -> list[_Output]:
    """:func:`check_output_paths`, returning each output with where it is written."""
    folder_keys = {_key(Path(f)) for f in folders}
    owned = {_key(Path(p)): kind for p, kind in (own or {}).items()}
    outputs: dict[str, _Output] = {}
    for path in map(Path, paths):
        check_utf8_path(path, "output")
        if is_remote(path):
            raise SncaError(f"cannot write {path}: outputs must be local files")
        folder = _key(path) in folder_keys
        output = _Output(path, real_output(path, folder), folder, owned.get(_key(path)))
        key = _key(output.real)
        if key in outputs:
            raise SncaError(
                f"two outputs are the same file {path} ({outputs[key].given}); name them apart"
            )
        outputs[key] = output
        if not folder and output.real.name == "..":
            raise SncaError(f"output {path} names no file; name a file")
        if path.is_dir() and not folder:
            raise SncaError(
                f"output {path} is an existing folder; name a file (nothing was deleted)"
            )
        check_replaceable(path, folder, output.own)
        if (path.exists() or path.is_symlink()) and not force:
            raise SncaError(f"{path} exists; use --force to overwrite it")
    _check_placement(outputs)
    for output in outputs.values():
        _make_parent(output)
    return list(outputs.values())


def _check_placement(outputs: dict[str, _Output]) -> None:
    """Refuse an output inside another output of the set, or inside a folder that is an output
    snca wrote (:func:`output_folder_kind`)."""
    for output in outputs.values():
        for folder in output.real.parents:
            other = outputs.get(_key(folder))
            if other is not None:
                raise SncaError(
                    f"output {output.given} lies inside output {other.given}; name them apart"
                )
        check_outside_output_folders(output.given, output.real)


def check_outside_output_folders(given: Path, real: Path) -> None:
    """Refuse an output (``given`` as named, ``real`` where it is written) that would land
    inside a folder snca wrote as an output (:func:`output_folder_kind`)."""
    for folder in real.parents:
        kind = output_folder_kind(folder)
        if kind is not None:
            raise SncaError(
                f"output {given} would land inside {_as_named(given, folder)}, {kind}; "
                "write it outside that folder (nothing was changed)"
            )


def _as_named(given: Path, folder: Path) -> Path:
    """A folder on an output's real path, spelled as in the output's name where it is there."""
    for named in given.parents:
        if _key(real_output(named, folder=True)) == _key(folder):
            return named
    return folder


def _make_parent(output: _Output) -> None:
    """Make the folder an output is written into; SncaError when a parent is not a folder."""
    parent = output.real.parent
    if parent.exists() and not parent.is_dir():
        raise SncaError(f"cannot write {output.given}: {parent} is not a folder")
    if parent.is_symlink():  # still a link once resolved: a loop, or a link to nowhere
        raise SncaError(
            f"cannot write {output.given}: {parent} is a symbolic link that leads to no folder "
            "(a loop or a missing target)"
        )
    make_folder(parent)


def check_replaceable(path: Path, folder: bool, own: OwnOutput | None) -> None:
    """Raise SncaError unless ``--force`` may replace ``path`` when it exists: a file the user
    named (``own`` None), an empty folder, or what ``own`` recognises as written by snca. A
    folder (``folder``: an output that is a folder by design) is never replaced unrecognised.
    """
    if not (path.exists() or path.is_symlink()):
        return
    if folder and _is_empty_folder(path):
        return
    if own is None:
        if not folder:
            return
        reason, what = "snca cannot tell what wrote it", "a folder"
    else:
        reason, what = own.mismatch(path), own.what
        if reason is None:
            return
    raise SncaError(
        f"refusing to replace {path}: it is not {what} written by snca ({reason}); "
        "nothing was deleted"
    )


def _is_empty_folder(path: Path) -> bool:
    try:
        return path.is_dir() and not any(path.iterdir())
    except OSError:
        return False  # unreadable: its OwnOutput says why it cannot be recognised


def check_writable(path: Path, force: bool) -> None:
    """:func:`check_output_paths` for one output file."""
    check_output_paths([Path(path)], force)


def _key(path: Path) -> str:
    """What identifies a path as spelled (its absolute, normalised form; an output's real path
    identifies the file it is)."""
    return os.path.normcase(os.path.abspath(path))


# -- the transaction ---------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class _Staging:
    """The staging folder of one output folder, and its owner token."""

    directory: Path
    lock: FileLock
    token: str


class OutputSet:
    """The outputs of one command, staged and published together (see the module docstring).

    Use :func:`atomic_outputs`; :meth:`path` gives where to write each output.
    """

    def __init__(
        self,
        targets: Sequence[Path],
        force: bool,
        folders: Sequence[Path] = (),
        own: Mapping[Path, OwnOutput] | None = None,
    ) -> None:
        outputs = _check_outputs(targets, force, folders, own)
        self.targets = [output.given for output in outputs]
        for parent in {output.real.parent for output in outputs}:
            recover_outputs(parent)
        self._staging: dict[str, _Staging] = {}
        #: each output and its staged path, by the output as named
        self._outputs: dict[str, tuple[_Output, Path]] = {}
        try:
            for output in outputs:
                staging = self._staging_for(output.real.parent)
                staged = staging.directory / output.real.name
                if output.folder:
                    staged.mkdir()
                    staged.chmod(0o777 & ~_umask())
                self._outputs[_key(output.given)] = output, staged
        except BaseException as exc:
            self._fail(exc, output.real.parent)

    def _staging_for(self, parent: Path) -> _Staging:
        key = _key(parent)
        if key not in self._staging:
            directory = parent / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
            directory.mkdir(mode=0o700)  # nobody else may plant or change files in it
            lock = FileLock(directory / f"{OWNER_NAME}.new")
            try:
                token = secrets.token_hex(TOKEN_BYTES)
                _write_token(directory / TOKEN_NAME, token)  # before the lock file: see recovery
                lock.acquire(blocking=True)
                # the lock file appears under its name only once held: a recovery never sees
                # it free
                os.replace(lock.path, directory / OWNER_NAME)
            except BaseException:  # e.g. no byte left for the token: leave nothing behind
                lock.release()
                _remove(directory)
                raise
            lock.path = directory / OWNER_NAME
            self._staging[key] = _Staging(directory, lock, token)
        return self._staging[key]

    def path(self, target: Path) -> Path:
        """Where to write ``target`` (a path inside a staging folder)."""
        return self._outputs[_key(Path(target))][1]

    def commit(self) -> None:
        """Check again that every existing target may be replaced (it may have changed while
        the outputs were made), then flush, journal and publish every output (see the module
        docstring)."""
        for output, _ in self._outputs.values():
            check_replaceable(output.real, output.folder, output.own)
        pairs: dict[str, list[dict]] = {key: [] for key in self._staging}
        for output, staged in self._outputs.values():
            target = output.real
            if not (staged.exists() or staged.is_symlink()):
                raise SncaError(f"internal error: {target.name} was not written")
            _flush(staged)
            entry = {"name": target.name, "inode": staged.stat().st_ino}
            pairs[_key(target.parent)].append(entry)
        (first_key, primary), *others = self._staging.items()
        pointer = os.path.abspath(primary.directory)
        for key, member in others:
            _write_journal(member, {"pairs": pairs[key], "primary": pointer, "members": []})
        members = [os.path.abspath(member.directory) for _, member in others]
        record = {"pairs": pairs[first_key], "primary": None, "members": members}
        _write_journal(primary, record)  # the commit point
        fault_point()
        for key, staging in self._staging.items():
            _publish(staging.directory, pairs[key])
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
            _remove(staging.directory)
        self._staging.clear()

    def _fail(self, exc: BaseException, where: Path) -> NoReturn:
        """Abort after ``exc`` and raise it, a failed write as one SncaError line: a full disk
        (or a write error with under :data:`LOW_SPACE_BYTES` free) as such, another OSError as
        a failed write in ``where``."""
        full = _is_disk_full(exc) or (
            isinstance(exc, WRITE_ERRORS) and self.space_left() < LOW_SPACE_BYTES
        )
        self.abort()
        if full:
            raise SncaError(_disk_full_message(self.targets)) from None
        if isinstance(exc, OSError):
            raise _write_error(exc, where) from None
        if isinstance(exc, WRITE_ERRORS):
            names = ", ".join(str(t) for t in self.targets)
            message = f"cannot write {names}: {first_line(exc)}; nothing was changed"
            raise SncaError(message) from None
        raise exc


@contextlib.contextmanager
def atomic_outputs(
    targets: Sequence[Path],
    force: bool = False,
    folders: Sequence[Path] = (),
    own: Mapping[Path, OwnOutput] | None = None,
) -> Iterator[OutputSet]:
    """Stage ``targets`` and publish them together when the block succeeds.

    On any exception (KeyboardInterrupt included) the staged files are removed and every target
    is left exactly as it was. ``folders`` are the targets that are folders (made empty in the
    staging area; an existing one is swapped whole, only when ``own`` recognises it); ``own``
    recognises the existing targets snca wrote that the user did not name as files
    (:func:`check_replaceable`). A write that fails for lack of space or permission (making
    the staging folders included) raises SncaError naming the cause.
    """
    outputs = OutputSet(targets, force, folders, own)
    try:
        yield outputs
        outputs.commit()
    except BaseException as exc:
        outputs._fail(exc, outputs.targets[0].parent)


@contextlib.contextmanager
def atomic_output(
    path: Path, force: bool = False, directory: bool = False, own: OwnOutput | None = None
) -> Iterator[Path]:
    """Yield a temporary path for one output (a folder with ``directory``, replaced only when
    ``own`` recognises it); see :func:`atomic_outputs`."""
    path = Path(path)
    folders = [path] if directory else []
    with atomic_outputs([path], force, folders, {path: own} if own else None) as outputs:
        yield outputs.path(path)


def make_folder(path: Path) -> None:
    """Create the folder ``path`` and its missing parents (an existing one is kept); a failure
    (a read-only or full disk) is one line naming where, like a failed output."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if _is_disk_full(exc):
            raise SncaError(_disk_full_message([path])) from None
        raise _write_error(exc, path.parent) from None


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
    """A one-line error for a failed write that is not a full disk (the outputs were left as
    they were)."""
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


def _publish(staging: Path, pairs: list[dict]) -> None:
    """Make each output of ``pairs`` (a file name, staged in ``staging``, published into its
    parent folder) its staged version; idempotent (a recovery runs it again)."""
    for number, pair in enumerate(pairs):
        staged, target = staging / pair["name"], staging.parent / pair["name"]
        if _inode(target) == pair["inode"]:
            continue  # published before a kill
        if not (staged.exists() or staged.is_symlink()):
            continue  # published and its folder already cleaned
        if staged.is_dir() and target.exists():
            fault_point()
            if not exchange(staged, target):  # portable: two renames, recovered if killed
                os.rename(target, staging / f"replaced-{number}")
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


def _remove(staging: Path) -> None:
    """Delete a staging folder, its lock file first: a kill in between leaves a folder without
    lock file, which a recovery deletes once it is ``ORPHAN_AGE_S`` old."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(staging).st_mode):  # never through a symbolic link
            os.unlink(staging / OWNER_NAME)
    shutil.rmtree(staging, ignore_errors=True)


# -- what a staging folder records, and how recovery verifies it -------------------------------


def _checksum(token: str, record: dict) -> str:
    """The checksum of a journal's ``record``: HMAC-SHA256 keyed with the folder's token."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(bytes.fromhex(token), body, hashlib.sha256).hexdigest()


def _write_token(path: Path, token: str) -> None:
    """Write a new staging folder's owner token, readable by its owner only, to disk."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        os.write(handle, token.encode())
        os.fsync(handle)
    finally:
        os.close(handle)


def _write_journal(staging: _Staging, record: dict) -> None:
    """Write the journal of a staging folder atomically and durably, with its checksum."""
    record = {"format": JOURNAL_FORMAT, "staging": staging.directory.name, **record}
    part = staging.directory / f"{JOURNAL_NAME}.part"
    part.write_text(json.dumps({**record, "checksum": _checksum(staging.token, record)}))
    _fsync_file(part)
    fault_point()
    os.replace(part, staging.directory / JOURNAL_NAME)
    _fsync_dir(staging.directory)


class _Distrusted(Exception):
    """A staging folder that is not as snca wrote it (the message says why): left alone."""


def _check_folder(path: Path, subject: str) -> None:
    """Raise _Distrusted unless ``path`` is a real folder (not a symbolic link) of this user."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise _Distrusted(f"{subject} is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise _Distrusted(f"{subject} is not a folder")
    _check_owner(info, subject)


def _check_owner(info: os.stat_result, subject: str) -> None:
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise _Distrusted(f"{subject} belongs to another user (uid {info.st_uid})")


def _of(part: str, subject: str) -> str:
    """How a report names a part of a staging folder: "its journal", "the journal of X"."""
    return f"its {part}" if subject == "it" else f"the {part} of {subject}"


def _own_file(path: Path, limit: int, subject: str) -> bool:
    """Whether ``path`` exists; raise _Distrusted unless it is a plain file (not a symbolic
    link) of this user of at most ``limit`` bytes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        raise _Distrusted(f"{_of(path.name, subject)} is not a file snca wrote")
    _check_owner(info, _of(path.name, subject))
    return True


def _read_own_file(path: Path, limit: int, subject: str) -> str | None:
    """The text of a file that passes :func:`_own_file`, read never through a symbolic link;
    None when it is absent."""
    if not _own_file(path, limit, subject):
        return None
    handle = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(handle, "rb") as stream:
        data = stream.read(limit + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Distrusted(f"{_of(path.name, subject)} is not a file snca wrote") from None


def _read_journal(staging: Path, subject: str = "it") -> dict | None:
    """The verified record of a staging folder's journal; None when it has none (its writer
    died before its commit point). Raises _Distrusted for anything snca did not write so: a
    folder that is a link or another user's, no owner token, a journal that does not match its
    checksum or is not in the current format, a name that is not a plain file name or leads
    outside the folder's parent through a symbolic link, a pointer to a non-staging folder."""
    _check_folder(staging, subject)
    token = _read_own_file(staging / TOKEN_NAME, 2 * TOKEN_BYTES, subject)
    if token is None or not re.fullmatch(f"[0-9a-f]{{{2 * TOKEN_BYTES}}}", token):
        raise _Distrusted(f"{subject} has no owner token written by snca")
    text = _read_own_file(staging / JOURNAL_NAME, MAX_JOURNAL_BYTES, subject)
    if text is None:
        return None
    journal = _of("journal", subject)
    try:
        data = json.loads(text)
    except ValueError:
        raise _Distrusted(f"{journal} is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("checksum"), str):
        raise _Distrusted(f"{journal} has no checksum")
    record = {key: value for key, value in data.items() if key != "checksum"}
    if not hmac.compare_digest(data["checksum"], _checksum(token, record)):
        raise _Distrusted(f"{journal} does not match its checksum")
    pairs, primary, members = record.get("pairs"), record.get("primary"), record.get("members")
    if not (
        record.get("format") == JOURNAL_FORMAT
        and record.get("staging") == staging.name
        and isinstance(pairs, list)
        and all(isinstance(p, dict) and type(p.get("inode")) is int for p in pairs)
        and isinstance(members, list)
        and (primary is None or not members)
    ):
        raise _Distrusted(f"{journal} is not in snca's current format")
    for name in [p.get("name") for p in pairs]:
        _check_name(staging, name, journal)
    for pointer in [primary, *members] if primary is not None else members:
        if not _is_staging_path(pointer):
            raise _Distrusted(f"{journal} points to {pointer!r}, not a staging folder")
    return record


def _check_name(staging: Path, name: object, journal: str) -> None:
    """Raise _Distrusted unless ``name`` is a plain file name that stays inside the staging
    folder and inside its parent after resolving symbolic links."""
    plain = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and os.path.basename(name) == name
        and not any(c in name for c in "/\\\0")
        and not os.path.splitdrive(name)[0]
        and not name.startswith(STAGING_PREFIX)
    )
    if not plain:
        raise _Distrusted(f"{journal} names {name!r}, not a file of its own folder")
    for folder in (staging, staging.parent):
        if not _inside(folder, folder / name):
            raise _Distrusted(f"{journal} names {name!r}, which leads outside {folder}")


def _inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` resolves (symbolic links followed) to something inside ``folder``."""
    real_folder, real = os.path.realpath(folder), os.path.realpath(path)
    return real != real_folder and os.path.commonpath([real_folder, real]) == real_folder


def _is_staging_path(value: object) -> bool:
    """Whether ``value`` is an absolute, normalised path of a staging folder."""
    return (
        isinstance(value, str)
        and os.path.isabs(value)
        and os.path.normpath(value) == value
        and _STAGING_NAME.fullmatch(os.path.basename(value)) is not None
    )


def _same(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


# -- recovery ----------------------------------------------------------------------------------


@contextlib.contextmanager
def recovery_warnings(sink: Callable[[str], None]) -> Iterator[None]:
    """Send the warning lines of recoveries in this block to ``sink`` (the CLI prints them as
    ``warning: LINE``), one per staging folder. Outside such a block they are logged (logger
    ``snca_cli.runtime.atomic``), one per staging folder and process."""
    _sinks.append((sink, set()))
    try:
        yield
    finally:
        _sinks.pop()


def _report(staging: Path, reason: str) -> None:
    """The one warning line about a staging folder recovery left alone."""
    sink, seen = _sinks[-1] if _sinks else (_log_warning, _logged)
    if str(staging) in seen:
        return
    seen.add(str(staging))
    sink(
        f"left {staging} alone: {reason}; snca acts only on staging folders it wrote "
        "(remove it if no snca run is writing there)"
    )


def _log_warning(line: str) -> None:
    _log.warning("%s", line)


def recover_outputs(directory: Path) -> None:
    """Finish or clean what writers killed in ``directory`` left (see the module docstring).

    Staging folders whose lock is held belong to a live writer and are left alone; so are
    those snca cannot verify it wrote, each reported in one warning line. Never raises for a
    folder it cannot read or change.
    """
    try:
        entries = [p for p in Path(directory).iterdir() if p.name.startswith(STAGING_PREFIX)]
    except OSError:
        return
    for staging in entries:
        with contextlib.suppress(OSError):
            _recover_one(staging)


def _recover_one(staging: Path, followed: bool = False) -> None:
    """Finish or drop one staging folder, or leave it alone and report why. ``followed``: it
    was reached from another folder of its set (then a folder without lock file is left to the
    recovery of its own parent)."""
    try:
        _check_folder(staging, "it")
        if not _own_file(staging / OWNER_NAME, MAX_JOURNAL_BYTES, "it"):
            # being set up, or killed before it had a lock
            if not followed and time.time() - os.lstat(staging).st_mtime > ORPHAN_AGE_S:
                _remove(staging)
            return
        lock = FileLock(staging / OWNER_NAME)
        if not lock.acquire(blocking=False, create=False):
            return  # a live writer's
        try:
            remove, then = _finish(staging)
        finally:
            lock.release()
    except _Distrusted as exc:
        _report(staging, str(exc))
        return
    if remove:
        _remove(staging)
    for folder in then:
        _recover_one(folder, followed=True)


def _finish(staging: Path) -> tuple[bool, list[Path]]:
    """Publish what a dead writer committed in ``staging`` (whose lock we hold). Returns
    whether to delete the folder, and the folders of its set to recover next.

    The first folder of a set publishes its outputs when its journal (the commit point)
    exists, recovers the other folders (each publishes its own outputs, into its own parent)
    and is deleted once none is left. Another folder publishes its outputs only when the first
    one's journal verifies and names it; without that journal the set was never committed.
    """
    record = _read_journal(staging)
    if record is None:
        return True, []  # killed before its commit point: the old outputs stay
    if record["primary"] is None:
        members = [Path(m) for m in record["members"] if os.path.lexists(m)]
        for member in members:
            _check_names_back(member, staging)
        _publish(staging, record["pairs"])
        for member in members:
            _recover_one(member, followed=True)
        return not any(os.path.lexists(m) for m in members), []
    primary = Path(record["primary"])
    if not os.path.lexists(primary):
        return True, []  # its first folder was dropped: the set was never committed
    first = _read_journal(primary, str(primary))
    if first is None:
        return True, []  # the set was never committed (its first folder is cleaned there)
    if first["primary"] is not None or not any(_same(m, staging) for m in first["members"]):
        raise _Distrusted(f"the journal of {primary} does not name it")
    _publish(staging, record["pairs"])
    return True, [primary]


def _check_names_back(member: Path, primary: Path) -> None:
    """Raise _Distrusted unless ``member`` is a staging folder snca wrote whose journal (if
    it has one left) names ``primary`` as its first folder. One without lock file is being
    deleted (:func:`_remove`): nothing of it is touched from here."""
    _check_folder(member, str(member))
    if not _own_file(member / OWNER_NAME, MAX_JOURNAL_BYTES, str(member)):
        return
    record = _read_journal(member, str(member))
    if record is not None and not (
        record["primary"] is not None and _same(record["primary"], primary)
    ):
        raise _Distrusted(f"the journal of {member} does not name it")
