"""Deepness (PUTvision/qgis-plugin-deepness f450c63, Apache-2.0; unpacked from the shared
third-party tarball, never copied into snca) runs the models `snca convert` writes, through its
own model classes and map processors in headless QGIS, on a mosaic of real AID test scenes:

* Recognition (`--to deepness`): its similarity map equals the cosine similarities of our
  embeddings and its best tile is the query's own cell;
* Segmentor (`--to segmentor`): every cell labelled as `snca classify` labels it, and with a
  probability threshold the tiles below it become `unclassified`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qgis.core")

from PIL import Image  # noqa: E402

from tests.helpers.aid_mosaic import (  # noqa: E402
    CELL,
    GRID,
    cell_labels,
    held_out_scenes,
    write_aid_mosaic,
)
from tests.helpers.deepness import (  # noqa: E402
    TARBALL,
    load_model,
    processing_parameters,
    raster_layer,
    run_processor,
    unpack_deepness,
)

# onnxruntime and onnx (snca_cli.runtime, snca_cli.tasks.convert) are imported inside the tests
# only: imported while pytest collects, before the session's QgsApplication exists, they can make
# QGIS 3.22 crash when the interpreter exits, after every test has passed.


def convert(target: str, output: Path):
    """`snca convert` of the shipped model."""
    from snca_cli.tasks.convert import ConvertOptions, convert_model

    return convert_model(default_model_path(), ConvertOptions(target, output))


def default_model_path() -> Path:
    from snca_cli.runtime.default_model import default_model_path

    return default_model_path()


def our_outputs(name: str, images: np.ndarray) -> np.ndarray:
    """The shipped model's ``name`` output for ``images``, run by snca's onnxruntime."""
    import onnxruntime as ort

    return ort.InferenceSession(str(default_model_path())).run([name], {"image": images})[0]


pytestmark = [pytest.mark.qgis, pytest.mark.shared_data, pytest.mark.slow]

#: Tiles per model run (any batch size gives the same result).
BATCH_SIZE = 4


@pytest.fixture(autouse=True)
def in_a_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own temporary folder: Deepness's recognition processor writes its
    result as ``grid_data`` into the current folder, which must never be the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def deepness(shared_data: Path, tmp_path_factory: pytest.TempPathFactory, qgis_app):
    """Deepness's source unpacked into a temporary folder and importable as ``deepness``."""
    tarball = shared_data.parent / "third_party" / TARBALL
    assert tarball.is_file(), f"{tarball} is missing"
    source = unpack_deepness(tarball, tmp_path_factory.mktemp("deepness"))
    sys.path.insert(0, str(source))
    yield source
    sys.path.remove(str(source))


@pytest.fixture(scope="module")
def mosaic(aid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The 4 x 4 AID mosaic and what `snca classify` labels each cell (all right)."""
    folder = tmp_path_factory.mktemp("mosaic")
    path = folder / "mosaic.tif"
    classes = write_aid_mosaic(aid_dir, path)
    from tests.helpers.aid_mosaic import snca_labels

    labels = snca_labels(path, default_model_path(), folder / "tiles.gpkg")
    assert labels == classes
    return path, labels


def test_deepness_recognition_finds_the_query_tile(
    deepness, mosaic, project, aid_dir: Path, tmp_path: Path
) -> None:
    path, _ = mosaic
    converted = convert("deepness", tmp_path / "d.onnx")
    model_type, model, definition = load_model(converted.path)
    assert model_type == "Recognition"
    assert model.get_number_of_output_channels() == [128]
    query_cell = 6
    query = tmp_path / "query.png"
    Image.open(aid_dir / held_out_scenes()[query_cell]).convert("RGB").save(query)
    layer = raster_layer(project, path)
    params = processing_parameters(
        model, definition.parameters_class, layer, BATCH_SIZE, query_image_path=str(query)
    )
    result, _ = run_processor(definition, layer, params)
    assert result.shape == (GRID * CELL, GRID * CELL)
    assert (tmp_path / "grid_data").is_file()  # Deepness's scratch copy: here, not in the checkout
    # ours: cosine similarity of each cell's embedding to the query image's
    from tests.helpers.aid_mosaic import mosaic_tiles

    image = np.asarray(Image.open(query).convert("RGB").resize((CELL, CELL)), np.float32) / 255
    embeddings = our_outputs("embedding", mosaic_tiles(path))
    query_embedding = our_outputs("embedding", image.transpose(2, 0, 1)[None])[0]
    ours = embeddings @ query_embedding / np.linalg.norm(embeddings, axis=1)
    ours /= np.linalg.norm(query_embedding)
    cells = [divmod(i, GRID) for i in range(GRID * GRID)]
    centres = [result[r * CELL + CELL // 2, c * CELL + CELL // 2] for r, c in cells]
    np.testing.assert_allclose(centres, ours, atol=1e-5)
    assert int(np.argmax(centres)) == query_cell


@pytest.mark.parametrize("threshold", [None, 0.95])
def test_deepness_segmentor_labels_every_tile_as_snca_classify(
    deepness, mosaic, project, tmp_path: Path, threshold: float | None
) -> None:
    path, expected = mosaic
    converted = convert("segmentor", tmp_path / "s.onnx")
    model_type, model, definition = load_model(converted.path)
    assert model_type == "Segmentor"
    assert model.get_number_of_output_channels() == [31]
    default_threshold = model.get_metadata_segmentation_threshold()
    assert default_threshold == 0.0
    layer = raster_layer(project, path)
    params = processing_parameters(
        model,
        definition.parameters_class,
        layer,
        BATCH_SIZE,
        postprocessing_dilate_erode_size=model.get_metadata_segmentation_small_segment(),
        pixel_classification__probability_threshold=(
            default_threshold if threshold is None else threshold
        ),
    )
    result, _ = run_processor(definition, layer, params)
    assert result.shape == (1, GRID * CELL, GRID * CELL)
    names = [model.get_channel_name(0, c) for c in range(31)]
    # Deepness writes channel + 1 (0: outside the processed area)
    labels, share = cell_labels(result[0].astype(np.int64) - 1, names)
    assert share == 1.0
    if threshold is None:
        assert labels == expected
    else:
        from tests.helpers.aid_mosaic import mosaic_tiles

        scores = our_outputs("probabilities", mosaic_tiles(path)).max(axis=1)
        below = scores < threshold
        assert 0 < below.sum() < len(below)
        unclassified = converted.class_names[0]
        assert unclassified == "unclassified"
        assert labels == [unclassified if b else e for b, e in zip(below, expected, strict=True)]
