"""Scene folders (one folder per class), the seeded per-class 70/10/20 split, and image reading.

No PyTorch here: ``snca evaluate`` on an ONNX model and the trainer share this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from snca_cli.errors import SncaError
from snca_cli.runtime.paths import gdal_path, is_remote

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
#: The file a training run writes its split to, read by ``snca evaluate`` and ``snca export``.
SPLIT_FILE = "split.json"
SPLIT_NAMES = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


@dataclass(frozen=True)
class SceneFolder:
    """A data set laid out as ``root/<Class>/<image>``; items are ``Class/file`` names, sorted."""

    root: Path
    class_names: list[str]
    items: list[str]

    @property
    def labels(self) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.class_names)}
        return np.array([index[item.split("/", 1)[0]] for item in self.items], dtype=np.int64)

    def path(self, item: str) -> Path:
        return self.root / item


#: How many empty class folders an error names.
NAMED_EMPTY_CLASSES = 5


def scan_scene_folder(root: Path | str) -> SceneFolder:
    """List the classes (sub-folders) and their images; refuse a missing or empty folder, or a
    class folder without images (a class that could be neither learned nor evaluated)."""
    root = Path(root)
    if not root.exists():
        raise SncaError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise SncaError(f"{root} is not a folder (expected one sub-folder per class)")
    class_names: list[str] = []
    items: list[str] = []
    empty: list[str] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f.name
            for f in class_dir.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        if files:
            class_names.append(class_dir.name)
            items.extend(f"{class_dir.name}/{name}" for name in files)
        else:
            empty.append(class_dir.name)
    if not items:
        raise SncaError(
            f"data folder {root} holds no images (expected {root}/<Class>/*.jpg|png|tif)"
        )
    if empty:
        raise SncaError(_empty_classes_message(root, empty))
    if len(class_names) < 2:
        raise SncaError(f"data folder {root} holds one class only; at least 2 are needed")
    return SceneFolder(root=root, class_names=class_names, items=items)


def _empty_classes_message(root: Path, empty: list[str]) -> str:
    """The error naming the class folders of ``root`` that hold no image (the first few)."""
    named = ", ".join(repr(name) for name in empty[:NAMED_EMPTY_CLASSES])
    if len(empty) > NAMED_EMPTY_CLASSES:
        named += f" and {len(empty) - NAMED_EMPTY_CLASSES} more"
    suffixes = ", ".join(IMAGE_SUFFIXES)
    return (
        f"data folder {root} has {len(empty)} class folder(s) without images ({suffixes}): "
        f"{named}; a class without images can be neither learned nor evaluated: add its "
        "images or remove the folder"
    )


def make_split(folder: SceneFolder, seed: int) -> dict[str, list[str]]:
    """Split each class 70/10/20 into train/val/test, reproducibly from ``seed`` on any machine."""
    split: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    labels = folder.labels
    items = np.array(folder.items, dtype=object)
    for class_index, class_name in enumerate(folder.class_names):
        members = items[labels == class_index]
        n = len(members)
        n_val = max(1, round(SPLIT_FRACTIONS[1] * n))
        n_test = max(1, round(SPLIT_FRACTIONS[2] * n))
        n_train = n - n_val - n_test
        if n_train < 1:
            raise SncaError(
                f"class {class_name} has {n} image(s); at least 3 are needed for a 70/10/20 split"
            )
        order = np.random.default_rng([seed, class_index]).permutation(n)
        shuffled = [str(members[i]) for i in order]
        split["train"].extend(sorted(shuffled[:n_train]))
        split["val"].extend(sorted(shuffled[n_train : n_train + n_val]))
        split["test"].extend(sorted(shuffled[n_train + n_val :]))
    return split


def save_split(path: Path, folder: SceneFolder, split: dict[str, list[str]], seed: int) -> None:
    """Write ``split.json``: seed, class names and the ``Class/file`` items of each part."""
    payload = {"seed": seed, "classes": folder.class_names, **split}
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def load_split(path: Path) -> dict:
    """Read a ``split.json`` written by :func:`save_split`."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SncaError(f"cannot read split file {path}: {exc}") from None
    missing = [k for k in ("seed", "classes", *SPLIT_NAMES) if k not in payload]
    if missing:
        raise SncaError(f"split file {path} lacks {', '.join(missing)}")
    return payload


def reads_with_gdal(path: Path) -> bool:
    """Whether :func:`read_image` reads ``path`` with GDAL (a GeoTIFF, a GDAL virtual file or a
    URL: every band, in its own type, with its GDAL metadata) rather than PIL."""
    return is_remote(path) or Path(path).suffix.lower() in (".tif", ".tiff")


def read_image(path: Path) -> np.ndarray:
    """Read an image as an H x W x bands array in its own data type (jpg/png via PIL, tif via
    rasterio so that multi-band and 16-bit files keep every band; a GDAL virtual file or URL,
    whatever its format, via rasterio)."""
    path = Path(path)
    try:
        if reads_with_gdal(path):
            import rasterio

            with rasterio.open(gdal_path(path)) as src:
                return np.moveaxis(src.read(), 0, -1)
        with Image.open(path) as image:
            if image.mode not in ("RGB", "L", "I;16", "I", "F"):
                image = image.convert("RGB")
            array = np.asarray(image)
    except Exception as exc:  # PIL and rasterio raise many types for unreadable files
        raise SncaError(f"cannot read image {path}: {exc}") from None
    return array[..., None] if array.ndim == 2 else array


def resize_image(array: np.ndarray, size: int) -> np.ndarray:
    """Resize an H x W x bands array to size x size (antialiased bilinear), keeping its dtype."""
    if array.shape[0] == size and array.shape[1] == size:
        return array
    if array.dtype == np.uint8 and array.shape[2] in (1, 3):
        mode_array = array[..., 0] if array.shape[2] == 1 else array
        resized = np.asarray(
            Image.fromarray(mode_array).resize((size, size), Image.Resampling.BILINEAR)
        )
        return resized[..., None] if resized.ndim == 2 else resized
    bands = [
        np.asarray(
            Image.fromarray(array[..., b].astype(np.float32)).resize(
                (size, size), Image.Resampling.BILINEAR
            )
        )
        for b in range(array.shape[2])
    ]
    out = np.stack(bands, axis=-1)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(array.dtype)
