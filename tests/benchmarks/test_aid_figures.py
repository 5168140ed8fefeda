"""The figures of benchmarks/aid_table.py: neighbours, query choice, projection, panels."""

from __future__ import annotations

import numpy as np
import pytest
from aid_figures import (
    RIGHT_COLOUR,
    WRONG_COLOUR,
    choose_queries,
    class_styles,
    plot_comparison,
    plot_projection,
    plot_retrieval,
    project_2d,
    top_k_neighbours,
)
from PIL import Image


def test_top_k_neighbours_by_cosine_with_ties_by_index():
    db = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    # query 0: similarities 1, 0, 1, 0.6 -> rows 0 and 2 (tie, by index), then 3
    # query 1: similarities 0, 1, 0, 0.8 -> row 1, row 3, then rows 0 and 2 tie -> 0
    assert top_k_neighbours(query, db, 3).tolist() == [[0, 2, 3], [1, 3, 0]]


def test_queries_come_from_different_classes():
    labels = np.repeat(np.arange(5), 4)
    rows = choose_queries(labels, 3, seed=1)
    assert len(rows) == 3 and len(set(labels[rows])) == 3
    assert list(labels[rows]) == sorted(labels[rows])
    assert rows.tolist() == choose_queries(labels, 3, seed=1).tolist()
    assert sorted(labels[choose_queries(labels, 9)]) == [0, 1, 2, 3, 4]  # at most one per class


def test_pca_projection_keeps_the_main_axis():
    points = np.zeros((6, 4))
    points[:, 2] = np.arange(6)  # all the variance along one axis
    projected = project_2d(points, "pca")
    assert projected.shape == (6, 2)
    np.testing.assert_allclose(np.abs(np.diff(projected[:, 0])), np.ones(5), atol=1e-9)
    np.testing.assert_allclose(projected[:, 1], np.zeros(6), atol=1e-9)


def test_tsne_projection_shape_and_unknown_method():
    rng = np.random.default_rng(0)
    assert project_2d(rng.normal(size=(12, 5)), "tsne").shape == (12, 2)
    with pytest.raises(ValueError, match="unknown projection"):
        project_2d(np.zeros((3, 2)), "umap")


def test_thirty_classes_get_thirty_distinct_styles():
    styles = class_styles(30)
    assert len(set((tuple(colour), marker) for colour, marker in styles)) == 30


def test_figures_are_written(tmp_path):
    labels = np.array([0, 0, 1, 1])
    plot_projection(
        np.random.default_rng(0).normal(size=(4, 2)), labels, ["a", "b"], "t", tmp_path / "p.png"
    )
    scene = np.full((16, 16, 3), 200, np.uint8)
    plot_retrieval(
        [scene, scene],
        [0, 1],
        [[scene, scene], [scene]],
        [[0, 1], [1]],
        ["a", "b"],
        "t",
        tmp_path / "r.png",
    )
    for name in ("p.png", "r.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width > 100
    with Image.open(tmp_path / "r.png") as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    for colour in (RIGHT_COLOUR, WRONG_COLOUR):  # both frames are drawn
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert (np.abs(pixels.astype(int) - rgb).max(axis=1) <= 2).sum() > 50
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_comparison_chart_is_written(tmp_path):
    values = {"SNCA+CE": {"knn@10": 95.0, "map@20": 94.0}, "floor": {"knn@10": 85.0, "map@20": 77}}
    plot_comparison(values, {"knn@10": "kNN@10", "map@20": "mAP@20"}, "t", tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as image:
        assert image.format == "PNG" and image.width > 500
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    # matplotlib's first two colours (C0 blue, C1 orange) fill the bars
    for rgb in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels.astype(int) - rgb).max(axis=1) <= 2).sum() > 500
    assert not list(tmp_path.glob(".*"))
