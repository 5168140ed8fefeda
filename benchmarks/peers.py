"""Side by side with the peers: snca against Deepness and GeoDeep on the same real raster and model.

The raster is a mosaic of AID test-split scenes (``benchmarks/real_mosaic.py``: ``--grid`` x
``--grid`` cells of 150 px, 3-band uint8, 512 px DEFLATE blocks), the model the shipped one (or
``--model``); the peers run the copies ``snca convert`` writes of it (``--to segmentor``,
``--to deepness``). Each contender runs in a fresh process:

* ``snca classify MOSAIC -o X.gpkg`` and ``snca index build MOSAIC -o X.index``, the real command
  line with its defaults (``python -m snca_cli.cli``, this checkout's code);
* Deepness's ``MapProcessorSegmentation`` (segmentor copy) and ``MapProcessorRecognition``
  (Deepness copy, the query: one cell's pixels), in headless QGIS through ``--qgis-python``
  (``benchmarks/peer_runs.py``), at each ``--deepness-batch`` (default: 1, Deepness's own
  default, and 32, snca's);
* GeoDeep's ``segment(MOSAIC, segmentor copy, output_type="raw")``.

``--snca-batch N`` adds ``snca classify --batch-size N`` runs (what the batch costs in memory).

Per run: peak RSS of the process (``ru_maxrss`` from ``os.wait4``), wall and CPU time of the
whole process, and the time of the work alone as the tool reports it (snca: the time it prints,
tiles read, run and written; Deepness: its map processor's run; GeoDeep: from its "Model loaded"
to the mask) - the rest is start-up, imports (QGIS), model loading and exit; and the peak RSS once
started with the model loaded (the peers report theirs; for snca a process that imports snca and
loads the model, nothing else, is measured in each repeat). tiles/s are the tiles run through
the model per second of work. Repeated ``--repeats`` times, the order alternating; medians. The
ratio is snca's tiles/s over the peer's (classify against the segmentors, index build against
Deepness's recognition), as the ratio of the medians and as the median of the ratios within a
repeat (a shared machine's load drifts between repeats).

Agreement: the class of each cell (the majority of its pixels for the segmentors) against
``snca classify``'s and against the scene's true class; for recognition, Deepness's similarity
at each cell against ``snca search --image --exact`` on the index snca built. With the model's
overlap of 0 every tool runs one tile per cell; what each really ran is printed.

    python benchmarks/peers.py --grid 44 --repeats 5 --snca-batch 1 8 --qgis-python QGIS_PYTHON \
        --json peers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import rasterio
from adapt import cpu_line
from classify_memory import LOAD_ONLY, measured_run
from peer_runs import RESULT
from PIL import Image
from real_mosaic import ROOT, default_aid_dir, write_real_mosaic

from snca_cli.runtime.default_model import default_model_path

# tests/helpers: on the path once real_mosaic is imported
from tests.helpers.aid_mosaic import CELL, cell_labels, cells, gpkg_cell_labels
from tests.helpers.deepness import DEFAULT_BATCH_SIZE, TARBALL, unpack_deepness

CLASSIFIED = re.compile(r"([\d,]+) classified, .*? in ([\d.]+) s")
MODEL_LINE = re.compile(r"^model .*$", re.MULTILINE)
INDEXED = re.compile(r"indexed ([\d,]+) tiles .*? in ([\d.]+) s")
SNCA_BATCH = 32


@dataclass
class Run:
    """One run of a contender."""

    tiles: int
    work_s: float  # the work alone, as the tool times it
    wall_s: float  # the whole process
    cpu_s: float  # the whole process, all threads
    peak_mb: float
    ready_mb: float  # peak RSS once started with the model loaded
    load_s: float | None = None  # model loading, where the tool's steps show it

    @property
    def tiles_per_s(self) -> float:
        return self.tiles / self.work_s

    @property
    def whole_tiles_per_s(self) -> float:
        return self.tiles / self.wall_s


@dataclass
class Contender:
    """A tool, the command that runs it once and what it writes."""

    name: str
    kind: str  # classify, index (snca); segmentation, recognition (the peers)
    command: list[str]
    output: Path  # a GeoPackage, an index folder, or a peer's result image (.npy)
    baseline: str | None = None  # the snca contender it is compared with
    mask_offset: int = 0  # a segmentation mask's value of channel 0 (Deepness writes c + 1)
    runs: list[Run] = field(default_factory=list)
    ran: str = ""

    @property
    def is_snca(self) -> bool:
        return self.kind in ("classify", "index")

    def median(self, key: str) -> float:
        return statistics.median(getattr(run, key) for run in self.runs)


def read_snca(log: str, pattern: re.Pattern[str]) -> dict[str, Any]:
    """snca's own tile count and work time, and what ran: the line naming the model (classify
    prints it first), else the line with the count."""
    found = pattern.search(log)
    if not found:
        raise SystemExit(f"no tile count in snca's output:\n{log}")
    line = MODEL_LINE.search(log) or re.search(rf"^.*{re.escape(found[0])}.*$", log, re.M)
    return {
        "tiles": int(found[1].replace(",", "")),
        "work_s": float(found[2]),
        "ran": line[0] if line else "",
    }


def read_peer(log: str) -> dict[str, Any]:
    """The figures ``peer_runs.py`` prints last."""
    lines = [line for line in log.splitlines() if line.startswith(RESULT)]
    if not lines:
        raise SystemExit(f"no result line in the peer's output:\n{log[-3000:]}")
    return json.loads(lines[-1][len(RESULT) :])


def snca_ready_mb(model: Path | None, log: Path) -> float:
    """Peak RSS of a process that imports snca's classify and loads the model, nothing else."""
    path = model or default_model_path()
    peak, _, _ = measured_run(
        [sys.executable, "-c", LOAD_ONLY.format(str(path))], log, env=child_env()
    )
    return peak


