"""Adapting a model to labelled examples (snca_cli.tasks.adapt): the written ONNX model's head is
the fitted one, its embedding the base model's, tiles unlike every label come out ``unknown``,
indexes of the base model stay searchable; and the real Landsat scene, labelled on the map.

Painted rasters and the band-mean model: a tile's embedding is its normalised colour.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pyogrio
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.contract.class_colours import UNKNOWN_COLOUR, class_colours
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_graph import load_snca_onnx, set_metadata
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.scene_images import make_split, save_split, scan_scene_folder
from snca_cli.tasks.adapt import AdaptConfig, adapt_model, fit_head
from snca_cli.tasks.classify import classify_raster
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.labels import label_tiles, read_labels
from tests.helpers.gpkg import layer_styles
from tests.helpers.index_data import TILE
from tests.helpers.labels import (
    LANDSAT_PLACES,
    landsat_points_file,
    tile_boxes_file,
    tile_points_file,
)
from tests.helpers.rasters import painted_raster

RED, GREEN, BLUE = (200, 30, 30), (30, 200, 40), (30, 40, 210)
#: 3 x 4 tiles; the labels name the reds and greens of rows 0-1; row 2 is unlabelled.
PAINT = np.array(
    [
        [RED, (190, 40, 20), (210, 20, 40), GREEN],
        [(40, 190, 30), (20, 210, 40), (30, 180, 20), (200, 40, 30)],
        [BLUE, (195, 35, 25), (35, 205, 35), (30, 30, 200)],
    ],
    dtype=np.uint8,
)
LABELS = {"red": [(0, 0), (0, 1), (0, 2), (1, 3)], "green": [(0, 3), (1, 0), (1, 1), (1, 2)]}
runner = CliRunner()


@pytest.fixture
def painted(tmp_path: Path) -> Path:
    return painted_raster(tmp_path / "painted.tif", PAINT, TILE)


@pytest.fixture
def adapted(tmp_path: Path, model: OnnxModel, painted: Path) -> Path:
    """The model adapted to :data:`LABELS` over the painted raster."""
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS)
    config = AdaptConfig(tmp_path / "adapted.onnx", model.path, [painted], labels, "cover")
    return adapt_model(config).model


def test_fit_head_is_the_softmax_the_written_model_computes(
    tmp_path: Path, model: OnnxModel, painted: Path
) -> None:
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS)
    report = adapt_model(
        AdaptConfig(tmp_path / "adapted.onnx", model.path, [painted], labels, "cover")
    )
    adapted = OnnxModel(report.model)
    assert adapted.metadata.class_names == ["green", "red"]
    assert report.counts == {"green": 4, "red": 4}
    assert report.head.cv_accuracy == 1.0 and report.head.folds == 4
    with RasterTiling.open(painted, model.metadata) as tiling:
        batch, _ = tiling.read(list(tiling.tiles()))
    base_out, out = model.run(batch), adapted.run(batch)
    np.testing.assert_array_equal(out.embedding, base_out.embedding)
    np.testing.assert_allclose(
        out.probabilities, report.head.probabilities(base_out.embedding), atol=1e-5
    )
    # the threshold is the 5 % quantile of held-out similarities: every labelled tile passes
    rule = adapted.metadata.open_set
    assert rule is not None and 0.9 < rule.threshold < 1.0
    card = report.card.read_text()
    assert "file `labels.geojson`, field `cover`" in card and "| red | 4 |" in card
    assert json.loads(report.report_json.read_text())["labels"]["counts"] == report.counts
    assert report.confusion_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classify_with_the_adapted_model_writes_unknown_for_unlike_tiles(
    tmp_path: Path, model: OnnxModel, painted: Path, adapted: Path
) -> None:
    summary = classify_raster(painted, OnnxModel(adapted), tmp_path / "classes.gpkg")
    table = pyogrio.read_dataframe(tmp_path / "classes.gpkg", layer=0)
    by_cell = dict(
        zip(zip(table["row"], table["col"], strict=True), table["class_name"], strict=True)
    )
    for name, cells in LABELS.items():
        assert all(by_cell[cell] == name for cell in cells)
    # row 2: blue tiles look like no label; the red and green ones keep their classes
    assert [by_cell[(2, col)] for col in range(4)] == ["unknown", "red", "green", "unknown"]
    assert summary.class_tiles == {"green": 5, "red": 5, "unknown": 2}
    assert set(table["class_id"][table["class_name"] == "unknown"]) == {2}
    assert (table["similarity"][table["class_name"] == "unknown"] < 0.9).all()
    # the threshold given on the command line wins: -1 keeps every tile's class
    kept = classify_raster(
        painted, OnnxModel(adapted), tmp_path / "all.gpkg", unknown_threshold=-1.0
    )
    assert kept.class_tiles["unknown"] == 0
    with pytest.raises(SncaError, match="the model has no unknown rule"):
        classify_raster(painted, model, tmp_path / "x.gpkg", unknown_threshold=0.5)


def test_the_adapted_models_colours_are_in_its_metadata_and_editable(
    tmp_path: Path, painted: Path, adapted: Path
) -> None:
    graph, metadata = load_snca_onnx(adapted)
    assert metadata.class_colours == class_colours(["green", "red"])
    metadata.class_colours["red"] = "#123456"  # what a user edits
    set_metadata(graph, metadata, {})
    onnx.save(graph, str(adapted))
    summary = classify_raster(painted, OnnxModel(adapted), tmp_path / "classes.gpkg")
    assert summary.class_colours == {
        "green": metadata.class_colours["green"],
        "red": "#123456",
        "unknown": UNKNOWN_COLOUR,
    }
    (style,) = layer_styles(tmp_path / "classes.gpkg")
    assert "18,52,86,255" in style["styleQML"]  # #123456 as QGIS writes it


def test_an_index_of_the_base_model_is_searched_with_the_adapted_one(
    tmp_path: Path, model: OnnxModel, painted: Path, adapted: Path
) -> None:
    adapted_model = OnnxModel(adapted)
    build_index([painted], model, tmp_path / "idx")
    from PIL import Image

    Image.fromarray(np.tile(np.array(BLUE, np.uint8), (TILE, TILE, 1))).save(tmp_path / "q.png")
    with TileIndex.open(tmp_path / "idx") as index:
        result = index.search_image(tmp_path / "q.png", adapted_model, k=2)
    assert {(h.tile.row, h.tile.col) for h in result.hits} == {(2, 0), (2, 3)}
    # adding tiles needs the index's own classes: the adapted model's would not fit
    with pytest.raises(SncaError, match="predicts other classes than index"):
        add_to_index(
            tmp_path / "idx", [painted_raster(tmp_path / "b.tif", PAINT, TILE)], adapted_model
        )


def test_adapting_from_an_image_folder_then_evaluating(
    tmp_path: Path, model: OnnxModel, scenes: Path
) -> None:
    result = runner.invoke(
        app,
        ["adapt", "--images", str(scenes), "-m", str(model.path), "-o", str(tmp_path / "m.onnx")],
    )
    assert result.exit_code == 0, result.output
    assert "cross-validated accuracy" in result.output
    adapted = OnnxModel(tmp_path / "m.onnx")
    assert adapted.metadata.class_names == sorted(p.name for p in scenes.iterdir())
    folder = scan_scene_folder(scenes)
    save_split(tmp_path / "split.json", folder, make_split(folder, seed=0), seed=0)
    evaluated = runner.invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "m.onnx"),
            str(scenes),
            "--split",
            str(tmp_path / "split.json"),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "m-eval" / "metrics.json").read_text())
    assert metrics["metrics"]["classifier"] > 0.5  # the adapted head's accuracy


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--labels", "L", "--field", "cover"], "give the rasters the labels lie on"),
        (["R", "--field", "cover"], "--labels FILE and --field NAME are needed"),
        (["R", "--labels", "L", "--field", "nope"], "has no field 'nope' (fields: cover)"),
        (["R", "--labels", "L", "--field", "cover", "--folds", "1"], "--folds must be at least 2"),
        (
            ["R", "--labels", "L", "--field", "cover", "--head-input", "x"],
            "the head reads auto, features, stages, embedding, not 'x'",
        ),
    ],
)
def test_cli_adapt_errors_are_one_line(
    tmp_path: Path, model: OnnxModel, painted: Path, arguments: list[str], message: str
) -> None:
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS)
    args = [str(painted) if a == "R" else str(labels) if a == "L" else a for a in arguments]
    result = runner.invoke(
        app, ["adapt", *args, "-m", str(model.path), "-o", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_one_class_is_refused_and_a_single_example_warned(
    tmp_path: Path, model: OnnxModel, painted: Path
) -> None:
    one = tile_points_file(tmp_path / "one.geojson", {"red": LABELS["red"]})
    with pytest.raises(SncaError, match="at least two classes"):
        adapt_model(AdaptConfig(tmp_path / "m.onnx", model.path, [painted], one, "cover"))
    few = tile_points_file(tmp_path / "few.geojson", {"red": LABELS["red"], "green": [(0, 3)]})
    report = adapt_model(AdaptConfig(tmp_path / "m.onnx", model.path, [painted], few, "cover"))
    assert report.warnings == [
        "class 'green' has a single labelled tile: add more for a reliable head"
    ]
    assert report.head.cv_accuracy is None


def test_fit_head_cross_validates_by_hand_checkable_folds() -> None:
    embeddings = np.array([[1, 0], [0.9, 0.1], [0.95, 0.05], [0, 1], [0.1, 0.9], [0.05, 0.95]])
    head = fit_head(embeddings, np.array([0, 0, 0, 1, 1, 1]), ["a", "b"], folds=3)
    assert head.folds == 3 and head.cv_accuracy == 1.0
    assert head.confusion.tolist() == [[3, 0], [0, 3]]
    assert head.probabilities(np.array([[1.0, 0.0]]))[0, 0] > 0.5


@pytest.mark.shared_data
@pytest.mark.slow
def test_labels_on_the_landsat_scene_make_a_model_that_knows_clouds_it_never_saw(
    tmp_path: Path, landsat_rgb: Path
) -> None:
    """Points on deep water, shallow water and land of the real 300 m Landsat scene, tiled at
    100 m (15 km tiles); nothing labels the cloud bank in the north (rows 1-4, cols 4-9)."""
    labels = landsat_points_file(tmp_path / "labels.geojson", landsat_rgb, LANDSAT_PLACES)
    out = tmp_path / "landsat.onnx"
    result = runner.invoke(
        app,
        ["adapt", str(landsat_rgb), "--labels", str(labels), "--field", "kind", "-o", str(out),
         "--resolution", "100"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the labels' 100 m is the adapted model's resolution: classify tiles as adapt did
    adapted = OnnxModel(out)
    assert adapted.metadata.resolution_m == 100.0
    assert adapted.metadata.training_resolution_m == (100.0, 100.0)
    classified = runner.invoke(
        app, ["classify", str(landsat_rgb), "-m", str(out), "-o", str(tmp_path / "c.gpkg")]
    )
    assert classified.exit_code == 0, classified.output
    assert "far coarser" not in classified.output  # no resolution warning at its own 100 m
    table = pyogrio.read_dataframe(tmp_path / "c.gpkg")
    classes = dict(
        zip(zip(table["row"], table["col"], strict=True), table["class_name"], strict=True)
    )
    options = TilingOptions(resolution=100.0)
    with RasterTiling.open(landsat_rgb, adapted.metadata, options) as tiling:
        labelled = label_tiles(read_labels(labels, "kind"), tiling).tiles
    right = [classes.get((t.tile.row, t.tile.col)) == t.class_name for t in labelled]
    assert sum(right) >= 0.8 * len(right)  # the labelled tiles keep their classes
    unknown = [cell for cell, name in classes.items() if name == "unknown"]
    in_clouds = [(r, c) for r, c in unknown if 1 <= r <= 4 and 4 <= c <= 9]
    assert len(unknown) >= 3 and len(in_clouds) >= 0.6 * len(unknown)


def test_the_shipped_models_head_reads_what_it_is_told(tmp_path: Path) -> None:
    """The written probabilities are the fitted head on the unit pooled backbone features,
    several-stage features or embedding, as told; the embedding is the base model's."""
    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.onnx_graph import load_snca_onnx, with_features_output

    painted = painted_raster(tmp_path / "painted.tif", PAINT, 150)  # the shipped model's tiles
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS, tile=150)
    base_path = default_model_path()
    graph, _ = load_snca_onnx(base_path)
    exposed = OnnxModel(base_path, graph=with_features_output(graph).SerializeToString())
    with RasterTiling.open(painted, exposed.metadata) as tiling:
        batch, _ = tiling.read(list(tiling.tiles()))
    names = ["embedding", "features", "stages"]
    outputs = dict(zip(names, exposed.run_outputs(batch, names), strict=True))
    for head_input, width in (("features", 1280), ("stages", 1664), ("embedding", 128)):
        out = tmp_path / f"{head_input}.onnx"
        report = adapt_model(
            AdaptConfig(out, None, [painted], labels, "cover", head_input=head_input)
        )
        assert report.head.head_input == head_input and report.head.weights.shape == (2, width)
        assert list(report.head.candidates) == [head_input]
        adapted = OnnxModel(out).run(batch)
        np.testing.assert_array_equal(adapted.embedding, outputs["embedding"])
        np.testing.assert_allclose(
            adapted.probabilities, report.head.probabilities(outputs[head_input]), atol=1e-5
        )
        card = json.loads(report.card_json.read_text())
        assert card["head"]["input"] == head_input
    with pytest.raises(SncaError, match="the head reads auto, features, stages, embedding, not"):
        adapt_model(AdaptConfig(tmp_path / "x.onnx", None, [painted], labels, "cover",
                                head_input="pixels"))  # fmt: skip


