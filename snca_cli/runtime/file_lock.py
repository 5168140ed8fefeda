"""An exclusive advisory lock on a file, dropped by the operating system when its holder exits."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

#: Opens that refuse a symbolic link as the last component (where the system has them).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FileLock:
    """An exclusive advisory lock on a file (``flock`` on POSIX, ``msvcrt.locking`` on Windows).

    The operating system drops it when the holder exits, however it exits (kill -9 included), so
    a lock file left behind by a killed holder never blocks anyone.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: int | None = None

    def acquire(self, blocking: bool, create: bool = True) -> bool:
        """Take the lock; with ``blocking`` False return False at once when it is held.

        With ``create`` False a missing lock file raises FileNotFoundError. A lock file that is
        a symbolic link is never opened (OSError), since taking the lock writes into the file.
        A lock taken on a file that its previous holder removed meanwhile (see :meth:`release`)
        is dropped and taken again on the file now at the path, so two holders never coexist.
        """
        while True:
            flags = os.O_RDWR | _NOFOLLOW | (os.O_CREAT if create else 0)
            handle = os.open(self.path, flags, 0o666)
            try:
                if not _try_lock(handle, blocking):
                    os.close(handle)
                    return False
                if _is_at(handle, self.path):
                    # the pid only tells waiters who holds it: a full disk does not stop the lock
                    with contextlib.suppress(OSError):
                        os.ftruncate(handle, 0)
                        os.write(handle, str(os.getpid()).encode())
                    self._handle = handle
                    return True
            except BaseException:
                os.close(handle)
                raise
            os.close(handle)  # a removed file: try the one at the path now
            if not create and not self.path.exists():
                raise FileNotFoundError(self.path)

    def holder(self) -> str:
        """The pid written by the lock's holder, or ``?``."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self, remove: bool = False) -> None:
        """Drop the lock; with ``remove`` delete the lock file first (while still holding it,
        so a waiter that opened it notices and retries); idempotent."""
        if self._handle is not None:
            if remove and sys.platform != "win32":
                with contextlib.suppress(OSError):
                    self.path.unlink()
            with contextlib.suppress(OSError):
                _unlock(self._handle)
            os.close(self._handle)
            self._handle = None


def _is_at(handle: int, path: Path) -> bool:
    """Whether the open file ``handle`` is still the file at ``path``."""
    try:
        here, there = os.fstat(handle), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: int, blocking: bool) -> bool:
        try:
            msvcrt.locking(handle, msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if blocking:
                raise
            return False

    def _unlock(handle: int) -> None:
        os.lseek(handle, 0, os.SEEK_SET)
        msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: int, blocking: bool) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            return False

    def _unlock(handle: int) -> None:
        fcntl.flock(handle, fcntl.LOCK_UN)
