"""Batched, prefetched embedding of raster tiles with the band-mean model (exact outputs)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.tile_stream import PREFETCH_BATCHES, TilingStats, embed_raster
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model
from tests.helpers.rasters import BLUE, GREEN, RED, painted, write_raster

COLOURS = [[RED, GREEN, BLUE, RED], [BLUE, BLUE, GREEN, RED], [GREEN, RED, BLUE, GREEN]]
CLASSES = [[0, 1, 2, 0], [2, 2, 1, 0], [1, 0, 2, 1]]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> OnnxModel:
    path = tmp_path_factory.mktemp("model") / "band_mean.onnx"
    return OnnxModel(make_band_mean_model(path, tile_size=16, class_names=["r", "g", "b"]))


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "snca-tile-reader"]


def test_every_tile_gets_its_exact_class_and_embedding(tmp_path: Path, model) -> None:
    path = write_raster(tmp_path / "p.tif", painted(COLOURS, 16))
    with embed_raster(path, model, batch_size=5) as run:
        assert (run.tiling.n_rows, run.tiling.n_cols) == (3, 4)
        batches = list(run)
    assert [len(b.tiles) for b in batches] == [5, 5, 2]
    tiles = [t for b in batches for t in b.tiles]
    assert [t.tile_id for t in tiles] == list(range(12))
    assert all(t.valid_fraction == 1.0 for t in tiles)
    probabilities = np.concatenate([b.probabilities for b in batches])
    embedding = np.concatenate([b.embedding for b in batches])
    assert probabilities.argmax(axis=1).tolist() == [c for row in CLASSES for c in row]
    means = np.array([c for row in COLOURS for c in row], np.float32) / np.float32(255.0)
    images = np.broadcast_to(means[:, :, None, None], (12, 3, 16, 16))
    ref_embedding, ref_probabilities = band_mean_reference(images, 3, 3)
    assert np.allclose(embedding, ref_embedding, atol=1e-6)
    assert np.allclose(probabilities, ref_probabilities, atol=1e-6)
    assert run.stats == TilingStats(total=12, embedded=12, skipped=0)
    assert not reader_threads()


def test_tiles_under_min_valid_are_skipped_and_counted(tmp_path: Path, model) -> None:
    data = painted(COLOURS, 16)
    data[:, :16, :16] = 0  # tile 0: empty
    data[:, 16:28, 16:32] = 0  # tile 5: 4 of 16 rows valid -> 0.25, skipped
    data[:, 32:40, 48:64] = 0  # tile 11: 8 of 16 rows valid -> 0.5, kept
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    with embed_raster(path, model, batch_size=4) as run:
        batches = list(run)
    tiles = [t for b in batches for t in b.tiles]
    assert [t.tile_id for t in tiles] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert tiles[-1].valid_fraction == 0.5
    assert run.stats == TilingStats(total=12, embedded=10, skipped=2)
    # the filled half of tile 11 takes the valid mean: it embeds like a full GREEN tile
    green = np.broadcast_to((np.array(GREEN, np.float32) / 255)[None, :, None, None], (1, 3, 2, 2))
    assert np.allclose(batches[-1].embedding[-1], band_mean_reference(green, 3, 3)[0][0], atol=1e-6)


def test_progress_counts_skipped_tiles_and_ends_at_the_total(tmp_path: Path, model) -> None:
    data = painted(COLOURS, 16)
    data[:, :16, :] = 0  # the whole first row of tiles is no-data
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    calls: list[tuple[int, int]] = []
    with embed_raster(path, model, batch_size=3, progress=lambda *a: calls.append(a)) as run:
        list(run)
    assert calls[-1] == (12, 12)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert all(total == 12 for _, total in calls)
    assert run.stats.skipped == 4 and run.stats.done == 12


def test_cancel_hook_stops_the_run_and_the_reader(tmp_path: Path, model) -> None:
    path = write_raster(tmp_path / "p.tif", painted(COLOURS, 16))
    seen: list[int] = []
    with embed_raster(path, model, batch_size=2, cancelled=lambda: len(seen) >= 2) as run:
        with pytest.raises(Cancelled):
            for batch in run:
                seen.append(len(batch.tiles))
    assert seen == [2, 2]
    assert isinstance(Cancelled(), SncaError) and str(Cancelled()) == "cancelled"
    assert not reader_threads()


def test_reader_runs_ahead_by_a_bounded_number_of_batches(
    tmp_path: Path, model, monkeypatch
) -> None:
    colours = np.tile(np.array(RED), (8, 8, 1))
    path = write_raster(tmp_path / "p.tif", painted(colours, 16))
    read = []
    original = RasterTiling.read_into

    def counting(self, tile, out):
        read.append(tile.tile_id)
        return original(self, tile, out)

    monkeypatch.setattr(RasterTiling, "read_into", counting)
    with embed_raster(path, model, batch_size=4) as run:
        next(run)
        time.sleep(0.3)  # let the reader fill its queue
        ahead = len(read)
        rest = list(run)
    # one batch consumed, PREFETCH_BATCHES queued, one filled by the blocked reader
    assert 4 * (PREFETCH_BATCHES + 1) <= ahead <= 4 * (PREFETCH_BATCHES + 2)
    assert len(rest) == 64 // 4 - 1 and len(read) == 64


def test_batch_buffers_are_recycled_without_mixing_tiles(
    tmp_path: Path, model, monkeypatch
) -> None:
    rng = np.random.default_rng(3)
    classes = rng.integers(0, 3, (6, 6))
    colours = np.array([RED, GREEN, BLUE])[classes]
    path = write_raster(tmp_path / "p.tif", painted(colours, 16))
    buffers = set()
    original = OnnxModel.run

    def spying(self, images):
        buffers.add(images.base.__array_interface__["data"][0])  # the buffer the slots are in
        return original(self, images)

    monkeypatch.setattr(OnnxModel, "run", spying)
    with embed_raster(path, model, batch_size=2) as run:
        probabilities = np.concatenate([b.probabilities for b in run])
    assert probabilities.argmax(axis=1).tolist() == classes.ravel().tolist()  # 18 batches
    assert len(buffers) <= PREFETCH_BATCHES + 2


def test_a_corrupt_raster_fails_in_the_callers_thread(tmp_path: Path, model) -> None:
    rng = np.random.default_rng(0)
    path = write_raster(tmp_path / "c.tif", rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    with embed_raster(path, model, TilingOptions(stretch="model"), batch_size=2) as run:
        with pytest.raises(SncaError, match="cannot read c.tif \\(corrupt or truncated\\?\\)"):
            list(run)
    assert not reader_threads()
    # the default scaling samples the raster when it opens: the same error, before any thread
    with pytest.raises(SncaError, match="cannot read c.tif \\(corrupt or truncated\\?\\)"):
        embed_raster(path, model, batch_size=2)
    assert not reader_threads()


def test_options_reach_the_tiling(tmp_path: Path, model) -> None:
    path = write_raster(tmp_path / "p.tif", painted(COLOURS, 16))
    with embed_raster(path, model, TilingOptions(overlap=8, bands=(3, 2, 1))) as run:
        assert run.tiling.stride == 8 and run.tiling.bands == (3, 2, 1)
        batches = list(run)
    assert run.stats.total == 5 * 7
    first = batches[0].probabilities[0]  # tile (0, 0) is RED read as BGR: class 2
    assert first.argmax() == 2


def test_bad_batch_size_is_refused(tmp_path: Path, model) -> None:
    path = write_raster(tmp_path / "p.tif", painted(COLOURS, 16))
    with pytest.raises(SncaError, match="batch size"):
        embed_raster(path, model, batch_size=0)


def test_a_band_of_rows_yields_exactly_its_tiles(tmp_path: Path, model) -> None:
    """A work unit's rows [1, 3) of the 3 x 4 grid: tiles 4..11 with their classes, counted
    against the band's 8 tiles (rows past the grid are clipped)."""
    path = write_raster(tmp_path / "p.tif", painted(COLOURS, 16))
    with embed_raster(path, model, batch_size=3, rows=(1, 3)) as run:
        batches = list(run)
    tiles = [t for b in batches for t in b.tiles]
    assert [t.tile_id for t in tiles] == list(range(4, 12))
    classes = np.concatenate([b.probabilities for b in batches]).argmax(axis=1)
    assert classes.tolist() == CLASSES[1] + CLASSES[2]
    assert run.stats == TilingStats(total=8, embedded=8, skipped=0)
    with embed_raster(path, model, rows=(2, 9)) as run:
        assert [t.tile_id for b in run for t in b.tiles] == [8, 9, 10, 11]
    assert run.stats.total == 4
