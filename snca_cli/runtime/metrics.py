"""Embedding quality: weighted kNN classification, retrieval (mAP@K, P@K) and clustering metrics.

Numpy, scikit-learn and scipy only (no torch): the trainer's validation, ``snca evaluate`` on a
checkpoint and ``snca evaluate`` on an ONNX model all score embeddings with this module, so their
numbers are comparable. Embeddings are expected to be L2-normalised (rows of unit length), so the
dot product is the cosine similarity.

Neighbour order is deterministic: by decreasing similarity, equal similarities by increasing
database index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Temperature of the kNN vote weight ``exp(similarity / T)``: the temperature of the SNCA loss
#: (Wu et al., ECCV 2018), so the vote matches the neighbourhood the model was trained for.
KNN_TEMPERATURE = 0.05

#: Queries scored per block: bounds the similarity matrix to QUERY_CHUNK x database floats.
QUERY_CHUNK = 1024

KNN_KS = (1, 5, 10)
MAP_KS = (20, 50, 100)
PRECISION_KS = (1, 10)
#: The kNN vote behind the per-class accuracy and the confusion matrix.
REPORT_K = 10


def _similarity_chunks(
    query_emb: np.ndarray, db_emb: np.ndarray, k: int
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield ``(rows, neighbour indices, similarities)`` of the ``k`` nearest database items of
    each block of queries, nearest first (ties by database index)."""
    query = np.asarray(query_emb, dtype=np.float32)
    db = np.asarray(db_emb, dtype=np.float32)
    if query.ndim != 2 or db.ndim != 2 or query.shape[1] != db.shape[1]:
        raise ValueError(f"embedding shapes differ: queries {query.shape}, database {db.shape}")
    if len(db) == 0:
        raise ValueError("the database holds no embeddings")
    k = min(k, len(db))
    for start in range(0, len(query), QUERY_CHUNK):
        rows = slice(start, min(start + QUERY_CHUNK, len(query)))
        similarity = query[rows] @ db.T
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        yield rows, order, np.take_along_axis(similarity, order, axis=1)


def knn_predict(
    query_emb: np.ndarray,
    db_emb: np.ndarray,
    db_labels: np.ndarray,
    k: int,
    num_classes: int,
    temperature: float = KNN_TEMPERATURE,
) -> np.ndarray:
    """Class of each query by a similarity-weighted vote of its ``k`` nearest database items.

    Neighbour ``j`` of a query votes for its label with weight ``exp(s_j / temperature)``, ``s_j``
    its cosine similarity; the class with the largest total wins, equal totals going to the
    lowest class index. ``k`` larger than the database means the whole database.
    """
    labels = np.asarray(db_labels, dtype=np.int64)
    predictions = np.empty(len(query_emb), dtype=np.int64)
    for rows, neighbours, similarity in _similarity_chunks(query_emb, db_emb, k):
        # subtracting each row's best similarity keeps exp() finite; it scales a row's votes alike
        weights = np.exp((similarity - similarity[:, :1]).astype(np.float64) / temperature)
        votes = np.zeros((len(neighbours), num_classes), dtype=np.float64)
        np.add.at(votes, (np.arange(len(neighbours))[:, None], labels[neighbours]), weights)
        predictions[rows] = votes.argmax(axis=1)
    return predictions


def knn_accuracy(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    db_emb: np.ndarray,
    db_labels: np.ndarray,
    k: int,
    num_classes: int,
) -> float:
    """Fraction of queries whose :func:`knn_predict` class is their label."""
    predictions = knn_predict(query_emb, db_emb, db_labels, k, num_classes)
    return float(np.mean(predictions == np.asarray(query_labels)))


def retrieval_metrics(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    db_emb: np.ndarray,
    db_labels: np.ndarray,
    ks_map: Sequence[int] = MAP_KS,
    ks_precision: Sequence[int] = PRECISION_KS,
) -> dict[str, float]:
    """Mean over queries of AP@K (keys ``map@K``) and P@K (keys ``p@K``); a database item is
    relevant to a query when it has the query's label.

    With ``rel_i`` = 1 when the i-th nearest item is relevant, ``P@k = (1/k) sum_{i<=k} rel_i``
    and ``H_K = sum_{i<=K} rel_i`` the relevant items among the top K::

        AP@K = 1 / H_K * sum_{k<=K} P@k * rel_k     (0 when H_K = 0)

    This is the mAP@K of remote-sensing and hashing retrieval papers (the average precision of
    the ranked list cut at K, normalised by the relevant items it holds): it measures how early
    the relevant items come within the top K, while P@K measures how many there are.
    """
    query_labels = np.asarray(query_labels, dtype=np.int64)
    db_labels = np.asarray(db_labels, dtype=np.int64)
    depth = max([*ks_map, *ks_precision])
    totals = {f"map@{k}": 0.0 for k in ks_map} | {f"p@{k}": 0.0 for k in ks_precision}
    for rows, neighbours, _ in _similarity_chunks(query_emb, db_emb, depth):
        labels = query_labels[rows]
        relevant = (db_labels[neighbours] == labels[:, None]).astype(np.float64)
        hits = np.cumsum(relevant, axis=1)
        ranks = np.arange(1, relevant.shape[1] + 1)
        precision_at = hits / ranks
        for k in ks_map:
            gained = (precision_at[:, :k] * relevant[:, :k]).sum(axis=1)
            normaliser = hits[:, min(k, hits.shape[1]) - 1]
            totals[f"map@{k}"] += float(
                np.divide(gained, normaliser, out=np.zeros_like(gained), where=normaliser > 0).sum()
            )
        for k in ks_precision:
            totals[f"p@{k}"] += float((hits[:, min(k, hits.shape[1]) - 1] / k).sum())
    count = max(len(query_labels), 1)
    return {key: value / count for key, value in totals.items()}


