"""The index format: the files of an index folder, how they are read, checked and written.

An index is a folder, written atomically (built in a staging folder beside it and published
by :mod:`snca_cli.runtime.atomic`: an ``add`` writes new versions of every file and swaps the
folders), so an interrupted build or add never leaves a broken index. One writer at a time:
:func:`index_lock` (an advisory lock on ``.<name>.lock`` beside the folder). Readers open every
file of one version of the folder and check each file's sha256 against the manifest before
using it (:func:`read_index`), so a damaged file is refused, never handed to hnswlib; a check
that passed is recorded, and the next open of the very same files skips the hashing
(:mod:`snca_cli.tasks.index.verified`):

* ``manifest.json``: format, the sha256 and size of every other file, its own checksum (over
  the rest of it), the model (sha256, embedding size, classes, tile size, resolution),
  the hnswlib parameters (space, M, ef_construction, ef), the tiling options, the tile count and,
  for each raster, its path (absolute and relative to the index), CRS (WKT and EPSG), tiling
  grid (transform, width, height) and its range of tile ids;
* ``index.hnsw``: the hnswlib graph (cosine space; labels are the index rows), absent when the
  index was built without hnswlib (searches are then exact); a sharded index (``shard_size``
  in the manifest, ``--shard-size``) holds ``index-000.hnsw``, ``index-001.hnsw``, ... instead,
  shard ``i`` holding index rows ``[i * shard_size, (i + 1) * shard_size)``, searched by fan-out
  (:class:`snca_cli.runtime.ann.ShardedSearch`);
* ``embeddings.npy``: the unit embeddings, float32, one row per indexed tile (the exact search and
  ``index add`` use them);
* ``tiles.npy``: the tile table, same rows (:data:`TILE_DTYPE`), memory-mapped by the search;
* ``tiles.gpkg``: the same table as polygons for a GIS, one layer per CRS
  (``tiles_epsg_<code>``, or ``tiles_crs_<n>`` for a CRS without EPSG code); windows are in
  pixels of the raster's tiling grid (the raster's own grid unless it was resampled).

Index rows are 0..count-1 in the order the rasters were given, tiles in grid order within a
raster; ``add`` continues them. Only tiles with enough valid pixels are indexed. A tile is named
by its raster and its ``tile_id`` in that raster's tiling grid (``grid_id``: ``row * n_cols +
col``, the id ``snca classify`` gives it), never by its index row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import BinaryIO

import numpy as np
from rasterio.crs import CRS

from snca_cli import __version__
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError, first_line
from snca_cli.hooks import CancelHook
from snca_cli.runtime.ann import (
    HnswSearch,
    IndexParams,
    NeighbourSearch,
    ShardedSearch,
    shard_ranges,
)
from snca_cli.runtime.atomic import (
    OwnOutput,
    read_record,
    real_output,
    recover_outputs,
    unlisted_entry,
)
from snca_cli.runtime.file_lock import FileLock
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.storage import is_storage_url, restored_url
from snca_cli.runtime.vector import box_rings, write_polygons
from snca_cli.tasks.index.validate import (
    InvalidValue,
    array_layout,
    entry,
    file_records,
    index_params,
    model_values,
    raster_records,
    tiling_options,
    whole,
)
from snca_cli.tasks.index.verified import is_recorded, save_record, verification_record

FORMAT = "snca-index"
FORMAT_VERSION = 2
SPACE = "cosine"
MANIFEST_NAME = "manifest.json"
GRAPH_NAME = "index.hnsw"
EMBEDDINGS_NAME = "embeddings.npy"
TILES_NAME = "tiles.npy"
TABLE_NAME = "tiles.gpkg"
#: Every file of an index but the manifest and the graphs of a sharded index, each checksummed
#: in it.
DATA_FILES = (GRAPH_NAME, EMBEDDINGS_NAME, TILES_NAME, TABLE_NAME)
#: The graph file of shard ``i`` of a sharded index.
SHARD_GRAPH_NAME = "index-{:03d}.hnsw"
_SHARD_GRAPH_PATTERN = re.compile(r"index-\d{3,}\.hnsw")
#: Seconds between two tries of a held index lock.
LOCK_POLL_S = 0.1
#: Tile table rows checked at once (bounds the temporary arrays of the check).
CHECK_ROWS = 1 << 20
#: How :func:`read_index` checks the files' sha256: ``auto`` skips the files recorded as
#: verified unchanged, ``always`` hashes every file.
VERIFY_MODES = ("auto", "always")

#: One row per indexed tile (its index row).
TILE_DTYPE = np.dtype(
    [
        ("raster", "<i4"),  # position of the raster in the manifest
        ("grid_id", "<i8"),  # the tile's id in its raster's grid: row * n_cols + col
        ("row", "<i4"),
        ("col", "<i4"),
        ("col_off", "<i8"),  # window in pixels of the tiling grid
        ("row_off", "<i8"),
        ("width", "<i4"),
        ("height", "<i4"),
        ("minx", "<f8"),  # bounds in the raster's CRS
        ("miny", "<f8"),
        ("maxx", "<f8"),
        ("maxy", "<f8"),
        ("valid_fraction", "<f4"),
        ("class_index", "<i4"),  # predicted class (argmax of the probabilities)
        ("score", "<f4"),  # its probability
    ]
)


@dataclass
class IndexedRaster:
    """A raster of the index, as recorded in the manifest."""

    path: str  # absolute path when indexed
    relative_path: str  # relative to the index folder
    crs_wkt: str
    epsg: int | None
    transform: list[float]  # the tiling grid's affine transform (a, b, c, d, e, f)
    width: int  # the tiling grid's size in pixels
    height: int
    resampled: bool  # whether the grid differs from the raster's own
    first_tile_id: int
    tile_count: int  # tiles indexed
    skipped: int  # tiles with too few valid pixels
    layer: str  # its layer in tiles.gpkg
    #: how its values became model input (ValueScaling.record()); empty in older indexes
    scaling: dict = field(default_factory=dict)

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    def resolve(self, index_dir: Path) -> Path:
        """The raster file: its absolute path, or the relative one when the files moved (a
        remote source as recorded; give GDAL ``gdal_path`` of it)."""
        absolute = Path(self.path)
        if absolute.exists():
            return absolute
        relative = Path(index_dir) / self.relative_path
        return relative if relative.exists() else absolute


#: The fields of a raster's record in the manifest.
RASTER_FIELDS = frozenset(f.name for f in fields(IndexedRaster))


@dataclass
class Manifest:
    """The contents of ``manifest.json``."""

    model_sha256: str  # the embedding's model: the file, or an adapted model's base model
    model_name: str
    embedding_dim: int
    class_names: list[str]
    tile_size: int
    model_resolution_m: float | None
    input_bands: int
    tiling: TilingOptions
    params: IndexParams
    ann: str  # "hnswlib" (index.hnsw holds the graph) or "exact" (no graph)
    count: int
    graph_bytes: int  # size of the graph files, 0 without graph
    rasters: list[IndexedRaster] = field(default_factory=list)
    snca_version: str = __version__
    #: name -> {"bytes": size, "sha256": hex digest} of every other file of the index
    files: dict[str, dict[str, int | str]] = field(default_factory=dict)
    #: tiles per hnswlib shard; 0: one graph (``index.hnsw``) whatever the count
    shard_size: int = 0
    #: the model copy that made the embeddings (``fp32``/``int8``); queries use the same
    precision: str = "fp32"

    @property
    def graph_names(self) -> list[str]:
        """The graph files, one per shard, in tile id order (none without hnswlib)."""
        return graph_names(self.count, self.shard_size) if self.ann == "hnswlib" else []

    def to_json(self) -> str:
        """The manifest's text, its checksum included (see :func:`manifest_checksum`)."""
        payload = self._payload()
        payload["checksum"] = manifest_checksum(payload)
        return json.dumps(payload, indent=1)

    def _payload(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "snca_version": self.snca_version,
            "model": {
                "sha256": self.model_sha256,
                "name": self.model_name,
                "embedding_dim": self.embedding_dim,
                "class_names": self.class_names,
                "tile_size": self.tile_size,
                "resolution_m": self.model_resolution_m,
                "input_bands": self.input_bands,
                "precision": self.precision,
            },
            "index": {
                "library": self.ann,
                "space": SPACE,
                "M": self.params.M,
                "ef_construction": self.params.ef_construction,
                "ef": self.params.ef,
                "count": self.count,
                "graph_bytes": self.graph_bytes,
                "shard_size": self.shard_size,
            },
            "tiling": asdict(self.tiling),
            "rasters": [asdict(r) for r in self.rasters],
            "files": self.files,
        }

    @classmethod
    def from_json(cls, text: str, source: str) -> Manifest:
        """Parse a manifest; raise SncaError naming ``source`` when it is not a valid one."""
        try:
            payload = json.loads(text)
            if payload.get("format") != FORMAT:
                raise SncaError(f"{source} is not an snca index manifest")
            if payload.get("format_version") != FORMAT_VERSION:
                raise SncaError(
                    f"{source} has index format version {payload.get('format_version')}; "
                    f"this snca reads version {FORMAT_VERSION} (rebuild the index)"
                )
            checksum = payload.pop("checksum", None)
            if checksum != manifest_checksum(payload):
                raise SncaError(
                    f"{source} is corrupt: its checksum does not match its contents "
                    "(rebuild the index with `snca index build`)"
                )
            index = payload.get("index")
            library = entry(index, "library", "index")
            if entry(index, "space", "index") != SPACE or library not in ("hnswlib", "exact"):
                raise SncaError(f"{source} describes an unsupported index {index}")
            return cls(
                **model_values(payload.get("model")),
                tiling=tiling_options(payload.get("tiling")),
                params=index_params(index),
                ann=library,
                count=whole(index, "count", "index"),
                graph_bytes=whole(index, "graph_bytes", "index"),
                rasters=[
                    IndexedRaster(**r)
                    for r in raster_records(payload.get("rasters"), RASTER_FIELDS)
                ],
                snca_version=str(payload.get("snca_version", "")),
                files=file_records(payload.get("files")),
                shard_size=whole(index, "shard_size", "index") if "shard_size" in index else 0,
            )
        except InvalidValue as exc:
            raise SncaError(f"{source} is corrupt: {exc}") from None
        except SncaError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise SncaError(f"{source} is corrupt: {type(exc).__name__}: {exc}") from None


