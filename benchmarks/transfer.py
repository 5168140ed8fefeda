"""Transfer protocols: how well a model's embeddings hold beyond AID's seen classes and its
ground resolution (table in docs/results.md).

* **Held-out classes**: models trained on AID's 20 seen classes (:mod:`aid_held_out`) embed
  the 10 held-out classes; their test images (the seed-0 70/10/20 split of the 30-class folder)
  are the queries, their training images the database: kNN@10 and mAP@20.
* **Across resolution**: the seen classes' test images, downsampled 2x and 4x (box filter: a
  coarser sensor) and resampled back to the tile size (bilinear), are the queries against the
  full-resolution training images of the seen classes: kNN@10 at 1x, 2x, 4x and the loss in
  points.
* **In-domain**: the 1x figure of the same protocol (kNN@10 on the seen classes).

Models: any number of ``NAME=PATH`` (a training checkpoint or an ONNX file), plus the frozen
ImageNet backbone (``--frozen``) and 30-class models trained on the seed-0 split (``--full
NAME=PATH``: they saw every class and part of the 20-class split's test images, so they get
the across-resolution protocol only, on the seen classes of their own split). ``--features
NAME=SPEC`` scores other feature kinds (:mod:`features`: frozen EfficientNet-Lite1/2, several
backbone stages, frozen and trained features concatenated), ``--factors 1`` the 1x figure only.
Every figure comes from the same images in the same run.

    python benchmarks/transfer.py --data AID --split runs/aid20/current/split.json \\
        --model current=runs/aid20/current/best.pt --model transfer=runs/aid20/transfer/best.pt \\
        --frozen --full shipped=snca_cli/models/snca-aid150-lite0.onnx \\
        --out runs/aid20/transfer.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from aid_held_out import split_classes
from aid_table import Settings, frozen_embedder
from features import FeatureCache
from PIL import Image

from snca_cli.runtime.metrics import knn_accuracy, retrieval_metrics
from snca_cli.runtime.scene_images import (
    load_split,
    make_split,
    read_image,
    resize_image,
    scan_scene_folder,
)
from snca_cli.tasks.evaluate import Embedder, open_embedder

#: Resolution factors of the queries (1 = as stored).
FACTORS = (1, 2, 4)
BATCH = 64
#: Unit vectors of ``root/<item>`` images degraded by a factor: (root, items, factor) -> N x D.
Vectors = Callable[[Path, list[str], int], np.ndarray]


def degraded(image: np.ndarray, size: int, factor: int) -> np.ndarray:
    """A uint8 H x W x 3 image resized to ``size``, then (factor > 1) box-averaged down to
    ``size / factor`` and resampled back up bilinearly."""
    image = resize_image(image, size)
    if factor == 1:
        return image
    small = max(1, round(size / factor))
    down = Image.fromarray(image).resize((small, small), Image.Resampling.BOX)
    return np.asarray(down.resize((size, size), Image.Resampling.BILINEAR))


def embed(embedder: Embedder, root: Path, items: list[str], factor: int = 1) -> np.ndarray:
    """Unit embeddings of ``root/<item>`` images degraded by ``factor``, in order."""
    size, out = embedder.image_size, []
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        batch = np.stack(
            [np.moveaxis(degraded(read_image(root / i), size, factor), -1, 0) for i in chunk]
        ).astype(np.float32) / np.float32(embedder.input_scale["uint8"])
        vectors = embedder.run(batch).embedding
        out.append(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
    return np.concatenate(out)


def labels(items: list[str]) -> np.ndarray:
    """Class index of each ``Class/file`` item, by sorted class name."""
    names = sorted({item.split("/", 1)[0] for item in items})
    return np.array([names.index(item.split("/", 1)[0]) for item in items])


def scores(queries: np.ndarray, q_items: list[str], db: np.ndarray, db_items: list[str]) -> dict:
    """kNN@10 and mAP@20 (percent) of queries against a database."""
    q, d = labels(q_items), labels(db_items)
    classes = int(max(q.max(), d.max())) + 1
    knn = knn_accuracy(queries, q, db, d, 10, classes)
    return {"knn@10": 100 * knn, "map@20": 100 * retrieval_metrics(queries, q, db, d)["map@20"]}


def evaluate(
    vectors: Vectors,
    data: Path,
    seen_split: dict,
    held: dict | None,
    factors: tuple[int, ...] = FACTORS,
) -> dict:
    """Every protocol's figures for one model's ``vectors`` (e.g. ``partial(embed, embedder)``;
    ``held`` None: no held-out protocol, for a model that was trained on those classes)."""
    started = time.perf_counter()
    result: dict = {}
    if held is not None:
        db = vectors(data, held["train"], 1)
        queries = vectors(data, held["test"], 1)
        result["held_out"] = scores(queries, held["test"], db, held["train"])
    db = vectors(data, seen_split["train"], 1) if factors else None
    for factor in factors:
        queries = vectors(data, seen_split["test"], factor)
        result[f"seen_{factor}x"] = scores(queries, seen_split["test"], db, seen_split["train"])
    for factor in factors[1:]:
        result[f"loss_{factor}x"] = (
            result["seen_1x"]["knn@10"] - result[f"seen_{factor}x"]["knn@10"]
        )
    result["seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="AID, 30 classes")
    parser.add_argument("--split", type=Path, required=True, help="split.json of the 20-class runs")
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH (repeat)")
    parser.add_argument("--frozen", action="store_true", help="the frozen ImageNet backbone too")
    parser.add_argument(
        "--full",
        action="append",
        default=[],
        help="NAME=PATH of a 30-class model trained on the seed-0 split (repeat): across "
        "resolution only, on the seen classes of its own split",
    )
    parser.add_argument(
        "--features",
        action="append",
        default=[],
        help="NAME=SPEC of a feature kind (repeat; see benchmarks/features.py)",
    )
    parser.add_argument(
        "--factors",
        type=int,
        nargs="*",
        default=list(FACTORS),
        help="resolution factors of the seen queries (1 first; default 1 2 4; none: the "
        "held-out protocol only)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="folder of --features vectors")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args()
    factors = tuple(args.factors)
    from adapt import cpu_line  # adapt imports this module

    print(cpu_line())

    folder = scan_scene_folder(args.data)
    seen, held_out = split_classes(folder.class_names)
    full = make_split(folder, 0)  # the 30-class seed-0 split: the held-out classes' parts
    held = {part: [i for i in full[part] if i.split("/")[0] in held_out] for part in full}
    stored = load_split(args.split)
    assert sorted(stored["classes"]) == seen, "the split is not of the 20 seen classes"
    seen_split = {part: list(stored[part]) for part in ("train", "test")}
    print(
        f"held out: {len(held['train'])} database, {len(held['test'])} queries; "
        f"seen: {len(seen_split['train'])} database, {len(seen_split['test'])} queries"
    )
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["cpu"] = cpu_line()
    models = [(*spec.split("=", 1), False) for spec in args.model]
    if args.frozen:
        models.append(("imagenet-frozen", None, False))
    models += [(*spec.split("=", 1), True) for spec in args.full]
    own = {part: [i for i in full[part] if i.split("/")[0] in seen] for part in full}
    cache = FeatureCache(args.cache)
    feature_kinds = dict(spec.split("=", 1) for spec in args.features)
    models += [(name, None, False) for name in feature_kinds]
    for name, path, trained_on_all in models:
        if name in results and name != "cpu":
            print(f"{name}: kept from {args.out}")
            continue
        if name in feature_kinds:
            vectors: Vectors = partial(cache.vectors, feature_kinds[name])
        elif path is None:
            settings = Settings(data_dir=str(args.data), image_size=args.image_size)
            vectors = partial(embed, frozen_embedder(settings, seen))
        else:
            vectors = partial(embed, open_embedder(Path(path)))
        if trained_on_all:
            results[name] = evaluate(vectors, args.data, own, None, factors)
        else:
            results[name] = evaluate(vectors, args.data, seen_split, held, factors)
        if name in feature_kinds:
            results[name]["features"] = feature_kinds[name]
            results[name]["gflops_per_tile"] = cache.gflops(feature_kinds[name])
        args.out.write_text(json.dumps(results, indent=1))
        print(name, json.dumps(results[name]))
    print(
        f"{'model':<18} {'held-out kNN@10':>15} {'mAP@20':>7} {'seen kNN@10':>11} "
        f"{'2x':>6} {'4x':>6} {'loss 2x':>7} {'loss 4x':>7}"
    )
    nan = {"knn@10": float("nan"), "map@20": float("nan")}
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        held_r = r.get("held_out", nan)
        print(
            f"{name:<18} {held_r['knn@10']:15.2f} {held_r['map@20']:7.2f} "
            f"{r.get('seen_1x', nan)['knn@10']:11.2f} {r.get('seen_2x', nan)['knn@10']:6.2f} "
            f"{r.get('seen_4x', nan)['knn@10']:6.2f} {r.get('loss_2x', float('nan')):7.2f} "
            f"{r.get('loss_4x', float('nan')):7.2f}"
        )


if __name__ == "__main__":
    main()
