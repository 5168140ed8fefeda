"""Figures for ``aid_table.py``: of an evaluated model, a 2-D projection of the test embeddings
coloured by class and a retrieval panel (query test scenes and their nearest training scenes,
framed green when the class is right and red when it is wrong); of the whole table, a bar chart
comparing the methods."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PROJECTIONS = ("tsne", "pca")
RIGHT_COLOUR = "#1a9850"
WRONG_COLOUR = "#d73027"


def top_k_neighbours(query_emb: np.ndarray, db_emb: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` database rows most cosine-similar to each query (unit rows), most
    similar first; equal similarities by increasing index."""
    similarity = np.asarray(query_emb, np.float32) @ np.asarray(db_emb, np.float32).T
    order = np.argsort(-similarity, axis=1, kind="stable")
    return order[:, :k]


def choose_queries(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` query rows from as many different classes as possible: classes drawn without
    repetition (seeded), one random member of each; sorted by class."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen_classes = np.sort(rng.choice(classes, size=min(count, len(classes)), replace=False))
    rows = [int(rng.choice(np.flatnonzero(labels == c))) for c in chosen_classes]
    return np.array(rows, dtype=np.int64)


def project_2d(embeddings: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """N x 2 coordinates of the embeddings by t-SNE (PCA-initialised) or PCA, seeded."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(embeddings) - 1) / 3)
        return TSNE(
            n_components=2, init="pca", perplexity=perplexity, random_state=seed
        ).fit_transform(np.asarray(embeddings, np.float32))
    raise ValueError(f"unknown projection {method!r} (choose one of: {', '.join(PROJECTIONS)})")


def class_styles(count: int) -> list[tuple[tuple[float, ...], str]]:
    """A distinct ``(colour, marker)`` for each of ``count`` classes: ten strong hues (tab20's
    dark shades), then their light shades, then tab20b's, each block of ten with its own
    marker."""
    from matplotlib import colormaps

    tab20, tab20b = colormaps["tab20"].colors, colormaps["tab20b"].colors
    colours = list(tab20[0::2]) + list(tab20[1::2]) + list(tab20b[0::2]) + list(tab20b[1::2])
    markers = ("o", "s", "^", "D")
    return [(colours[i % len(colours)], markers[(i // 10) % len(markers)]) for i in range(count)]


def _save(figure, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    figure.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def plot_projection(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
    path: Path,
) -> None:
    """Scatter of the 2-D points coloured by class, legend beside; written atomically."""
    from matplotlib.figure import Figure

    styles = class_styles(len(class_names))
    figure = Figure(figsize=(11, 8), layout="constrained")
    axes = figure.add_subplot()
    for index, name in enumerate(class_names):
        members = labels == index
        if members.any():
            colour, marker = styles[index]
            axes.scatter(*points[members].T, s=9, color=colour, marker=marker, label=name)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    figure.legend(loc="outside right center", fontsize=7, markerscale=2.5, frameon=False)
    _save(figure, path)


def plot_retrieval(
    query_images: list[np.ndarray],
    query_labels: Sequence[int],
    result_images: list[list[np.ndarray]],
    result_labels: Sequence[Sequence[int]],
    class_names: Sequence[str],
    title: str,
    path: Path,
) -> None:
    """One row per query: the query scene, then its results framed green (same class as the
    query) or red (another class), each captioned with its class; written atomically."""
    from matplotlib.figure import Figure

    rows, k = len(query_images), max((len(r) for r in result_images), default=0)
    figure = Figure(figsize=(1.9 * (k + 1), 2.1 * rows + 0.4), layout="constrained")
    grid = figure.subplots(rows, k + 1, squeeze=False)
    for row in range(rows):
        query_axes = grid[row][0]
        query_axes.imshow(query_images[row])
        query_axes.set_title(f"query: {class_names[query_labels[row]]}", fontsize=8)
        for column in range(1, k + 1):
            axes = grid[row][column]
            if column - 1 >= len(result_images[row]):
                axes.axis("off")
                continue
            label = result_labels[row][column - 1]
            axes.imshow(result_images[row][column - 1])
            right = label == query_labels[row]
            for spine in axes.spines.values():
                spine.set_edgecolor(RIGHT_COLOUR if right else WRONG_COLOUR)
                spine.set_linewidth(4)
            axes.set_title(f"{column}. {class_names[label]}", fontsize=7)
        for axes in grid[row]:
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle(title)
    _save(figure, path)


def plot_comparison(
    values: dict[str, dict[str, float]],
    metric_names: dict[str, str],
    title: str,
    path: Path,
) -> None:
    """Horizontal grouped bars: one group per method (``values``: label -> metric -> value in
    percent, top to bottom in the given order), one bar per metric of ``metric_names``
    (key -> shown name), each labelled with its value; written atomically."""
    from matplotlib.figure import Figure

    methods = list(values)
    keys = list(metric_names)
    height = 0.8 / len(keys)
    figure = Figure(figsize=(10, 0.9 + 0.25 * len(methods) * len(keys)), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(methods))[::-1]
    for index, key in enumerate(keys):
        offsets = positions + (len(keys) / 2 - index - 0.5) * height
        shown = [values[m].get(key, np.nan) for m in methods]
        bars = axes.barh(offsets, shown, height=height, label=metric_names[key])
        axes.bar_label(bars, labels=[f"{v:.1f}" for v in shown], fontsize=7, padding=2)
    axes.set_yticks(positions, methods)
    low = min(v for row in values.values() for k, v in row.items() if k in metric_names)
    axes.set_xlim(max(0.0, 10 * np.floor(low / 10) - 10), 101)
    axes.set_xlabel("%")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    _save(figure, path)