def test_by_default_cross_validation_chooses_the_head_input(tmp_path: Path) -> None:
    """``auto`` scores a head on each input the model offers and keeps the most accurate (the
    first of equals: pooled features, stages, embedding), and says so in the card."""
    from snca_cli.runtime.default_model import default_model_path

    painted = painted_raster(tmp_path / "painted.tif", PAINT, 150)
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS, tile=150)
    report = adapt_model(AdaptConfig(tmp_path / "auto.onnx", None, [painted], labels, "cover"))
    scores = report.head.candidates
    assert list(scores) == ["features", "stages", "embedding"]
    best = max(scores.values())
    assert report.head.head_input == next(k for k, v in scores.items() if v == best)
    assert report.head.cv_accuracy == best
    card = json.loads(report.card_json.read_text())
    assert card["head"]["inputs_cv_accuracy"] == scores
    assert "head input chosen by cross-validated accuracy: features" in report.card.read_text()
    assert "(4 folds), head on the pooled backbone features;" in report.summary_line()
    assert default_model_path().exists()


def test_the_input_that_tells_the_classes_apart_wins_the_cross_validation() -> None:
    # three classes, 8 examples each: "noise" holds nothing of the class, "signal" a clear
    # direction per class; listed second, the signal still wins, and its head is the one kept
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), 8)
    noise = rng.normal(size=(24, 16))
    signal = np.eye(16)[labels * 5] + 0.1 * rng.normal(size=(24, 16))
    embeddings = rng.normal(size=(24, 4))
    head = fit_head(
        embeddings, labels, ["a", "b", "c"], folds=4, inputs={"features": noise, "stages": signal}
    )
    assert head.head_input == "stages"
    assert head.candidates["stages"] == 1.0 and head.candidates["features"] < 0.7
    assert head.cv_accuracy == 1.0
    right = head.probabilities(signal).argmax(axis=1) == labels
    assert right.all()


