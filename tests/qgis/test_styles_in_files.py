"""The command line's outputs opened in QGIS on their own (no plugin): the classified tiles, the
class map and the similar tiles come up styled as the plugin styles them.

The colours, the legend of the classes present with their counts, the similarity ramp with its
rank labels and the query outlines travel inside the files (``layer_styles`` in the GeoPackages,
the class map's ``.aux.xml`` and ``.qml`` sidecars): QGIS applies them when it opens the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("qgis.core")

from qgis.core import QgsRasterLayer, QgsVectorLayer  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from snca_cli.cli import app  # noqa: E402
from snca_cli.contract.class_colours import class_colours  # noqa: E402
from snca_cli.runtime.styles import CLASS_LAYER_OPACITY  # noqa: E402
from snca_qgis.layers import query_renderer, rank_labels, similarity_renderer  # noqa: E402
from tests.helpers.onnx_models import make_band_mean_model  # noqa: E402
from tests.qgis.rasters import TILE_SIZE, write_tile_colours  # noqa: E402

pytestmark = pytest.mark.qgis

RED, GREEN = (200, 30, 30), (30, 200, 30)
#: 2 x 3 tiles, no blue one: the model's third class is absent from the outputs.
TILES = [[RED, GREEN, RED], [RED, RED, GREEN]]
#: The band-mean model's classes (brightest band): red tiles are Desert, green Forest, blue River.
NAMES = ["Desert", "Forest", "River"]

runner = CliRunner()


@pytest.fixture
def outputs(tmp_path: Path, qgis_app) -> Path:
    """``snca classify`` (with a class map) and ``snca search`` outputs, in ``tmp_path/out``."""
    model = make_band_mean_model(tmp_path / "model.onnx", tile_size=TILE_SIZE, class_names=NAMES)
    raster = write_tile_colours(tmp_path / "scene.tif", TILES, TILE_SIZE)
    out = tmp_path / "out"
    model_args = ["-m", str(model)]
    result = runner.invoke(
        app,
        ["classify", str(raster), *model_args, "-o", str(out / "tiles.gpkg"), "--class-map"]
        + [str(out / "tiles_classes.tif")],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["index", "build", str(raster), *model_args, "-o", str(out / "i")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["search", str(out / "i"), "--tile-id", "0", "--not-tile-id", "1", "-k", "3", "-o"]
        + [str(out / "similar.gpkg")],
    )
    assert result.exit_code == 0, result.output
    return out


def test_the_classified_tiles_open_categorised_by_class(outputs: Path) -> None:
    layer = QgsVectorLayer(str(outputs / "tiles.gpkg"), "tiles", "ogr")
    assert layer.isValid() and layer.featureCount() == 6
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "class_name"
    colours = class_colours(NAMES)
    assert [(c.value(), c.label(), c.symbol().color().name()) for c in renderer.categories()] == [
        ("Desert", "Desert (4)", colours["Desert"]),
        ("Forest", "Forest (2)", colours["Forest"]),
    ]
    assert layer.opacity() == pytest.approx(CLASS_LAYER_OPACITY)
    count, _, names, descriptions, _ = layer.listStylesInDatabase()
    assert (count, names) == (1, ["snca"])  # the style came from the file's layer_styles
    # the style table is QGIS's: not offered as a layer of its own
    assert [s.split("!!::!!")[1] for s in layer.dataProvider().subLayers()] == ["scene"]


def test_the_class_map_opens_paletted_with_its_sidecars(outputs: Path, tmp_path: Path) -> None:
    colours = class_colours(NAMES)
    layer = QgsRasterLayer(str(outputs / "tiles_classes.tif"), "class map")
    renderer = layer.renderer()
    assert renderer.type() == "paletted" and renderer.band() == 1 and renderer.alphaBand() == -1
    assert [(c.value, c.color.name(), c.label) for c in renderer.classes()] == [
        (0, colours["Desert"], "Desert (4)"),
        (1, colours["Forest"], "Forest (2)"),
    ]
    assert renderer.opacity() == pytest.approx(CLASS_LAYER_OPACITY)
    # GDAL's sidecar alone gives band 1 its palette and class names, but QGIS 3.22 draws a
    # two-band raster as an RGB composite: hence the .qml
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("tiles_classes.tif", "tiles_classes.tif.aux.xml"):
        shutil.copy(outputs / name, bare / name)
    plain = QgsRasterLayer(str(bare / "tiles_classes.tif"), "no qml")
    table = plain.dataProvider().colorTable(1)
    assert [(int(i.value), i.color.name(), i.label) for i in table] == [
        (i, colours[name], name) for i, name in enumerate(NAMES)
    ]
    assert plain.renderer().type() == "multibandcolor"


def symbol(item) -> tuple:
    """A category's or range's fill symbol: fill and outline colours, width and styles."""
    fill = item.symbol().symbolLayer(0)
    return (
        fill.color().name(QColor.HexArgb),
        fill.strokeColor().name(QColor.HexArgb),
        fill.strokeWidth(),
        fill.strokeStyle(),
        fill.brushStyle(),
    )


def test_the_similar_tiles_open_as_the_plugin_draws_them(outputs: Path) -> None:
    similar = QgsVectorLayer(f"{outputs / 'similar.gpkg'}|layername=similar_tiles", "s", "ogr")
    assert similar.isValid() and similar.featureCount() == 3
    renderer, plugin = similar.renderer(), similarity_renderer()
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "similarity"

    def ranges(r) -> list:
        return [(x.lowerValue(), x.upperValue(), x.label(), symbol(x)) for x in r.ranges()]

    assert ranges(renderer) == ranges(plugin)
    assert renderer.orderByEnabled() and renderer.orderBy().dump() == plugin.orderBy().dump()
    assert similar.labelsEnabled()
    settings, expected = similar.labeling().settings(), rank_labels().settings()
    assert (settings.fieldName, settings.isExpression, settings.placement) == (
        expected.fieldName,
        expected.isExpression,
        expected.placement,
    )
    text, wanted = settings.format(), expected.format()
    assert (text.size(), text.font().bold()) == (wanted.size(), wanted.font().bold())
    halo, wanted_halo = text.buffer(), wanted.buffer()
    assert (halo.enabled(), halo.size(), halo.color().name()) == (
        wanted_halo.enabled(),
        wanted_halo.size(),
        wanted_halo.color().name(),
    )

    query = QgsVectorLayer(f"{outputs / 'similar.gpkg'}|layername=query", "q", "ogr")
    assert query.featureCount() == 2

    def outlines(r) -> list:
        return [(c.value(), c.label(), symbol(c)[1:]) for c in r.categories()]

    assert query.renderer().classAttribute() == "example"
    assert outlines(query.renderer()) == outlines(query_renderer())
