"""`snca adapt` on AID: few-shot heads, unseen classes, "unknown", and speed (docs/results.md).

* **Shipped model, few labels**: a head fitted by :func:`snca_cli.tasks.adapt.fit_head` on k = 5,
  10, 20 training images per class (5 seeded draws) of the seed-0 split, scored on the test
  split, against the model's own head (trained on the whole training split). The head reads
  what cross-validates best, as ``snca adapt`` does; the head on each input alone (pooled
  backbone features, several-stage features, embedding) is scored too.
* **Unseen classes**: a model trained on AID's 20 seen classes (:mod:`aid_held_out`), adapted
  with k images of each of the 10 held-out classes (5 draws) -> accuracy on those classes' test
  images; the same with the frozen ImageNet backbone's features (``--frozen``).
* **Open set**: the same 20-class model adapted with k = 10 images of each seen class; the
  seen classes' test images are "known", the 10 held-out classes' test images "unknown". The
  score is the rule snca writes into adapted models (largest cosine to a class prototype):
  AUROC, and at each threshold the known tiles kept (and right) against the unknown rejected;
  the calibrated threshold (5 % quantile of held-out labelled examples) is marked.
* **Other features** (``--features NAME=SPEC``, :mod:`features`): the unseen-class protocol
  with the head on another feature kind (frozen EfficientNet-Lite1/2, several backbone stages,
  frozen and trained features concatenated). ``--protocols unseen`` runs that protocol alone
  (``--model20`` then optional).
* **Speed**: 1,000 test scenes mosaicked into a GeoTIFF (one scene per tile) with a point label
  on each: ``adapt_model`` end to end (reading, embedding, fitting, writing the model), median
  of 3, against ``classify_raster`` on the same mosaic in the same run.

    python benchmarks/adapt.py --data AID --model20 runs/aid20/transfer/model.onnx \\
        --split20 runs/aid20/transfer/split.json --frozen --out runs/adapt/adapt.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from aid_held_out import split_classes
from aid_table import Settings, frozen_embedder
from features import FeatureCache
from mosaic_check import (
    MOSAIC_CRS,
    MOSAIC_ORIGIN,
    PIXEL_METRES,
    grid_shape,
    scene_pixels,
    write_mosaic,
)
from transfer import BATCH, embed

from snca_cli.contract.metadata import EMBEDDING_OUTPUT
from snca_cli.contract.open_set import class_prototypes
from snca_cli.contract.tiling import TilingOptions
from snca_cli.runtime.default_model import default_model_path
from snca_cli.runtime.onnx_graph import load_snca_onnx
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.scene_images import (
    load_split,
    make_split,
    read_image,
    resize_image,
    scan_scene_folder,
)
from snca_cli.tasks.adapt import AdaptConfig, adapt_model, features_model, fit_head
from snca_cli.tasks.classify import classify_raster
from snca_cli.tasks.evaluate import Embedder, open_embedder

PROTOCOLS = ("shipped", "unseen", "open-set", "speed")
SHOTS = (5, 10, 20)
DRAWS = 5
#: Labelled tiles of the speed protocol.
SPEED_TILES = 1000
SPEED_REPEATS = 3


def cpu_line() -> str:
    """Processor, cores and the vector extensions that matter for onnxruntime and torch."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return f"{model}, {os.cpu_count()} cores, {' '.join(f for f in wanted if f in flags)}"


def class_index(items: list[str], names: list[str]) -> np.ndarray:
    """Class index (into ``names``) of each ``Class/file`` item."""
    return np.array([names.index(item.split("/", 1)[0]) for item in items], dtype=np.int64)


