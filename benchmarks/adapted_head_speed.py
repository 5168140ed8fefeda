"""`snca classify` throughput of an adapted model whose head reads the several-stage features,
against the shipped model it was adapted from, side by side.

The adapted model is written here: ``snca adapt`` (``head_input="stages"``) on a generated
image folder, two colours of scenes. Both run the real command line (``snca classify
--precision fp32 --resolution native``, :func:`classify_vs_revision.classify_once`) on the
same generated DEFLATE GeoTIFF, in fresh processes, alternating (paired runs), so drift of a
shared machine hits both alike. Printed: tiles per second of each whole command (start-up
included), the medians and the ratio adapted / shipped (the stage head adds three global
poolings to the graph; the per-tile budget of the transfer issue is 1.5x slower).

    python benchmarks/adapted_head_speed.py --size 3000 --pairs 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from adapt import cpu_line
from classify_vs_revision import ROOT, classify_once
from PIL import Image
from synthetic_raster import write_synthetic_raster

from snca_cli.runtime.default_model import default_model_path
from snca_cli.tasks.adapt import AdaptConfig, adapt_model


def scene_folder(root: Path, per_class: int = 6, size: int = 150) -> Path:
    """``root/<class>/<i>.png``: noisy reddish and greenish scenes."""
    rng = np.random.default_rng(0)
    for name, colour in (("red", (190, 40, 30)), ("green", (40, 180, 50))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(colour, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000, help="Raster width = height in px.")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="snca-stage-head-"))
    adapted = work / "stages.onnx"
    config = AdaptConfig(adapted, images=scene_folder(work / "scenes"), head_input="stages")
    adapt_model(config)
    raster = write_synthetic_raster(work / "raster.tif", args.size)
    models = {"shipped": default_model_path(), "adapted (stages)": adapted}
    print(cpu_line())
    print(f"raster {args.size:,}^2 px (uint8, DEFLATE), fp32, {args.pairs} pairs")
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for pair in range(args.pairs):
        for name, model in models.items():
            options = ("-m", str(model), "--precision", "fp32")
            speed, _ = classify_once(ROOT, raster, work, work / "classify.log", options)
            speeds[name].append(speed)
        print(
            f"pair {pair + 1}: " + " | ".join(f"{n} {v[-1]:.1f} tiles/s" for n, v in speeds.items())
        )
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    print(" | ".join(f"median {name}: {value:.1f} tiles/s" for name, value in medians.items()))
    print(f"ratio adapted/shipped: {medians['adapted (stages)'] / medians['shipped']:.3f}")


if __name__ == "__main__":
    main()
