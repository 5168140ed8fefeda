"""How a raster path reaches GDAL: local files, GDAL's virtual file systems and URLs.

``pathlib`` collapses ``//``, so a URL given as a path (``/vsicurl/https://host/a.tif``, or
``https://host/a.tif`` itself) arrives as ``/vsicurl/https:/host/a.tif``; :func:`gdal_path`
gives GDAL the name the user typed. Remote sources are neither checked for existence nor
resolved against the working folder: GDAL opens them as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: A ``/vsi...`` prefix followed by another one whose leading ``/`` was collapsed.
_COLLAPSED_CHAIN = re.compile(r"^((?:/{1,2}vsi[a-z0-9_]+)*/vsi[a-z0-9_]+/)(?=vsi[a-z0-9_]+/)")
#: ``scheme:/`` left of a URL after ``pathlib`` collapsed its ``//`` (at the start, or after
#: ``/vsi...`` prefixes).
_COLLAPSED_URL = re.compile(r"^((?:/{1,2}vsi[a-z0-9_]+)*/?)([a-zA-Z][a-zA-Z0-9+.-]+):/(?!/)")


def gdal_path(path: os.PathLike[str] | str) -> str:
    """The name to give GDAL for ``path`` (collapsed ``//`` of URLs and chains restored)."""
    text = os.fspath(path)
    if text.startswith("/vsi"):
        while (restored := _COLLAPSED_CHAIN.sub(r"\1/", text, count=1)) != text:
            text = restored
        return _COLLAPSED_URL.sub(r"\1\2://", text, count=1)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:/(?!/)", text) and text[1] != ":":
        return _COLLAPSED_URL.sub(r"\1\2://", text, count=1)  # not a Windows drive (C:/...)
    return text


def is_remote(path: os.PathLike[str] | str) -> bool:
    """Whether ``path`` names a GDAL virtual file system (``/vsi...``) or a URL."""
    text = gdal_path(path)
    return text.startswith("/vsi") or "://" in text


def real_path(path: os.PathLike[str] | str) -> Path:
    """``path`` absolute with symbolic links resolved as far as they go: a link loop or a
    missing part is left as it is (for the check that names it), never an exception."""
    return Path(os.path.realpath(path))


def absolute_source(path: os.PathLike[str] | str) -> str:
    """A raster's lasting name: the absolute local path, or the remote name as it is."""
    return gdal_path(path) if is_remote(path) else str(real_path(path))
