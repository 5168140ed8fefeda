"""Decoding scene folders into the in-memory cache: sizes, bands, types, unreadable files."""

import json

import numpy as np
import pytest
import rasterio
from PIL import Image
from rich.console import Console

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.errors import SncaError  # noqa: E402
from snca_train.training_data import DeviceImages, prepare_data, read_split_file, write_split  # noqa: E402
from tests.helpers.scenes import make_scene_folder  # noqa: E402

QUIET = Console(quiet=True)


def write_tif(path, array):
    """Write a bands x H x W array as a GeoTIFF-free TIFF."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype,
    ) as dst:
        dst.write(array)


def prepare(data_dir, skip=False, size=16, **kwargs):
    return prepare_data(data_dir, 0, size, 2, skip, QUIET, **kwargs)


def test_rgb_pngs_of_any_size_become_a_uint8_cache(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=5)
    prepared = prepare(data)
    assert prepared.train.images.shape == (9, 16, 16, 3)  # 3 classes x 3 train images
    assert prepared.val.images.shape == (3, 16, 16, 3)
    assert prepared.train.images.dtype == np.uint8
    write_split(tmp_path, prepared)
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["train"] == prepared.train.items and split["classes"] == prepared.class_names
    batch = DeviceImages(prepared.train, torch.device("cpu")).batch(np.array([2, 0]))
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == torch.float32
    assert batch.is_contiguous(memory_format=torch.channels_last)
    expected = prepared.train.images[2].astype(np.float32) / 255.0
    assert batch[0].permute(1, 2, 0).numpy() == pytest.approx(expected)
    assert prepared.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_a_resumed_run_keeps_its_split_and_classes(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=6)
    first = prepare(data)
    swapped = {"train": first.split["val"], "val": first.split["train"], "test": []}
    again = prepare(data, split=swapped, class_names=first.class_names)
    assert again.train.items == first.val.items and again.val.items == first.train.items
    with pytest.raises(SncaError, match="the classes of .* differ"):
        prepare(data, split=swapped, class_names=["fields", "roofs"])
    (data / first.split["val"][0]).unlink()
    with pytest.raises(SncaError, match="1 image.* of the run's split are gone"):
        prepare(data, split=swapped, class_names=first.class_names)


def test_multiband_uint16_tifs_are_scaled_to_unit_floats(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("crop", "town"):
        (tmp_path / "tifs" / name).mkdir(parents=True)
        for i in range(3):
            write_tif(
                tmp_path / "tifs" / name / f"{i}.tif",
                rng.integers(0, 65535, (4, 21, 19), dtype=np.uint16),
            )
    constant = np.full((4, 21, 19), 13107, dtype=np.uint16)  # 13107 / 65535 = 0.2
    write_tif(tmp_path / "tifs" / "crop" / "0.tif", constant)
    prepared = prepare(tmp_path / "tifs", size=12)
    assert prepared.train.images.shape == (2, 12, 12, 4)
    assert prepared.train.images.dtype == np.float16
    assert prepared.train.bands == 4
    row = prepared.train.items.index("crop/0.tif") if "crop/0.tif" in prepared.train.items else None
    cache = prepared.train if row is not None else prepared.val
    row = cache.items.index("crop/0.tif")
    batch = DeviceImages(cache, torch.device("cpu")).batch(np.array([row]))
    assert batch.numpy() == pytest.approx(np.full((1, 4, 12, 12), 0.2), abs=1e-3)


def test_grey_images_in_an_rgb_set_are_repeated_over_the_bands(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=3)
    for path in (data / "water").iterdir():
        Image.fromarray(np.full((30, 30), 77, dtype=np.uint8)).save(path)
    prepared = prepare(data)
    for cache in (prepared.train, prepared.val):
        assert cache.images.shape[3] == 3
        rows = [i for i, item in enumerate(cache.items) if item.startswith("water/")]
        assert len(rows) == 1
        assert (cache.images[rows] == 77).all()


def test_unreadable_images_stop_the_run_or_are_skipped(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=6)
    (data / "roofs" / "roofs_01.png").write_bytes(b"not a png")
    (data / "water" / "water_02.png").write_bytes(b"")
    with pytest.raises(SncaError) as error:
        prepare(data)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("2 unreadable image(s)")
    assert "roofs_01.png" in message and "water_02.png" in message
    assert "--skip-unreadable" in message
    prepared = prepare(data, skip=True)
    assert sorted(prepared.skipped) == ["roofs/roofs_01.png", "water/water_02.png"]
    kept = prepared.train.items + prepared.val.items
    assert len(kept) == 18 - 2 - 3  # 6 per class, minus 2 unreadable and 3 test items
    assert not set(prepared.skipped) & set(kept)


def test_device_images_cut_batches_of_any_rows_without_copying_the_cache_on_the_cpu(tmp_path):
    prepared = prepare(make_scene_folder(tmp_path / "scenes", per_class=5))
    on_cpu = DeviceImages(prepared.train, torch.device("cpu"))
    assert len(on_cpu) == len(prepared.train) == 9
    assert on_cpu.images.data_ptr() == prepared.train.images.ctypes.data  # no copy
    for rows in (np.array([4, 1, 8]), torch.tensor([0, 0, 7])):
        batch = on_cpu.batch(rows)
        expected = prepared.train.images[np.asarray(rows)].transpose(0, 3, 1, 2) / 255.0
        np.testing.assert_allclose(batch.numpy(), expected, atol=1e-7)
        assert batch.is_contiguous(memory_format=torch.channels_last)


def test_a_split_file_is_used_as_it_is_and_needs_no_test_images(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=6)
    first = prepare(data)
    write_split(tmp_path, first)
    split, seed, classes = read_split_file(tmp_path / "split.json")
    assert split == first.split and seed == 0 and classes == first.class_names
    for item in split["test"]:
        (data / item).unlink()
    again = prepare(data, split=split, class_names=classes, split_source="split file s.json")
    assert again.train.items == first.train.items and again.split["test"] == split["test"]
    (data / split["train"][0]).unlink()
    with pytest.raises(SncaError, match="1 image.* of split file s.json are gone"):
        prepare(data, split=split, class_names=classes, split_source="split file s.json")