def run_once(contender: Contender, work: Path, log: Path, ready_mb: float) -> Run:
    """Run the contender in a fresh process; its figures (``ready_mb``: snca's, measured apart;
    the peers report their own)."""
    if contender.is_snca:  # with its defaults snca refuses to overwrite its outputs
        shutil.rmtree(contender.output, ignore_errors=True)
        contender.output.unlink(missing_ok=True)
        contender.output.with_suffix(".geojson").unlink(missing_ok=True)
    peak, wall, cpu = measured_run(contender.command, log, env=child_env(), cwd=work)
    text = log.read_text()
    if contender.is_snca:
        figures = read_snca(text, CLASSIFIED if contender.kind == "classify" else INDEXED)
    else:
        figures = read_peer(text)
    contender.ran = figures["ran"].replace(f"{work}/", "")  # the temporary folder: noise
    run = Run(
        tiles=figures["tiles"],
        work_s=figures["work_s"],
        wall_s=wall,
        cpu_s=cpu,
        peak_mb=peak,
        ready_mb=figures.get("ready_mb", ready_mb),
        load_s=figures.get("load_s"),
    )
    contender.runs.append(run)
    return run


def snca_cli(*args: str) -> list[str]:
    """The ``snca`` command line of this checkout."""
    return [sys.executable, "-m", "snca_cli.cli", *args]


