"""The values of an index's files, checked before anything uses them.

The checksums in the manifest catch accidents, not intent: a crafted file with recomputed
checksums passes them. So every value is checked for what the code that reads it needs, with a
message naming the value:

* the manifest's values: types and ranges (``model.tile_size is 0; it must be a whole number
  from 1 to 65,536``), a CRS that parses, an invertible transform, rasters whose tile ids follow
  on from each other;
* a ``.npy`` header (:func:`array_layout`): version, dtype, order and a shape whose data fills
  the file exactly, before numpy maps or reads it.

The hnswlib graphs are checked by :mod:`snca_cli.runtime.hnsw_file`.
"""

from __future__ import annotations

import math
import os
import tokenize
from typing import Any, BinaryIO

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import CRSError

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError, first_line
from snca_cli.runtime.ann import MAX_EF, MAX_M, IndexParams

#: Largest tile size and embedding size an index may record.
MAX_TILE_SIZE = 1 << 16
MAX_EMBEDDING_DIM = 1 << 16
#: Largest width or height of a tiling grid (GDAL's raster sizes are 32-bit).
MAX_GRID_SIDE = (1 << 31) - 1
#: Largest EPSG code (PROJ keeps them as 32-bit integers).
MAX_EPSG = (1 << 31) - 1
#: Characters of a bad value quoted in a message.
SHOWN_CHARS = 60


