"""Campaigns against an index, run as ``python -m tests.helpers.index_campaigns ...`` in a fresh
interpreter (a crash there fails the calling test instead of killing it):

* ``flips WORKDIR FLIPS SEED``: flip one random byte of one file of ``WORKDIR/idx`` at a time
  (XOR with 1..255), open the index and search, restore the byte. Prints per file how many
  flips were ``refused`` (a one-line SncaError naming the file), left the answers ``same``, or
  ``changed`` them.
* ``adds WORKDIR TRIALS``: per trial, copy ``WORKDIR/pristine`` to a fresh index and run two
  ``add_to_index`` at once in two forked processes (``a.tif`` and ``b.tif``). Prints per trial
  both exit codes and the rasters and tile count of the index afterwards.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import add_to_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import read_index

QUERIES = (0, 5, 11)


def _answers(index_dir: Path) -> list:
    """Every query's hits (ids and similarities), with hnswlib and exactly."""
    answers = []
    for exact in (False, True):
        with TileIndex.open(index_dir, exact=exact) as index:
            for tile_id in QUERIES:
                result = index.search_tile_id(tile_id, k=5)
                answers.append(
                    [
                        (h.tile.tile_id, round(h.similarity, 6), h.tile.class_name)
                        for h in result.hits
                    ]
                )
    return answers


def flips(work: Path, count: int, seed: int) -> dict[str, dict[str, int]]:
    index_dir = work / "idx"
    baseline = _answers(index_dir)
    rng = np.random.default_rng(seed)
    report: dict[str, dict[str, int]] = {}
    for path in sorted(p for p in index_dir.iterdir() if p.is_file()):
        original = path.read_bytes()
        outcome = {"refused": 0, "same": 0, "changed": 0, "unnamed": 0}
        for _ in range(count):
            damaged = bytearray(original)
            position = int(rng.integers(len(damaged)))
            damaged[position] ^= int(rng.integers(1, 256))
            path.write_bytes(bytes(damaged))
            try:
                answers = _answers(index_dir)
            except SncaError as exc:
                outcome["refused"] += 1
                outcome["unnamed"] += path.name not in str(exc)
            else:
                outcome["same" if answers == baseline else "changed"] += 1
            finally:
                path.write_bytes(original)
        report[path.name] = outcome
    return report


def _add(index_dir: Path, raster: Path, model: Path, barrier) -> None:
    barrier.wait()
    try:
        add_to_index(index_dir, [raster], OnnxModel(model))
    except SncaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        os._exit(2)
    os._exit(0)


def adds(work: Path, trials: int) -> list[dict]:
    context = multiprocessing.get_context("fork")
    results = []
    for trial in range(trials):
        index_dir = work / f"idx{trial}"
        shutil.copytree(work / "pristine", index_dir)
        barrier = context.Barrier(2)
        workers = [
            context.Process(target=_add, args=(index_dir, work / name, work / "m.onnx", barrier))
            for name in ("a.tif", "b.tif")
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        manifest = read_index(index_dir).manifest
        results.append(
            {
                "codes": [w.exitcode for w in workers],
                "rasters": [Path(r.path).name for r in manifest.rasters],
                "count": manifest.count,
            }
        )
    return results


if __name__ == "__main__":
    what, folder = sys.argv[1], Path(sys.argv[2])
    if what == "flips":
        print(json.dumps(flips(folder, int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(json.dumps(adds(folder, int(sys.argv[3]))))