def child_env() -> dict[str, str]:
    """This checkout first on the path, wide lines, no display."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "QT_QPA_PLATFORM": "offscreen"}


def convert_copies(model: Path | None, work: Path) -> tuple[Path, Path]:
    """``snca convert`` of the model: (segmentor copy, Deepness copy)."""
    copies = []
    for target in ("segmentor", "deepness"):
        out = work / f"{target}.onnx"
        source = [str(model)] if model else []
        subprocess.run(
            snca_cli("convert", *source, "--to", target, "-o", str(out)),
            check=True,
            env=child_env(),
            capture_output=True,
        )
        copies.append(out)
    return copies[0], copies[1]


def query_image(mosaic: Path, cell: int, out: Path) -> Path:
    """The exact pixels of one cell of the mosaic as a PNG (the recognition query)."""
    with rasterio.open(mosaic) as src:
        pixels = src.read()
    Image.fromarray(np.moveaxis(cells(pixels)[cell], 0, -1)).save(out)
    return out


def qgis_versions(qgis_python: str) -> str:
    """QGIS's and its onnxruntime's versions (and a check that the QGIS Python works)."""
    probe = (
        "from qgis.core import Qgis; import onnxruntime, numpy; "
        "print(f'QGIS {Qgis.QGIS_VERSION}, onnxruntime {onnxruntime.__version__}, "
        "numpy {numpy.__version__}')"
    )
    done = subprocess.run(
        [qgis_python, "-c", probe], capture_output=True, text=True, env=child_env()
    )
    if done.returncode != 0:
        raise SystemExit(f"{qgis_python} cannot run QGIS (--qgis-python):\n{done.stderr}")
    return done.stdout.strip()


def contenders(
    args: argparse.Namespace,
    work: Path,
    mosaic: Path,
    copies: tuple[Path, Path],
    query: Path,
    source: Path,
) -> list[Contender]:
    """Every contender, with its command line."""
    model = ["--model", str(args.model)] if args.model else []
    classify, index = work / "classify.gpkg", work / "snca.index"
    found = [
        Contender(
            "snca classify",
            "classify",
            snca_cli("classify", str(mosaic), "-o", str(classify), *model),
            classify,
        ),
        Contender(
            "snca index build",
            "index",
            snca_cli("index", "build", str(mosaic), "-o", str(index), *model),
            index,
        ),
    ]
    for batch in args.snca_batch:
        out = work / f"classify_b{batch}.gpkg"
        command = snca_cli("classify", str(mosaic), "-o", str(out), "--batch-size", str(batch))
        found.append(Contender(f"snca classify b{batch}", "classify", [*command, *model], out))
    runner = [str(Path(__file__).with_name("peer_runs.py"))]
    segmentor, deepness = copies
    for batch in args.deepness_batch:
        peer = [args.qgis_python, *runner, "deepness", str(mosaic)]
        options = ["--source", str(source), "--batch-size", str(batch)]
        seg, rec = work / f"deepness_seg_b{batch}.npy", work / f"deepness_rec_b{batch}.npy"
        found += [
            Contender(
                f"Deepness segmentation b{batch}",
                "segmentation",
                [*peer, str(segmentor), str(seg), *options],
                seg,
                baseline="snca classify",
                mask_offset=1,
            ),
            Contender(
                f"Deepness recognition b{batch}",
                "recognition",
                [*peer, str(deepness), str(rec), *options, "--query", str(query)],
                rec,
                baseline="snca index build",
            ),
        ]
    geodeep = work / "geodeep.npy"
    command = [sys.executable, *runner, "geodeep", str(mosaic), str(segmentor), str(geodeep)]
    found.append(
        Contender("GeoDeep segment", "segmentation", command, geodeep, baseline="snca classify")
    )
    return found


def default_tarball() -> Path | None:
    """The Deepness tarball in the ``third_party`` folder beside ``$SNCA_SHARED_DATA``."""
    shared = os.environ.get("SNCA_SHARED_DATA")
    return Path(shared).parent / "third_party" / TARBALL if shared else None


def class_names(segmentor: Path) -> list[str]:
    """The segmentor copy's channel names (0: unclassified)."""
    meta = ort.InferenceSession(str(segmentor)).get_modelmeta().custom_metadata_map
    names = json.loads(meta["class_names"])
    return [names[str(i)] for i in range(len(names))]


def share(labels: list[str], reference: list[str]) -> float:
    """Fraction of cells whose labels agree."""
    return float(np.mean([a == b for a, b in zip(labels, reference, strict=True)]))


def snca_similarities(index: Path, query: Path, model: Path | None, count: int) -> np.ndarray:
    """``snca search --image QUERY --exact`` of every tile of snca's index: similarity per cell
    (tile id order: cell by cell, row by row)."""
    hits = index.with_name("hits.geojson")
    hits.unlink(missing_ok=True)
    source = ["--model", str(model)] if model else []
    subprocess.run(
        snca_cli(
            "search",
            str(index),
            "--image",
            str(query),
            *source,
            "--exact",
            "-k",
            str(count),
            "-o",
            str(hits),
        ),
        check=True,
        env=child_env(),
        capture_output=True,
    )
    similarity = np.full(count, np.nan)
    for feature in json.loads(hits.read_text())["features"]:
        properties = feature["properties"]
        similarity[properties["tile_id"]] = properties["similarity"]
    return similarity


