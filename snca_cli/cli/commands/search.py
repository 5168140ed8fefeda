"""`snca search`: the tiles of an index most similar to a tile, a point or an image."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli.support import console, exit_on_error
from snca_cli.cli.tables import results_table
from snca_cli.errors import SncaError
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.results import result_paths
from snca_cli.tasks.index.search import TileIndex

HELP = """Find the k tiles of an index most similar to a query, ranked by cosine similarity.

The query is the indexed tile under a point (--xy X Y in the rasters' CRS or in --crs; --lonlat
LON LAT in WGS84), a tile id (--tile-id), or an image file embedded with the index's model
(--image FILE, with --model MODEL or the shipped model; resized to the model's tile). The query
tile itself is never a hit.
--class keeps only tiles predicted as that class. -o results.gpkg writes the hits as polygons
(plus results.geojson in EPSG:4326).
"""


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("search", help=HELP)
    @exit_on_error
    def search(
        index_dir: Path = typer.Argument(..., help="The index folder (snca index build)."),
        xy: tuple[float, float] | None = typer.Option(
            None, "--xy", help="Query point X Y (the rasters' CRS, or --crs)."
        ),
        crs: str | None = typer.Option(None, "--crs", help="CRS of --xy, e.g. EPSG:32618."),
        lonlat: tuple[float, float] | None = typer.Option(
            None, "--lonlat", help="Query point as WGS84 longitude latitude."
        ),
        tile_id: int | None = typer.Option(None, "--tile-id", help="Query an indexed tile."),
        image: Path | None = typer.Option(None, "--image", help="Query an image file."),
        model_path: Path | None = typer.Option(
            None,
            "--model",
            "-m",
            help="The index's ONNX model, for --image [default: the shipped model].",
        ),
        k: int = typer.Option(10, "-k", "--k", help="How many similar tiles."),
        class_name: str | None = typer.Option(
            None, "--class", help="Only tiles predicted as this class."
        ),
        exact: bool = typer.Option(False, "--exact", help="Exact search instead of hnswlib."),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write the hits to a .gpkg (+ .geojson) or .geojson."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    ) -> None:
        queries = [q for q in (xy, lonlat, tile_id, image) if q is not None]
        if len(queries) != 1:
            raise SncaError("give exactly one query: --xy, --lonlat, --tile-id or --image")
        if crs is not None and xy is None:
            raise SncaError("--crs goes with --xy")
        if model_path is not None and image is None:
            raise SncaError("--model goes with --image")
        if k < 1:
            raise SncaError(f"-k must be at least 1 (got {k})")
        if output is not None:
            result_paths(output, force)  # refuse a bad or existing output before any work
        model_file = None if image is None else resolve_model(model_path)  # before a big index
        index = TileIndex.open(index_dir, exact=exact)
        if xy is not None:
            result = index.search_point(xy[0], xy[1], crs, k, class_name)
        elif lonlat is not None:
            result = index.search_lonlat(lonlat[0], lonlat[1], k, class_name)
        elif tile_id is not None:
            result = index.search_tile_id(tile_id, k, class_name)
        else:
            assert image is not None and model_file is not None
            result = index.search_image(image, OnnxModel(model_file), k, class_name)
        if result.query is not None:
            query = result.query
            console.print(
                f"query: tile {query.tile_id} of {query.raster.name}, window "
                f"{query.window[0]},{query.window[1]}, class {query.class_name} "
                f"({query.score:.3f})",
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
