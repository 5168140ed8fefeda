"""Embedding metrics against hand-worked cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snca_cli.runtime import metrics
from snca_cli.runtime.metrics import (
    clustering_accuracy,
    clustering_metrics,
    confusion_matrix,
    evaluate_embeddings,
    knn_accuracy,
    knn_predict,
    per_class_accuracy,
    plot_confusion_matrix,
    retrieval_metrics,
)


def at_angles(degrees: list[float]) -> np.ndarray:
    """Unit vectors in the plane at the given angles: cosine similarity = cos(angle difference)."""
    radians = np.radians(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def with_cosines(cosines: list[float], signs: list[int]) -> np.ndarray:
    """Unit vectors whose similarity to (1, 0) is each given cosine."""
    return np.array(
        [[c, s * math.sqrt(1 - c * c)] for c, s in zip(cosines, signs, strict=True)],
        dtype=np.float32,
    )


QUERY = np.array([[1.0, 0.0]], dtype=np.float32)


def test_weighted_vote_two_farther_neighbours_beat_one_close() -> None:
    # similarities 0.90 (class 0), 0.88 and 0.88 (class 1); weights exp(s / 0.05):
    # class 0: exp(0) = 1, class 1: 2 exp(-0.02 / 0.05) = 2 exp(-0.4) = 1.3406 -> class 1
    db = with_cosines([0.90, 0.88, 0.88], [1, 1, -1])
    labels = np.array([0, 1, 1])
    assert knn_predict(QUERY, db, labels, k=1, num_classes=2).tolist() == [0]
    assert knn_predict(QUERY, db, labels, k=3, num_classes=2).tolist() == [1]


def test_weighted_vote_one_close_neighbour_beats_a_majority() -> None:
    # similarities 1.0 (class 0), 0.8 and 0.8 (class 1): class 0: 1, class 1: 2 exp(-4) = 0.0366
    # a plain majority vote would say class 1; the similarity-weighted vote says class 0
    db = with_cosines([1.0, 0.8, 0.8], [1, 1, -1])
    labels = np.array([0, 1, 1])
    assert knn_predict(QUERY, db, labels, k=3, num_classes=2).tolist() == [0]


def test_ties_go_to_the_lower_database_index_then_the_lower_class() -> None:
    # both items at similarity 0: k=1 takes database item 0 (class 1); k=2 has equal votes for
    # classes 0 and 1 and takes class 0
    db = np.array([[0.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    labels = np.array([1, 0])
    assert knn_predict(QUERY, db, labels, k=1, num_classes=2).tolist() == [1]
    assert knn_predict(QUERY, db, labels, k=2, num_classes=2).tolist() == [0]


def test_k_larger_than_the_database_uses_all_of_it() -> None:
    db = with_cosines([0.90, 0.88, 0.88], [1, 1, -1])
    assert knn_predict(QUERY, db, np.array([0, 1, 1]), k=50, num_classes=2).tolist() == [1]


def test_knn_accuracy_counts_correct_queries_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # 5 queries scored 2 at a time; queries at 0, 5, 85, 95, 50 degrees, database at 0 (class 0)
    # and 90 (class 1): predictions 0, 0, 1, 1, 1; labels 0, 0, 1, 0, 1 -> 4 of 5 right
    monkeypatch.setattr(metrics, "QUERY_CHUNK", 2)
    queries = at_angles([0, 5, 85, 95, 50])
    db = at_angles([0, 90])
    predicted = knn_predict(queries, db, np.array([0, 1]), k=1, num_classes=2)
    assert predicted.tolist() == [0, 0, 1, 1, 1]
    accuracy = knn_accuracy(queries, np.array([0, 0, 1, 0, 1]), db, np.array([0, 1]), 1, 2)
    assert accuracy == pytest.approx(4 / 5)


def test_retrieval_metrics_hand_worked() -> None:
    # database at 0, 10, 20, 30, 40 degrees with labels 0, 1, 0, 1, 0
    # AP@K divides by the relevant items among the top K (H_K)
    # query A at 0 degrees, label 0: ranking 0,10,20,30,40 -> rel 1,0,1,0,1
    #   AP@2 = (1/1)(1) = 1; AP@3 = (1/2)(1 + 2/3) = 5/6; AP@5 = (1/3)(1 + 2/3 + 3/5) = 34/45
    #   P@1 = 1, P@2 = 1/2, P@4 = 2/4
    # query B at 40 degrees, label 1: ranking 40,30,20,10,0 -> rel 0,1,0,1,0
    #   AP@2 = (1/1)(1/2) = 0.5; AP@3 = (1/1)(1/2) = 0.5; AP@5 = (1/2)(1/2 + 2/4) = 0.5
    #   P@1 = 0, P@2 = 1/2, P@4 = 2/4
    db = at_angles([0, 10, 20, 30, 40])
    db_labels = np.array([0, 1, 0, 1, 0])
    queries = at_angles([0, 40])
    result = retrieval_metrics(
        queries, np.array([0, 1]), db, db_labels, ks_map=(2, 3, 5), ks_precision=(1, 2, 4)
    )
    assert result == pytest.approx(
        {
            "map@2": (1 + 0.5) / 2,
            "map@3": (5 / 6 + 0.5) / 2,
            "map@5": (34 / 45 + 0.5) / 2,
            "p@1": 0.5,
            "p@2": 0.5,
            "p@4": 0.5,
        }
    )


def test_average_precision_is_zero_without_relevant_items() -> None:
    result = retrieval_metrics(
        at_angles([0]), np.array([2]), at_angles([0, 10]), np.array([0, 1]), (2,), (1,)
    )
    assert result == {"map@2": 0.0, "p@1": 0.0}


def test_clustering_accuracy_uses_the_best_one_to_one_mapping() -> None:
    # clusters 1 -> class 0 (2 right) and 0 -> class 1 (3 right): 5 of 6
    truth = np.array([0, 0, 0, 1, 1, 1])
    assert clustering_accuracy(truth, np.array([1, 1, 0, 0, 0, 0])) == pytest.approx(5 / 6)
    assert clustering_accuracy(truth, np.array([1, 1, 1, 0, 0, 0])) == 1.0


def test_clustering_metrics_on_separable_and_permuted_labels() -> None:
    rng = np.random.default_rng(0)
    centres = at_angles([0, 120, 240])
    labels = np.repeat([0, 1, 2], 20)
    points = centres[labels] + rng.normal(0, 0.01, (60, 2))
    assert clustering_metrics(points, labels) == pytest.approx(
        {"nmi": 1.0, "clustering_accuracy": 1.0}
    )
    permuted = np.array([2, 0, 1])[labels]
    assert clustering_metrics(points, permuted) == pytest.approx(
        {"nmi": 1.0, "clustering_accuracy": 1.0}
    )
    # labels unrelated to the geometry: half of each cluster carries each of two labels
    mixed = np.tile([0, 1], 30)
    scores = clustering_metrics(points, mixed)
    assert scores["nmi"] < 0.05
    assert scores["clustering_accuracy"] == pytest.approx(0.5, abs=0.05)


def test_confusion_matrix_and_per_class_accuracy() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert per_class_accuracy(matrix) == [0.5, pytest.approx(2 / 3), None]


def test_evaluate_embeddings_report(tmp_path: Path) -> None:
    # classes at 0, 120 and 240 degrees; query 5 (class 2) sits at 60 degrees, between class 0
    # and class 1, nearer class 0's database items (at 0 and 10 degrees) than class 1's (120, 130)
    db = at_angles([0, 10, 120, 130, 240, 250])
    db_labels = np.array([0, 0, 1, 1, 2, 2])
    queries = at_angles([5, 6, 125, 126, 245, 55])
    query_labels = np.array([0, 0, 1, 1, 2, 2])
    report = evaluate_embeddings(queries, query_labels, db, db_labels, ["a", "b", "c"])
    json.dumps(report)
    assert report["metrics"]["knn@1"] == pytest.approx(5 / 6)
    assert report["metrics"]["knn@5"] == pytest.approx(5 / 6)
    # P@1: 5 of 6 nearest items share the query's label
    assert report["metrics"]["p@1"] == pytest.approx(5 / 6)
    # P@10 looks at all 6 items: 2 relevant each -> 2/10
    assert report["metrics"]["p@10"] == pytest.approx(0.2)
    # AP@20 (2 relevant in the top 20): 1 for the five well-placed queries; query 5's ranking
    # at 55 degrees is 10, 0, 120, 130, 250, 240 (degrees) -> relevant at ranks 5 and 6:
    # (1/2)(1/5 + 2/6)
    assert report["metrics"]["map@20"] == pytest.approx((5 + (1 / 5 + 2 / 6) / 2) / 6)
    assert report["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [1, 0, 1]]
    assert report["per_class_accuracy"] == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert report["num_queries"] == 6 and report["num_database"] == 6

    png = tmp_path / "confusion.png"
    plot_confusion_matrix(np.array(report["confusion_matrix"]), report["class_names"], png)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width > 200 and image.height > 200
