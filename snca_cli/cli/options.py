"""Typer options shared by several commands: each declared once, with one help text.

Each value is a :class:`typer.models.OptionInfo` used as a parameter default, e.g.
``batch_size: int = BATCH_SIZE``; commands with other defaults declare their own.
"""

from __future__ import annotations

import typer

#: Help of the --model option of the commands that embed tiles.
MODEL_HELP = "The snca ONNX model [default: the shipped model]."
#: Help of the --overlap option of the commands that tile rasters.
OVERLAP_HELP = (
    "Tile overlap: pixels (16) or percent of the tile (10%) "
    "[default: the model's tiles_overlap metadata]."
)

MODEL = typer.Option(None, "--model", "-m", help=MODEL_HELP)
OVERLAP = typer.Option(None, help=OVERLAP_HELP)
RESOLUTION = typer.Option(
    "auto",
    help="auto (the model's resolution if it has one), native, or metres per pixel; "
    "resamples in the raster's CRS (geographic: metres at the centre latitude).",
)
BANDS = typer.Option(
    None, help="1-based bands to feed the model, e.g. 3,2,1 [default: the first ones]."
)
MIN_VALID = typer.Option(
    0.5, "--min-valid", help="Skip tiles with a smaller fraction of valid pixels."
)
STRETCH = typer.Option(
    "auto",
    help="Value scaling. auto: the model's input_scale, unless the raster's values carry a "
    "GDAL scale/offset or use under 25 % of their type's range (e.g. uint16 reflectance): then "
    "each band's 2-98 % range (sampled once per raster) maps to [0, 1]; the choice is printed "
    "and recorded in the outputs. percentile: always that stretch. model: always input_scale.",
)
EDGE = typer.Option("shift", help="shift: edge tiles moved inward; pad: padded with no-data.")
BATCH_SIZE = typer.Option(32, "--batch-size", help="Tiles per model run.")
PROVIDER = typer.Option("auto", help="onnxruntime provider: auto (best available), CPU, CUDA, ...")
THREADS = typer.Option(0, help="onnxruntime intra-op threads (0: its default).")
PRECISION = typer.Option(
    "auto",
    "--precision",
    help="Model copy: auto (the int8 copy where the CPU has VNNI/AMX int8 instructions and the "
    "model has one, tiles whose two best classes are close re-checked in fp32; else fp32), "
    "fp32 or int8. Adding to and searching an index follow the index's precision.",
)
WORKERS = typer.Option(
    0,
    "--workers",
    help='Run on a Dask LocalCluster of N processes (needs `pip install "snca[cluster]"`); '
    "0: in this process.",
)
CLUSTER = typer.Option(
    None,
    "--cluster",
    help="Run on the Dask scheduler at tcp://HOST:PORT (or tls://, ws://, wss://). The model "
    "is sent to the workers; the work units go beside the output (or --work-dir), which must "
    "be a folder or a storage URL (s3://...) that the workers and this machine reach.",
)
WORK_DIR = typer.Option(
    None,
    "--work-dir",
    help="With --workers/--cluster: where the work units go (a folder or a storage URL such as "
    "s3://bucket/run; a rerun reuses the finished ones) [default: .<output>.units beside the "
    "output].",
)
UNIT_TILES = typer.Option(
    "20k",
    "--unit-tiles",
    help="With --workers/--cluster: tiles per work unit (larger rasters are cut into bands of "
    "whole tile rows), e.g. 5k: smaller units spread better and lose less to a lost worker.",
)
CONNECT_TIMEOUT = typer.Option(
    20.0,
    "--connect-timeout",
    help="With --cluster: seconds to wait for the scheduler to answer.",
    min=0.1,
)
