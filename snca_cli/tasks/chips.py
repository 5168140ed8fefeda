"""Labelled tiles as image chips in class folders: training data for ``snca train`` from the map.

``snca chips RASTER... --labels FILE --field NAME -o DIR`` labels tiles exactly as ``snca
adapt`` does (:mod:`snca_cli.tasks.labels`: a point labels the tile under it, a polygon every
tile at least half inside it; tiles cut for the model as ``snca classify`` cuts them) and writes
each labelled tile as ``DIR/CLASS/<raster>_r<row>_c<col>.tif``:

* **What a chip holds**: the model input of that tile, as ``snca classify`` computes it (the
  raster's value scaling, e.g. the percentile stretch of uint16 reflectance, chosen once per
  raster; no-data pixels filled with the tile's mean), as 8-bit (0..1 -> 0..255). Training on
  the chips therefore sees what classifying the raster shows the model, whatever the sensor.
* **Georeferenced**: the chip's CRS is the raster's and its transform the tile's window in the
  tiling grid (the raster's own pixels, or the model's resolution when it resamples), so a chip
  lies exactly on its tile in a GIS.
* **Names from data are never paths**: ``CLASS`` is the class value and ``<raster>`` the
  raster's file name without suffix, each made a safe single file name by
  :func:`snca_cli.runtime.safe_names.safe_names` (``a/b`` becomes ``a_b``, ``..`` becomes
  ``unnamed``, a long value is cut and hashed; values or rasters whose names collide, ignoring
  case, get distinct ones). A raster named twice is used once.
* ``DIR/chips.json`` records the labels (file, field), the model, the tiling, the folder of
  each class value (``classes``), each raster under its chip name (its file name, CRS, grid
  pixel size and scaling), and every chip (file, class value, raster, tile id, row, col,
  bounds). Tiles with too few valid pixels for ``snca classify`` are skipped with a warning.

The folder is written whole or not at all (staged, then renamed into place). ``--force``
replaces only a chips folder (:data:`CHIPS_OUTPUT`): its ``chips.json`` is snca's record and
it holds nothing but that record and the chips it lists.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from snca_cli.contract.scaling import to_uint8
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.hooks import CancelHook, ProgressFactory
from snca_cli.runtime.atomic import (
    OwnOutput,
    atomic_output,
    check_output_paths,
    read_record,
    unlisted_entry,
)
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.paths import absolute_source
from snca_cli.runtime.precision import named_precision
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.safe_names import safe_names
from snca_cli.tasks.labels import (
    LabelledTile,
    check_classes,
    class_counts,
    label_rasters,
    read_labels,
)

#: The record written beside the class folders.
RECORD_NAME = "chips.json"
#: The keys of a record (:func:`write_chips`).
RECORD_KEYS = frozenset(
    ("labels", "model", "tile_size", "tiling", "classes", "rasters", "counts", "chips")
)


def _chips_mismatch(folder: Path) -> str | None:
    """Why ``folder`` is not a chips folder snca wrote (None when it is)."""
    record, reason = read_record(folder / RECORD_NAME)
    if reason is not None:
        return reason
    chips = record.get("chips") if isinstance(record, dict) else None
    if not (
        isinstance(chips, list)
        and RECORD_KEYS <= record.keys()
        and all(isinstance(c, dict) and isinstance(c.get("file"), str) for c in chips)
    ):
        return f"its {RECORD_NAME} is not a record of snca chips"
    return unlisted_entry(folder, {RECORD_NAME, *(c["file"] for c in chips)})


#: A folder ``snca chips`` wrote, which ``--force`` may replace.
CHIPS_OUTPUT = OwnOutput("a chips folder", _chips_mismatch)


def chips_resolution_m(data_dir: Path | str) -> float | None:
    """The ground resolution (metres per pixel) the chips of ``data_dir`` were cut at, when its
    ``chips.json`` records one chosen in metres; None for other folders and for chips cut at
    their rasters' own pixels."""
    path = Path(data_dir) / RECORD_NAME
    try:
        resolution = json.loads(path.read_text())["tiling"]["resolution"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(resolution, bool) or not isinstance(resolution, int | float):
        return None
    return float(resolution) if resolution > 0 else None


@dataclass
class ChipsConfig:
    """What ``snca chips`` was asked."""

    output: Path
    rasters: list[Path]
    labels: Path
    field_name: str
    model: Path | None = None  # None: the shipped model (it sets the tile size and resolution)
    tiling: TilingOptions = field(default_factory=TilingOptions)
    force: bool = False


@dataclass
class ChipsSummary:
    """What :func:`write_chips` wrote."""

    output: Path
    counts: dict[str, int]  # chips per class, classes sorted
    skipped: int  # labelled tiles with too few valid pixels
    warnings: list[str]
    seconds: float


def chip_name(raster_name: str, tile: LabelledTile) -> str:
    """``<raster name>_r<row>_c<col>.tif``, ``raster_name`` a safe name of the raster."""
    return f"{raster_name}_r{tile.tile.row}_c{tile.tile.col}.tif"


def _distinct_rasters(rasters: list[Path], warnings: list[str]) -> list[Path]:
    """``rasters`` with each file once (a repeat would count its chips twice), and a warning
    for each repeat."""
    seen: set[str] = set()
    kept: list[Path] = []
    for raster in rasters:
        source = absolute_source(raster)
        if source in seen:
            warnings.append(
                f"raster {Path(raster).name} is named twice: its chips are written once"
            )
            continue
        seen.add(source)
        kept.append(Path(raster))
    return kept


def _write_chip(path: Path, pixels: np.ndarray, tiling: RasterTiling, window: Window) -> None:
    """Write model input ``pixels`` (bands x T x T in [0, 1]) as an 8-bit GeoTIFF on
    ``window`` of the tiling grid."""
    data = to_uint8(pixels)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": "uint8",
        "crs": tiling.crs,
        "transform": window_transform(window, tiling.transform),
    }
    if data.shape[0] == 3:
        profile["photometric"] = "RGB"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def write_chips(
    config: ChipsConfig,
    progress: ProgressFactory | None = None,
    cancelled: CancelHook | None = None,
) -> ChipsSummary:
    """Write the labelled tiles of ``config.rasters`` as chips in class folders (module
    docstring); SncaError for bad input, before anything is written."""
    started = time.perf_counter()
    output = Path(config.output)
    if not config.rasters:
        raise SncaError("name at least one raster the labels lie on")
    check_output_paths([output], config.force, folders=[output], own={output: CHIPS_OUTPUT})
    model_path = resolve_model(config.model)
    metadata = OnnxModel(model_path, precision=named_precision(model_path)).metadata
    labels = read_labels(config.labels, config.field_name)
    warnings: list[str] = []
    sources = _distinct_rasters(config.rasters, warnings)
    tiles, labelling = label_rasters(labels, sources, metadata, config.tiling)
    warnings += labelling + check_classes(class_counts(tiles), labels.path.name)
    values = list(class_counts(tiles))
    folders = dict(zip(values, safe_names(values, reserved=[RECORD_NAME]), strict=True))
    raster_names = safe_names([raster.stem for raster in sources])
    options = config.tiling.for_model(metadata)
    hook = progress("writing chips") if progress is not None else None
    chips: list[dict[str, Any]] = []
    rasters: dict[str, Any] = {}
    skipped = done = 0
    with atomic_output(output, config.force, directory=True, own=CHIPS_OUTPUT) as staged:
        for raster, raster_name in zip(sources, raster_names, strict=True):
            mine = [t for t in tiles if t.raster == raster]
            if not mine:
                continue
            with RasterTiling.open(raster, metadata, config.tiling) as tiling:
                rasters[raster_name] = {
                    "file": raster.name,
                    "crs": tiling.crs.to_string(),
                    "pixel_size": [tiling.transform.a, -tiling.transform.e],
                    "resampled": tiling.resampled,
                    "scaling": tiling.scaling.record(),
                }
                for labelled in mine:
                    if cancelled is not None and cancelled():
                        raise Cancelled("writing chips cancelled")
                    pixels, fraction = tiling.read_tile(labelled.tile)
                    done += 1
                    if hook is not None:
                        hook(done, len(tiles))
                    if pixels is None:
                        skipped += 1
                        continue
                    folder, name = folders[labelled.class_name], chip_name(raster_name, labelled)
                    (staged / folder).mkdir(exist_ok=True)
                    _write_chip(
                        staged / folder / name, pixels, tiling, Window(*labelled.tile.window)
                    )
                    chips.append(
                        {
                            "file": f"{folder}/{name}",
                            "class": labelled.class_name,
                            "raster": raster_name,
                            "tile_id": labelled.tile.tile_id,
                            "row": labelled.tile.row,
                            "col": labelled.tile.col,
                            "bounds": list(labelled.tile.bounds),
                            "valid_fraction": fraction,
                        }
                    )
        if skipped:
            warnings.append(
                f"{skipped} labelled tile(s) have too few valid pixels for snca classify: "
                "no chip written"
            )
        counts: dict[str, int] = {}
        for chip in chips:
            counts[chip["class"]] = counts.get(chip["class"], 0) + 1
        counts = {name: counts[name] for name in sorted(counts)}
        check_classes(counts, labels.path.name)
        record = {
            "labels": {"file": labels.path.name, "field": labels.field},
            "model": model_path.name,
            "tile_size": metadata.tile_size,
            "tiling": {
                "overlap": options.overlap,
                "resolution": options.resolution,
                "edge": options.edge,
                "min_valid": options.min_valid,
            },
            "classes": {value: folders[value] for value in counts},
            "rasters": rasters,
            "counts": counts,
            "chips": chips,
        }
        (staged / RECORD_NAME).write_text(json.dumps(record, indent=1) + "\n")
    return ChipsSummary(output, counts, skipped, warnings, time.perf_counter() - started)