def clustering_accuracy(true_labels: np.ndarray, cluster_labels: np.ndarray) -> float:
    """Accuracy of clusters under the one-to-one cluster -> class mapping that maximises it
    (Hungarian matching on the contingency table)."""
    from scipy.optimize import linear_sum_assignment

    true_labels = np.asarray(true_labels, dtype=np.int64)
    cluster_labels = np.asarray(cluster_labels, dtype=np.int64)
    size = int(max(true_labels.max(initial=0), cluster_labels.max(initial=0))) + 1
    contingency = np.zeros((size, size), dtype=np.int64)
    np.add.at(contingency, (cluster_labels, true_labels), 1)
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    return float(contingency[rows, cols].sum() / max(len(true_labels), 1))


def clustering_metrics(
    embeddings: np.ndarray, labels: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """k-means (k = number of classes present, 10 restarts, seeded) on the embeddings, scored by
    NMI against the labels and by :func:`clustering_accuracy`."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    labels = np.asarray(labels, dtype=np.int64)
    num_clusters = len(np.unique(labels))
    clusters = KMeans(n_clusters=num_clusters, n_init=10, random_state=seed).fit_predict(
        np.asarray(embeddings, dtype=np.float64)
    )
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "clustering_accuracy": clustering_accuracy(labels, clusters),
    }


def confusion_matrix(
    true_labels: np.ndarray, predicted: np.ndarray, num_classes: int
) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    flat = np.asarray(true_labels, dtype=np.int64) * num_classes + np.asarray(predicted)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(matrix: np.ndarray) -> list[float | None]:
    """Recall of each class from a confusion matrix; None for a class without samples."""
    totals = matrix.sum(axis=1)
    return [None if t == 0 else float(matrix[i, i] / t) for i, t in enumerate(totals)]


def evaluate_embeddings(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    db_emb: np.ndarray,
    db_labels: np.ndarray,
    class_names: Sequence[str],
    seed: int = 0,
) -> dict[str, Any]:
    """The full JSON-able report of test queries against a training database.

    ``metrics`` holds fractions in [0, 1]: ``knn@1/5/10`` (:func:`knn_accuracy`), ``map@20/50/100``
    and ``p@1/10`` (:func:`retrieval_metrics`), ``nmi`` and ``clustering_accuracy`` (k-means on
    the query embeddings, :func:`clustering_metrics`). ``per_class_accuracy`` and
    ``confusion_matrix`` come from the kNN@10 vote.
    """
    num_classes = len(class_names)
    query_labels = np.asarray(query_labels, dtype=np.int64)
    metrics: dict[str, float] = {}
    for k in KNN_KS:
        metrics[f"knn@{k}"] = knn_accuracy(
            query_emb, query_labels, db_emb, db_labels, k, num_classes
        )
    metrics |= retrieval_metrics(query_emb, query_labels, db_emb, db_labels)
    metrics |= clustering_metrics(query_emb, query_labels, seed=seed)
    predicted = knn_predict(query_emb, db_emb, db_labels, REPORT_K, num_classes)
    matrix = confusion_matrix(query_labels, predicted, num_classes)
    return {
        "metrics": metrics,
        "per_class_accuracy": dict(zip(class_names, per_class_accuracy(matrix), strict=True)),
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
        "num_queries": int(len(query_labels)),
        "num_database": int(len(db_labels)),
        "settings": {
            "similarity": "cosine",
            "knn_vote": f"exp(similarity / {KNN_TEMPERATURE})",
            "confusion_k": REPORT_K,
            "average_precision": "1/min(K, R) * sum_k P@k rel_k",
            "kmeans_seed": seed,
        },
    }


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: Path) -> None:
    """Save the confusion matrix as a PNG: colours = row-normalised rates, numbers = counts."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = max(4.0, 0.32 * len(class_names) + 2.5)
    figure = Figure(figsize=(size + 1.0, size), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, labels=list(class_names), rotation=90, fontsize=7)
    axes.set_yticks(ticks, labels=list(class_names), fontsize=7)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    for row, col in zip(*np.nonzero(matrix), strict=True):
        colour = "white" if rates[row, col] > 0.5 else "black"
        axes.text(
            col, row, str(matrix[row, col]), ha="center", va="center", fontsize=6, color=colour
        )
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of the true class")
    figure.savefig(path, dpi=120)
