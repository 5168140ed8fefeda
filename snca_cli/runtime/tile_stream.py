"""Embed every tile of a raster: windowed reads in a prefetch thread, batched onnxruntime runs.

A reader thread reads tiles (skipping those with too few valid pixels) straight into batch
buffers and queues them, at most ``PREFETCH_BATCHES`` ahead, while the calling thread runs the
model, so reading overlaps compute. The buffers are recycled once the model has run on them:
at most ``PREFETCH_BATCHES + 2`` batches of pixels exist (one being filled, the queued ones,
one in the model), and no tile is copied after it is read. Progress and cancellation are plain
callables: the CLI maps them to a rich progress bar, the QGIS plugin to ``QgsTask``.

Usage::

    with embed_raster(path, model, TilingOptions(overlap=0.25)) as run:
        for batch in run:
            ...  # batch.tiles, batch.embedding, batch.probabilities
    run.stats  # TilingStats(total=..., embedded=..., skipped=...)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from snca_cli.contract.scaling import ValueScaling
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.hooks import CancelHook, ProgressHook
from snca_cli.runtime.grid import Tile
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling

#: Batches the reader thread may have ready ahead of the model.
PREFETCH_BATCHES = 2
#: Seconds between checks of the cancel hook while waiting on the reader.
POLL_SECONDS = 0.1

#: Most bytes of pixels one batch may hold (PREFETCH_BATCHES + 2 batches exist at once).
MAX_BATCH_BYTES = 256 * 1024 * 1024


def check_batch_size(batch_size: int, model: OnnxModel) -> None:
    """Refuse a batch size below 1 or one whose pixels exceed MAX_BATCH_BYTES for ``model``."""
    meta = model.metadata
    tile_bytes = meta.input_bands * meta.tile_size * meta.tile_size * 4
    limit = max(1, MAX_BATCH_BYTES // tile_bytes)
    if not 1 <= batch_size <= limit:
        raise SncaError(
            f"batch size must be 1 to {limit:,} for this model's {meta.tile_size} px, "
            f"{meta.input_bands}-band tiles ({MAX_BATCH_BYTES >> 20} MiB of pixels per batch); "
            f"got {batch_size}"
        )


@dataclass(frozen=True)
class TileBatch:
    """Model outputs for a batch of tiles (only tiles with enough valid pixels)."""

    tiles: list[Tile]  # valid_fraction set
    embedding: np.ndarray  # N x D float32, unit length
    probabilities: np.ndarray  # N x C float32


@dataclass
class TilingStats:
    """Tile counts of one run; complete once the run is exhausted."""

    total: int  # tiles in the grid
    embedded: int = 0  # tiles run through the model
    skipped: int = 0  # tiles whose valid fraction was below min_valid

    @property
    def done(self) -> int:
        """Tiles examined so far (embedded or skipped)."""
        return self.embedded + self.skipped


@dataclass(frozen=True)
class _Chunk:
    """What the reader thread hands over: a batch (maybe empty) and its running counts."""

    tiles: list[Tile]
    buffer: np.ndarray | None  # batch buffer whose first len(tiles) slots hold the tiles
    skipped: int  # tiles skipped since the previous chunk


class _Failure:
    """An exception raised in the reader thread, re-raised in the caller's."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class RasterEmbedding(Iterator[TileBatch]):
    """An iterator of :class:`TileBatch` over a raster; see :func:`embed_raster`.

    Attributes:
        tiling: the raster's :class:`RasterTiling` (CRS, grid transform, tile geometry).
        stats: the :class:`TilingStats` of the run, updated as batches come.
        model: the :class:`OnnxModel` run on the tiles.
    """

    def __init__(
        self,
        raster_path: Path | str,
        model: OnnxModel,
        options: TilingOptions,
        batch_size: int,
        progress: ProgressHook | None,
        cancelled: CancelHook | None,
        rows: tuple[int, int] | None = None,
        scaling: ValueScaling | None = None,
    ) -> None:
        check_batch_size(batch_size, model)
        self.model = model
        self.tiling = RasterTiling.open(raster_path, model.metadata, options, scaling)
        n_rows = self.tiling.grid.n_rows
        self.rows = (0, n_rows) if rows is None else (max(0, rows[0]), min(n_rows, rows[1]))
        band_rows = max(0, self.rows[1] - self.rows[0])
        self.stats = TilingStats(total=band_rows * self.tiling.grid.n_cols)
        self._batch_size = batch_size
        self._progress = progress
        self._cancelled = cancelled
        self._stop = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=PREFETCH_BATCHES)
        self._free_buffers: queue.Queue[np.ndarray] = queue.Queue()
        self._buffers_made = 0
        self._reader: threading.Thread | None = None
        self._batches = self._run()

    def __next__(self) -> TileBatch:
        return next(self._batches)

    def close(self) -> None:
        """Stop the reader thread and close the raster; safe to call twice."""
        self._batches.close()
        self._stop_reader()
        self.tiling.close()

    def __enter__(self) -> RasterEmbedding:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_cancel(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise Cancelled()

    def _run(self) -> Iterator[TileBatch]:
        self._check_cancel()
        self._reader = threading.Thread(target=self._read_all, name="snca-tile-reader", daemon=True)
        self._reader.start()
        try:
            while True:
                item = self._next_item()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    raise item.error
                assert isinstance(item, _Chunk)
                self.stats.skipped += item.skipped
                if item.tiles:
                    assert item.buffer is not None
                    outputs = self.model.run(item.buffer[: len(item.tiles)])
                    self._free_buffers.put(item.buffer)
                    self._check_cancel()
                    self.stats.embedded += len(item.tiles)
                    self._report()
                    yield TileBatch(item.tiles, outputs.embedding, outputs.probabilities)
                else:
                    self._report()
        finally:
            self._stop_reader()

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(self.stats.done, self.stats.total)

    def _next_item(self) -> object:
        """The reader's next item, checking the cancel hook while waiting."""
        while True:
            self._check_cancel()
            try:
                return self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue

    def _put(self, item: object) -> bool:
        """Queue an item for the caller; False when the run was stopped meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _take_buffer(self) -> np.ndarray | None:
        """A free batch buffer: a recycled one, a new one while fewer than the bound exist, or
        the next one the model gives back; None when the run was stopped meanwhile."""
        while not self._stop.is_set():
            try:
                return self._free_buffers.get_nowait()
            except queue.Empty:
                pass
            if self._buffers_made < PREFETCH_BATCHES + 2:
                self._buffers_made += 1
                tiling = self.tiling
                slots = min(self._batch_size, max(1, self.stats.total))
                shape = (slots, len(tiling.bands), tiling.tile_size, tiling.tile_size)
                return np.empty(shape, np.float32)
            try:
                return self._free_buffers.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def _read_all(self) -> None:
        """Reader thread: read every tile, queue batches of the valid ones, then _END."""
        try:
            tiles: list[Tile] = []
            buffer: np.ndarray | None = None
            skipped = 0
            grid = self.tiling.grid
            band = (grid.tile(r, c) for r in range(*self.rows) for c in range(grid.n_cols))
            for tile in band:
                if self._stop.is_set():
                    return
                if buffer is None:
                    buffer = self._take_buffer()
                    if buffer is None:
                        return
                fraction, kept = self.tiling.read_into(tile, buffer[len(tiles)])
                if kept:
                    tiles.append(replace(tile, valid_fraction=fraction))
                else:
                    skipped += 1
                if len(tiles) == len(buffer) or skipped == self._batch_size:
                    # a batch, or a run of skipped tiles worth a progress update
                    if not self._put(_Chunk(tiles, buffer if tiles else None, skipped)):
                        return
                    if tiles:
                        buffer = None
                    tiles, skipped = [], 0
            if tiles or skipped:
                self._put(_Chunk(tiles, buffer if tiles else None, skipped))
            self._put(_END)
        except BaseException as exc:  # handed to the caller's thread
            self._put(_Failure(exc))

    def _stop_reader(self) -> None:
        self._stop.set()
        if self._reader is not None:
            while self._reader.is_alive():
                try:  # unblock a reader waiting on a full queue
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._reader.join(timeout=POLL_SECONDS)
            self._reader = None


def embed_raster(
    raster_path: Path | str,
    model: OnnxModel,
    options: TilingOptions | None = None,
    batch_size: int = 32,
    progress: ProgressHook | None = None,
    cancelled: CancelHook | None = None,
    rows: tuple[int, int] | None = None,
    scaling: ValueScaling | None = None,
) -> RasterEmbedding:
    """Embed and classify every tile of a raster with enough valid pixels.

    Opens the raster at once (bad input raises :class:`SncaError` here) and returns an iterator
    of :class:`TileBatch`, in tile order, with ``.tiling`` and ``.stats`` attached; use it as a
    context manager so the reader thread and the raster are closed however the loop ends.

    Args:
        raster_path: a georeferenced raster GDAL can read.
        model: the ONNX model; its metadata gives tile size, bands and scaling.
        options: tiling options (overlap, resolution, bands, min_valid, stretch, edge).
        batch_size: tiles per model run.
        progress: called as ``progress(done, total)`` in the caller's thread after each batch
            (done counts skipped tiles too).
        cancelled: polled in the caller's thread; when it returns True the run stops and
            :class:`Cancelled` is raised.
        rows: only the tiles of grid rows ``[start, stop)`` (a band of a raster too large for
            one work unit); default every row.
        scaling: the raster's value scaling when already chosen (see :meth:`RasterTiling.open`).
    """
    return RasterEmbedding(
        raster_path,
        model,
        options or TilingOptions(),
        batch_size,
        progress,
        cancelled,
        rows,
        scaling,
    )
