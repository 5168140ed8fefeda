"""Painted rasters for the index tests: distinct tile colours, their exact band-mean embeddings
and classes, and polygon layers read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio.raw

from snca_cli.runtime.ann import normalize

TILE = 8
LOGIT_SCALE = 10.0


def colour_grid(rows: int, cols: int, seed: int) -> np.ndarray:
    """rows x cols x 3 distinct uint8 colours."""
    return np.random.default_rng(seed).integers(20, 241, (rows, cols, 3)).astype(np.uint8)


def expected_embeddings(colours: np.ndarray) -> np.ndarray:
    """The band-mean model's embedding of each painted tile, in tile order."""
    return normalize(colours.reshape(-1, 3).astype(np.float64) / 255.0)


def expected_classes(colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class (brightest band) and its softmax probability of each painted tile."""
    means = colours.reshape(-1, 3).astype(np.float64) / 255.0
    logits = LOGIT_SCALE * means
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    return means.argmax(1), probabilities.max(1)


def read_layer(path: Path, layer: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A polygon layer's fields and its rings' (minx, miny, maxx, maxy) read back with pyogrio."""
    meta, _, geometry, fields = pyogrio.raw.read(path, layer=layer)
    bounds = []
    for wkb in geometry:
        coords = np.frombuffer(wkb[13:], dtype="<f8").reshape(-1, 2)
        bounds.append([*coords.min(0), *coords.max(0)])
    return dict(zip(meta["fields"], fields, strict=True)), np.array(bounds)


def resign_index(directory: Path, edit=None) -> None:
    """Rewrite an index's manifest (after ``edit(payload)``) with checksums that match its
    files again: how a test makes files that disagree yet pass the checksums."""
    import hashlib
    import json

    from snca_cli.tasks.index.store import MANIFEST_NAME, is_index_file, manifest_checksum

    payload = json.loads((directory / MANIFEST_NAME).read_text())
    if edit is not None:
        edit(payload)
    payload["files"] = {
        path.name: {
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
        for path in sorted(directory.iterdir())
        if path.is_file() and is_index_file(path.name)
    }
    payload["checksum"] = manifest_checksum(payload)
    (directory / MANIFEST_NAME).write_text(json.dumps(payload))
