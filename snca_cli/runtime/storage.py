"""Folders on this machine's disk or on object storage, the same way for every caller.

A cluster's workers need not share a file system with the client: the work units of a run
(:mod:`snca_cli.tasks.units`) and the outputs can live on object storage, named by URL
(``s3://bucket/run``, ``gs://...``, ``az://...``, any protocol of `fsspec
<https://filesystem-spec.readthedocs.io/>`_, Dask's own storage layer; ``pip install
"snca[cluster]"`` brings fsspec, ``s3fs``/``gcsfs``/``adlfs`` the protocols). A local folder is
a plain path and needs nothing beyond the standard library, so the single-process path and
the QGIS plugin never import fsspec.

A set of files is written so that a reader never takes a half-written set for a whole one:
locally as one folder, staged and renamed (:mod:`snca_cli.runtime.atomic`); on object storage
(where each object is written whole, but there is no rename) the files first and the
``last`` one, which names and checksums the others, at the end.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snca_cli.errors import SncaError, first_line
from snca_cli.runtime.atomic import OwnOutput, atomic_output, make_folder, recover_outputs
from snca_cli.runtime.paths import gdal_path

#: ``scheme://`` of a URL (a Windows drive ``C:/`` is not one).
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
#: GDAL's virtual file systems of object stores, and the fsspec protocol of each.
STORE_PREFIXES = {"/vsis3/": "s3", "/vsigs/": "gs", "/vsiaz/": "az", "/vsiadls/": "abfs"}
#: Install command printed when fsspec or a protocol's package is missing.
STORAGE_HINT = 'pip install "snca[cluster]" (and s3fs, gcsfs or adlfs for its protocol)'


def url_scheme(path: os.PathLike[str] | str) -> str | None:
    """The scheme of a storage URL (``s3``, ``gs``, ...), None for a local path. ``file://``
    names a local path; GDAL's ``/vsi...`` names are not storage URLs."""
    found = _URL.match(os.fspath(path))
    if found is None or found.group(1).lower() == "file":
        return None
    return found.group(1).lower()


def is_storage_url(path: os.PathLike[str] | str) -> bool:
    """Whether ``path`` names object storage (a URL) rather than a local path."""
    return url_scheme(path) is not None


def local_path(path: os.PathLike[str] | str) -> Path:
    """The local path of ``path`` (``file://`` stripped)."""
    text = os.fspath(path)
    return Path(text[len("file://") :] if text.lower().startswith("file://") else text)


def filesystem(url: str) -> Any:
    """The fsspec file system of ``url`` (one line when fsspec or its protocol is missing)."""
    try:
        import fsspec
    except ImportError:
        raise SncaError(f"{url}: object storage needs fsspec: {STORAGE_HINT}") from None
    scheme = url_scheme(url)
    try:
        return fsspec.filesystem(scheme)
    except (ImportError, ValueError) as exc:
        raise SncaError(f"{url}: cannot use {scheme}:// storage ({first_line(exc)}); "
                        f"{STORAGE_HINT}") from None  # fmt: skip


def storage_url(name: str) -> str | None:
    """The fsspec URL of an object GDAL reads from an object store (``/vsis3/b/k`` ->
    ``s3://b/k``; ``s3://b/k`` as it is); None for anything else."""
    for prefix, protocol in STORE_PREFIXES.items():
        if name.startswith(prefix):
            return f"{protocol}://{name[len(prefix) :]}"
    scheme = name.partition("://")[0].lower()
    return name if scheme in set(STORE_PREFIXES.values()) | {"gcs", "abfss"} else None


