"""End-to-end check of the GeoTIFF path: held-out test scenes mosaicked into one georeferenced
GeoTIFF must score like the same scenes fed to the model as images.

The test scenes of a model's split (``--split``, else ``split.json`` beside the model, else the
split in its model card ``<stem>.card.json``, else its split seed) are resized to the model's
tile and laid out one per cell, row by row, in a tiled, DEFLATE-compressed GeoTIFF in EPSG:32633
with 2 m pixels, written window by window; the cells left over in the last row are masked out.
Then the real runtime runs on it with tiles of exactly one cell (no overlap, native resolution):

* ``classify_raster``: tile accuracy = the fraction of tiles whose class (read back from the
  GeoPackage) is the class of the scene in that cell;
* ``build_index`` + ``TileIndex.search_tile_id`` (hnswlib): search P@10 = the fraction of each
  tile's 10 hits (itself excluded) showing a scene of its class, averaged over all tiles.

Like with like, the same ONNX model is run through :mod:`snca_cli.tasks.evaluate` on the same test
images: the softmax (argmax probability) accuracy, and P@10 of test-vs-test retrieval with each
query left out of its own results. Each pair must agree within 1 point, else the exit status is
1 (2 for bad input). The largest difference between a tile's embedding in the index and its
image's embedding is reported too.

    python benchmarks/mosaic_check.py --model model.onnx --data AID --out mosaic-check
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import rasterio
from affine import Affine
from rasterio.windows import Window
from rich.console import Console
from rich.table import Table

from snca_cli.cli.support import tile_progress
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import check_writable
from snca_cli.runtime.metrics import knn_accuracy
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.scene_images import read_image, resize_image
from snca_cli.tasks.classify import classify_raster
from snca_cli.tasks.evaluate import (
    Embedder,
    EvaluationSplit,
    embed_items,
    labels_of,
    open_onnx,
    resolve_split,
)
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import read_index
from snca_cli.tasks.units import RunOptions

#: Where the mosaic lies: UTM zone 33N, 2 m pixels, upper-left corner.
MOSAIC_CRS = "EPSG:32633"
PIXEL_METRES = 2.0
MOSAIC_ORIGIN = (500_000.0, 5_000_000.0)
MOSAIC_BLOCK = 256
#: Neighbours of the precision measure.
SEARCH_K = 10
#: Largest difference (a fraction) allowed between the mosaic's and the images' figures.
AGREEMENT = 0.01


def grid_shape(count: int) -> tuple[int, int]:
    """``(rows, cols)`` of the most nearly square grid holding ``count`` cells."""
    if count < 1:
        raise SncaError("the split has no test scene to mosaic")
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def cell_labels(labels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``rows x cols`` class of each cell (scene ``i`` in cell ``divmod(i, cols)``), -1 where
    no scene lies."""
    grid = np.full(rows * cols, -1, dtype=np.int64)
    grid[: len(labels)] = labels
    return grid.reshape(rows, cols)


