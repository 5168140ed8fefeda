"""Classify every tile of a raster: a GeoPackage of tile polygons, a GeoJSON copy, a class map.

Outputs of :func:`classify_raster`:

* a GeoPackage layer (named after the raster) of tile polygons in the raster's CRS with fields
  ``tile_id``, ``row``, ``col``, ``class_id``, ``class_name``, ``score``, ``valid_fraction`` and
  ``top1_name``, ``top1_prob``, ... ``topK_name``, ``topK_prob``; only tiles with enough valid
  pixels are written. A model with an open-set rule (``snca adapt``,
  :mod:`snca_cli.contract.open_set`) adds the class ``unknown`` (the last class id) for tiles
  unlike every labelled class, and the field ``similarity`` (the tile's best cosine similarity
  to a class prototype); ``score`` stays the head's best probability;
* the same layer as RFC 7946 GeoJSON in EPSG:4326;
* optionally a class map: a Cloud-Optimised GeoTIFF on the tiling grid with band 1 the class id
  and band 2 the confidence in percent, each pixel taking the tile whose centre is nearest
  (overlapping tiles never double-count); skipped tiles are no-data (the data type's maximum);
  with its sidecars (:func:`snca_cli.tasks.output_names.class_map_sidecars`): GDAL's
  ``.aux.xml`` (band 1's colour table and class names) and QGIS's default style ``.qml``.

Each class has the colour its name suggests (:mod:`snca_cli.contract.class_colours`, or the
model's ``class_colours``), and the outputs carry their style
(:mod:`snca_cli.runtime.style_files`): the GeoPackage layer's default QGIS style in its
``layer_styles`` table, the class map's in its sidecars; legends list the classes present with
their tile counts.

The outputs are one transaction (:func:`snca_cli.runtime.atomic.atomic_outputs`): written into
staging folders beside them and published together at the very end, so a failed, cancelled,
interrupted or killed run leaves the old outputs (or none) and never half of a set.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from snca_cli.contract.class_colours import class_colours
from snca_cli.contract.metadata import ModelMetadata
from snca_cli.contract.open_set import UNKNOWN_CLASS, OpenSetRule, check_threshold
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.hooks import CancelHook, ProgressHook
from snca_cli.runtime.atomic import OwnOutput, atomic_outputs, check_output_paths
from snca_cli.runtime.block_cache import bounded_block_cache
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.paths import absolute_source, is_remote, real_path
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.safe_names import name_key
from snca_cli.runtime.style_files import LayerStyle, write_class_pam, write_layer_styles
from snca_cli.runtime.styles import QML_OUTPUT, class_legend, class_map_qml, class_tiles_qml
from snca_cli.runtime.vector import GEOJSON_OUTPUT, box_rings, write_geojson_wgs84, write_polygons
from snca_cli.tasks.output_names import (
    class_map_name,
    class_map_sidecars,
    folder_outputs,
    geojson_beside,
)
from snca_cli.tasks.units import (
    RunOptions,
    UnitResult,
    UnitRun,
    plan_units,
    remove_work_folder,
    run_units,
)

#: Raster suffixes picked up when a folder is given.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
#: Block size of the class map's tiles and of its windowed writes.
CLASS_MAP_BLOCK = 512
#: GDAL block cache while the class map is written, in bytes: its blocks are written once, in
#: order, but GDAL sizes the COG's overview computation by the cache, so a smaller cache keeps
#: the peak memory of a huge class map near that of reading tiles.
CLASS_MAP_CACHE_BYTES = 16 * 1024 * 1024


@dataclass
class ClassifySummary:
    """What :func:`classify_raster` did.

    Areas count every pixel of the tiling grid once (it belongs to the tile whose centre is
    nearest), so per-class areas plus the skipped area add up to the raster's area.
    """

    raster: Path
    output: Path
    geojson: Path
    class_map: Path | None
    crs: str
    tiles_total: int
    tiles_classified: int
    tiles_skipped: int
    class_tiles: dict[str, int]  # every class of the model, in model order
    class_colours: dict[str, str]  # the same classes' colours, #rrggbb
    class_area: dict[str, float]  # in area_unit
    skipped_area: float  # in area_unit
    area_unit: str  # e.g. "metre²", "degree²"
    km2_per_area_unit: float | None  # None for a geographic CRS
    elapsed_s: float
    provider: str
    resampled: bool = False
    top_k: int = 3
    #: how raw values became model input (:meth:`ValueScaling.record`), as the outputs record it
    scaling: dict[str, object] = field(default_factory=dict)
    #: the same as one line for users
    scaling_line: str = ""
    #: work units of the raster (1 in this process; more when a cluster cut it into row bands)
    units: int = 1

    @property
    def class_area_km2(self) -> dict[str, float] | None:
        """Area per class in km², or None for a geographic CRS."""
        if self.km2_per_area_unit is None:
            return None
        return {name: area * self.km2_per_area_unit for name, area in self.class_area.items()}

    @property
    def skipped_area_km2(self) -> float | None:
        """Area of the skipped tiles in km², or None for a geographic CRS."""
        return (
            None if self.km2_per_area_unit is None else self.skipped_area * self.km2_per_area_unit
        )

    @property
    def tiles_per_second(self) -> float:
        """Classified tiles per second of the whole run."""
        return self.tiles_classified / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class ClassifyTarget:
    """One raster and the files its classification goes to."""

    raster: Path
    output: Path
    geojson: Path
    class_map: Path | None = None
    geojson_named: bool = False  # the user named the GeoJSON file (not only its folder)

    def paths(self) -> list[Path]:
        """Every output path (the class map's sidecars too)."""
        paths = [self.output, self.geojson]
        if self.class_map is not None:
            paths += [self.class_map, *class_map_sidecars(self.class_map)]
        return paths

    def own_outputs(self) -> dict[Path, OwnOutput]:
        """The outputs the user did not name, replaced only when snca wrote them: the GeoJSON
        copy (unless named) and the class map's QGIS style, which QGIS would also read as the
        style of any other layer of that name. The class map's ``.aux.xml`` is part of the
        class map (GDAL's metadata of that file) and goes with it."""
        own = {} if self.geojson_named else {self.geojson: GEOJSON_OUTPUT}
        if self.class_map is not None:
            own[class_map_sidecars(self.class_map)[1]] = QML_OUTPUT
        return own


def check_targets(targets: list[ClassifyTarget], force: bool) -> None:
    """Check every output of ``targets`` before any work (:func:`check_output_paths`)."""
    own = {path: kind for target in targets for path, kind in target.own_outputs().items()}
    check_output_paths([path for target in targets for path in target.paths()], force, own=own)


#: The GeoPackage layer metadata key (and GeoJSON description prefix) of the value scaling.
SCALING_METADATA = "snca_scaling"
#: The GeoPackage layer metadata key of the model that ran (:func:`model_record`).
MODEL_METADATA = "snca_model"
#: Suffix of a text file listing rasters, one path a line.
LIST_SUFFIX = ".txt"


def read_raster_list(path: Path) -> list[Path]:
    """The rasters a text file lists: one path a line (blank lines and ``#`` comments
    skipped); relative paths are relative to the file's folder, GDAL paths (``/vsis3/``,
    ``/vsicurl/``, URLs) stay as written."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SncaError(f"cannot read the raster list {path}: {exc}") from None
    rasters = []
    for line in lines:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        rasters.append(Path(name) if is_remote(name) else path.parent / name)
    if not rasters:
        raise SncaError(f"the raster list {path} names no raster")
    return rasters


def expand_rasters(paths: list[Path]) -> list[Path]:
    """The rasters named: files as given, folders replaced by the rasters in them (sorted),
    ``.txt`` files by the rasters they list (:func:`read_raster_list`); a local file that does
    not exist is refused here, before a model is loaded."""
    rasters: list[Path] = []
    for path in paths:
        if path.suffix.lower() == LIST_SUFFIX and path.is_file():
            rasters.extend(read_raster_list(path))
        elif path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
            )
            if not found:
                raise SncaError(
                    f"folder {path} holds no rasters ({', '.join(RASTER_SUFFIXES)} files)"
                )
            rasters.extend(found)
        elif not is_remote(path) and not path.exists():
            raise SncaError(f"raster {path} does not exist")
        else:
            rasters.append(path)
    return rasters


def plan_targets(
    rasters: list[Path],
    output: Path,
    geojson: Path | None = None,
    class_map: Path | None = None,
    folder: bool | None = None,
) -> list[ClassifyTarget]:
    """Where each raster's outputs go.

    One raster and ``output`` ending in ``.gpkg``: that file, ``geojson`` (default: beside it
    with ``.geojson``) and ``class_map`` as given. Several rasters, a folder input
    (``folder=True``) or ``output`` an existing folder: ``output``, ``geojson`` (default:
    ``output``) and ``class_map`` are folders holding ``<stem>.gpkg``, ``<stem>.geojson`` and
    ``<stem>_classes.tif``.
    """
    if not rasters:
        raise SncaError("no raster to classify")
    if folder is None:
        folder = len(rasters) > 1 or output.is_dir()
    if not folder:
        if output.suffix.lower() != ".gpkg":
            raise SncaError(f"output {output} must be a .gpkg file (or a folder)")
        geojson_path = geojson or geojson_beside(output)
        targets = [ClassifyTarget(rasters[0], output, geojson_path, class_map, geojson is not None)]
    else:
        if output.suffix.lower() == ".gpkg" or output.is_file():
            raise SncaError(f"with several rasters -o must be a folder, not {output}")
        keys = [name_key(r.stem) for r in rasters]  # one file on some file system
        duplicate = next(
            (r.stem for r, k in zip(rasters, keys, strict=True) if keys.count(k) > 1), None
        )
        if duplicate is not None:
            raise SncaError(
                f"two rasters are named {duplicate!r} (ignoring case); their outputs would collide"
            )
        geojson_dir = geojson or output
        targets = [
            ClassifyTarget(
                raster,
                *folder_outputs(raster, output, geojson_dir),
                None if class_map is None else class_map / class_map_name(raster.stem),
            )
            for raster in rasters
        ]
    inputs = {real_path(r) for r in rasters}
    for target in targets:
        for path in target.paths():
            if real_path(path) in inputs:
                raise SncaError(f"output {path} is one of the input rasters")
    return targets


def model_record(model: OnnxModel) -> dict[str, object]:
    """What the outputs record of the model that ran: its file, sha256 and precision."""
    return {"name": model.path.name, "sha256": model.sha256, **model.choice.record()}


def open_set_of(metadata: ModelMetadata, threshold: float | None = None) -> OpenSetRule | None:
    """The open-set rule a run applies: the model's, with ``threshold`` instead of its own when
    given (-1 keeps every tile's class); None for a model without a rule."""
    if metadata.open_set is None:
        if threshold is not None:
            raise SncaError(
                "the model has no unknown rule (models made by snca adapt have one); "
                "drop --unknown-threshold"
            )
        return None
    if threshold is None:
        return metadata.open_set
    return replace(metadata.open_set, threshold=check_threshold(threshold))


def output_class_names(metadata: ModelMetadata, open_set: OpenSetRule | None) -> list[str]:
    """The classes a run writes: the model's, then ``unknown`` with an open-set rule."""
    names = list(metadata.class_names)
    return names + [UNKNOWN_CLASS] if open_set is not None else names


@dataclass
class ClassifyConfig:
    """What to classify and how: the one input of :func:`classify`.

    Attributes:
        targets: the rasters and their output files (:func:`plan_targets`).
        tiling: tiling options (filled in for the model by the run).
        top_k: how many best classes each tile records (at most the number of classes).
        unknown_threshold: the open-set threshold instead of the model's (:func:`open_set_of`).
        force: overwrite existing outputs.
        batch_size: tiles per model run.
    """

    targets: list[ClassifyTarget]
    tiling: TilingOptions = field(default_factory=TilingOptions)
    top_k: int = 3
    unknown_threshold: float | None = None
    force: bool = False
    batch_size: int = 32


@dataclass
class ClassifyReport:
    """What :func:`classify` did: one summary per raster, the warnings of the run (one line
    each, e.g. a resolution far from the model's), and the work units."""

    summaries: list[ClassifySummary]
    warnings: list[str]
    units: int = 0
    reused: int = 0


def classify(
    config: ClassifyConfig, model: OnnxModel, run: RunOptions | None = None
) -> ClassifyReport:
    """Classify every tile of every target's raster and write its GeoPackage, GeoJSON and
    class map (each raster's files one transaction), in this process or on a cluster
    (``run.cluster``, :mod:`snca_cli.tasks.units`); the outputs are the same either way.

    Raises:
        SncaError: bad input or an existing output without ``force`` (checked before any work).
        snca_cli.errors.Cancelled: the ``cancelled`` hook returned True; the raster being
            written is not published (a cluster run keeps its finished units for the rerun).
    """
    run = run or RunOptions()
    if not config.targets:
        raise SncaError("no raster to classify")
    open_set = open_set_of(model.metadata, config.unknown_threshold)
    class_names = output_class_names(model.metadata, open_set)
    colours = class_colours(class_names, model.metadata.class_colours)
    if config.top_k < 1:
        raise SncaError(f"top-k must be at least 1 (got {config.top_k})")
    top_k = min(config.top_k, model.metadata.num_classes)
    options = config.tiling.for_model(model.metadata)
    options.check()
    check_targets(config.targets, config.force)
    names = [absolute_source(t.raster) for t in config.targets]
    plan = plan_units(names, model, options, run.planned_unit_tiles, run.warn)
    output = config.targets[0].output
    stats = UnitRun()
    results = run_units(
        plan,
        model,
        options,
        config.batch_size,
        run,
        output,
        keep_embeddings=open_set is not None,
        stats=stats,
    )
    summaries = []
    for target, result in zip(config.targets, results, strict=True):
        started = time.perf_counter()
        tiles = _TileResults.of_raster(result, open_set)
        raster = result.unit.raster
        with RasterTiling.open(raster, model.metadata, options, plan.scalings[raster]) as tiling:
            _write_outputs(
                target, tiling, tiles, colours, top_k, config.force, run.cancelled, model
            )
            seconds = result.seconds + time.perf_counter() - started
            summaries.append(
                _summary(target, tiling, tiles, result, colours, model, top_k, seconds)
            )
    remove_work_folder(run, output)
    return ClassifyReport(summaries, plan.warnings, stats.units, stats.reused)


def classify_raster(
    raster_path: Path | str,
    model: OnnxModel,
    output: Path | str,
    options: TilingOptions | None = None,
    *,
    geojson: Path | str | None = None,
    class_map: Path | str | None = None,
    progress: ProgressHook | None = None,
    cancelled: CancelHook | None = None,
    **settings: object,
) -> ClassifySummary:
    """:func:`classify` of one raster into ``output`` (a GeoPackage), its ``geojson`` (default:
    beside it) and ``class_map`` (None: none), in this process; ``settings`` are the other
    :class:`ClassifyConfig` fields (``top_k``, ``force``, ``batch_size``,
    ``unknown_threshold``)."""
    output = Path(output)
    target = ClassifyTarget(
        Path(raster_path),
        output,
        Path(geojson) if geojson is not None else geojson_beside(output),
        Path(class_map) if class_map is not None else None,
        geojson is not None,
    )
    config = ClassifyConfig([target], options or TilingOptions(), **settings)  # type: ignore[arg-type]
    return classify(config, model, RunOptions(progress, cancelled)).summaries[0]


def _write_outputs(
    target: ClassifyTarget,
    tiling: RasterTiling,
    results: _TileResults,
    colours: dict[str, str],
    top_k: int,
    force: bool,
    cancelled: CancelHook | None,
    model: OnnxModel,
) -> None:
    """Write one raster's GeoPackage, GeoJSON and class map (with their styles) as one
    transaction; ``colours`` holds every class of the run, in class-id order."""
    class_names = list(colours)
    legend = class_legend(colours, results.class_tiles(class_names))
    with atomic_outputs(target.paths(), force, own=target.own_outputs()) as outputs:
        rings = box_rings(results.bounds)
        attributes = results.attributes(class_names, top_k)
        layer = Path(target.raster).stem
        scaling = json.dumps(tiling.scaling.record())
        gpkg = outputs.path(target.output)
        write_polygons(
            gpkg,
            rings,
            attributes,
            tiling.crs,
            layer=layer,
            metadata={SCALING_METADATA: scaling, MODEL_METADATA: json.dumps(model_record(model))},
        )
        style = LayerStyle(layer, class_tiles_qml(legend), "snca classes, tiles per class")
        write_layer_styles(gpkg, [style])
        write_geojson_wgs84(
            outputs.path(target.geojson),
            rings,
            attributes,
            tiling.crs,
            layer=layer,
            description=f"{SCALING_METADATA}: {scaling}",
        )
        if target.class_map is not None:
            grid = results.class_grid(tiling)
            write_class_map(outputs.path(target.class_map), tiling, grid, class_names)
            pam, qml = (outputs.path(p) for p in class_map_sidecars(target.class_map))
            write_class_pam(pam, colours)
            qml.write_text(class_map_qml(legend), encoding="utf-8")
        if cancelled is not None and cancelled():
            raise Cancelled()  # before anything is published


@dataclass
class _TileResults:
    """Per-tile results of a run (no pixels): a few numbers per classified tile."""

    tile_id: np.ndarray
    row: np.ndarray
    col: np.ndarray
    bounds: np.ndarray  # N x 4
    valid_fraction: np.ndarray
    probabilities: np.ndarray  # N x C
    #: With an open-set rule: each tile's best similarity to a prototype, and whether it is
    #: unknown (below the threshold); None without one.
    similarity: np.ndarray | None = None
    unknown: np.ndarray | None = None

    @classmethod
    def of_raster(cls, result: UnitResult, open_set: OpenSetRule | None) -> _TileResults:
        """The results of a raster's units, in grid order."""
        tiles = result.tiles
        results = cls(
            tile_id=tiles["grid_id"].astype(np.int64),
            row=tiles["row"].astype(np.int64),
            col=tiles["col"].astype(np.int64),
            bounds=np.stack(
                [tiles["minx"], tiles["miny"], tiles["maxx"], tiles["maxy"]], axis=1
            ).astype(np.float64),
            valid_fraction=result.valid_fraction,
            probabilities=result.probabilities.astype(np.float64),
        )
        if open_set is not None:
            assert result.embeddings is not None
            similarity, unknown = open_set.decide(result.embeddings)
            results.similarity, results.unknown = similarity.astype(np.float64), unknown
        return results

    @property
    def class_id(self) -> np.ndarray:
        """Each tile's class: the head's best, or ``C`` (unknown) where the rule rejects it."""
        if not len(self.tile_id):
            return np.zeros(0, np.int64)
        best = self.probabilities.argmax(axis=1)
        if self.unknown is not None:
            best = np.where(self.unknown, self.probabilities.shape[1], best)
        return best

    def class_tiles(self, class_names: list[str]) -> dict[str, int]:
        """Tiles of each class, every class in order (0 for those no tile has)."""
        tiles = np.bincount(self.class_id, minlength=len(class_names))
        return {name: int(count) for name, count in zip(class_names, tiles, strict=True)}

    @property
    def score(self) -> np.ndarray:
        """The head's best probability of each tile."""
        return self.probabilities.max(axis=1) if len(self.tile_id) else np.zeros(0)

    def attributes(self, class_names: list[str], top_k: int) -> dict[str, np.ndarray]:
        """The GeoPackage columns, in order."""
        names = np.array(class_names, dtype=object)
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :top_k]
        best = self.class_id
        columns: dict[str, np.ndarray] = {
            "tile_id": self.tile_id,
            "row": self.row,
            "col": self.col,
            "class_id": best.astype(np.int64),
            "class_name": names[best],
            "score": self.score,
            **({} if self.similarity is None else {"similarity": self.similarity}),
            "valid_fraction": self.valid_fraction,
        }
        for k in range(top_k):
            columns[f"top{k + 1}_name"] = names[order[:, k]]
            columns[f"top{k + 1}_prob"] = np.take_along_axis(
                self.probabilities, order[:, k : k + 1], axis=1
            )[:, 0]
        return columns

    def class_grid(self, tiling: RasterTiling) -> tuple[np.ndarray, np.ndarray]:
        """Class id and score per tile of the grid (n_rows x n_cols); -1 and NaN when skipped."""
        classes = np.full((tiling.n_rows, tiling.n_cols), -1, dtype=np.int64)
        scores = np.full((tiling.n_rows, tiling.n_cols), np.nan)
        best = self.class_id
        classes[self.row, self.col] = best
        scores[self.row, self.col] = self.score
        return classes, scores


def write_class_map(
    path: Path,
    tiling: RasterTiling,
    grid: tuple[np.ndarray, np.ndarray],
    class_names: list[str],
) -> None:
    """Write the class map COG: band 1 class id, band 2 confidence percent, on the tiling grid.

    Each pixel takes the values of the tile whose centre is nearest; tiles with class -1 are
    no-data (the data type's maximum). A tiled GTiff is written window by window in a temporary
    folder beside ``path``, then copied to ``path`` with GDAL's COG driver (overviews by nearest
    neighbour, DEFLATE), with GDAL's block cache capped at ``CLASS_MAP_CACHE_BYTES``.
    """
    classes, scores = grid
    dtype = np.uint8 if len(class_names) < 255 else np.uint16
    nodata = np.iinfo(dtype).max
    class_cells = np.where(classes >= 0, classes, nodata).astype(dtype)
    confidence_cells = np.where(
        classes >= 0, np.round(np.nan_to_num(scores) * 100.0), nodata
    ).astype(dtype)
    col_owner, row_owner = tiling.grid.pixel_owners()
    profile = {
        "driver": "GTiff",
        "width": tiling.width,
        "height": tiling.height,
        "count": 2,
        "dtype": dtype,
        "crs": tiling.crs,
        "transform": tiling.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": CLASS_MAP_BLOCK,
        "blockysize": CLASS_MAP_BLOCK,
        "compress": "deflate",
    }
    with (
        bounded_block_cache(CLASS_MAP_CACHE_BYTES),
        tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as scratch,
    ):
        plain = Path(scratch) / "class_map.tif"
        with rasterio.open(plain, "w", **profile) as dst:
            dst.set_band_description(1, "class_id")
            dst.set_band_description(2, "confidence_percent")
            dst.update_tags(class_names=json.dumps(class_names))
            for r0 in range(0, tiling.height, CLASS_MAP_BLOCK):
                rows = row_owner[r0 : r0 + CLASS_MAP_BLOCK]
                for c0 in range(0, tiling.width, CLASS_MAP_BLOCK):
                    cols = col_owner[c0 : c0 + CLASS_MAP_BLOCK]
                    window = Window(c0, r0, len(cols), len(rows))
                    cells = np.ix_(rows, cols)
                    block = np.stack([class_cells[cells], confidence_cells[cells]])
                    dst.write(block, window=window)
        rasterio.shutil.copy(
            plain,
            path,
            driver="COG",
            COMPRESS="DEFLATE",
            BLOCKSIZE=str(CLASS_MAP_BLOCK),
            RESAMPLING="NEAREST",
            OVERVIEWS="AUTO",
        )


def _summary(
    target: ClassifyTarget,
    tiling: RasterTiling,
    results: _TileResults,
    raster: UnitResult,
    colours: dict[str, str],
    model: OnnxModel,
    top_k: int,
    elapsed_s: float,
) -> ClassifySummary:
    names = list(colours)
    owned = tiling.grid.owned_pixels()[results.row, results.col] * tiling.grid.pixel_area
    areas = np.bincount(results.class_id, weights=owned, minlength=len(names))
    skipped_area = tiling.width * tiling.height * tiling.grid.pixel_area - float(owned.sum())
    if tiling.crs.is_geographic:
        unit, km2_per_unit = "degree²", None
    else:
        unit_name, unit_metres = tiling.crs.linear_units_factor
        unit, km2_per_unit = f"{unit_name}²", unit_metres**2 / 1e6
    classified = len(results.tile_id)
    return ClassifySummary(
        raster=target.raster,
        output=target.output,
        geojson=target.geojson,
        class_map=target.class_map,
        crs=tiling.crs.to_string(),
        tiles_total=classified + raster.skipped,
        tiles_classified=classified,
        tiles_skipped=raster.skipped,
        class_tiles=results.class_tiles(names),
        class_colours=dict(colours),
        class_area={n: float(a) for n, a in zip(names, areas, strict=True)},
        skipped_area=skipped_area,
        area_unit=unit,
        km2_per_area_unit=km2_per_unit,
        elapsed_s=elapsed_s,
        provider=model.provider_name,
        resampled=tiling.resampled,
        top_k=top_k,
        scaling=tiling.scaling.record(),
        scaling_line=tiling.scaling.describe(),
        units=raster.units,
    )