def content_record(data: bytes) -> dict[str, object]:
    """What a manifest keeps of a stored file to check it on reading: its size and sha256."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def matches_record(data: bytes, record: object) -> bool:
    """Whether ``data`` is the file :func:`content_record` described as ``record``."""
    return isinstance(record, dict) and content_record(data) == {
        key: record.get(key) for key in ("bytes", "sha256")
    }


@dataclass(frozen=True)
class StoredFolder:
    """A folder named by a local path or a storage URL (:func:`is_storage_url`)."""

    location: str

    @classmethod
    def of(cls, path: os.PathLike[str] | str) -> StoredFolder:
        text = os.fspath(path)
        if is_storage_url(text):
            return cls(text.rstrip("/"))
        return cls(str(Path(os.path.abspath(local_path(text)))))

    @property
    def remote(self) -> bool:
        return is_storage_url(self.location)

    @property
    def name(self) -> str:
        return posixpath.basename(self.location) if self.remote else Path(self.location).name

    def __str__(self) -> str:
        return self.location

    @property
    def path(self) -> Path:
        """The local path of a local folder (ValueError for one on object storage)."""
        if self.remote:
            raise ValueError(f"{self.location} is not a local folder")
        return Path(self.location)

    def child(self, name: str) -> StoredFolder:
        """The folder or file ``name`` inside this folder."""
        if self.remote:
            return StoredFolder(f"{self.location}/{name}")
        return StoredFolder(str(Path(self.location) / name))

    def sibling(self, name: str) -> StoredFolder:
        """``name`` beside this folder (in its parent)."""
        if self.remote:
            return StoredFolder(f"{posixpath.dirname(self.location)}/{name}")
        return StoredFolder(str(Path(self.location).with_name(name)))

    def read_bytes(self, name: str) -> bytes:
        """The bytes of file ``name``; FileNotFoundError when it is absent, OSError when it
        cannot be read."""
        if not self.remote:
            return (Path(self.location) / name).read_bytes()
        with self._errors("read"):
            return filesystem(self.location).cat_file(f"{self.location}/{name}")

    def exists(self) -> bool:
        """Whether anything is stored under this name (a file, or a folder holding files)."""
        if not self.remote:
            return os.path.lexists(self.location)
        with self._errors("read"):
            return bool(filesystem(self.location).exists(self.location))

    def write_files(self, files: Mapping[str, bytes], last: str, own: OwnOutput) -> None:
        """Write ``files`` (name -> bytes) as this folder's whole content, ``last`` last:
        locally staged and published as one folder (``own`` tells an old version snca wrote,
        which is replaced); on object storage each file in one request, ``last`` after every
        other one, so a reader that finds ``last`` finds the files it names."""
        if not self.remote:
            with atomic_output(Path(self.location), force=True, directory=True, own=own) as tmp:
                for name, data in files.items():
                    (tmp / name).write_bytes(data)
            return
        fs = filesystem(self.location)
        with self._errors("write"):
            if fs.exists(f"{self.location}/{last}"):  # an older set: never half new
                fs.rm_file(f"{self.location}/{last}")
            for name, data in files.items():
                if name != last:
                    fs.pipe_file(f"{self.location}/{name}", data)
            fs.pipe_file(f"{self.location}/{last}", files[last])

    def glob(self, pattern: str) -> list[str]:
        """The names inside this folder matching ``pattern`` (e.g. ``unit-*/unit.json``)."""
        if not self.remote:
            return sorted(str(p) for p in Path(self.location).glob(pattern))
        with self._errors("read"):
            fs = filesystem(self.location)
            fs.invalidate_cache()
            return sorted(fs.glob(f"{self.location}/{pattern}"))

    def make(self) -> None:
        """Make the folder (locally; object storage has no folders to make), and finish or
        clean what writers killed in it left (:func:`recover_outputs`)."""
        if not self.remote:
            make_folder(Path(self.location))
            recover_outputs(Path(self.location))

    def remove_if_empty(self) -> None:
        """Remove the folder when it holds nothing (locally; nothing to do on object storage,
        where an empty folder does not exist)."""
        if not self.remote:
            try:
                os.rmdir(self.location)
            except OSError:
                pass

    def remove(self) -> None:
        """Delete the folder and everything in it (nothing when absent)."""
        if not self.remote:
            shutil.rmtree(self.location, ignore_errors=True)
            return
        fs = filesystem(self.location)
        with self._errors("delete"):
            if fs.exists(self.location):
                fs.rm(self.location, recursive=True)

    def _errors(self, doing: str) -> _StorageErrors:
        return _StorageErrors(self.location, doing)


class _StorageErrors:
    """Turn a storage library's error into one line naming the location (a file missing on
    reading stays FileNotFoundError for the caller to handle; a bucket missing on writing is
    one line)."""

    def __init__(self, location: str, doing: str) -> None:
        self.location, self.doing = location, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, _tb: object) -> bool:
        if exc is None or isinstance(exc, SncaError):
            return False
        if isinstance(exc, FileNotFoundError) and self.doing == "read":
            return False  # a file that is not there: the caller decides
        if isinstance(exc, Exception):
            raise SncaError(f"cannot {self.doing} {self.location}: {first_line(exc)}") from None
        return False


class StorageMirror:
    """Outputs named by storage URL, written under a local temporary folder and uploaded once
    the command has written them all (:meth:`publish`); local names pass through unchanged.

    ``s3://bucket/run/a.gpkg`` is written as ``<temp>/s3/bucket/run/a.gpkg``, so the code that
    writes outputs (staging, checks, sidecar files) is the one of local outputs; a folder
    output (an index) is uploaded with its ``last`` file (the manifest) after the others.
    """

    def __init__(self) -> None:
        self._root: Path | None = None

    def __enter__(self) -> StorageMirror:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    def local(self, name: os.PathLike[str] | str) -> Path:
        """Where to write the output ``name``: itself when local, its place in the mirror when
        a storage URL (checked: an existing object is refused unless ``force`` at
        :meth:`check`)."""
        text = restored_url(name)
        scheme = url_scheme(text)
        if scheme is None:
            return local_path(text)
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="snca-outputs-"))
        rest = text.split("://", 1)[1].strip("/")
        return self._root / scheme / rest

    def url(self, local: Path) -> str | None:
        """The storage URL of a path in the mirror (None for a local output)."""
        if self._root is None:
            return None
        try:
            parts = Path(local).relative_to(self._root).parts
        except ValueError:
            return None
        return f"{parts[0]}://" + "/".join(parts[1:])

    def shown(self, path: Path) -> str:
        """How to name ``path`` to the user: its URL when mirrored."""
        return self.url(path) or str(path)

    def check(self, outputs: list[Path], force: bool) -> None:
        """Refuse outputs that exist on storage unless ``force`` (local ones are checked by
        the writers themselves)."""
        for path in outputs:
            url = self.url(path)
            if url is not None and not force and StoredFolder(url).exists():
                raise SncaError(f"output {url} exists; use --force to replace it")

    def publish(self, last: str | None = None) -> list[str]:
        """Upload every file written under the mirror to its URL (``last``-named files after the
        others of their folder; an existing index there is replaced); return the URLs."""
        if self._root is None:
            return []
        files = sorted(p for p in self._root.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == last)
        urls = []
        for path in files:
            url = self.url(path)
            assert url is not None
            with _StorageErrors(url, "write"):
                filesystem(url).put_file(str(path), url)
            urls.append(url)
        return urls


def restored_url(name: os.PathLike[str] | str) -> str:
    """``name`` with the ``//`` of a URL that ``pathlib`` collapsed (``s3:/bucket``) restored
    (:func:`snca_cli.runtime.paths.gdal_path`, which GDAL names get too)."""
    return gdal_path(name)