def graph_names(count: int, shard_size: int) -> list[str]:
    """The graph files of an index of ``count`` tiles: ``index.hnsw`` for one graph, else
    ``index-000.hnsw``... one per ``shard_size`` tiles."""
    if shard_size <= 0:
        return [GRAPH_NAME]
    return [SHARD_GRAPH_NAME.format(i) for i in range(len(shard_ranges(count, shard_size)))]


def is_index_file(name: str) -> bool:
    """Whether ``name`` is a data file an index may hold (besides the manifest)."""
    return name in DATA_FILES or _SHARD_GRAPH_PATTERN.fullmatch(name) is not None


def _index_mismatch(directory: Path) -> str | None:
    """Why ``directory`` is not an index snca wrote (None when it is): its manifest is a JSON
    object of snca's index format (any version, its checksum not required: a damaged or old
    index must stay replaceable by a rebuild, as its error says) and it holds nothing but the
    manifest and index files (:func:`is_index_file`)."""
    payload, reason = read_record(directory / MANIFEST_NAME)
    if reason is not None:
        return reason
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        return f"its {MANIFEST_NAME} is not an snca index manifest"
    try:
        names = [entry.name for entry in os.scandir(directory)]
    except OSError as exc:
        return f"cannot list it: {first_line(exc)}"
    listed = {MANIFEST_NAME, *filter(is_index_file, names)}
    return unlisted_entry(directory, listed)


