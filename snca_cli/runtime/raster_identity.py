"""What a raster holds, as one hash: work done on a raster is reused only for the same content.

A name says nothing about what a file holds: a raster replaced under its name must never get
the results computed for the old one. :func:`content_identity` hashes what GDAL reads:

* a local raster: every file GDAL reads for it (``dataset.files``: the raster, sidecars such as
  ``.aux.xml``, ``.ovr`` and ``.msk``, a VRT's sources), each by name, size and sha256;
* an object on object storage (``s3://``, ``gs://``, ``az://`` and their ``/vsis3/``,
  ``/vsigs/``, ``/vsiaz/`` names) when fsspec reaches it: the object's name, size and the
  version the store gives it (ETag, version id, generation, modification time), without
  reading its pixels: a cluster's client plans units of rasters it never downloads;
* another remote one (``/vsicurl/``, HTTP URLs, ``/vsizip/`` ...), or a VRT with a remote
  source, whose bytes cannot be hashed as local files: its size, georeferencing, data types
  and no-data values and the sha256 of every band's pixels and masks, read block by block.
"""

from __future__ import annotations

import hashlib
import json
import os

import rasterio

from snca_cli.runtime.onnx_model import file_sha256
from snca_cli.runtime.paths import is_remote
from snca_cli.runtime.storage import storage_url

#: What an object store's listing says of an object's version, in the order looked for.
VERSION_KEYS = ("VersionId", "ETag", "etag", "generation", "md5Hash", "LastModified", "mtime")


def content_identity(dataset: rasterio.io.DatasetReader) -> str:
    """The hex sha256 of what GDAL reads for ``dataset`` (module docstring)."""
    digest = hashlib.sha256()
    files = sorted(dataset.files)
    if files and not any(is_remote(name) for name in [dataset.name, *files]):
        for name in files:
            record = [name, os.path.getsize(name), _file_digest(name)]
            digest.update(json.dumps(record).encode())
        return digest.hexdigest()
    stored = [_stored_version(name) for name in files or [dataset.name]]
    if all(version is not None for version in stored):
        digest.update(json.dumps(stored, default=str).encode())
    else:
        _hash_pixels(dataset, digest)
    return digest.hexdigest()


#: sha256 of files hashed by this process, by what tells a changed file apart (device, inode,
#: size, modification and change times): the sources a thousand VRTs share are read once.
_DIGESTS: dict[tuple, str] = {}


def _file_digest(name: str) -> str:
    """The sha256 of file ``name``, read once per process while the file is unchanged."""
    info = os.stat(name)
    key = (name, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(name)
    return _DIGESTS[key]


def _stored_version(name: str) -> list | None:
    """[url, size, version] of an object on object storage, from the store's listing; None
    when ``name`` is not one or the store does not say (then the pixels are hashed)."""
    url = storage_url(name)
    if url is None:
        return None
    try:
        import fsspec

        info = fsspec.filesystem(url.partition("://")[0]).info(url)
    except Exception:  # noqa: BLE001 - no fsspec, no protocol package, no answer: hash pixels
        return None
    version = next((info[key] for key in VERSION_KEYS if info.get(key)), None)
    if version is None or info.get("size") is None:
        return None
    return [url, int(info["size"]), version]


def _hash_pixels(dataset: rasterio.io.DatasetReader, digest: hashlib._Hash) -> None:
    """Feed ``digest`` with the header and every block of every band's values and masks."""
    header = [
        dataset.width,
        dataset.height,
        dataset.count,
        dataset.crs.to_wkt() if dataset.crs else None,
        list(dataset.transform)[:6],
        list(dataset.dtypes),
        [None if v is None else repr(v) for v in dataset.nodatavals],
    ]
    digest.update(json.dumps(header).encode())
    for _, window in dataset.block_windows(1):
        digest.update(dataset.read(window=window).tobytes())
        digest.update(dataset.read_masks(window=window).tobytes())
