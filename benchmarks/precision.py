"""Does the default precision give fp32's answers, and how much faster is it?

``agreement``: the default model copy (``--precision auto``: int8 with close tiles re-checked
in fp32 on a CPU with VNNI/AMX) against fp32, on

* the re-check margin: on AID's validation images at 1x, 2x and 4x coarser resolution (each
  image shrunk and scaled back up), the class agreement of int8 alone and the share of tiles
  re-checked for each candidate margin (how :data:`RECHECK_MARGIN` was chosen);
* real scenes, densely tiled (overlap 112 px: many tiles per scene): the shipped demo scene
  (Sentinel-2, uint16, at its 10 m and at 5 m) and the Landsat scene (300 m and 150 m);
* AID: kNN@10 of the test images against the training images, and the overlap of each test
  image's top-10 training neighbours with fp32's.

``speed``: paired runs of the real command lines on a real raster (``benchmarks/real_mosaic.py``
writes a mosaic of AID test scenes), alternating ``--precision fp32`` and the default, each in a
fresh process: tiles/s as the command reports it (the work) and of the whole process (start-up
included), peak RSS, and the class agreement of the two GeoPackages, for ``snca classify`` and
``snca index build``.

    python benchmarks/precision.py agreement
    python benchmarks/precision.py speed MOSAIC.tif --pairs 5 --json docs/precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyogrio.raw
from classify_memory import measured_run
from classify_vs_revision import cpu_flags
from PIL import Image

from snca_cli.contract.metadata import INPUT_NAME, PROBABILITIES_OUTPUT
from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.default_model import default_model_path
from snca_cli.runtime.metrics import knn_accuracy
from snca_cli.runtime.onnx_model import OnnxModel, class_margin
from snca_cli.runtime.precision import RECHECK_MARGIN, int8_copy
from snca_cli.runtime.raster_tiles import RasterTiling

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "snca_cli" / "models" / "snca-aid150-lite0.card.json"
DEMO = ROOT / "snca_cli" / "demo_data" / "sentinel2_rgb_10m.tif"
#: Candidate re-check margins shown by ``agreement``.
MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
#: Overlap of the dense tiling of the real scenes (the most ``snca classify`` accepts).
DENSE_OVERLAP = 112
BATCH = 32
TILES_PER_SECOND = re.compile(r"\(([\d,.]+) tiles/s")
#: "indexed N tiles ... in S s" of ``snca index build``.
INDEXED = re.compile(r"indexed ([\d,]+) tiles .* in ([\d.]+) s")


def outputs(model: OnnxModel, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and probabilities of ``images`` in batches."""
    parts = [model.run(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
    return (
        np.concatenate([p.embedding for p in parts]),
        np.concatenate([p.probabilities for p in parts]),
    )


def aid_images(aid: Path, items: list[str], coarser: int = 1) -> np.ndarray:
    """AID images as model input; ``coarser`` > 1 shrinks each by that factor and scales it
    back up (the same ground at a coarser resolution)."""
    images = []
    for item in items:
        image = Image.open(aid / item).convert("RGB")
        if coarser > 1:
            size = image.size
            image = image.resize((size[0] // coarser, size[1] // coarser), Image.BILINEAR)
            image = image.resize(size, Image.BILINEAR)
        images.append(np.asarray(image, np.float32).transpose(2, 0, 1) / 255)
    return np.stack(images)


def scene_tiles(path: Path, resolution: str | float, model: OnnxModel) -> np.ndarray:
    """Every tile of a scene with at least half its pixels valid, densely overlapping."""
    options = TilingOptions(overlap=DENSE_OVERLAP, resolution=resolution).for_model(model.metadata)
    with RasterTiling.open(path, model.metadata, options) as tiling:
        pixels, valid = tiling.read(list(tiling.tiles()))
    return pixels[np.asarray(valid) >= 0.5]


def int8_alone(images: np.ndarray) -> np.ndarray:
    """The class probabilities of the shipped int8 copy, without re-checks."""
    session = ort.InferenceSession(
        str(int8_copy(default_model_path())), providers=["CPUExecutionProvider"]
    )
    parts = [
        session.run([PROBABILITIES_OUTPUT], {INPUT_NAME: images[i : i + BATCH]})[0]
        for i in range(0, len(images), BATCH)
    ]
    return np.concatenate(parts)


def margin_sweep(fp32: OnnxModel, images: np.ndarray) -> dict[str, list]:
    """Agreement of int8 alone with fp32, and the share re-checked, for each of
    :data:`MARGINS`."""
    exact = outputs(fp32, images)[1]
    quick = int8_alone(images)
    margin = class_margin(quick)
    differ = exact.argmax(1) != quick.argmax(1)
    return {
        "agreement": [float(1 - (differ & (margin >= m)).mean()) for m in MARGINS],
        "rechecked": [float((margin < m).mean()) for m in MARGINS],
    }


def agreement(args: argparse.Namespace) -> dict:
    """The ``agreement`` part."""
    aid = Path(args.aid)
    split = json.loads(CARD.read_text())["split"]
    path = default_model_path()
    fp32 = OnnxModel(path, precision="fp32")
    chosen = OnnxModel(path)
    print(f"default: {chosen.choice.describe()}")
    report: dict = {"cpu": cpu_flags(), "default": chosen.choice.describe(), "margins": MARGINS}
    print(f"\nre-check margin on AID validation images ({len(split['val'])}); int8 alone:")
    print("coarser  " + "  ".join(f"m={m:<4} agree / re-checked" for m in MARGINS))
    for coarser in (1, 2, 4):
        sweep = margin_sweep(fp32, aid_images(aid, split["val"], coarser))
        report[f"val_{coarser}x"] = sweep
        cells = (f"{a:7.2%} / {r:6.1%}" for a, r in zip(*sweep.values(), strict=True))
        print(f"{coarser}x       " + "        ".join(cells))
    print(f"\nreal scenes, tiles overlapping by {DENSE_OVERLAP} px; default against fp32:")
    scenes = {
        "demo scene, 10 m": (DEMO, "native"),
        "demo scene, 5 m": (DEMO, 5.0),
        "Landsat scene, 300 m": (Path(args.landsat), "native"),
        "Landsat scene, 150 m": (Path(args.landsat), 150.0),
    }
    for name, (raster, resolution) in scenes.items():
        tiles = scene_tiles(raster, resolution, fp32)
        before = chosen.tiles_rechecked
        same = float(
            (outputs(fp32, tiles)[1].argmax(1) == outputs(chosen, tiles)[1].argmax(1)).mean()
        )
        rechecked = (chosen.tiles_rechecked - before) / len(tiles)
        report[name] = {"tiles": len(tiles), "agreement": same, "rechecked": rechecked}
        print(f"  {name:22} {len(tiles):5} tiles: agreement {same:.2%}, re-checked {rechecked:.1%}")
    report["aid"] = aid_retrieval(fp32, chosen, aid, split)
    return report


def aid_retrieval(fp32: OnnxModel, chosen: OnnxModel, aid: Path, split: dict) -> dict:
    """kNN@10 of AID's test images against its training images, and the top-10 overlap."""
    classes = sorted({item.split("/")[0] for item in split["train"]})
    labels = {
        k: np.array([classes.index(i.split("/")[0]) for i in split[k]]) for k in ("train", "test")
    }
    train, test = aid_images(aid, split["train"]), aid_images(aid, split["test"])
    result, neighbours = {}, {}
    for name, model in (("fp32", fp32), ("default", chosen)):
        memory, queries = outputs(model, train)[0], outputs(model, test)[0]
        result[f"knn@10_{name}"] = knn_accuracy(
            queries, labels["test"], memory, labels["train"], 10, len(classes)
        )
        neighbours[name] = np.argsort(-(queries @ memory.T), axis=1)[:, :10]
    overlap = [len(set(a) & set(b)) for a, b in zip(*neighbours.values(), strict=True)]
    result["top10_overlap_mean"] = float(np.mean(overlap))
    result["top10_overlap_min"] = int(np.min(overlap))
    result["top10_overlap_at_least_9"] = float(np.mean(np.array(overlap) >= 9))
    print(
        f"\nAID kNN@10: fp32 {result['knn@10_fp32']:.2%}, default {result['knn@10_default']:.2%}; "
        f"top-10 neighbours shared with fp32: mean {result['top10_overlap_mean']:.2f} / 10 "
        f"({result['top10_overlap_at_least_9']:.1%} of queries >= 9)"
    )
    return result


def run_command(arguments: list[str], log: Path) -> tuple[str, float, float, float]:
    """Run ``python -m snca_cli.cli ARGUMENTS`` in a fresh process (its output in ``log``): its
    output, wall seconds, CPU seconds (all threads) and peak RSS (MB)."""
    peak, wall, cpu = measured_run(
        [sys.executable, "-m", "snca_cli.cli", *arguments],
        log,
        env={**os.environ, "COLUMNS": "200"},
    )
    return log.read_text(), wall, cpu, peak


def classes_of(gpkg: Path) -> np.ndarray:
    """The class_id column of a GeoPackage snca classify wrote."""
    _, _, _, fields = pyogrio.raw.read(gpkg, layer=0, columns=["class_id"])
    return np.asarray(fields[0])


def speed(args: argparse.Namespace) -> dict:
    """The ``speed`` part."""
    raster = Path(args.raster)
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="snca-precision-") as work:
        for pair in range(args.pairs):
            order = ("fp32", "default") if pair % 2 == 0 else ("default", "fp32")
            for precision in order:
                flag = ["--precision", "fp32"] if precision == "fp32" else []
                out = Path(work) / f"{precision}.gpkg"
                text, wall, cpu, peak = run_command(
                    ["classify", str(raster), "-o", str(out), "--force", *flag],
                    Path(work) / "classify.log",
                )
                tiles = len(classes_of(out))
                reported = float(TILES_PER_SECOND.search(text).group(1).replace(",", ""))
                runs.setdefault(f"classify {precision}", []).append(
                    {
                        "tiles/s": reported,
                        "process tiles/s": tiles / wall,
                        "tiles per CPU s": tiles / cpu,
                        "peak MB": peak,
                    }
                )
                index = Path(work) / f"{precision}-index"
                text, wall, cpu, peak = run_command(
                    ["index", "build", str(raster), "-o", str(index), "--force", *flag],
                    Path(work) / "index.log",
                )
                count, seconds = INDEXED.search(text).groups()
                count = int(count.replace(",", ""))
                runs.setdefault(f"index build {precision}", []).append(
                    {
                        "tiles/s": count / float(seconds),
                        "process tiles/s": count / wall,
                        "tiles per CPU s": count / cpu,
                        "peak MB": peak,
                    }
                )
            same = float(
                (
                    classes_of(Path(work) / "fp32.gpkg") == classes_of(Path(work) / "default.gpkg")
                ).mean()
            )
            runs.setdefault("agreement", []).append({"classify": same})
            print(
                f"pair {pair + 1}: "
                + " | ".join(
                    f"{name} {values[-1]['tiles/s']:.1f} tiles/s"
                    for name, values in runs.items()
                    if name != "agreement"
                )
                + f" | classes agree {same:.2%}",
                flush=True,
            )
    medians = {
        name: {key: statistics.median(r[key] for r in values) for key in values[0]}
        for name, values in runs.items()
    }
    for name, values in medians.items():
        print(f"median {name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in values.items()))
    ratios = {}
    for job in ("classify", "index build"):
        for key in ("tiles/s", "process tiles/s", "tiles per CPU s"):
            paired = [
                d[key] / f[key]
                for d, f in zip(runs[f"{job} default"], runs[f"{job} fp32"], strict=True)
            ]
            ratios[f"{job} {key}"] = statistics.median(paired)
    for name, ratio in ratios.items():
        print(f"default / fp32, {name} (median of pairs): {ratio:.2f}x")
    return {
        "raster": raster.name,
        "pairs": args.pairs,
        "runs": runs,
        "medians": medians,
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    data = Path(os.environ.get("SNCA_SHARED_DATA", "data"))
    part = parts.add_parser("agreement")
    part.add_argument("--aid", default=str(data / "aid150"))
    part.add_argument("--landsat", default=str(data / "geotiff" / "RGB.byte.tif"))
    part.add_argument("--json")
    part = parts.add_parser("speed")
    part.add_argument("raster")
    part.add_argument("--pairs", type=int, default=5)
    part.add_argument("--json")
    args = parser.parse_args()
    print(f"CPU: {cpu_flags()}; re-check margin {RECHECK_MARGIN}")
    report = agreement(args) if args.part == "agreement" else speed(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