def agreement(
    found: list[Contender],
    truth: list[str],
    names: list[str],
    similarities: np.ndarray,
    query_cell: int,
) -> dict[str, dict[str, Any]]:
    """Per contender: the share of cells whose class agrees with ``snca classify``'s and with
    the truth (segmentations: the class of most of the cell's pixels, and the smallest such
    share), or for recognition how its similarities differ from snca's."""
    grid = math.isqrt(len(truth))
    snca = gpkg_cell_labels(found[0].output, grid)
    result: dict[str, dict[str, Any]] = {}
    for contender in found:
        figures: dict[str, Any] = {}
        if contender.kind == "classify":
            labels = gpkg_cell_labels(contender.output, grid)
        elif contender.kind == "index":
            labels = gpkg_cell_labels(contender.output / "tiles.gpkg", grid, field="class")
        elif contender.kind == "segmentation":
            mask = np.load(contender.output).astype(np.int64) - contender.mask_offset
            labels, figures["least_cell_purity"] = cell_labels(mask, names)
        else:
            answer = np.load(contender.output).ravel()
            best = int(np.nanargmax(answer))
            result[contender.name] = {
                "max_similarity_difference": float(np.nanmax(np.abs(answer - similarities))),
                "same_best_tile": best == int(np.nanargmax(similarities)),
                "best_is_query": best == query_cell,
            }
            continue
        result[contender.name] = {
            "vs_classify": share(labels, snca),
            "vs_truth": share(labels, truth),
            **figures,
        }
    return result


def agreement_text(figures: dict[str, Any]) -> tuple[str, str]:
    """(agreement with snca, right against the truth) as table cells."""
    if "max_similarity_difference" in figures:
        same = "same best tile" if figures["same_best_tile"] else "OTHER best tile"
        return f"sim. |diff| <= {figures['max_similarity_difference']:.1e}, {same}", "-"
    return f"{figures['vs_classify']:.2%}", f"{figures['vs_truth']:.2%}"


def paired_ratio(snca: Contender, peer: Contender) -> float:
    """Median over the repeats of snca's tiles/s over the peer's in the same repeat."""
    return statistics.median(
        a.tiles_per_s / b.tiles_per_s for a, b in zip(snca.runs, peer.runs, strict=True)
    )


def print_table(found: list[Contender], agrees: dict[str, dict[str, Any]]) -> None:
    """The peer table: medians, snca's ratio and the agreement."""
    by_name = {c.name: c for c in found}
    header = (
        f"{'tool':<29} {'tiles':>6} {'start s':>7} {'work s':>6} {'tiles/s':>7} {'CPU s':>6} "
        f"{'ready MB':>8} {'peak MB':>7} {'snca x':>11}  agrees with classify / truth"
    )
    print(header)
    print("-" * len(header))
    for c in found:
        speed = c.median("tiles_per_s")
        ratio = "-"
        if c.baseline:
            base = by_name[c.baseline]
            ratio = f"{base.median('tiles_per_s') / speed:.2f} / {paired_ratio(base, c):.2f}"
        start = c.median("wall_s") - c.median("work_s")
        ours, truth = agreement_text(agrees[c.name])
        print(
            f"{c.name:<29} {c.runs[0].tiles:>6,} {start:>7.1f} {c.median('work_s'):>6.1f} "
            f"{speed:>7.1f} {c.median('cpu_s'):>6.1f} {c.median('ready_mb'):>8.0f} "
            f"{c.median('peak_mb'):>7.0f} {ratio:>11}  {ours} / {truth}"
        )
    print(
        "medians. start s: start-up, imports, model loading and exit (wall - work); tiles/s: "
        "of the work; CPU s: the whole process, all threads; ready MB: peak RSS once started "
        "with the model loaded (snca: a process that only does that); snca x: snca's tiles/s "
        "over the peer's, ratio of the medians / median of the ratios within a repeat"
    )
    print("what ran:")
    for c in found:
        load = (
            f"; model load {statistics.median(r.load_s for r in c.runs):.2f} s"
            if c.runs[0].load_s is not None
            else ""
        )
        print(f"  {c.name}: {c.ran}{load}")


