"""The Processing algorithms run through processing.run (as batch mode and the modeler do)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsVectorLayer,
)

from tests.qgis.rasters import (  # noqa: E402
    CLASS_NAMES,
    TILE_COLOURS,
    TILE_SIZE,
    expected_band_mean,
    tile_bounds,
    write_tile_colours,
)

pytestmark = pytest.mark.qgis


#: The longest parameter description the Processing dialog shows unclipped (the rest of what a
#: parameter means goes to the algorithm's help).
MAX_DESCRIPTION = 45


def _run(algorithm: str, parameters: dict) -> dict:
    import processing

    return processing.run(algorithm, parameters, feedback=QgsProcessingFeedback())


def test_classify_raster_algorithm(provider, colour_raster, band_mean_model, tmp_path) -> None:
    output = tmp_path / "classes.gpkg"
    class_map = tmp_path / "classes.tif"
    results = _run(
        "snca:classifyraster",
        {
            "INPUT": str(colour_raster),
            "MODEL": str(band_mean_model),
            "BANDS": [3, 2, 1],
            "OVERLAP": 0,
            "TOP_K": 2,
            "OUTPUT": str(output),
            "CLASS_MAP": str(class_map),
        },
    )
    assert results["OUTPUT"] == str(output)
    assert results["TILES"] == 12
    assert results["CLASS_MAP"] == str(class_map) and class_map.is_file()
    layer = QgsVectorLayer(str(output), "classes", "ogr")
    assert layer.featureCount() == 12
    assert {"top2_name", "top2_prob"} <= set(layer.fields().names())
    reversed_colours = np.asarray(TILE_COLOURS)[:, :, ::-1]  # bands 3, 2, 1 feed the model
    for feature in layer.getFeatures():
        row, col = divmod(feature["tile_id"], 4)
        assert feature["class_name"] == CLASS_NAMES[int(np.argmax(reversed_colours[row, col]))]


def test_build_index_and_search_similar_algorithms(
    provider, colour_raster, band_mean_model, tmp_path
) -> None:
    index_dir = tmp_path / "index"
    results = _run(
        "snca:buildindex",
        {"INPUT": [str(colour_raster)], "MODEL": str(band_mean_model), "INDEX": str(index_dir)},
    )
    assert results == {"INDEX": str(index_dir), "COUNT": 12}
    assert json.loads((index_dir / "manifest.json").read_text())["index"]["count"] == 12

    minx, miny, maxx, maxy = tile_bounds(1, 1, TILE_SIZE)
    point = f"{(minx + maxx) / 2},{(miny + maxy) / 2} [EPSG:32633]"
    results = _run(
        "snca:searchsimilar",
        {
            "INDEX": str(index_dir),
            "POINT": point,
            "K": 3,
            "OUTPUT": "TEMPORARY_OUTPUT",
            "QUERY": "TEMPORARY_OUTPUT",
        },
    )
    hits = sorted(results["OUTPUT"].getFeatures(), key=lambda f: f["rank"])
    embedding, _ = expected_band_mean(TILE_COLOURS, classes=3)
    similarity = embedding @ embedding[5]
    expected = sorted((i for i in range(12) if i != 5), key=lambda i: (-similarity[i], i))[:3]
    assert [f["rank"] for f in hits] == [1, 2, 3]
    assert [f["tile_id"] for f in hits] == expected
    assert [f["similarity"] for f in hits] == pytest.approx(similarity[expected], abs=1e-5)
    assert results["OUTPUT"].crs().authid() == "EPSG:32633"
    (query,) = results["QUERY"].getFeatures()
    assert query["tile_id"] == 5

    second = tmp_path / "second.tif"
    second.write_bytes(colour_raster.read_bytes())
    results = _run(
        "snca:buildindex",
        {
            "INPUT": [str(second)],
            "MODEL": str(band_mean_model),
            "INDEX": str(index_dir),
            "APPEND": True,
        },
    )
    assert results["COUNT"] == 24

    results = _run(
        "snca:searchsimilar",
        {
            "INDEX": str(index_dir),
            "POINT": point,
            "K": 2,
            "CLASS": "blue",
            "EXACT": True,
            "OUTPUT": "TEMPORARY_OUTPUT",
        },
    )
    hits = sorted(results["OUTPUT"].getFeatures(), key=lambda f: f["rank"])
    # the same tile of the copy is identical (similarity 1), then the nearest blue tile
    # named as snca classify names them: tile 5 of the copy, tile 2 of the original
    assert [(f["tile_id"], Path(f["raster"]).name) for f in hits] == [
        (5, second.name),
        (2, colour_raster.name),
    ]
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-6)
    assert {f["class"] for f in hits} == {"blue"}


def test_algorithm_errors_are_one_line(provider, colour_raster, tmp_path) -> None:
    with pytest.raises(QgsProcessingException, match=r"model .*missing\.onnx does not exist"):
        _run(
            "snca:classifyraster",
            {
                "INPUT": str(colour_raster),
                "MODEL": str(tmp_path / "missing.onnx"),
                "OUTPUT": str(tmp_path / "out.gpkg"),
            },
        )


def test_outputs_loaded_by_processing_are_styled_by_class(
    provider, colour_raster, band_mean_model, project
) -> None:
    import processing

    results = processing.runAndLoadResults(
        "snca:classifyraster",
        {"INPUT": str(colour_raster), "MODEL": str(band_mean_model), "OUTPUT": "TEMPORARY_OUTPUT"},
    )
    assert "CLASS_MAP" not in results  # optional, not asked for
    (layer,) = project.mapLayers().values()
    assert layer.featureCount() == 12
    assert layer.renderer().classAttribute() == "class_name"
    assert [c.value() for c in layer.renderer().categories()] == CLASS_NAMES


def test_search_outputs_loaded_by_processing_are_styled_as_the_dock_styles_them(
    provider, colour_raster, band_mean_model, project, tmp_path
) -> None:
    import processing

    index_dir = tmp_path / "index"
    _run("snca:buildindex", {"INPUT": [str(colour_raster)], "MODEL": str(band_mean_model),
                             "INDEX": str(index_dir)})  # fmt: skip
    minx, miny, maxx, maxy = tile_bounds(1, 1, TILE_SIZE)
    results = processing.runAndLoadResults(
        "snca:searchsimilar",
        {
            "INDEX": str(index_dir),
            "POINT": f"{(minx + maxx) / 2},{(miny + maxy) / 2} [EPSG:32633]",
            "K": 3,
            "OUTPUT": "TEMPORARY_OUTPUT",
            "QUERY": "TEMPORARY_OUTPUT",
        },
    )
    algorithm = QgsApplication.processingRegistry().algorithmById("snca:searchsimilar")
    assert algorithm.parameterDefinition("QUERY").createByDefault()  # ticked in the dialog
    layers = {layer.id(): layer for layer in project.mapLayers().values()}
    similar, query = layers[results["OUTPUT"]], layers[results["QUERY"]]
    assert similar.featureCount() == 3 and query.featureCount() == 1

    renderer = similar.renderer()
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "similarity"
    assert [r.label() for r in renderer.ranges()] == [
        "< 0.5", "0.5 - 0.7", "0.7 - 0.8", "0.8 - 0.9", "0.9 - 1.0",
    ]  # fmt: skip
    assert renderer.orderByEnabled()  # rank 1 drawn last, on top
    assert similar.labelsEnabled()
    labels = similar.labeling().settings()
    assert labels.isExpression and labels.fieldName == "'#' || \"rank\""

    renderer = query.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "example"
    (feature,) = query.getFeatures()
    assert feature["example"] == "positive" and feature["tile_id"] == 5


def test_the_model_is_optional_and_descriptions_are_short(provider) -> None:
    registry = QgsApplication.processingRegistry()
    for algorithm_id in ("classifyraster", "buildindex", "adaptmodel"):
        model = registry.algorithmById(f"snca:{algorithm_id}").parameterDefinition("MODEL")
        assert model.flags() & QgsProcessingParameterDefinition.FlagOptional
        assert model.defaultValue() is None  # qgis_process ignores file defaults anyway
        assert model.description().endswith("ONNX model (empty: the shipped model)")
        help_text = registry.algorithmById(f"snca:{algorithm_id}").shortHelpString()
        assert "empty: the model shipped with the plugin" in help_text  # the detail goes here
    for algorithm in provider.algorithms():
        for parameter in algorithm.parameterDefinitions():
            assert len(parameter.description()) <= MAX_DESCRIPTION, parameter.description()


def test_without_a_model_the_shipped_model_classifies(provider, tmp_path) -> None:
    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.onnx_model import OnnxModel

    shipped = OnnxModel(default_model_path()).metadata
    raster = write_tile_colours(
        tmp_path / "scene.tif", [[(90, 120, 60), (200, 190, 170)]], shipped.tile_size, pixel=2.0
    )
    output = tmp_path / "tiles.gpkg"
    results = _run("snca:classifyraster", {"INPUT": str(raster), "OUTPUT": str(output)})
    assert results["TILES"] == 2
    classes = {f["class_name"] for f in QgsVectorLayer(str(output)).getFeatures()}
    assert classes and classes <= set(shipped.class_names)
