"""Write outputs atomically: into a temporary sibling first, renamed into place only on success."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from snca_cli.errors import SncaError


def check_writable(path: Path, force: bool) -> None:
    """Refuse an existing output unless ``force`` is set; make sure the parent folder exists."""
    path = Path(path)
    if path.exists() and not force:
        raise SncaError(f"{path} exists; use --force to overwrite it")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise SncaError(f"cannot write {path}: {parent} is not a folder")
    parent.mkdir(parents=True, exist_ok=True)


def _umask() -> int:
    """The process's file-creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_output(path: Path, force: bool = False, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    On any exception (KeyboardInterrupt included) the temporary file or folder is removed and
    ``path`` is left exactly as it was. With ``directory=True`` the temporary path is a folder.
    """
    path = Path(path)
    check_writable(path, force)
    prefix = f".{path.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's folder is private (0700); outputs are not
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        tmp.unlink()  # writers such as GDAL want to create the file themselves
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if path.exists():
        if directory:
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
            return
        if path.is_dir():
            _remove(path)
    os.replace(tmp, path)
