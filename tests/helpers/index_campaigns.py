"""Campaigns against an index, run as ``python -m tests.helpers.index_campaigns ...`` in a fresh
interpreter (a crash there fails the calling test instead of killing it):

* ``flips WORKDIR FLIPS SEED``: flip one random byte of one file of ``WORKDIR/idx`` at a time
  (XOR with 1..255), open the index and search, restore the byte. Prints per file how many
  flips were ``refused`` (a one-line SncaError naming the file), left the answers ``same``, or
  ``changed`` them.
* ``graph WORKDIR EDITS SEED``: overwrite one random header field of ``WORKDIR/idx/index.hnsw``
  (``header``) or one random word after the header (``body``) at a time with a value hnswlib
  may choke on, re-sign the manifest so that only the structure checks can catch it, open the
  index and search, restore both files. Prints per kind of edit how many were ``refused``,
  ``same`` or ``changed``, and ``unnamed``. A crash ends the campaign with a negative exit code.
* ``adds WORKDIR TRIALS``: per trial, copy ``WORKDIR/pristine`` to a fresh index and run two
  ``add_to_index`` at once in two forked processes (``a.tif`` and ``b.tif``). Prints per trial
  both exit codes and the rasters and tile count of the index afterwards.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import add_to_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import GRAPH_NAME, MANIFEST_NAME, read_index
from tests.helpers.hnsw_files import HEADER
from tests.helpers.index_data import resign_index

QUERIES = (0, 5, 11)
#: What ``graph`` edits: a header field, or a word of the elements and their links.
KINDS = ("header", "body")


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


def _wild_value(rng: np.random.Generator, code: str, original: float) -> float:
    """A value for a header field of ``struct`` type ``code`` that hnswlib may choke on."""
    if code == "d":
        choices = [math.nan, math.inf, -1.0, 0.0, 1e300, original * 2]
        return choices[int(rng.integers(len(choices)))]
    bits = {"Q": 64, "I": 32, "i": 32}[code]
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code == "i" else (0, (1 << bits) - 1)
    candidates = [low, high, 0, 1, -1, high >> 1, int(original) - 1, int(original) + 1]
    candidates += [int(original) * 2, int(rng.integers(0, 1 << 62))]
    return min(max(candidates[int(rng.integers(len(candidates)))], low), high)


def graph_edits(work: Path, count: int, seed: int) -> dict[str, dict[str, int]]:
    index_dir = work / "idx"
    graph, manifest = index_dir / GRAPH_NAME, index_dir / MANIFEST_NAME
    originals = graph.read_bytes(), manifest.read_bytes()
    baseline = _answers(index_dir)
    header = HEADER.unpack_from(originals[0])
    codes = HEADER.format.lstrip("=").replace("6Q", "Q" * 6).replace("3Q", "Q" * 3)
    rng = np.random.default_rng(seed)
    report = {kind: {"refused": 0, "same": 0, "changed": 0, "unnamed": 0} for kind in KINDS}
    for number in range(count):
        kind = KINDS[number % len(KINDS)]
        if kind == "header":
            values = list(header)
            field = int(rng.integers(len(values)))
            values[field] = _wild_value(rng, codes[field], values[field])
            data = HEADER.pack(*values) + originals[0][HEADER.size :]
        else:
            data = bytearray(originals[0])
            position = HEADER.size + 4 * int(rng.integers((len(data) - HEADER.size) // 4))
            struct.pack_into("=I", data, position, int(_wild_value(rng, "I", 0)))
        graph.write_bytes(bytes(data))
        resign_index(index_dir)
        outcome = report[kind]
        try:
            answers = _answers(index_dir)
        except SncaError as exc:
            outcome["refused"] += 1
            outcome["unnamed"] += GRAPH_NAME not in str(exc)
        else:
            outcome["same" if answers == baseline else "changed"] += 1
        finally:
            graph.write_bytes(originals[0])
            manifest.write_bytes(originals[1])
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
    elif what == "graph":
        print(json.dumps(graph_edits(folder, int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(json.dumps(adds(folder, int(sys.argv[3]))))
