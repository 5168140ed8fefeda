"""Scene folders and the seeded per-class 70/10/20 split."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from snca_cli.errors import SncaError
from snca_cli.runtime.scene_images import (
    load_split,
    make_split,
    read_image,
    resize_image,
    save_split,
    scan_scene_folder,
)


def make_folder(root: Path, counts: dict[str, int], size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            array = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            Image.fromarray(array).save(root / name / f"{name.lower()}_{i}.png")
    return root


def test_scan_lists_classes_and_items_sorted(tmp_path: Path) -> None:
    folder = scan_scene_folder(make_folder(tmp_path, {"Beach": 3, "Airport": 4}))
    assert folder.class_names == ["Airport", "Beach"]
    assert folder.items[:2] == ["Airport/airport_0.png", "Airport/airport_1.png"]
    assert folder.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_split_fractions_and_determinism(tmp_path: Path) -> None:
    folder = scan_scene_folder(make_folder(tmp_path, {"A": 20, "B": 10}))
    split = make_split(folder, seed=7)
    counts = {
        part: {c: sum(i.startswith(c + "/") for i in items) for c in "AB"}
        for part, items in split.items()
    }
    assert counts == {"train": {"A": 14, "B": 7}, "val": {"A": 2, "B": 1}, "test": {"A": 4, "B": 2}}
    assert make_split(folder, seed=7) == split
    assert make_split(folder, seed=8) != split
    everything = split["train"] + split["val"] + split["test"]
    assert sorted(everything) == sorted(folder.items)


def test_split_round_trips_through_json(tmp_path: Path) -> None:
    folder = scan_scene_folder(make_folder(tmp_path / "data", {"A": 5, "B": 5}))
    split = make_split(folder, seed=3)
    save_split(tmp_path / "split.json", folder, split, seed=3)
    payload = load_split(tmp_path / "split.json")
    assert payload["seed"] == 3 and payload["classes"] == ["A", "B"]
    assert payload["test"] == split["test"]


@pytest.mark.parametrize(
    ("counts", "message"),
    [({}, "holds no images"), ({"A": 5}, "one class only"), ({"A": 5, "B": 2}, "class B has 2")],
)
def test_bad_folders(tmp_path: Path, counts: dict[str, int], message: str) -> None:
    make_folder(tmp_path, counts)
    with pytest.raises(SncaError, match=message):
        make_split(scan_scene_folder(tmp_path), seed=0)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SncaError, match="does not exist"):
        scan_scene_folder(tmp_path / "nope")


def test_read_multiband_uint16_tif_and_resize(tmp_path: Path) -> None:
    data = np.arange(4 * 6 * 6, dtype=np.uint16).reshape(4, 6, 6) * 100
    path = tmp_path / "scene.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=6, height=6, count=4, dtype="uint16"
    ) as dst:
        dst.write(data)
    array = read_image(path)
    assert array.shape == (6, 6, 4) and array.dtype == np.uint16
    assert np.array_equal(array[..., 2], data[2])
    resized = resize_image(array, 3)
    assert resized.shape == (3, 3, 4) and resized.dtype == np.uint16
    # a constant band stays constant after resampling
    constant = np.full((6, 6, 1), 1234, dtype=np.uint16)
    assert np.all(resize_image(constant, 4) == 1234)


def test_unreadable_image_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not a jpeg")
    with pytest.raises(SncaError, match="cannot read image"):
        read_image(path)


def test_class_folders_without_images_are_named(tmp_path: Path) -> None:
    make_folder(tmp_path, {"A": 3, "B": 3, **{f"E{i}": 0 for i in range(7)}})
    (tmp_path / "E0" / "readme.txt").write_text("not an image")
    with pytest.raises(SncaError) as caught:
        scan_scene_folder(tmp_path)
    assert str(caught.value) == (
        f"data folder {tmp_path} has 7 class folder(s) without images (.jpg, .jpeg, .png, .tif, "
        ".tiff): 'E0', 'E1', 'E2', 'E3', 'E4' and 2 more; a class without images can be neither "
        "learned nor evaluated: add its images or remove the folder"
    )
