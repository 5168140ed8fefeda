"""Names from data are never paths (snca_cli.tasks.chips with snca_cli.runtime.safe_names): label
class values and raster names become safe single folder and file names inside ``-o``, whatever
they hold; names that collide get distinct ones; ``chips.json`` records which value went where;
every chip counted and listed is a file on disk.

Painted rasters and the band-mean model; the outputs lie a few folders deep in ``tmp_path`` so
that a class such as ``../../X`` would land inside ``tmp_path`` (where the test sees it) if it
escaped.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.scene_images import scan_scene_folder
from snca_cli.tasks.chips import RECORD_NAME, ChipsConfig, ChipsSummary, write_chips
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.labels import tile_points_file
from tests.helpers.rasters import painted_raster

#: Stands for an absolute path to a folder outside ``-o`` (a victim folder in ``tmp_path``).
VICTIM = "<victim folder>"
NFC_FORET = unicodedata.normalize("NFC", "Forêt")
NFD_FORET = unicodedata.normalize("NFD", "Forêt")


def _tree(root: Path, outside_of: Path) -> set[str]:
    """Every path under ``root`` except those inside ``outside_of``."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p != outside_of and outside_of not in p.parents
    }


def _is_safe_component(name: str) -> bool:
    """A single, visible, portable folder or file name of at most 200 bytes."""
    return (
        name not in ("", ".", "..")
        and not name.startswith((".", " "))
        and not name.endswith((".", " "))
        and not set(name) & set('/\\\0<>:"|?*')
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)
        and len(name.encode("utf-8")) <= 200
        and unicodedata.normalize("NFC", name) == name
    )


def _write(
    tmp_path: Path, model: OnnxModel, labels: dict[str, list[tuple[int, int]]], rasters: list[Path]
) -> tuple[Path, ChipsSummary, dict]:
    """Chips of ``rasters`` for ``labels`` into ``tmp_path/work/deep/chips``; nothing written
    outside it (the rest of ``tmp_path`` unchanged)."""
    points = tile_points_file(tmp_path / "labels.geojson", labels)
    out = tmp_path / "work" / "deep" / "chips"
    out.parent.mkdir(parents=True)
    before = _tree(tmp_path, out)
    summary = write_chips(ChipsConfig(out, rasters, points, "cover", model.path))
    assert _tree(tmp_path, out) == before, "written outside -o"
    return out, summary, json.loads((out / RECORD_NAME).read_text())


def _check_folder(out: Path, summary: ChipsSummary, record: dict) -> None:
    """Class folders are safe single names, distinct case-insensitively and recorded; the chips
    counted, listed and on disk are the same files."""
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {RECORD_NAME}
    listed = [chip["file"] for chip in record["chips"]]
    assert sorted(listed) == sorted(on_disk) and len(set(listed)) == len(listed)
    assert sum(summary.counts.values()) == sum(record["counts"].values()) == len(on_disk)
    folders = record["classes"]
    assert sorted(folders) == sorted(summary.counts)
    assert all(_is_safe_component(folder) for folder in folders.values()), folders
    keys = {unicodedata.normalize("NFC", folder.casefold()) for folder in folders.values()}
    assert len(keys) == len(folders)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(folders.values())
    for chip in record["chips"]:
        folder, name = chip["file"].split("/")
        assert folder == folders[chip["class"]] and _is_safe_component(name)
    assert sorted(scan_scene_folder(out).class_names) == sorted(folders.values())


@pytest.mark.parametrize(
    "value",
    [
        VICTIM,
        "../../X",
        "..",
        ".",
        "x" * 300,
        "é" * 150,
        "a/b",
        "a\\b",
        ".hidden",
        RECORD_NAME,
        "tab\there",
        "a:b?",
        "CON",
        "日本語の森",
    ],
)
def test_a_class_value_becomes_a_safe_folder_inside_the_output(
    tmp_path: Path, model: OnnxModel, value: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    value = str(victim) if value == VICTIM else value
    raster = painted_raster(tmp_path / "r.tif", colour_grid(2, 2, seed=3), TILE)
    labels = {value: [(0, 0), (0, 1)], "plain": [(1, 0), (1, 1)]}
    out, summary, record = _write(tmp_path, model, labels, [raster])
    assert summary.counts == {value: 2, "plain": 2} == record["counts"]
    assert record["classes"]["plain"] == "plain"
    _check_folder(out, summary, record)
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]


