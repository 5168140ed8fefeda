"""What a raster holds, as one hash: work done on a raster is reused only for the same content.

A name says nothing about what a file holds: a raster replaced under its name must never get
the results computed for the old one. :func:`content_identity` hashes what GDAL reads:

* a local raster: every file GDAL reads for it (``dataset.files``: the raster, sidecars such as
  ``.aux.xml``, ``.ovr`` and ``.msk``, a VRT's sources), each by name, size and sha256;
* a remote one (``/vsi...`` and URLs, :mod:`snca_cli.runtime.paths`), or a VRT with a remote
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


def content_identity(dataset: rasterio.io.DatasetReader) -> str:
    """The hex sha256 of what GDAL reads for ``dataset`` (module docstring)."""
    digest = hashlib.sha256()
    files = sorted(dataset.files)
    if files and not any(is_remote(name) for name in [dataset.name, *files]):
        for name in files:
            record = [name, os.path.getsize(name), file_sha256(name)]
            digest.update(json.dumps(record).encode())
    else:
        _hash_pixels(dataset, digest)
    return digest.hexdigest()


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
