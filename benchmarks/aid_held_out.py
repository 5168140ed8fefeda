"""The AID held-out-classes protocol shared by ``adapt.py`` and ``transfer.py``.

A model is trained on 20 of AID's 30 classes ("seen") and judged on the other 10 ("held out"),
which it never saw. The 10 held-out classes are the last 10 of a seed-0 permutation of the
sorted class names: BareLand, Center, Commercial, Desert, MediumResidential, Mountain, Parking,
Resort, School, Stadium.

    python benchmarks/aid_held_out.py --data AID --out runs/aid20/data   # the 20 seen classes
    snca train runs/aid20/data --image-size 150 --epochs 6 --lr 0.02 -o runs/aid20/current

``--held-out DIR`` also writes the 10 held-out classes as a folder and ``DIR/split.json``, the
30-class seed-0 split's parts of them (the transfer protocols' database and queries): a
self-supervised run on their training images (``--loss instance``, labels unused) sees the
imagery of classes it was never taught without ever seeing the protocols' queries.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from snca_cli.runtime.scene_images import SceneFolder, make_split, save_split, scan_scene_folder

#: How many of AID's 30 classes the held-out protocol trains on.
SEEN_COUNT = 20


def split_classes(class_names: list[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(seen, held out), each sorted: the held-out classes are the last ``len - SEEN_COUNT``
    of a seeded permutation of the sorted names."""
    names = sorted(class_names)
    order = np.random.default_rng(seed).permutation(len(names))
    seen = sorted(names[i] for i in order[:SEEN_COUNT])
    held_out = sorted(names[i] for i in order[SEEN_COUNT:])
    return seen, held_out


def dataset_classes(data: Path) -> list[str]:
    """The class folders of ``data`` (``DATA/CLASS/IMAGE``)."""
    return sorted(p.name for p in data.iterdir() if p.is_dir())


def link_classes(data: Path, out: Path, classes: list[str]) -> None:
    """``out/CLASS`` as a symbolic link to ``data/CLASS`` for each class (a training folder of
    a subset of the classes, without copying images)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in classes:
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((data / name).resolve(), target_is_directory=True)


def write_held_out(data: Path, out: Path, held_out: list[str]) -> None:
    """``out``: the held-out classes linked, and ``out/split.json`` with their part of the
    30-class seed-0 split."""
    full = make_split(scan_scene_folder(data), 0)
    split = {
        part: [i for i in items if i.split("/")[0] in held_out] for part, items in full.items()
    }
    link_classes(data, out, held_out)
    items = sorted(i for part in split.values() for i in part)
    save_split(out / "split.json", SceneFolder(out, held_out, items), split, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="AID: DATA/CLASS/IMAGE")
    parser.add_argument("--out", type=Path, required=True, help="folder of the seen classes")
    parser.add_argument("--held-out", type=Path, help="folder of the held-out classes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seen, held_out = split_classes(dataset_classes(args.data), args.seed)
    link_classes(args.data, args.out, seen)
    if args.held_out is not None:
        write_held_out(args.data, args.held_out, held_out)
    print("seen:", ", ".join(seen))
    print("held out:", ", ".join(held_out))


if __name__ == "__main__":
    main()