def leave_one_out_precision(embeddings: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean over items of the fraction of their ``k`` most similar other items (cosine of unit
    rows; the item itself left out) that share their label."""
    embeddings = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return float(np.mean(labels[nearest] == labels[:, None]))


def cell_of(window: tuple[int, int, int, int], cell: int) -> tuple[int, int]:
    """``(row, col)`` of the mosaic cell a tile window ``(col_off, row_off, w, h)`` covers."""
    col_off, row_off, _, _ = window
    return row_off // cell, col_off // cell


def scene_pixels(path: Path, cell: int) -> np.ndarray:
    """A scene as ``cell x cell x 3`` uint8, resized like
    :func:`snca_cli.tasks.evaluate.load_batch`."""
    image = read_image(path)
    if image.dtype != np.uint8 or image.shape[2] != 3:
        raise SncaError(f"{path} is not an 8-bit RGB image; the mosaic holds 8-bit RGB scenes")
    return resize_image(image, cell)


def write_mosaic(path: Path, scenes: Iterator[np.ndarray], count: int, cell: int) -> None:
    """Write ``count`` scenes into a georeferenced GeoTIFF one row of cells at a time; cells
    without a scene are masked (internal mask band)."""
    rows, cols = grid_shape(count)
    profile = {
        "driver": "GTiff",
        "width": cols * cell,
        "height": rows * cell,
        "count": 3,
        "dtype": "uint8",
        "crs": MOSAIC_CRS,
        "transform": Affine(
            PIXEL_METRES, 0.0, MOSAIC_ORIGIN[0], 0.0, -PIXEL_METRES, MOSAIC_ORIGIN[1]
        ),
        "tiled": True,
        "blockxsize": MOSAIC_BLOCK,
        "blockysize": MOSAIC_BLOCK,
        "compress": "deflate",
        "photometric": "RGB",
    }
    full = rows * cols == count
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        for row in range(rows):
            strip = np.zeros((3, cell, cols * cell), dtype=np.uint8)
            mask = np.zeros((cell, cols * cell), dtype=np.uint8)
            for col in range(min(cols, count - row * cols)):
                strip[:, :, col * cell : (col + 1) * cell] = np.moveaxis(next(scenes), -1, 0)
                mask[:, col * cell : (col + 1) * cell] = 255
            window = Window(0, row * cell, cols * cell, cell)
            dst.write(strip, window=window)
            if not full:
                dst.write_mask(mask, window=window)


def tile_accuracy(gpkg: Path, grid: np.ndarray) -> tuple[float, int]:
    """Fraction of the classified tiles of ``gpkg`` whose ``class_id`` is their cell's class,
    and the number of tiles."""
    meta, _, _, values = pyogrio.raw.read(
        gpkg, columns=["row", "col", "class_id"], read_geometry=False
    )[:4]
    field = dict(zip(meta["fields"], values, strict=True))
    truth = grid[field["row"].astype(np.int64), field["col"].astype(np.int64)]
    if (truth < 0).any():
        raise SncaError("a tile over an empty cell was classified; the mask was ignored")
    return float(np.mean(field["class_id"] == truth)), len(truth)


def search_precision(index_dir: Path, grid: np.ndarray, cell: int, k: int) -> float:
    """Mean over the indexed tiles of the fraction of their ``k`` hits in a cell of their class."""
    fractions = []
    with TileIndex.open(index_dir) as index, tile_progress("searching every tile") as progress:
        for tile_id in range(index.count):
            progress(tile_id, index.count)
            result = index.search_tile_id(tile_id, k=k)
            assert result.query is not None
            truth = grid[cell_of(result.query.window, cell)]
            hits = [grid[cell_of(hit.tile.window, cell)] for hit in result.hits]
            fractions.append(np.mean(np.array(hits) == truth))
    return float(np.mean(fractions))


def index_embedding_difference(index_dir: Path, image_embeddings: np.ndarray, cols: int) -> float:
    """Largest absolute difference between a tile's embedding in the index and the embedding of
    the image in its cell."""
    files = read_index(index_dir, mmap=False)
    scene = files.tiles["row"].astype(np.int64) * cols + files.tiles["col"]
    return float(np.abs(np.asarray(files.embeddings) - image_embeddings[scene]).max())


def model_split(embedder: Embedder, data: Path, split_file: Path | None) -> EvaluationSplit:
    """The model's split: ``split_file``, ``split.json`` beside the model, the split of its model
    card, or its split seed, in that order."""
    card = embedder.path.with_name(f"{embedder.path.stem}.card.json")
    beside = embedder.path.with_name("split.json")
    if split_file is None and not beside.is_file() and card.is_file():
        recorded = json.loads(card.read_text()).get("split") or {}
        if recorded.get("test"):
            return EvaluationSplit(
                train=list(recorded["train"]),
                test=list(recorded["test"]),
                seed=recorded.get("seed"),
                source=f"model card {card.name}",
                val=list(recorded.get("val") or []),
            )
    return resolve_split(embedder, data, split_file)


def check(
    model_path: Path, data: Path, split_file: Path | None, out: Path, with_knn: bool
) -> dict[str, Any]:
    """Run the whole check; return the JSON report."""
    embedder = open_onnx(model_path)
    split = model_split(embedder, data, split_file)
    labels = labels_of(split.test, embedder.class_names)
    cell = embedder.image_size
    rows, cols = grid_shape(len(split.test))
    grid = cell_labels(labels, rows, cols)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    mosaic = out / "mosaic.tif"
    scenes = (scene_pixels(data / item, cell) for item in split.test)
    write_mosaic(mosaic, scenes, len(split.test), cell)
    timings["write_mosaic"] = time.perf_counter() - started

    model = OnnxModel(model_path)
    options = TilingOptions(overlap=0, resolution="native", min_valid=0.5, edge="shift")
    started = time.perf_counter()
    with tile_progress("classifying the mosaic") as progress:
        classify_raster(mosaic, model, out / "classes.gpkg", options, force=True, progress=progress)
    accuracy, tiles = tile_accuracy(out / "classes.gpkg", grid)
    timings["classify"] = time.perf_counter() - started
    started = time.perf_counter()
    with tile_progress("indexing the mosaic") as progress:
        build_index(
            [mosaic], model, out / "index", options, force=True, run=RunOptions(progress=progress)
        )
    precision = search_precision(out / "index", grid, cell, SEARCH_K)
    timings["index_and_search"] = time.perf_counter() - started

    started = time.perf_counter()
    images = embed_items(embedder, data, split.test)
    image_accuracy = float(np.mean(images.probabilities.argmax(axis=1) == labels))
    image_precision = leave_one_out_precision(images.embedding, labels, SEARCH_K)
    timings["images"] = time.perf_counter() - started
    difference = index_embedding_difference(out / "index", images.embedding, cols)
    report: dict[str, Any] = {
        "model": model_path.name,
        "split": split.source,
        "test_scenes": len(split.test),
        "mosaic": {
            "file": mosaic.name,
            "crs": MOSAIC_CRS,
            "pixel_metres": PIXEL_METRES,
            "grid": [rows, cols],
            "cell_pixels": cell,
            "tiles_classified": tiles,
        },
        "tile_accuracy": accuracy,
        "image_softmax_accuracy": image_accuracy,
        "search_precision@10": precision,
        "image_precision@10": image_precision,
        "max_embedding_difference": difference,
        "agreement_limit": AGREEMENT,
        "seconds": timings,
    }
    if with_knn:
        train = embed_items(embedder, data, split.train)
        train_labels = labels_of(split.train, embedder.class_names)
        report["image_knn@10"] = knn_accuracy(
            images.embedding, labels, train.embedding, train_labels, 10, len(embedder.class_names)
        )
    report["agree"] = bool(
        abs(accuracy - image_accuracy) <= AGREEMENT
        and abs(precision - image_precision) <= AGREEMENT
    )
    return report


def report_table(report: dict[str, Any]) -> Table:
    """The mosaic's figures next to the images' figures, in percent."""
    verdict = "agree" if report["agree"] else "DISAGREE"
    table = Table(
        title=f"{report['test_scenes']} test scenes of {report['model']}: mosaic vs images "
        f"({verdict}, limit {100 * report['agreement_limit']:.0f} point)"
    )
    for name in ("measure", "mosaic GeoTIFF", "images", "difference (points)"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    pairs = (
        ("accuracy (softmax argmax)", "tile_accuracy", "image_softmax_accuracy"),
        ("P@10 among test scenes", "search_precision@10", "image_precision@10"),
    )
    for label, mosaic_key, image_key in pairs:
        tiled, image = report[mosaic_key], report[image_key]
        table.add_row(
            label, f"{100 * tiled:.2f}", f"{100 * image:.2f}", f"{100 * (tiled - image):+.2f}"
        )
    if "image_knn@10" in report:
        table.add_row("kNN@10 vs training images", "", f"{100 * report['image_knn@10']:.2f}", "")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="The ONNX model.")
    parser.add_argument("--data", type=Path, required=True, help="The scene folder.")
    parser.add_argument("--split", type=Path, help="split.json [default: see above].")
    parser.add_argument("--out", type=Path, required=True, help="Folder of the outputs.")
    parser.add_argument("--knn", action="store_true", help="Also kNN@10 of the test images.")
    parser.add_argument("--force", action="store_true", help="Reuse an existing --out folder.")
    args = parser.parse_args()
    try:
        check_writable(args.out, args.force)
        report = check(args.model, args.data, args.split, args.out, args.knn)
    except SncaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    (args.out / "mosaic_check.json").write_text(json.dumps(report, indent=1))
    Console().print(report_table(report))
    print(f"max |embedding(tile) - embedding(image)|: {report['max_embedding_difference']:.2e}")
    raise SystemExit(0 if report["agree"] else 1)


if __name__ == "__main__":
    main()
