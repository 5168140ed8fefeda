"""A real raster for benchmarks: a GeoTIFF mosaic of AID test-split scenes whose classes are known.

``grid`` x ``grid`` cells of 150 px (default 44 x 44: 6,600^2 px), each a distinct scene of the
shipped model's test split (its card's ``split.test``, 2,000 scenes; drawn in a fixed shuffled
order, so neighbouring cells differ), 3-band uint8, EPSG:32633 at 0.5 m/px, tiled in 512 px
blocks, DEFLATE. The writer is the one the tests use (``tests/helpers/aid_mosaic.py``).

    python benchmarks/real_mosaic.py mosaic.tif [--grid 44] [--aid AID_DIR]

``--aid`` defaults to ``$SNCA_SHARED_DATA/aid150``. The classes of the cells, row by row, are
written beside the raster as ``<stem>.classes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests/helpers: the mosaic writer of the tests
    sys.path.append(str(ROOT))

from tests.helpers.aid_mosaic import CELL, held_out_split, write_aid_mosaic  # noqa: E402

#: Block size (px) and compression of the mosaic.
BLOCK = 512
COMPRESS = "deflate"
#: Seed of the order in which the test scenes fill the cells.
SEED = 0


def mosaic_scenes(grid: int) -> list[str]:
    """``grid * grid`` distinct test-split scenes in a fixed shuffled order."""
    test = held_out_split()
    if not 1 <= grid * grid <= len(test):
        raise ValueError(
            f"a grid of {grid} needs {grid * grid} scenes; the test split has {len(test)}"
        )
    return random.Random(SEED).sample(test, grid * grid)


def write_real_mosaic(aid_dir: Path, path: Path, grid: int = 44) -> list[str]:
    """Write the ``grid`` x ``grid`` mosaic of AID test scenes (``aid_dir``: the AID folder of
    150 px scenes) to ``path``; return the class of each cell, row by row."""
    return write_aid_mosaic(aid_dir, path, mosaic_scenes(grid), block=BLOCK, compress=COMPRESS)


def default_aid_dir() -> Path | None:
    """``$SNCA_SHARED_DATA/aid150``, if the variable is set."""
    shared = os.environ.get("SNCA_SHARED_DATA")
    return Path(shared) / "aid150" if shared else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="The GeoTIFF to write.")
    parser.add_argument("--grid", type=int, default=44, help="Cells per row and column.")
    parser.add_argument(
        "--aid",
        type=Path,
        default=default_aid_dir(),
        help="The AID folder [default: $SNCA_SHARED_DATA/aid150].",
    )
    args = parser.parse_args()
    if args.aid is None:
        parser.error("--aid is needed when SNCA_SHARED_DATA is unset")
    classes = write_real_mosaic(args.aid, args.output, args.grid)
    sidecar = args.output.with_name(f"{args.output.stem}.classes.json")
    sidecar.write_text(json.dumps(classes))
    side = args.grid * CELL
    print(
        f"{args.output}: {args.grid} x {args.grid} AID test scenes, {side:,}^2 px; "
        f"classes in {sidecar}"
    )


if __name__ == "__main__":
    main()