class InvalidValue(ValueError):
    """A value of an index file that snca cannot use; the message says which and why."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _real(value: object) -> bool:
    """Whether ``value`` is a finite JSON number (an integer too large for a float is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def entry(section: object, key: str, where: str) -> Any:
    """``section[key]`` of a manifest part named ``where`` (``model``, ``rasters[0]``)."""
    if not isinstance(section, dict):
        raise InvalidValue(f"{where} is {_shown(section)}; it must be a JSON object")
    if key not in section:
        raise InvalidValue(f"{where}.{key} is missing")
    return section[key]


def whole(section: object, key: str, where: str, low: int = 0, high: int | None = None) -> int:
    """A whole number from ``low`` (to ``high``)."""
    value = entry(section, key, where)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        limit = f"from {low:,}" + ("" if high is None else f" to {high:,}")
        raise InvalidValue(f"{where}.{key} is {_shown(value)}; it must be a whole number {limit}")
    return value


def text(section: object, key: str, where: str) -> str:
    """A string."""
    value = entry(section, key, where)
    if not isinstance(value, str):
        raise InvalidValue(f"{where}.{key} is {_shown(value)}; it must be text")
    return value


def index_params(index: object) -> IndexParams:
    """The hnswlib parameters of the ``index`` part."""
    return IndexParams(
        M=whole(index, "M", "index", 2, MAX_M),
        ef_construction=whole(index, "ef_construction", "index", 1, MAX_EF),
        ef=whole(index, "ef", "index", 1, MAX_EF),
    )


def model_values(model: object) -> dict[str, Any]:
    """The ``model`` part's values, as :class:`Manifest` fields."""
    names = entry(model, "class_names", "model")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise InvalidValue(
            f"model.class_names is {_shown(names)}; it must be a list of one or more names"
        )
    resolution = entry(model, "resolution_m", "model")
    if resolution is not None and not (_real(resolution) and resolution > 0):
        raise InvalidValue(
            f"model.resolution_m is {_shown(resolution)}; it must be positive metres or null"
        )
    return {
        "model_sha256": text(model, "sha256", "model"),
        "model_name": text(model, "name", "model"),
        "embedding_dim": whole(model, "embedding_dim", "model", 1, MAX_EMBEDDING_DIM),
        "class_names": names,
        "tile_size": whole(model, "tile_size", "model", 1, MAX_TILE_SIZE),
        "model_resolution_m": resolution,
        "input_bands": whole(model, "input_bands", "model", 1),
        "precision": _precision(model),
    }


def _precision(model: dict) -> str:
    """The ``model.precision`` entry; ``fp32`` in indexes written before it was recorded."""
    value = model.get("precision", "fp32")
    if value not in ("fp32", "int8"):
        raise InvalidValue(f"model.precision is {_shown(value)}; it must be fp32 or int8")
    return value


def tiling_options(tiling: object) -> TilingOptions:
    """The ``tiling`` part as checked :class:`TilingOptions`."""
    if not isinstance(tiling, dict):
        raise InvalidValue(f"tiling is {_shown(tiling)}; it must be a JSON object")
    kinds = {
        "overlap": ("a number", lambda v: _real(v) and v >= 0),
        "resolution": ("auto, native or metres", lambda v: isinstance(v, str) or _real(v)),
        "bands": (
            "a list of band numbers or null",
            lambda v: v is None or (isinstance(v, list) and all(_whole_number(b) for b in v)),
        ),
        "min_valid": ("a number", _real),
        "stretch": ("text or null", lambda v: v is None or isinstance(v, str)),
        "edge": ("text", lambda v: isinstance(v, str)),
    }
    entry(tiling, "overlap", "tiling")  # an index records the overlap it was tiled with
    for key, value in tiling.items():
        if key not in kinds:
            raise InvalidValue(f"tiling.{key} is not a tiling option")
        what, valid = kinds[key]
        if not valid(value):
            raise InvalidValue(f"tiling.{key} is {_shown(value)}; it must be {what}")
    bands = tiling.get("bands")
    options = TilingOptions(**{**tiling, "bands": None if bands is None else tuple(bands)})
    try:
        options.check()
    except SncaError as exc:
        raise InvalidValue(f"tiling: {exc}") from None
    return options


def _whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def raster_records(rasters: object, known: frozenset[str]) -> list[dict[str, Any]]:
    """The ``rasters`` part, checked: each raster's values as :class:`IndexedRaster` fields
    (``known``: their names).

    Every CRS must parse (each distinct one is parsed once), every tiling grid be invertible
    and non-empty, and each raster's tile ids start where the previous raster's end.
    """
    if not isinstance(rasters, list):
        raise InvalidValue(f"rasters is {_shown(rasters)}; it must be a list")
    parsed: set[str] = set()
    records = []
    next_id = 0
    for number, raster in enumerate(rasters):
        where = f"rasters[{number}]"
        unknown = sorted(set(raster) - known) if isinstance(raster, dict) else []
        if unknown:
            raise InvalidValue(f"{where}.{unknown[0]} is not a raster field")
        for key in ("path", "relative_path", "layer"):
            text(raster, key, where)
        epsg = entry(raster, "epsg", where)
        if epsg is not None and not (_whole_number(epsg) and 0 < epsg <= MAX_EPSG):
            raise InvalidValue(f"{where}.epsg is {_shown(epsg)}; it must be an EPSG code or null")
        transform = entry(raster, "transform", where)
        if not (
            isinstance(transform, list)
            and len(transform) == 6
            and all(_real(v) for v in transform)
            and transform[0] * transform[4] - transform[1] * transform[3] != 0
        ):
            raise InvalidValue(
                f"{where}.transform is {_shown(transform)}; it must be the 6 numbers of an "
                "invertible affine transform"
            )
        whole(raster, "width", where, 1, MAX_GRID_SIDE)
        whole(raster, "height", where, 1, MAX_GRID_SIDE)
        whole(raster, "skipped", where)
        if not isinstance(entry(raster, "resampled", where), bool):
            raise InvalidValue(f"{where}.resampled must be true or false")
        if not isinstance(raster.get("scaling", {}), dict):
            raise InvalidValue(f"{where}.scaling must be a JSON object")
        first = whole(raster, "first_tile_id", where)
        if first != next_id:
            raise InvalidValue(
                f"{where}.first_tile_id is {first}; the rasters before it hold {next_id} tiles"
            )
        next_id += whole(raster, "tile_count", where)
        wkt = text(raster, "crs_wkt", where)
        if wkt not in parsed:
            _check_crs(wkt, where)
            parsed.add(wkt)
        records.append(raster)
    return records


def _check_crs(wkt: str, where: str) -> None:
    try:
        with rasterio.Env():  # GDAL's messages go to logging, not stderr
            CRS.from_wkt(wkt)
    except CRSError as exc:
        raise InvalidValue(
            f"{where}.crs_wkt is not a CRS GDAL can read ({first_line(exc)})"
        ) from None


def file_records(files: object) -> dict[str, dict[str, int | str]]:
    """The ``files`` part: each file's name, size and sha256."""
    if not isinstance(files, dict):
        raise InvalidValue(f"files is {_shown(files)}; it must be a JSON object")
    for name, record in files.items():
        whole(record, "bytes", f"files[{name!r}]")
        text(record, "sha256", f"files[{name!r}]")
    return files


def array_layout(handle: BinaryIO, dtype: np.dtype, width: int | None) -> tuple[tuple, int]:
    """The shape and data offset of an open ``.npy`` file of ``dtype`` values: one row per
    tile, of ``width`` values (None: a 1-d array). Raise InvalidValue, a phrase about the file
    ("has shape (-1, 3); ..."), unless its header is one snca writes and its data fills the
    file exactly."""
    try:
        version = np.lib.format.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            raise InvalidValue(
                f"has .npy format version {version[0]}.{version[1]}; snca reads 1.0 and 2.0"
            )
        if version == (1, 0):
            shape, fortran, found = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, found = np.lib.format.read_array_header_2_0(handle)
    except InvalidValue:
        raise
    except (ValueError, EOFError, tokenize.TokenError) as exc:
        reason = exc.args[0] if isinstance(exc, tokenize.TokenError) else first_line(exc)
        raise InvalidValue(f"has a .npy header snca cannot read ({reason})") from None
    if found != dtype:
        raise InvalidValue(f"holds {_dtype_name(found)}; the index keeps {_dtype_name(dtype)}")
    expected = "one row per tile" if width is None else f"rows of {width} values"
    if len(shape) != (1 if width is None else 2) or min(shape) < 0:
        raise InvalidValue(f"has shape {shape}; the index keeps {expected}")
    if fortran and len(shape) > 1:
        raise InvalidValue("is stored in Fortran order; snca writes C order")
    offset = handle.tell()
    data = math.prod(shape) * dtype.itemsize
    size = os.fstat(handle.fileno()).st_size
    if offset + data != size:
        raise InvalidValue(
            f"has a header for {shape} {_dtype_name(dtype)} ({data:,} bytes) but holds "
            f"{size - offset:,} bytes of data"
        )
    if width is not None and shape[1] != width:
        raise InvalidValue(f"has shape {shape}; the manifest says {expected}")
    return shape, offset


def _dtype_name(dtype: np.dtype) -> str:
    """``float32 values``, ``object values``; ``records`` of any structured dtype."""
    return f"records of {len(dtype.names)} fields" if dtype.names else f"{dtype} values"
