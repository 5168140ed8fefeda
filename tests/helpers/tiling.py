"""Model metadata and uniform rasters for the tiling tests (grid, raster reads, block cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snca_cli.contract.metadata import ModelMetadata
from tests.helpers.rasters import (
    write_raster,
)


def metadata(tile_size: int = 32, bands: int = 3, resolution_cm: float | None = None):
    return ModelMetadata(
        class_names=[f"c{i}" for i in range(bands)],
        tile_size=tile_size,
        embedding_dim=bands,
        input_bands=bands,
        resolution_cm=resolution_cm,
    )


def uniform(path: Path, width: int, height: int, value: int = 100, **kwargs) -> Path:
    return write_raster(path, np.full((3, height, width), value, np.uint8), **kwargs)
