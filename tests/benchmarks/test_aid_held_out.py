"""benchmarks/aid_held_out.py: the seen/held-out classes and the held-out classes' folder."""

from __future__ import annotations

import json
from pathlib import Path

from aid_held_out import SEEN_COUNT, split_classes, write_held_out

from snca_cli.runtime.scene_images import make_split, scan_scene_folder
from tests.helpers.scenes import make_scene_folder


def test_the_held_out_folder_carries_the_full_splits_parts(tmp_path: Path) -> None:
    data = make_scene_folder(tmp_path / "data", per_class=10, classes=4)
    names = scan_scene_folder(data).class_names
    held_out = names[1:3]
    write_held_out(data, tmp_path / "held", held_out)
    folder = scan_scene_folder(tmp_path / "held")
    assert folder.class_names == held_out
    assert all((tmp_path / "held" / name).is_symlink() for name in held_out)
    written = json.loads((tmp_path / "held" / "split.json").read_text())
    full = make_split(scan_scene_folder(data), 0)
    for part in ("train", "val", "test"):
        # the same images in each part as in the split of the whole folder (which a
        # re-split of the held-out folder alone would not give: the seed runs per class index)
        assert written[part] == [i for i in full[part] if i.split("/")[0] in held_out]
    assert written["classes"] == held_out and written["seed"] == 0


def test_ten_of_thirty_classes_are_held_out_reproducibly() -> None:
    names = [f"class{i:02d}" for i in range(30)]
    seen, held_out = split_classes(names)
    assert len(seen) == SEEN_COUNT and len(held_out) == 10
    assert not set(seen) & set(held_out)
    assert (seen, held_out) == split_classes(list(reversed(names)))