def test_a_head_input_the_model_lacks_is_one_line(
    tmp_path: Path, model: OnnxModel, painted: Path
) -> None:
    labels = tile_points_file(tmp_path / "labels.geojson", LABELS)
    config = AdaptConfig(
        tmp_path / "x.onnx", model.path, [painted], labels, "cover", head_input="stages"
    )
    with pytest.raises(SncaError, match="has no several-stage backbone features .*auto"):
        adapt_model(config)
    # auto on a model without backbone features: the embedding, the only input it offers
    report = adapt_model(dataclasses.replace(config, head_input="auto"))
    assert report.head.head_input == "embedding" and list(report.head.candidates) == ["embedding"]


def test_the_confusion_picture_of_many_classes_stays_small(tmp_path: Path) -> None:
    """200 classes: the PNG is bounded (once 4.5 GiB of memory and 106 s to draw)."""
    from PIL import Image

    from snca_cli.contract.open_set import OpenSetRule
    from snca_cli.tasks.adapt import MAX_CONFUSION_INCHES, AdaptedHead, plot_confusion

    classes = 200
    head = AdaptedHead(
        class_names=[f"class_{i}" for i in range(classes)],
        weights=np.zeros((classes, 4), np.float32),
        bias=np.zeros(classes, np.float32),
        rule=OpenSetRule(np.eye(classes, 4, dtype=np.float32), 0.5),
        folds=2,
        cv_accuracy=0.5,
        cv_predictions=np.zeros(classes, np.int64),
        confusion=np.eye(classes, dtype=np.int64),
    )
    plot_confusion(tmp_path / "confusion.png", head)
    with Image.open(tmp_path / "confusion.png") as image:
        assert max(image.size) <= MAX_CONFUSION_INCHES * 110


def test_cli_adapt_says_when_every_polygon_is_under_half_a_tile(
    tmp_path: Path, model: OnnxModel, painted: Path
) -> None:
    """Issue 28, item 14: this ended in "check that labels and rasters cover the same place"."""
    boxes = {"red": [(0.1, 0.1, 0.6, 0.6)], "green": [(3.5, 0.5, 4.0, 1.0)]}
    labels = tile_boxes_file(tmp_path / "small.geojson", boxes)
    args = [str(painted), "--labels", str(labels), "--field", "cover", "-m", str(model.path)]
    result = runner.invoke(app, ["adapt", *args, "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: no tile is left labelled by small.geojson on the 1 raster(s): 2 polygon(s) "
        "cover less than half of any tile (ignored; the largest covers 25.0 % of a tile, and a "
        "polygon labels the tiles at least half inside it)"
    ]
    assert not (tmp_path / "m.onnx").exists()
