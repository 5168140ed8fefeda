"""Training data: the scene folder, its split, and every image decoded once into RAM.

Images of any size are resized to ``image_size`` and kept as one N x H x W x B array: uint8 when
the first image is 8-bit (divided by 255 on use), else float16 already scaled to [0, 1] with the
runtime's rule (:func:`snca_cli.contract.scaling.values_to_unit` with
:data:`snca_cli.contract.metadata.DEFAULT_INPUT_SCALE`), so training sees the
same values as the exported model does later. :class:`DeviceImages` holds a split on the training
device (a GPU gets the whole array once, so no batch crosses the bus) and cuts float
N x B x H x W batches in channels-last memory order from it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from snca_cli.contract.metadata import DEFAULT_INPUT_SCALE
from snca_cli.contract.scaling import values_to_unit
from snca_cli.errors import SncaError
from snca_cli.runtime.scene_images import (
    SPLIT_FILE,
    SPLIT_NAMES,
    SceneFolder,
    load_split,
    make_split,
    read_image,
    resize_image,
    save_split,
    scan_scene_folder,
)
from snca_train.progress import make_progress

#: Unreadable files named in an error message before "and N more".
LISTED_PROBLEMS = 5


@dataclass
class ImageCache:
    """Decoded images of one split: ``images`` N x H x W x B, ``labels`` N, ``items`` N."""

    images: np.ndarray
    labels: np.ndarray
    items: list[str]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def bands(self) -> int:
        return int(self.images.shape[3])

    @property
    def scale(self) -> float:
        """What the stored values are divided by to lie in [0, 1]."""
        return 255.0 if self.images.dtype == np.uint8 else 1.0


class DeviceImages:
    """One split's decoded images as a tensor on ``device``: a copy made once on a GPU, the
    cache's own memory on the CPU."""

    def __init__(self, cache: ImageCache, device: torch.device) -> None:
        self.images = torch.from_numpy(cache.images).to(device)
        self.scale = cache.scale
        self.device = device

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Float32 N x B x H x W images in [0, 1] on the device, channels-last strides."""
        index = torch.as_tensor(rows, dtype=torch.int64).to(self.device)
        return self.images[index].permute(0, 3, 1, 2).float().div_(self.scale)


@dataclass
class TrainingData:
    """The scene folder, its split and the decoded train and validation images."""

    folder: SceneFolder
    split: dict[str, list[str]]
    split_seed: int
    train: ImageCache
    val: ImageCache
    skipped: list[str]

    @property
    def class_names(self) -> list[str]:
        return self.folder.class_names


def _decode(path: Path, image_size: int) -> np.ndarray:
    return resize_image(read_image(path), image_size)


def _store(image: np.ndarray, cache_dtype: np.dtype, bands: int) -> np.ndarray:
    """``image`` converted to the cache's type and band count (grey images are repeated)."""
    if image.shape[2] != bands:
        if image.shape[2] != 1:
            raise SncaError(f"has {image.shape[2]} bands where the data set has {bands}")
        image = np.repeat(image, bands, axis=2)
    if image.dtype == cache_dtype:
        return image
    unit = values_to_unit(image, DEFAULT_INPUT_SCALE)
    if cache_dtype == np.uint8:
        return np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)
    return unit.astype(np.float16)