def draw(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` examples of every class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), k, replace=False) for c in np.unique(labels)]
    )


def embed_with_features(
    model_path: Path, data: Path, items: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Unit embeddings and every unit head input ``snca adapt`` may read, by kind (the
    embeddings, the pooled and the several-stage backbone features), of ``data/<item>`` images,
    in order."""
    opened = features_model(model_path, load_snca_onnx(model_path)[0])
    assert opened is not None, f"{model_path} has no backbone features"
    model, kinds = opened
    names = [EMBEDDING_OUTPUT, *kinds]
    size, scale = model.metadata.tile_size, np.float32(model.metadata.input_scale["uint8"])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        batch = (
            np.stack(
                [np.moveaxis(resize_image(read_image(data / i), size), -1, 0) for i in chunk]
            ).astype(np.float32)
            / scale
        )
        for name, values in zip(names, model.run_outputs(batch, names), strict=True):
            parts[name].append(values / np.linalg.norm(values, axis=1, keepdims=True))
    inputs = {name: np.concatenate(values) for name, values in parts.items()}
    return inputs[EMBEDDING_OUTPUT], inputs


def only(inputs: tuple[dict, dict], kind: str) -> tuple[dict, dict]:
    """(train, test) head inputs restricted to one kind: a head that reads only it."""
    return {kind: inputs[0][kind]}, {kind: inputs[1][kind]}


def few_shot(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    names: list[str],
    inputs: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Test accuracy (percent) of heads fitted on k examples per class: per k, every draw (and
    the head input it chose), mean and sd. With ``inputs`` (train, test; by kind) the head
    reads the one that cross-validates best, as ``snca adapt --head-input auto`` does; else
    the embeddings."""
    out: dict[str, Any] = {}
    for k in SHOTS:
        accuracies, reads = [], []
        for seed in range(DRAWS):
            chosen = draw(train_labels, k, seed)
            head = fit_head(
                train[chosen],
                train_labels[chosen],
                names,
                folds=min(5, k),
                inputs=None if inputs is None else {n: v[chosen] for n, v in inputs[0].items()},
            )
            predicted = head.probabilities(test if inputs is None else inputs[1][head.head_input])
            predicted = predicted.argmax(axis=1)
            accuracies.append(100 * float((predicted == test_labels).mean()))
            reads.append(head.head_input)
        out[f"k{k}"] = {
            "draws": accuracies,
            "head_inputs": reads,
            "mean": statistics.mean(accuracies),
            "sd": statistics.stdev(accuracies),
        }
    return out


def own_head_accuracy(
    embedder: Embedder, data: Path, items: list[str], labels: np.ndarray
) -> float:
    """Accuracy (percent) of the model's own softmax head on ``data/<item>`` images."""
    right = []
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        batch = np.stack(
            [
                np.moveaxis(resize_image(read_image(data / i), embedder.image_size), -1, 0)
                for i in chunk
            ]
        ).astype(np.float32) / np.float32(embedder.input_scale["uint8"])
        predicted = embedder.run(batch).probabilities.argmax(axis=1)
        right.append(predicted == labels[start : start + BATCH])
    return 100 * float(np.concatenate(right).mean())


def roc_auc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Probability that a known example scores above an unknown one (ties count half)."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return float(roc_auc_score(truth, np.r_[known, unknown]))


def open_set(
    train: np.ndarray,
    train_labels: np.ndarray,
    known: np.ndarray,
    known_labels: np.ndarray,
    unknown: np.ndarray,
    names: list[str],
    inputs: tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]],
    k: int = 10,
) -> dict[str, Any]:
    """AUROC and the trade-off of the prototype rule (on the embeddings), per draw, with the
    head on the input it chooses among ``inputs`` (train, known, unknown; by kind); curve of the
    first draw."""
    draws, curve = [], None
    train_inputs, known_inputs, unknown_inputs = inputs
    for seed in range(DRAWS):
        chosen = draw(train_labels, k, seed)
        head = fit_head(
            train[chosen],
            train_labels[chosen],
            names,
            folds=5,
            inputs={n: v[chosen] for n, v in train_inputs.items()},
        )
        known_features = known_inputs[head.head_input]
        unknown_features = unknown_inputs[head.head_input]
        known_best = head.rule.best_similarity(known)
        unknown_best = head.rule.best_similarity(unknown)
        right = head.probabilities(known_features).argmax(axis=1) == known_labels
        threshold = head.rule.threshold
        kept = known_best >= threshold
        draws.append(
            {
                "auroc": roc_auc(known_best, unknown_best),
                "auroc_max_probability": roc_auc(
                    head.probabilities(known_features).max(axis=1),
                    head.probabilities(unknown_features).max(axis=1),
                ),
                "threshold": threshold,
                "known_accuracy_closed_set": 100 * float(right.mean()),
                "known_kept": 100 * float(kept.mean()),
                "known_right_and_kept": 100 * float((right & kept).mean()),
                "unknown_rejected": 100 * float((unknown_best < threshold).mean()),
            }
        )
        if curve is None:
            thresholds = np.quantile(np.r_[known_best, unknown_best], np.linspace(0, 1, 101))
            curve = {
                "threshold": thresholds.tolist(),
                "known_right_and_kept": [
                    100 * float((right & (known_best >= t)).mean()) for t in thresholds
                ],
                "unknown_rejected": [100 * float((unknown_best < t).mean()) for t in thresholds],
            }
    summary = {
        key: {
            "mean": statistics.mean(d[key] for d in draws),
            "sd": statistics.stdev(d[key] for d in draws),
        }
        for key in draws[0]
    }
    return {"k": k, "draws": draws, "summary": summary, "curve": curve}


def prototype_auroc(
    train: np.ndarray, train_labels: np.ndarray, known: np.ndarray, unknown: np.ndarray, k: int = 10
) -> dict[str, Any]:
    """AUROC, known vs unknown, of the open-set rule (largest cosine to a class prototype of k
    drawn examples per class) on other features than the embedding: per draw, mean and sd."""
    aurocs = []
    for seed in range(DRAWS):
        chosen = draw(train_labels, k, seed)
        prototypes = class_prototypes(
            train[chosen], train_labels[chosen], int(train_labels.max()) + 1
        )
        aurocs.append(
            roc_auc((known @ prototypes.T).max(axis=1), (unknown @ prototypes.T).max(axis=1))
        )
    return {"draws": aurocs, "mean": statistics.mean(aurocs), "sd": statistics.stdev(aurocs)}


def plot_open_set(result: dict[str, Any], path: Path) -> None:
    """The accuracy/unknown trade-off of the first draw, the calibrated threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve, first = result["curve"], result["draws"][0]
    figure, axis = plt.subplots(figsize=(5.5, 4.2), dpi=120)
    axis.plot(curve["unknown_rejected"], curve["known_right_and_kept"], color="#0067a5")
    axis.scatter(
        [first["unknown_rejected"]],
        [first["known_right_and_kept"]],
        color="#be0032",
        zorder=3,
        label=f"calibrated threshold {first['threshold']:.3f}",
    )
    axis.set_xlabel("held-out-class test images rejected as unknown (%)")
    axis.set_ylabel("seen-class test images kept and right (%)")
    axis.set_title(f"Open set, 20-class model, k = {result['k']} (AUROC {first['auroc']:.3f})")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_labels(path: Path, classes: list[str], cols: int, cell: int) -> None:
    """A GeoPackage point at the centre of each mosaic cell, with the scene's class."""
    import pyogrio.raw
    import shapely

    points = [
        shapely.Point(
            MOSAIC_ORIGIN[0] + (i % cols + 0.5) * cell * PIXEL_METRES,
            MOSAIC_ORIGIN[1] - (i // cols + 0.5) * cell * PIXEL_METRES,
        )
        for i in range(len(classes))
    ]
    pyogrio.raw.write(
        path,
        shapely.to_wkb(points),
        [np.array(classes, dtype=object)],
        ["cover"],
        geometry_type="Point",
        crs=MOSAIC_CRS,
        driver="GPKG",
    )


def speed(data: Path, items: list[str], model_path: Path, work: Path) -> dict[str, Any]:
    """Seconds of ``adapt_model`` on SPEED_TILES labelled mosaic tiles, against classifying
    the same mosaic; medians of SPEED_REPEATS."""
    model = OnnxModel(model_path)
    cell = model.metadata.tile_size
    rng = np.random.default_rng(0)
    chosen = [items[i] for i in sorted(rng.choice(len(items), SPEED_TILES, replace=False))]
    mosaic = work / "mosaic.tif"
    write_mosaic(mosaic, (scene_pixels(data / i, cell) for i in chosen), len(chosen), cell)
    _, cols = grid_shape(len(chosen))
    labels = work / "labels.gpkg"
    write_labels(labels, [i.split("/", 1)[0] for i in chosen], cols, cell)
    options = TilingOptions(overlap=0, resolution="native", min_valid=0.5, edge="shift")
    adapt_s, classify_s, report = [], [], None
    for _ in range(SPEED_REPEATS):
        started = time.perf_counter()
        report = adapt_model(
            AdaptConfig(
                work / "adapted.onnx",
                model_path,
                [mosaic],
                labels,
                "cover",
                tiling=options,
                force=True,
            )
        )
        adapt_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        classify_raster(mosaic, model, work / "classes.gpkg", options, force=True)
        classify_s.append(time.perf_counter() - started)
    assert report is not None
    return {
        "tiles": sum(report.counts.values()),
        "classes": len(report.counts),
        "cv_accuracy": 100 * (report.head.cv_accuracy or 0.0),
        "adapt_s": adapt_s,
        "classify_s": classify_s,
        "adapt_median_s": statistics.median(adapt_s),
        "classify_median_s": statistics.median(classify_s),
        "ratio_adapt_to_classify": statistics.median(adapt_s) / statistics.median(classify_s),
    }


def shipped_protocol(
    shipped: Path, data: Path, full: dict[str, list[str]], names30: list[str]
) -> dict[str, Any]:
    """The shipped model's few-label heads on AID's 30 classes against its own head."""
    embedder = open_embedder(shipped)
    started = time.perf_counter()
    train30, train30_features = embed_with_features(shipped, data, full["train"])
    test30, test30_features = embed_with_features(shipped, data, full["test"])
    y_train30, y_test30 = class_index(full["train"], names30), class_index(full["test"], names30)
    return {
        "model": shipped.name,
        "own_head_accuracy": own_head_accuracy(embedder, data, full["test"], y_test30),
        "adapted": few_shot(
            train30, y_train30, test30, y_test30, names30, (train30_features, test30_features)
        ),
        **{
            f"adapted_on_{kind}": few_shot(
                train30,
                y_train30,
                test30,
                y_test30,
                names30,
                only((train30_features, test30_features), kind),
            )
            for kind in train30_features
        },
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="AID, 30 classes")
    parser.add_argument("--model20", type=Path, default=None, help="20-class model (.onnx)")
    parser.add_argument("--split20", type=Path, required=True, help="its split.json")
    parser.add_argument("--shipped", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--frozen", action="store_true", help="frozen ImageNet features too")
    parser.add_argument(
        "--features",
        action="append",
        default=[],
        help="NAME=SPEC: the unseen-class protocol on another feature kind (repeat; see "
        "benchmarks/features.py)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="folder of --features vectors")
    parser.add_argument(
        "--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS), help="default: all"
    )
    parser.add_argument("--out", type=Path, required=True, help="results JSON (PNG beside)")
    args = parser.parse_args()
    if args.model20 is None and "open-set" in args.protocols:
        parser.error("the open-set protocol needs --model20")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cpu": cpu_line()}
    print(results["cpu"])

    folder = scan_scene_folder(args.data)
    full = make_split(folder, 0)
    names30 = folder.class_names
    shipped = args.shipped or default_model_path()
    if "shipped" in args.protocols:
        results["shipped"] = shipped_protocol(shipped, args.data, full, names30)
        print("shipped", json.dumps(results["shipped"]))

    seen, held_out = split_classes(names30)
    held = {part: [i for i in full[part] if i.split("/")[0] in held_out] for part in full}
    stored = load_split(args.split20)
    assert sorted(stored["classes"]) == seen, "--split20 is not of the 20 seen classes"
    y_held_train = class_index(held["train"], held_out)
    y_held_test = class_index(held["test"], held_out)
    results["unseen"] = {}
    if args.model20 is not None:
        train, train_features = embed_with_features(args.model20, args.data, held["train"])
        test, test_features = embed_with_features(args.model20, args.data, held["test"])
        if "unseen" in args.protocols:
            results["unseen"]["20-class model"] = few_shot(
                train, y_held_train, test, y_held_test, held_out, (train_features, test_features)
            )
            for kind in train_features:
                results["unseen"][f"20-class model, head on the {kind}"] = few_shot(
                    train,
                    y_held_train,
                    test,
                    y_held_test,
                    held_out,
                    only((train_features, test_features), kind),
                )
    if "open-set" in args.protocols:
        seen_train, seen_train_features = embed_with_features(
            args.model20, args.data, list(stored["train"])
        )
        seen_test, seen_test_features = embed_with_features(
            args.model20, args.data, list(stored["test"])
        )
        results["open_set"] = open_set(
            seen_train,
            class_index(list(stored["train"]), seen),
            seen_test,
            class_index(list(stored["test"]), seen),
            test,
            seen,
            (seen_train_features, seen_test_features, test_features),
        )
        print("open set", json.dumps(results["open_set"]["summary"]))
        plot_open_set(results["open_set"], args.out.with_name(args.out.stem + "_open_set.png"))
    if args.frozen and "unseen" in args.protocols:
        settings = Settings(data_dir=str(args.data), image_size=150)
        frozen = frozen_embedder(settings, held_out)
        train = embed(frozen, args.data, held["train"])
        test = embed(frozen, args.data, held["test"])
        results["unseen"]["ImageNet frozen"] = few_shot(
            train, y_held_train, test, y_held_test, held_out
        )
    cache = FeatureCache(args.cache)
    for name, spec in (item.split("=", 1) for item in args.features):
        train = cache.vectors(spec, args.data, held["train"])
        test = cache.vectors(spec, args.data, held["test"])
        if "unseen" in args.protocols:
            result = few_shot(train, y_held_train, test, y_held_test, held_out)
            results["unseen"][name] = {
                "features": spec,
                "dims": int(train.shape[1]),
                "gflops_per_tile": cache.gflops(spec),
                **result,
            }
        if "open-set" in args.protocols:
            seen_items = {part: list(stored[part]) for part in ("train", "test")}
            results.setdefault("open_set_features", {})[name] = {
                "features": spec,
                **prototype_auroc(
                    cache.vectors(spec, args.data, seen_items["train"]),
                    class_index(seen_items["train"], seen),
                    cache.vectors(spec, args.data, seen_items["test"]),
                    test,
                ),
            }
            print("open set on", name, json.dumps(results["open_set_features"][name]))
    for name, result in results["unseen"].items():
        print("unseen", name, json.dumps(result))

    if "speed" in args.protocols:
        with tempfile.TemporaryDirectory(prefix="snca-adapt-bench-") as work:
            results["speed"] = speed(args.data, full["test"] + full["val"], shipped, Path(work))
        print("speed", json.dumps(results["speed"]))
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
