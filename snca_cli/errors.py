"""User-facing errors: raised anywhere in snca, shown by the CLI and the QGIS plugin as one line."""

from __future__ import annotations

import os

#: What a user without the training extra is told to install.
TRAIN_EXTRA_HINT = 'this command needs the training extra: pip install "snca[train]"'


class SncaError(Exception):
    """An error caused by the user's input (a missing file, a bad option, a mismatched model).

    The CLI prints ``error: <message>`` and exits with code 2; it never shows a traceback for it.
    """


class Cancelled(SncaError):
    """Raised when a ``cancelled`` hook returned True; nothing further was produced."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


def check_utf8_path(path: os.PathLike[str] | str, role: str) -> None:
    """Refuse a path GDAL cannot take: a file name that is not valid UTF-8 (read from the file
    system as Python's surrogate escapes)."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise SncaError(
            f"{role} {shown} has a name that is not valid UTF-8, which GDAL cannot open; rename it"
        ) from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none: how a
    foreign error (GDAL, onnxruntime, torch) is quoted inside a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def debugging() -> bool:
    """Whether ``SNCA_DEBUG`` is set: then tracebacks and the libraries' own messages (Python
    warnings, GDAL's, Dask's logs) are shown."""
    return bool(os.environ.get("SNCA_DEBUG"))
