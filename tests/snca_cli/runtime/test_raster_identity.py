"""A raster's content identity (snca_cli.runtime.raster_identity): it changes with what GDAL
reads, never with the name or time alone."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil

from snca_cli.runtime.raster_identity import content_identity
from tests.helpers.rasters import write_raster


def _identity(name: Path | str) -> str:
    with rasterio.open(name) as dataset:
        return content_identity(dataset)


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (3, 40, 30)).astype(np.uint8)


def test_a_raster_rewritten_with_other_pixels_under_its_name_size_and_mtime_is_another(
    tmp_path: Path,
) -> None:
    raster = write_raster(tmp_path / "scene.tif", _pixels(1))
    first = _identity(raster)
    write_raster(raster, _pixels(1))
    assert _identity(raster) == first  # the same content again
    before = os.stat(raster)
    write_raster(raster, _pixels(2))
    os.utime(raster, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(raster).st_size == before.st_size
    assert _identity(raster) != first


def test_a_vrt_changes_with_its_source(tmp_path: Path) -> None:
    source = write_raster(tmp_path / "source.tif", _pixels(1))
    rasterio.shutil.copy(source, tmp_path / "virtual.vrt", driver="VRT")
    first = _identity(tmp_path / "virtual.vrt")
    write_raster(source, _pixels(2))
    assert _identity(tmp_path / "virtual.vrt") != first


def test_a_remote_raster_is_identified_by_its_pixels(tmp_path: Path) -> None:
    local = write_raster(tmp_path / "scene.tif", _pixels(1))
    remote = "/vsimem/identity/scene.tif"
    try:
        rasterio.shutil.copy(local, remote)
        first = _identity(remote)
        assert _identity(remote) == first
        with rasterio.open(remote, "r+") as dataset:
            dataset.write(_pixels(2))
        assert _identity(remote) != first
    finally:
        rasterio.shutil.delete(remote)


def test_a_source_shared_by_many_vrts_is_read_once(tmp_path: Path, monkeypatch) -> None:
    """Planning a thousand window VRTs of one large source hashed the source a thousand times
    (about ten minutes for the 10^7-tile benchmark); unchanged, it is read once."""
    from snca_cli.runtime import raster_identity

    source = write_raster(tmp_path / "source.tif", _pixels(1))
    for n in range(3):
        rasterio.shutil.copy(source, tmp_path / f"window{n}.vrt", driver="VRT")
    reads: list[str] = []
    real = raster_identity.file_sha256
    monkeypatch.setattr(raster_identity, "file_sha256", lambda p: reads.append(p) or real(p))
    identities = {_identity(tmp_path / f"window{n}.vrt") for n in range(3)}
    assert len(identities) == 3  # each VRT file is part of its identity
    assert sorted(Path(p).name for p in reads) == [
        "source.tif", "window0.vrt", "window1.vrt", "window2.vrt"
    ]  # fmt: skip