def decode_images(
    folder: SceneFolder,
    items: list[str],
    image_size: int,
    workers: int,
    console: Console,
) -> tuple[np.ndarray, list[int], list[str]]:
    """Decode ``items`` into one N x H x W x B array; return it, the rows that failed and a
    one-line reason for each failure. The first readable image fixes the bands and type."""
    images: np.ndarray | None = None
    failed: list[int] = []
    reasons: list[str] = []
    with (
        make_progress(console) as progress,
        ThreadPoolExecutor(max_workers=max(workers, 1)) as pool,
    ):
        task = progress.add_task("decoding images", total=len(items), info="")

        def load(item: str) -> np.ndarray | str:
            try:
                return _decode(folder.path(item), image_size)
            except SncaError as exc:
                return str(exc)

        for row, result in enumerate(pool.map(load, items)):
            progress.advance(task)
            if isinstance(result, np.ndarray) and images is None:
                dtype = np.dtype(np.uint8) if result.dtype == np.uint8 else np.dtype(np.float16)
                images = np.zeros((len(items), image_size, image_size, result.shape[2]), dtype)
            if isinstance(result, str):
                failed.append(row)
                reasons.append(result)
                continue
            assert images is not None
            try:
                images[row] = _store(result, images.dtype, images.shape[3])
            except SncaError as exc:
                failed.append(row)
                reasons.append(f"image {folder.path(items[row])} {exc}")
    if images is None:
        raise SncaError(f"none of the {len(items)} images could be read: {reasons[0]}")
    return images, failed, reasons


def _check_split(folder: SceneFolder, split: dict[str, list[str]], source: str) -> None:
    known = set(folder.items)
    gone = [item for name in ("train", "val") for item in split[name] if item not in known]
    if gone:
        raise SncaError(f"{len(gone)} image(s) of {source} are gone from {folder.root}: {gone[0]}")


def prepare_data(
    data_dir: Path,
    split_seed: int,
    image_size: int,
    workers: int,
    skip_unreadable: bool,
    console: Console,
    split: dict[str, list[str]] | None = None,
    class_names: list[str] | None = None,
    split_source: str = "the run's split",
) -> TrainingData:
    """Scan ``data_dir``, split it with ``split_seed`` (or use the given ``split`` of a resumed
    run or a split file, named ``split_source``, whose ``class_names`` must match), and decode
    the train and val images (only those must be in the folder)."""
    folder = scan_scene_folder(data_dir)
    if class_names is not None and class_names != folder.class_names:
        raise SncaError(
            f"the classes of {folder.root} differ from those of {split_source} "
            f"({len(folder.class_names)} vs {len(class_names)})"
        )
    if split is None:
        split = make_split(folder, split_seed)
    else:
        _check_split(folder, split, split_source)
    items = split["train"] + split["val"]
    images, failed, reasons = decode_images(folder, items, image_size, workers, console)
    if failed and not skip_unreadable:
        listed = "; ".join(reasons[:LISTED_PROBLEMS])
        more = f" and {len(failed) - LISTED_PROBLEMS} more" if len(failed) > LISTED_PROBLEMS else ""
        raise SncaError(
            f"{len(failed)} unreadable image(s): {listed}{more} (--skip-unreadable skips them)"
        )
    keep = np.ones(len(items), dtype=bool)
    keep[failed] = False
    index = {name: i for i, name in enumerate(folder.class_names)}
    labels = np.array([index[item.split("/", 1)[0]] for item in items], dtype=np.int64)
    n_train = len(split["train"])

    def part(rows: slice) -> ImageCache:
        if keep[rows].all():  # a view, no copy of the cache
            return ImageCache(images[rows], labels[rows], items[rows])
        chosen = np.flatnonzero(keep[rows]) + (rows.start or 0)
        return ImageCache(images[chosen], labels[chosen], [items[i] for i in chosen])

    train, val = part(slice(0, n_train)), part(slice(n_train, len(items)))
    if len(train) == 0 or len(val) == 0:
        raise SncaError("no readable image is left in the train or the validation split")
    return TrainingData(folder, split, split_seed, train, val, [items[i] for i in failed])


def read_split_file(path: Path) -> tuple[dict[str, list[str]], int, list[str]]:
    """The split, its seed and its class names from a run's ``split.json``."""
    payload = load_split(path)
    split = {name: list(payload[name]) for name in SPLIT_NAMES}
    return split, int(payload["seed"]), list(payload["classes"])


def write_split(run_dir: Path, data: TrainingData) -> None:
    """``run_dir/split.json``: the split that :func:`prepare_data` used."""
    save_split(run_dir / SPLIT_FILE, data.folder, data.split, data.split_seed)