def test_colliding_class_values_get_distinct_folders_recorded_in_chips_json(
    tmp_path: Path, model: OnnxModel
) -> None:
    values = [
        "a/b", "a_b", "a\\b", "Water", "water", NFC_FORET, NFD_FORET, "x" * 300, "x" * 299 + "y",
        "..", ".", "", "  ", RECORD_NAME, "unnamed",
    ]  # fmt: skip
    cells = [(row, col) for row in range(4) for col in range(4)]
    labels = {value: [cell] for value, cell in zip(values, cells, strict=False)}
    raster = painted_raster(tmp_path / "r.tif", colour_grid(4, 4, seed=5), TILE)
    out, summary, record = _write(tmp_path, model, labels, [raster])
    # empty and blank values label nothing (snca_cli.tasks.labels); NFC and NFD spellings of one
    # word are two values of the field, each with its own folder
    assert sorted(summary.counts) == sorted(v for v in values if v.strip())
    _check_folder(out, summary, record)
    folders = record["classes"]
    # a value that is already a safe name keeps it; the others take a suffix
    assert folders["a_b"] == "a_b" and folders["Water"] == "Water"
    assert folders["unnamed"] == "unnamed"
    assert folders["a/b"].startswith("a_b-") and folders["a\\b"].startswith("a_b-")
    assert folders["water"].startswith("water-")
    assert folders["x" * 300] != folders["x" * 299 + "y"]
    assert folders[RECORD_NAME] != RECORD_NAME and (out / RECORD_NAME).is_file()


def test_rasters_with_one_name_in_two_folders_give_distinct_chips(
    tmp_path: Path, model: OnnxModel
) -> None:
    """The issue's case (36 chips reported, 18 on disk): each raster's chips keep their own
    names, and chips.json tells the rasters apart."""
    colours = colour_grid(2, 3, seed=11)
    for year in ("2021", "2022"):
        (tmp_path / year).mkdir()
    first = painted_raster(tmp_path / "2021" / "scene.tif", colours, TILE)
    second = painted_raster(tmp_path / "2022" / "scene.tif", colours[:, ::-1], TILE)
    labels = {"red": [(0, 0), (0, 1), (0, 2)], "green": [(1, 0), (1, 1), (1, 2)]}
    out, summary, record = _write(tmp_path, model, labels, [first, second])
    assert summary.counts == {"green": 6, "red": 6}
    _check_folder(out, summary, record)
    names = sorted(record["rasters"])
    assert len(names) == 2 and names[0] == "scene" and names[1].startswith("scene-")
    assert [record["rasters"][name]["file"] for name in names] == ["scene.tif", "scene.tif"]
    for name in names:
        mine = [chip for chip in record["chips"] if chip["raster"] == name]
        assert len(mine) == 6
        assert all(chip["file"].split("/")[1].startswith(f"{name}_r") for chip in mine)


def test_a_raster_named_twice_is_used_once(tmp_path: Path, model: OnnxModel) -> None:
    raster = painted_raster(tmp_path / "scene.tif", colour_grid(2, 2, seed=2), TILE)
    labels = {"red": [(0, 0), (0, 1)], "green": [(1, 0), (1, 1)]}
    same = tmp_path / "work" / ".." / "scene.tif"
    out, summary, record = _write(tmp_path, model, labels, [raster, same])
    assert summary.counts == {"green": 2, "red": 2}
    assert any("scene.tif is named twice" in w for w in summary.warnings), summary.warnings
    assert list(record["rasters"]) == ["scene"]
    _check_folder(out, summary, record)


def test_the_record_keeps_class_values_exactly(tmp_path: Path, model: OnnxModel) -> None:
    raster = painted_raster(tmp_path / "r.tif", colour_grid(2, 2, seed=4), TILE)
    labels = {"../Deep water": [(0, 0), (0, 1)], "Forêt/Wald": [(1, 0), (1, 1)]}
    _, _, record = _write(tmp_path, model, labels, [raster])
    assert {chip["class"] for chip in record["chips"]} == set(labels)
    assert record["classes"] == {"../Deep water": "_Deep water", "Forêt/Wald": "Forêt_Wald"}
    assert np.unique([chip["raster"] for chip in record["chips"]]).tolist() == ["r"]
