"""`snca search`: the tiles of an index most similar to a tile, a point or an image."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.markup import escape

from snca_cli.cli.support import console, exit_on_error
from snca_cli.cli.tables import results_table
from snca_cli.errors import SncaError
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.results import result_paths
from snca_cli.tasks.index.search import TileIndex

HELP = """Find the k tiles of an index most similar to a query.

The query is the indexed tile under a point (--xy X Y in the rasters' CRS or in --crs; --lonlat
LON LAT in WGS84), a tile (--tile-id N: the tile's id as `snca classify` numbers it, with
--raster NAME when several rasters of the index have that id), or an image file embedded with
the index's model (--image FILE, with --model MODEL or the shipped model; resized to the model's
tile). The query tile itself is never a hit.

Several examples: repeat --tile-id and --point X,Y for tiles to find more of, and give
--not-tile-id / --not-point X,Y for tiles to rank away from. Each tile is scored by its mean
cosine similarity to the positive examples minus its mean cosine similarity to the negative
ones (the cosine itself for one example); example tiles are never hits.
--class keeps only tiles predicted as that class. -o results.gpkg writes the hits as polygons
(layer similar_tiles, and the example tiles in layer query; plus results.geojson in EPSG:4326).

The index's files are checked against their sha256 the first time; snca records that check
(in its cache folder) and skips the hashing while the files stay unchanged. --verify checks
every file again.
"""


def parse_point(text: str, option: str) -> tuple[float, float]:
    """``"X,Y"`` as two finite numbers; SncaError naming ``option`` otherwise."""
    parts = text.split(",")
    try:
        x, y = (float(part) for part in parts)
    except ValueError:
        raise SncaError(f"{option} takes X,Y (two numbers and a comma), not {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise SncaError(f"{option} takes finite coordinates, not {text!r}")
    return x, y


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("search", help=HELP)
    @exit_on_error
    def search(
        index_dir: Path = typer.Argument(..., help="The index folder (snca index build)."),
        xy: tuple[float, float] | None = typer.Option(
            None, "--xy", help="Query point X Y (the rasters' CRS, or --crs)."
        ),
        crs: str | None = typer.Option(
            None, "--crs", help="CRS of --xy, --point and --not-point, e.g. EPSG:32618."
        ),
        lonlat: tuple[float, float] | None = typer.Option(
            None, "--lonlat", help="Query point as WGS84 longitude latitude."
        ),
        tile_ids: list[int] | None = typer.Option(
            None, "--tile-id", help="Query an indexed tile by its id; repeat for several."
        ),
        not_tile_ids: list[int] | None = typer.Option(
            None, "--not-tile-id", help="A tile to rank away from (negative example); repeatable."
        ),
        points: list[str] | None = typer.Option(
            None, "--point", metavar="X,Y", help="The tile under X,Y as an example; repeatable."
        ),
        not_points: list[str] | None = typer.Option(
            None,
            "--not-point",
            metavar="X,Y",
            help="The tile under X,Y as a negative example; repeatable.",
        ),
        raster: str | None = typer.Option(
            None, "--raster", help="The raster of --tile-id / --not-tile-id (its file name)."
        ),
        image: Path | None = typer.Option(None, "--image", help="Query an image file."),
        model_path: Path | None = typer.Option(
            None,
            "--model",
            "-m",
            help="The index's ONNX model, for --image [default: the shipped model].",
        ),
        k: int = typer.Option(10, "-k", "--hits", help="How many similar tiles."),
        class_name: str | None = typer.Option(
            None, "--class", help="Only tiles predicted as this class."
        ),
        exact: bool = typer.Option(False, "--exact", help="Exact search instead of hnswlib."),
        verify: bool = typer.Option(
            False, "--verify", help="Check every index file's sha256, even if recorded unchanged."
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write the hits to a .gpkg (+ .geojson) or .geojson."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
        precision: str = typer.Option(
            "auto",
            "--precision",
            help="Model copy for --image: auto (the index's precision), fp32 or int8.",
        ),
    ) -> None:
        tile_ids, not_tile_ids = tile_ids or [], not_tile_ids or []
        point_list = [parse_point(p, "--point") for p in points or []]
        not_point_list = [parse_point(p, "--not-point") for p in not_points or []]
        examples = int(xy is not None) + len(tile_ids) + len(point_list)
        negatives = len(not_tile_ids) + len(not_point_list)
        whole_queries = int(lonlat is not None) + int(image is not None)
        if examples + negatives + whole_queries == 0:
            raise SncaError("give a query: --xy, --lonlat, --tile-id, --point or --image")
        if whole_queries and examples + negatives + whole_queries > 1:
            raise SncaError("--lonlat and --image each make a query of their own: give one alone")
        if negatives and not examples:
            raise SncaError("--not-tile-id and --not-point need a positive example as well")
        if crs is not None and xy is None and not point_list and not not_point_list:
            raise SncaError("--crs goes with --xy, --point or --not-point")
        if raster is not None and not tile_ids and not not_tile_ids:
            raise SncaError("--raster goes with --tile-id or --not-tile-id")
        if model_path is not None and image is None:
            raise SncaError("--model goes with --image")
        if k < 1:
            raise SncaError(f"-k must be at least 1 (got {k})")
        if output is not None:
            result_paths(output, force)  # refuse a bad or existing output before any work
        model_file = None if image is None else resolve_model(model_path)  # before a big index
        index = TileIndex.open(index_dir, exact=exact, verify="always" if verify else "auto")
        if lonlat is not None:
            result = index.search_lonlat(lonlat[0], lonlat[1], k, class_name)
        elif image is not None:
            assert model_file is not None
            result = index.search_image(
                image, OnnxModel(model_file, precision=precision), k, class_name
            )
        else:
            positive_points = ([xy] if xy is not None else []) + point_list
            positive = [index.tile_at(x, y, crs) for x, y in positive_points]
            positive += [index.tile(t, raster) for t in tile_ids]
            negative = [index.tile_at(x, y, crs) for x, y in not_point_list]
            negative += [index.tile(t, raster) for t in not_tile_ids]
            result = index.search_examples(positive, negative, k, class_name)
        for sign, tiles in (("", result.positives), ("not ", result.negatives)):
            for tile in tiles:
                console.print(
                    f"{'query' if not sign else 'unlike'}: tile {tile.tile_id} (row {tile.row}, "
                    f"col {tile.col}) of {escape(tile.raster.name)}, class "
                    f"{escape(tile.class_name)} ({tile.score:.3f})",
                    highlight=False,
                )
        console.print(results_table(result))
        console.print(
            f"searched {index.count:,} tiles with {result.backend} in "
            f"{result.seconds * 1e3:.2f} ms",
            highlight=False,
        )
        if output is not None:
            written = result.write(output, force=force)
            console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False)
