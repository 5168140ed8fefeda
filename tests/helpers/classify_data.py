"""The painted scene of the classify tests: its tile colours, class names, and layers read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw

from tests.helpers.rasters import BLUE, GREEN, RED

COLOURS = [[RED, GREEN, BLUE, RED], [BLUE, BLUE, GREEN, RED], [GREEN, RED, BLUE, GREEN]]
NAMES = ["red", "green", "blue"]


def read_layer(path: Path) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """(meta, rings N x 5 x 2, fields) of the (first) polygon layer written by snca."""
    meta, _, geometry, values = pyogrio.raw.read(path, layer=0)[:4]
    rings = np.stack([np.frombuffer(wkb[13:], "<f8").reshape(-1, 2) for wkb in geometry])
    assert all(
        wkb[:13] == b"\x01\x03\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00" for wkb in geometry
    )
    return meta, rings, dict(zip(meta["fields"], values, strict=True))