def report(
    found: list[Contender], agrees: dict[str, dict[str, Any]], grid: int, query_cell: int
) -> dict[str, Any]:
    """Everything measured, for ``--json``."""
    by_name = {c.name: c for c in found}
    keys = ("tiles_per_s", "whole_tiles_per_s", "work_s", "wall_s", "cpu_s", "ready_mb", "peak_mb")
    contenders = {}
    for c in found:
        medians = {key: c.median(key) for key in keys}
        if c.baseline:
            base = by_name[c.baseline]
            medians["snca_ratio"] = base.median("tiles_per_s") / medians["tiles_per_s"]
            medians["snca_ratio_paired"] = paired_ratio(base, c)
        contenders[c.name] = {
            "ran": c.ran,
            "compared_with": c.baseline,
            "median": medians,
            "agreement": agrees[c.name],
            "runs": [asdict(run) for run in c.runs],
        }
    return {"cpu": cpu_line(), "grid": grid, "query_cell": query_cell, "contenders": contenders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=44, help="Mosaic cells per row and column.")
    parser.add_argument(
        "--aid",
        type=Path,
        default=default_aid_dir(),
        help="The AID folder [default: $SNCA_SHARED_DATA/aid150].",
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="An snca ONNX model [default: snca's default, the shipped model].",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--qgis-python",
        default=os.environ.get("SNCA_QGIS_PYTHON", "python3"),
        help="A Python with QGIS and onnxruntime [default: $SNCA_QGIS_PYTHON or python3].",
    )
    parser.add_argument(
        "--deepness",
        type=Path,
        default=default_tarball(),
        help=f"The Deepness tarball [default: $SNCA_SHARED_DATA/../third_party/{TARBALL}].",
    )
    parser.add_argument(
        "--deepness-batch",
        type=int,
        nargs="+",
        default=[DEFAULT_BATCH_SIZE, SNCA_BATCH],
        help="Deepness's batch sizes [default: 1 (its own default) and 32].",
    )
    parser.add_argument(
        "--snca-batch",
        type=int,
        nargs="*",
        default=[],
        help="Also run snca classify with these --batch-size values (its default: 32).",
    )
    parser.add_argument("--json", type=Path, help="Write the figures here as JSON.")
    args = parser.parse_args()
    if args.aid is None or args.deepness is None:
        parser.error("--aid and --deepness are needed when SNCA_SHARED_DATA is unset")
    print(f"CPU: {cpu_line()}; {platform.python_version()}, onnxruntime {ort.__version__}")
    print(f"QGIS Python: {qgis_versions(args.qgis_python)}")
    with tempfile.TemporaryDirectory(prefix="snca-peers-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        mosaic = work / "mosaic.tif"
        truth = write_real_mosaic(args.aid, mosaic, args.grid)
        side = args.grid * CELL
        print(
            f"raster: {args.grid} x {args.grid} AID test scenes, {side:,}^2 px, 512 px DEFLATE "
            f"blocks, {mosaic.stat().st_size / 1e6:.0f} MB (written in "
            f"{time.perf_counter() - started:.1f} s)"
        )
        copies = convert_copies(args.model, work)
        query_cell = len(truth) // 2 + args.grid // 2
        query = query_image(mosaic, query_cell, work / "query.png")
        source = unpack_deepness(args.deepness, work / "deepness")
        found = contenders(args, work, mosaic, copies, query, source)
        for repeat in range(args.repeats):
            ready_mb = snca_ready_mb(args.model, work / "run.log")
            order = found if repeat % 2 == 0 else found[::-1]
            for contender in order:
                run = run_once(contender, work, work / "run.log", ready_mb)
                print(
                    f"repeat {repeat + 1}: {contender.name:<29} {run.tiles:>6,} tiles, work "
                    f"{run.work_s:6.2f} s ({run.tiles_per_s:6.1f} tiles/s), wall "
                    f"{run.wall_s:6.2f} s, CPU {run.cpu_s:6.1f} s, peak {run.peak_mb:5.0f} MB",
                    flush=True,
                )
        print(f"snca ran: {found[0].ran}")
        similarities = snca_similarities(found[1].output, query, args.model, len(truth))
        agrees = agreement(found, truth, class_names(copies[0]), similarities, query_cell)
    print_table(found, agrees)
    if args.json:
        args.json.write_text(json.dumps(report(found, agrees, args.grid, query_cell), indent=2))


if __name__ == "__main__":
    main()
