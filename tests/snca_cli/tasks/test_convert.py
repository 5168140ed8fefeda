"""`snca convert` (snca_cli.tasks.convert): the Deepness and Segmentor copies of a model, their
outputs and metadata, GeoDeep running the Segmentor copy on real AID scenes, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import geodeep
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.default_model import default_model_path
from snca_cli.tasks.convert import CLASS_MAP_OUTPUT, UNCLASSIFIED, ConvertOptions, convert_model
from tests.helpers.aid_mosaic import cell_labels, snca_labels, write_aid_mosaic
from tests.helpers.model_readers import deepness_reads, geodeep_reads
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model

NAMES = ["red", "green", "blue"]


@pytest.fixture
def band_mean(tmp_path: Path) -> Path:
    return make_band_mean_model(tmp_path / "bm.onnx", tile_size=8, class_names=NAMES)


@pytest.fixture
def tiles() -> np.ndarray:
    return np.random.default_rng(0).random((5, 3, 8, 8), dtype=np.float32)


def props_of(path: Path) -> dict[str, str]:
    return ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map


def test_deepness_copy_has_the_embedding_only(
    band_mean: Path, tiles: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "deepness.onnx"
    result = convert_model(band_mean, ConvertOptions("deepness", out, resolution_cm=30.0))
    session = ort.InferenceSession(str(out))
    assert [o.name for o in session.get_outputs()] == ["embedding"]
    (embedding,) = session.run(None, {"image": tiles})
    np.testing.assert_allclose(embedding, band_mean_reference(tiles, 3, 3)[0], atol=1e-6)
    # the classifier's weights went with the output they fed
    assert "weights" not in {i.name for i in onnx.load(str(out)).graph.initializer}
    props = props_of(out)
    read = deepness_reads(props)
    assert (read["model_type"], read["resolution"], read["tile_size"]) == ("Recognition", 30.0, 8)
    assert geodeep_reads(props)["resolution"] == 30.0
    assert result.model_type == "Recognition" and result.output_shape == ["N", 3]


def test_segmentor_copy_broadcasts_the_tile_classes(
    band_mean: Path, tiles: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "seg.onnx"
    result = convert_model(band_mean, ConvertOptions("segmentor", out))
    session = ort.InferenceSession(str(out))
    assert [o.name for o in session.get_outputs()] == [CLASS_MAP_OUTPUT]
    (class_map,) = session.run(None, {"image": tiles})
    assert class_map.shape == (5, 4, 8, 8)
    probabilities = band_mean_reference(tiles, 3, 3)[1]
    # channel 0 (unclassified) is 0 everywhere; channel 1 + c is class c's probability, per pixel
    assert np.all(class_map[:, 0] == 0)
    np.testing.assert_allclose(
        class_map[:, 1:], np.broadcast_to(probabilities[:, :, None, None], (5, 3, 8, 8)), atol=1e-6
    )
    props = props_of(out)
    deepness, geo = deepness_reads(props), geodeep_reads(props)
    assert deepness["class_names"] == [[UNCLASSIFIED, *NAMES]]
    assert geo["class_names"] == {"0": UNCLASSIFIED, "1": "red", "2": "green", "3": "blue"}
    assert deepness["model_type"] == geo["model_type"] == "Segmentor"
    assert deepness["seg_thresh"] == geo["seg_thresh"] == 0.0
    assert geo["seg_small_segment"] == 0
    assert "resolution" not in props  # unknown stays unknown
    assert result.class_names == [UNCLASSIFIED, *NAMES]


def test_the_shipped_model_converts_to_both(tmp_path: Path) -> None:
    probe = np.random.default_rng(1).random((2, 3, 150, 150), dtype=np.float32)
    embedding, probabilities = ort.InferenceSession(str(default_model_path())).run(
        None, {"image": probe}
    )
    deepness = convert_model(default_model_path(), ConvertOptions("deepness", tmp_path / "d.onnx"))
    segmentor = convert_model(
        default_model_path(), ConvertOptions("segmentor", tmp_path / "s.onnx")
    )
    (got,) = ort.InferenceSession(str(deepness.path)).run(None, {"image": probe})
    np.testing.assert_array_equal(got, embedding)
    (class_map,) = ort.InferenceSession(str(segmentor.path)).run(None, {"image": probe})
    assert class_map.shape == (2, 31, 150, 150)
    np.testing.assert_array_equal(class_map[:, 1:, 75, 75], probabilities)
    assert json.loads(props_of(segmentor.path)["orientations"]) == 1


@pytest.mark.shared_data
@pytest.mark.slow
def test_geodeep_labels_every_mosaic_tile_as_snca_classify(aid_dir: Path, tmp_path: Path) -> None:
    mosaic = tmp_path / "mosaic.tif"
    classes = write_aid_mosaic(aid_dir, mosaic)
    expected = snca_labels(mosaic, default_model_path(), tmp_path / "tiles.gpkg")
    assert expected == classes
    segmentor = convert_model(
        default_model_path(), ConvertOptions("segmentor", tmp_path / "s.onnx")
    )
    mask = geodeep.segment(str(mosaic), str(segmentor.path), output_type="raw")
    assert mask.shape == (600, 600)
    labels, share = cell_labels(mask, segmentor.class_names)
    assert labels == expected
    assert share > 0.99  # GeoDeep's 5 px median filter only rounds the cells' corners


def test_bad_inputs_are_one_line_and_write_nothing(band_mean: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    with pytest.raises(SncaError, match="--to must be one of deepness, segmentor"):
        convert_model(band_mean, ConvertOptions("detector", out))
    with pytest.raises(SncaError, match="does not exist"):
        convert_model(tmp_path / "none.onnx", ConvertOptions("deepness", out))
    not_onnx = tmp_path / "x.onnx"
    not_onnx.write_text("not a model")
    with pytest.raises(SncaError, match="is not an ONNX model"):
        convert_model(not_onnx, ConvertOptions("deepness", out))
    bare = make_band_mean_model(tmp_path / "bare.onnx", with_metadata=False)
    with pytest.raises(SncaError, match="lacks the snca metadata keys"):
        convert_model(bare, ConvertOptions("segmentor", out))
    with pytest.raises(SncaError, match="--resolution must be positive"):
        convert_model(band_mean, ConvertOptions("deepness", out, resolution_cm=0))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.onnx", "bm.onnx", "x.onnx"]
    out.write_bytes(b"old")
    with pytest.raises(SncaError, match="exists; use --force"):
        convert_model(band_mean, ConvertOptions("deepness", out))
    convert_model(band_mean, ConvertOptions("deepness", out, force=True))
    assert len(ort.InferenceSession(str(out)).get_outputs()) == 1