#: An index folder, which ``index build --force`` (and every writer of a new version) may
#: replace.
INDEX_OUTPUT = OwnOutput("an index", _index_mismatch)


def manifest_checksum(payload: dict) -> str:
    """sha256 of a manifest's contents but its checksum, in one canonical JSON form."""
    body = {k: v for k, v in payload.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def file_digest(handle: BinaryIO) -> str:
    """Hex sha256 of an open file from its start, read in 4 MiB blocks (about 1.9 GB/s with
    SHA instructions: ``benchmarks/index_checksums.py``)."""
    handle.seek(0)
    digest = hashlib.sha256()
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    while True:
        size = handle.readinto(buffer)
        if not size:
            break
        digest.update(view[:size])
    handle.seek(0)
    return digest.hexdigest()


@dataclass
class IndexFiles:
    """A checked index folder: manifest, tile table and embeddings (memory-mapped unless read
    with ``mmap=False``), and the graph files (one per shard) of the same version, checksum
    verified, kept open until :meth:`load_shards`."""

    directory: Path
    manifest: Manifest
    tiles: np.ndarray  # TILE_DTYPE, row = tile id
    embeddings: np.ndarray  # count x D float32 unit vectors
    graph_files: list[BinaryIO] = field(default_factory=list)

    def load_shards(self) -> list[HnswSearch]:
        """The hnswlib graph of every shard in tile id order (needs hnswlib and an index built
        with it), each from the very file that was verified (through ``/proc/self/fd`` on
        Linux; elsewhere by its path, checked to be the same file)."""
        if not self.graph_files:
            raise SncaError(f"index {self.directory} has no hnswlib graph")
        manifest = self.manifest
        ranges = shard_ranges(manifest.count, manifest.shard_size)
        try:
            shards = []
            for name, handle, (start, stop) in zip(
                manifest.graph_names, self.graph_files, ranges, strict=True
            ):
                by_fd = Path(f"/proc/self/fd/{handle.fileno()}")
                path = by_fd if by_fd.exists() else self.directory / name
                if path == self.directory / name and not _same_file(handle, path):
                    raise SncaError(
                        f"index {self.directory} changed while it was opened; open it again"
                    )
                shards.append(
                    HnswSearch.load(
                        path,
                        manifest.embedding_dim,
                        manifest.params,
                        range(start, stop),
                        shown=self.directory / name,
                    )
                )
            return shards
        finally:
            self.close()

    def load_graph(self) -> NeighbourSearch:
        """The index's graph: one hnswlib graph, or its shards searched by fan-out."""
        shards = self.load_shards()
        return shards[0] if len(shards) == 1 else ShardedSearch(shards)

    def close(self) -> None:
        """Close the graph files (the arrays stay mapped while referenced); idempotent."""
        for handle in self.graph_files:
            handle.close()
        self.graph_files = []


def _same_file(handle: BinaryIO, path: Path) -> bool:
    try:
        here, there = os.fstat(handle.fileno()), path.stat()
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _corrupt(directory: Path, what: str) -> SncaError:
    return SncaError(f"index {directory} is corrupt: {what} (rebuild it with `snca index build`)")


def real_index_path(index_dir: Path | str) -> Path:
    """An index folder's real path (:func:`snca_cli.runtime.atomic.real_output`): what its
    writers lock, read and replace. A command resolves it once, first, so every spelling of one
    index (a symbolic link to it too) is that index, with one lock, and a link stays a link.
    An index named by a storage URL is refused in one line: only ``index build`` writes one
    there (docs/scaling.md)."""
    url = restored_url(index_dir)
    if is_storage_url(url):
        raise SncaError(
            f"index {url} is on object storage: searching, adding to, merging and exporting "
            f"work on an index on this machine; copy it here first (e.g. `aws s3 sync {url} "
            f"{posixpath.basename(url)}`), or serve it through LanceDB (docs/scaling.md)"
        )
    return real_output(Path(index_dir), folder=True)


def lock_path(index_dir: Path | str) -> Path:
    """The lock file of an index folder: ``.<name>.lock`` beside its real path (one lock
    whatever the spelling: :func:`real_index_path`)."""
    return _lock_beside(real_index_path(index_dir))


def _lock_beside(real: Path) -> Path:
    return real.with_name(f".{real.name}.lock")


@contextlib.contextmanager
def index_lock(
    index_dir: Path | str,
    cancelled: CancelHook | None = None,
    waiting: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the writer lock of an index folder: a second writer waits here until the first one
    is done (``waiting(message)`` is called once when it has to; ``cancelled`` is polled).

    The folder's path is resolved once, here (:func:`real_index_path`): the lock is the real
    folder's whatever the spelling, and the block gets that real path to read and write, so a
    writer reads and replaces the very index it locked.

    The lock is advisory (``flock``/``msvcrt``) on ``.<name>.lock`` beside the folder, removed
    when the writer is done; the operating system drops it when its holder dies, so a killed
    writer never blocks anyone (its lock file stays until the next writer is done).
    """
    index_dir = Path(index_dir)
    real = real_index_path(index_dir)
    lock = FileLock(_lock_beside(real))
    try:
        told = False
        while not lock.acquire(blocking=False):
            if cancelled is not None and cancelled():
                raise Cancelled()
            if not told and waiting is not None:
                waiting(
                    f"index {index_dir} is being written by another process (pid "
                    f"{lock.holder()}); waiting for it to finish"
                )
                told = True
            time.sleep(LOCK_POLL_S)
    except OSError as exc:
        raise SncaError(
            f"cannot lock index {index_dir}: {exc.strerror or exc} (is its folder writable?)"
        ) from None
    try:
        yield real
    finally:
        lock.release(remove=True)


#: How many times :func:`read_index` tries again when a writer swapped the folder meanwhile.
OPEN_ATTEMPTS = 5


def read_index(index_dir: Path | str, mmap: bool = True, verify: str = "auto") -> IndexFiles:
    """Open an index folder, check that its files agree and their checksums; raise SncaError
    naming the damaged file otherwise.

    Every file is opened from one version of the folder (a writer swapping in a new version
    meanwhile makes it open again), then verified against the manifest's sha256 before any is
    parsed; nothing unverified reaches numpy or hnswlib. The files are opened in the folder's
    real path, resolved once (:func:`real_index_path`); messages name it as given.

    ``verify``: ``auto`` skips the sha256 and tile table checks of files recorded as verified
    and unchanged since (:mod:`snca_cli.tasks.index.verified`; sizes and counts are always
    checked), ``always`` checks every file. A full check that passes is recorded (unless a
    file changed just before: :data:`snca_cli.tasks.index.verified.RACY_S`).
    """
    if verify not in VERIFY_MODES:
        raise SncaError(f"verify must be {' or '.join(VERIFY_MODES)} (got {verify!r})")
    shown = Path(index_dir)
    directory = real_index_path(shown)
    if not directory.exists():
        recover_outputs(directory.parent)  # a writer killed in the middle of a swap
    if not directory.is_dir():
        raise SncaError(f"index {shown} does not exist")
    if not (directory / MANIFEST_NAME).is_file():
        raise SncaError(f"{shown} is not an snca index (no {MANIFEST_NAME})")
    for _ in range(OPEN_ATTEMPTS):
        version = _version(directory)
        opened = _open_files(directory, shown)
        if version is not None and version == _version(directory):
            break
        for handle in opened[2].values():
            handle.close()
    else:
        raise SncaError(f"index {shown} keeps changing while it is opened; try again")
    manifest, manifest_sha256, handles = opened
    try:
        states = _file_states(shown, manifest, handles)
        record = verification_record(directory, manifest_sha256, states)
        recorded = verify == "auto" and is_recorded(record)
        files = _check_files(shown, manifest, handles, mmap, verified=recorded)
    except BaseException:
        for handle in handles.values():
            handle.close()
        raise
    if not recorded:
        save_record(record, states)
    return files


def _version(directory: Path) -> tuple[int, int] | None:
    """What tells two versions of an index folder apart: the folder's device and inode."""
    try:
        info = directory.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _open_files(directory: Path, shown: Path) -> tuple[Manifest, str, dict[str, BinaryIO]]:
    """The manifest, the sha256 of its text and open handles on the files it lists, in
    ``directory`` (named ``shown`` in messages)."""
    try:
        data = (directory / MANIFEST_NAME).read_bytes()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SncaError(f"{shown} is not an snca index (no {MANIFEST_NAME})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(shown, f"cannot read {MANIFEST_NAME}: {exc}") from None
    manifest = Manifest.from_json(text, source=f"{shown / MANIFEST_NAME}")
    handles: dict[str, BinaryIO] = {}
    try:
        for name in manifest.files:
            if not is_index_file(name):
                raise _corrupt(shown, f"{MANIFEST_NAME} lists an unknown file {name!r}")
            handles[name] = open(directory / name, "rb")  # noqa: SIM115 - kept open
    except FileNotFoundError as exc:
        for handle in handles.values():
            handle.close()
        raise _corrupt(shown, f"{Path(exc.filename).name} is missing") from None
    except OSError as exc:
        for handle in handles.values():
            handle.close()
        raise _corrupt(shown, f"cannot read {exc.filename}: {exc.strerror}") from None
    return manifest, hashlib.sha256(data).hexdigest(), handles


def _file_states(
    directory: Path, manifest: Manifest, handles: dict[str, BinaryIO]
) -> dict[str, os.stat_result]:
    """``fstat`` of every open file of an index (named ``directory`` in messages), once each
    file the index needs is there with the size the manifest gives it."""
    for name in [EMBEDDINGS_NAME, TILES_NAME, TABLE_NAME, *manifest.graph_names]:
        if name not in handles:
            raise _corrupt(directory, f"{MANIFEST_NAME} lists no {name}")
    states = {name: os.fstat(handle.fileno()) for name, handle in handles.items()}
    for name, state in states.items():
        expected = manifest.files[name].get("bytes")
        if state.st_size != expected:
            raise _corrupt(
                directory, f"{name} has {state.st_size} bytes, the manifest says {expected}"
            )
    return states


def _check_files(
    directory: Path,
    manifest: Manifest,
    handles: dict[str, BinaryIO],
    mmap: bool,
    verified: bool,
) -> IndexFiles:
    """Load the open files of an index (named ``directory`` in messages), checked: their
    sha256 and the tile table unless ``verified`` (recorded as checked), their counts always."""
    if not verified:
        for name, handle in handles.items():
            if file_digest(handle) != manifest.files[name].get("sha256"):
                raise _corrupt(directory, f"{name} does not match its checksum (damaged file)")
    tiles = _load_array(handles.pop(TILES_NAME), directory, TILES_NAME, TILE_DTYPE, None, mmap)
    embeddings = _load_array(
        handles.pop(EMBEDDINGS_NAME),
        directory,
        EMBEDDINGS_NAME,
        np.dtype(np.float32),
        manifest.embedding_dim,
        mmap,
    )
    handles.pop(TABLE_NAME).close()
    count = manifest.count
    raster_counts = sum(r.tile_count for r in manifest.rasters)
    if not len(tiles) == len(embeddings) == raster_counts == count:
        raise _corrupt(
            directory,
            f"counts disagree: manifest {count}, rasters {raster_counts}, {TILES_NAME} "
            f"{len(tiles)}, {EMBEDDINGS_NAME} {len(embeddings)}",
        )
    if not verified:
        _check_tiles(directory, manifest, tiles)
    graphs = [handles.pop(name) for name in manifest.graph_names]
    for handle in handles.values():  # listed but not used (a graph of an exact index)
        handle.close()
    return IndexFiles(directory, manifest, tiles, embeddings, graphs)


def _check_tiles(directory: Path, manifest: Manifest, tiles: np.ndarray) -> None:
    """Each row of the tile table is in the raster the manifest gives its row, and of one of
    the manifest's classes (read :data:`CHECK_ROWS` rows at a time: the table may be a map)."""
    ends = np.cumsum([r.tile_count for r in manifest.rasters])
    named = len(manifest.class_names)
    for start in range(0, len(tiles), CHECK_ROWS):
        block = tiles[start : start + CHECK_ROWS]
        rasters = np.searchsorted(ends, np.arange(start, start + len(block)), side="right")
        wrong = np.flatnonzero(block["raster"] != rasters)
        if len(wrong):
            row = int(wrong[0])
            raise _corrupt(
                directory,
                f"{TILES_NAME} puts tile row {start + row} in raster {block['raster'][row]}, "
                f"the manifest in raster {rasters[row]}",
            )
        classes = block["class_index"]
        wrong = np.flatnonzero((classes < 0) | (classes >= named))
        if len(wrong):
            row = int(wrong[0])
            raise _corrupt(
                directory,
                f"{TILES_NAME} gives tile row {start + row} class {classes[row]}, the manifest "
                f"names {named} class{'es' if named != 1 else ''}",
            )


def _load_array(
    handle: BinaryIO,
    directory: Path,
    name: str,
    dtype: np.dtype,
    width: int | None,
    mmap: bool,
) -> np.ndarray:
    """A ``.npy`` array of ``dtype`` from an open file (closed afterwards): one row per tile,
    of ``width`` values (None: 1-d); memory-mapped from that file with ``mmap``. Its header is
    checked against the file first (:func:`array_layout`), so numpy never maps or allocates
    what the file does not hold."""
    with handle:
        try:
            shape, offset = array_layout(handle, dtype, width)
            if not mmap or 0 in shape:
                handle.seek(0)
                return np.load(handle, allow_pickle=False)
            return np.memmap(handle, dtype=dtype, mode="r", shape=shape, offset=offset)
        except InvalidValue as exc:
            raise _corrupt(directory, f"{name} {exc}") from None
        except OSError as exc:
            raise _corrupt(directory, f"cannot read {name}: {exc.strerror or exc}") from None


def recorded_precision(index_dir: Path | str) -> str:
    """The precision of an index's embeddings as its manifest records it; ``fp32`` when the
    manifest cannot be read (opening the index then says why)."""
    manifest = real_index_path(index_dir) / MANIFEST_NAME
    try:
        return Manifest.from_json(manifest.read_text(encoding="utf-8"), str(manifest)).precision
    except (OSError, ValueError, SncaError):
        return "fp32"


def check_model(
    manifest: Manifest, model: OnnxModel, directory: Path, same_classes: bool = False
) -> None:
    """Refuse a model whose embedding differs from the one the index holds (an adapted model
    shares its base model's embedding and passes); with ``same_classes`` (adding tiles, whose
    predicted classes join the index's) also one with other classes."""
    dim = model.metadata.embedding_dim
    if dim != manifest.embedding_dim:
        raise SncaError(
            f"model {model.path.name} makes {dim}-d embeddings but index {directory} holds "
            f"{manifest.embedding_dim}-d ones; use the model the index was built with"
        )
    if model.embedding_sha256 != manifest.model_sha256:
        raise SncaError(
            f"model {model.path.name} (embedding sha256 {model.embedding_sha256[:12]}) is not "
            f"the model index {directory} was built with ({manifest.model_name}, sha256 "
            f"{manifest.model_sha256[:12]}); use that model or rebuild the index"
        )
    if model.precision != manifest.precision:
        raise SncaError(
            f"index {directory} holds {manifest.precision} embeddings but model "
            f"{model.path.name} runs in {model.precision}; use --precision {manifest.precision} "
            "(or auto, which follows the index)"
        )
    if same_classes and list(model.metadata.class_names) != list(manifest.class_names):
        raise SncaError(
            f"model {model.path.name} predicts other classes than index {directory} holds "
            f"({manifest.model_name}: {len(manifest.class_names)} classes); add with that model"
        )


def write_tile_table(path: Path, manifest: Manifest, tiles: np.ndarray) -> None:
    """Write ``tiles.gpkg``: one polygon layer per CRS with each tile's attributes."""
    layers: dict[str, list[int]] = {}
    for number, raster in enumerate(manifest.rasters):
        layers.setdefault(raster.layer, []).append(number)
    for layer, numbers in layers.items():
        ids = np.flatnonzero(np.isin(tiles["raster"], numbers))
        rows = tiles[ids]
        bounds = np.stack([rows["minx"], rows["miny"], rows["maxx"], rows["maxy"]], axis=1)
        names = np.array(manifest.class_names, dtype=object)
        attributes = {
            "tile_id": rows["grid_id"].astype(np.int64),
            "row": rows["row"],
            "col": rows["col"],
            "raster": np.array([manifest.rasters[r].path for r in rows["raster"]], dtype=object),
            "raster_index": rows["raster"].astype(np.int32),
            "index_row": ids.astype(np.int64),
            "col_off": rows["col_off"],
            "row_off": rows["row_off"],
            "width": rows["width"],
            "height": rows["height"],
            "valid_fraction": rows["valid_fraction"].astype(np.float64),
            "class": names[rows["class_index"]],
            "score": rows["score"].astype(np.float64),
        }
        crs = manifest.rasters[numbers[0]].crs
        write_polygons(path, box_rings(bounds), attributes, crs, layer=layer)


def write_index_files(
    directory: Path, manifest: Manifest, tiles: np.ndarray, embeddings: np.ndarray
) -> None:
    """Write the array files, the GPKG and, last, the manifest into ``directory`` (the graph
    files, :attr:`Manifest.graph_names`, are already there)."""
    np.save(directory / EMBEDDINGS_NAME, embeddings, allow_pickle=False)
    np.save(directory / TILES_NAME, tiles, allow_pickle=False)
    write_tile_table(directory / TABLE_NAME, manifest, tiles)
    graphs = manifest.graph_names
    manifest.graph_bytes = sum((directory / name).stat().st_size for name in graphs)
    manifest.files = {}
    for name in [EMBEDDINGS_NAME, TILES_NAME, TABLE_NAME, *graphs]:
        if (directory / name).is_file():
            with open(directory / name, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                manifest.files[name] = {"bytes": size, "sha256": file_digest(handle)}
    (directory / MANIFEST_NAME).write_text(manifest.to_json())
