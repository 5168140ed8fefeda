"""Hostile index files: a crafted graph, array file or manifest whose checksums were recomputed
(so that only the structure checks can catch it) is refused by ``snca search`` and ``snca index
add`` with one ``error:`` line naming the file and what is wrong: never a crash (a negative exit
code: killed by a signal), an ``unexpected`` error or a ``/proc/self/fd`` name.

Every command runs in a fresh interpreter, so a segfault fails the test instead of killing it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from snca_cli.cli.support import EXIT_BAD_INPUT
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import build_index
from snca_cli.tasks.index.store import EMBEDDINGS_NAME, GRAPH_NAME, MANIFEST_NAME, TILES_NAME
from tests.helpers.hnsw_files import layout, put, set_field
from tests.helpers.index_data import TILE, colour_grid, resign_index
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted_raster

ROOT = Path(__file__).resolve().parents[4]
#: The tile id every search asks for.
QUERY = "0"


@dataclass(frozen=True)
class Case:
    """A crafted index: ``craft(index_dir)`` changes its files (the manifest is re-signed
    afterwards); the one error line must name ``name`` and match ``what``."""

    craft: Callable[[Path], None]
    name: str
    what: str


def _graph(field: str, value: float) -> Callable[[Path], None]:
    return lambda d: set_field(d / GRAPH_NAME, field, value)


def _graph_bytes(edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def craft(d: Path) -> None:
        path = d / GRAPH_NAME
        path.write_bytes(edit(path.read_bytes()))

    return craft


def _upper_element(d: Path) -> int:
    """An element of the graph with upper-level links."""
    levels = layout(d / GRAPH_NAME).levels
    return next(e for e, level in enumerate(levels) if level >= 1)


def _level0_word(element: int, word: int, value: int) -> Callable[[Path], None]:
    """Overwrite word ``word`` of an element's level-0 link list (0: its count word)."""
    return lambda d: put(
        d / GRAPH_NAME, layout(d / GRAPH_NAME).level0(element) + 4 * word, "=I", value
    )


def _upper_links(count: int, *ids: int) -> Callable[[Path], None]:
    """Overwrite the level-1 link list of an element with upper levels: its count word and
    its first neighbour ids."""

    def craft(d: Path) -> None:
        offset = layout(d / GRAPH_NAME).upper_list(_upper_element(d), 1)
        for word, value in enumerate((count, *ids)):
            put(d / GRAPH_NAME, offset + 4 * word, "=I", value)

    return craft


def _upper_link_to_level0(d: Path) -> None:
    """A level-1 link to an element that has no level 1."""
    _upper_links(1, layout(d / GRAPH_NAME).levels.index(0))(d)


def _upper_size(value: Callable[[int], int]) -> Callable[[Path], None]:
    """Overwrite the size word of the upper-level lists of an element that has some
    (``value(size_links)``)."""

    def craft(d: Path) -> None:
        graph = layout(d / GRAPH_NAME)
        size_links = (int(graph.header["max_m"]) + 1) * 4
        put(d / GRAPH_NAME, graph.upper[_upper_element(d)] - 4, "=I", value(size_links))

    return craft


def _label(element: int, value: Callable[[Path], int]) -> Callable[[Path], None]:
    return lambda d: put(d / GRAPH_NAME, layout(d / GRAPH_NAME).label(element), "=Q", value(d))


def _enterpoint_on_level0(d: Path) -> None:
    set_field(d / GRAPH_NAME, "enterpoint", layout(d / GRAPH_NAME).levels.index(0))


def _npy_header(name: str, header: str, version: bytes = b"\x01\x00") -> Callable[[Path], None]:
    """Replace the header of a ``.npy`` file (a dict literal) and keep its data."""

    def craft(d: Path) -> None:
        with open(d / name, "rb") as handle:
            np.lib.format.read_magic(handle)
            np.lib.format.read_array_header_1_0(handle)
            data = handle.read()
        text = header.encode("latin1")
        text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
        (d / name).write_bytes(b"\x93NUMPY" + version + struct.pack("<H", len(text)) + text + data)

    return craft


def _tiles_descr() -> str:
    from snca_cli.tasks.index.store import TILE_DTYPE

    return repr(np.lib.format.dtype_to_descr(TILE_DTYPE))


def _tiles_field(field: str, value: int) -> Callable[[Path], None]:
    def craft(d: Path) -> None:
        tiles = np.load(d / TILES_NAME)
        tiles[field][-1] = value
        np.save(d / TILES_NAME, tiles, allow_pickle=False)

    return craft


def _manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda d: resign_index(d, edit)


def _set(*keys: str | int, value: object) -> Callable[[Path], None]:
    """Set ``payload[keys[0]][keys[1]]...`` of the manifest to ``value``."""

    def edit(payload: dict) -> None:
        for key in keys[:-1]:
            payload = payload[key]
        payload[keys[-1]] = value

    return _manifest(edit)


GRAPH_CASES = {
    "ff ff ff 7f at offset 0": Case(
        _graph_bytes(lambda b: b"\xff\xff\xff\x7f" + b[4:]), GRAPH_NAME, "level-0 offset"
    ),
    "more vectors than the manifest": Case(
        _graph("count", 10**6), GRAPH_NAME, "holds 1000000 vectors, the manifest says 12"
    ),
    "2**60 vectors": Case(_graph("count", 2**60), GRAPH_NAME, "holds 1152921504606846976 vectors"),
    "capacity below the count": Case(_graph("max_elements", 3), GRAPH_NAME, "room for 3"),
    "element size 7": Case(_graph("size_data_per_element", 7), GRAPH_NAME, "laid out"),
    "element size 2**40": Case(_graph("size_data_per_element", 2**40), GRAPH_NAME, "laid out"),
    "label offset 2**40": Case(_graph("label_offset", 2**40), GRAPH_NAME, "laid out"),
    "data offset 2**40": Case(_graph("offset_data", 2**40), GRAPH_NAME, "laid out"),
    "entry point beyond the count": Case(_graph("enterpoint", 1000), GRAPH_NAME, "entry point"),
    "no entry point": Case(_graph("enterpoint", 2**32 - 1), GRAPH_NAME, "entry point"),
    "entry point on level 0": Case(_enterpoint_on_level0, GRAPH_NAME, "entry point"),
    "top level -5": Case(_graph("max_level", -5), GRAPH_NAME, "top level"),
    "top level 2**31 - 1": Case(_graph("max_level", 2**31 - 1), GRAPH_NAME, "top level"),
    "top level 0 under a level-1 element": Case(_graph("max_level", 0), GRAPH_NAME, "top level"),
    "maxM 2**40": Case(_graph("max_m", 2**40), GRAPH_NAME, "the manifest says M=16"),
    "maxM0 2**40": Case(_graph("max_m0", 2**40), GRAPH_NAME, "the manifest says M=16"),
    "M 0": Case(_graph("m", 0), GRAPH_NAME, "the manifest says M=16"),
    "level multiplier NaN": Case(_graph("mult", float("nan")), GRAPH_NAME, "level multiplier"),
    "ef_construction 2**62": Case(_graph("ef_construction", 2**62), GRAPH_NAME, "ef_construction"),
    "link lists past the end": Case(_upper_size(lambda s: 0xFFFFFF00 // s * s), GRAPH_NAME, "past"),
    "link lists of a partial level": Case(_upper_size(lambda s: s + 4), GRAPH_NAME, "multiple"),
    "truncated to half": Case(_graph_bytes(lambda b: b[: len(b) // 2]), GRAPH_NAME, "too small"),
    "truncated header": Case(_graph_bytes(lambda b: b[:50]), GRAPH_NAME, "header"),
    "empty": Case(_graph_bytes(lambda b: b""), GRAPH_NAME, "header"),
    "bytes after the last list": Case(_graph_bytes(lambda b: b + bytes(4)), GRAPH_NAME, "after"),
    "level-0 link beyond the count": Case(
        _level0_word(3, 1, 0x7FFFFFFF), GRAPH_NAME, "links to element 2147483647"
    ),
    "60000 level-0 links": Case(_level0_word(3, 0, 60000), GRAPH_NAME, "60000 links on level 0"),
    "deleted element": Case(_level0_word(3, 0, 0x10000), GRAPH_NAME, "deleted"),
    "label 10**12": Case(_label(0, lambda d: 10**12), GRAPH_NAME, "labels"),
    "duplicate label": Case(_label(1, lambda d: 0), GRAPH_NAME, "labels"),
    "level-1 link to a level-0 element": Case(_upper_link_to_level0, GRAPH_NAME, "no level 1"),
    "60000 level-1 links": Case(_upper_links(60000), GRAPH_NAME, "60000 links on level 1"),
    "level-1 link beyond the count": Case(_upper_links(1, 999), GRAPH_NAME, "links to element 999"),
}

ARRAY_CASES = {
    "tile table of 10**12 rows": Case(
        _npy_header(
            TILES_NAME,
            f"{{'descr': {_tiles_descr()}, 'fortran_order': False, 'shape': ({10**12},), }}",
        ),
        TILES_NAME,
        "has a header for",
    ),
    "tile table of 2**60 rows": Case(
        _npy_header(
            TILES_NAME,
            f"{{'descr': {_tiles_descr()}, 'fortran_order': False, 'shape': ({2**60},), }}",
        ),
        TILES_NAME,
        "has a header for",
    ),
    "object tile table": Case(
        _npy_header(TILES_NAME, "{'descr': '|O', 'fortran_order': False, 'shape': (12,), }"),
        TILES_NAME,
        "holds object",
    ),
    "negative rows": Case(
        _npy_header(
            EMBEDDINGS_NAME, "{'descr': '<f4', 'fortran_order': False, 'shape': (-12, 3), }"
        ),
        EMBEDDINGS_NAME,
        "shape",
    ),
    "fortran order, huge": Case(
        _npy_header(
            EMBEDDINGS_NAME, f"{{'descr': '<f4', 'fortran_order': True, 'shape': ({2**40}, 3), }}"
        ),
        EMBEDDINGS_NAME,
        "Fortran order",
    ),
    "object embeddings": Case(
        _npy_header(EMBEDDINGS_NAME, "{'descr': '|O', 'fortran_order': False, 'shape': (12, 3), }"),
        EMBEDDINGS_NAME,
        "holds object",
    ),
    "big-endian embeddings": Case(
        _npy_header(
            EMBEDDINGS_NAME, "{'descr': '>f4', 'fortran_order': False, 'shape': (12, 3), }"
        ),
        EMBEDDINGS_NAME,
        "holds >f4",
    ),
    "wider than the file": Case(
        _npy_header(
            EMBEDDINGS_NAME, "{'descr': '<f4', 'fortran_order': False, 'shape': (12, 3000), }"
        ),
        EMBEDDINGS_NAME,
        "has a header for",
    ),
    "format version 3": Case(
        _npy_header(
            EMBEDDINGS_NAME,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (12, 3), }",
            b"\x03\x00",
        ),
        EMBEDDINGS_NAME,
        "format version 3.0",
    ),
    "unparsable header": Case(
        _npy_header(EMBEDDINGS_NAME, "{'descr': '<f4', 'fortran_order': False, 'shape': (12, "),
        EMBEDDINGS_NAME,
        "header",
    ),
    "tile of raster 5": Case(_tiles_field("raster", 5), TILES_NAME, "raster 5"),
    "tile of class 7": Case(_tiles_field("class_index", 7), TILES_NAME, "class 7"),
}

MANIFEST_CASES = {
    "tile_size 0": Case(_set("model", "tile_size", value=0), MANIFEST_NAME, r"model\.tile_size"),
    "tile_size as text": Case(
        _set("model", "tile_size", value="8"), MANIFEST_NAME, r"model\.tile_size"
    ),
    "embedding_dim 0": Case(
        _set("model", "embedding_dim", value=0), MANIFEST_NAME, r"model\.embedding_dim"
    ),
    "input_bands 0": Case(
        _set("model", "input_bands", value=0), MANIFEST_NAME, r"model\.input_bands"
    ),
    "resolution as text": Case(
        _set("model", "resolution_m", value="x"), MANIFEST_NAME, r"model\.resolution_m"
    ),
    "no class": Case(_set("model", "class_names", value=[]), MANIFEST_NAME, "class_names"),
    "class list as text": Case(
        _set("model", "class_names", value="abc"), MANIFEST_NAME, "class_names"
    ),
    "class names as numbers": Case(
        _set("model", "class_names", value=[1, 2, 3]), MANIFEST_NAME, "class_names"
    ),
    "class list shorter than the classes used": Case(
        _set("model", "class_names", value=["a"]), TILES_NAME, "names 1 class"
    ),
    "M 2**40": Case(_set("index", "M", value=2**40), MANIFEST_NAME, r"index\.M"),
    "ef 0": Case(_set("index", "ef", value=0), MANIFEST_NAME, r"index\.ef"),
    "count -1": Case(_set("index", "count", value=-1), MANIFEST_NAME, r"index\.count"),
    "shard_size -4": Case(
        _set("index", "shard_size", value=-4), MANIFEST_NAME, r"index\.shard_size"
    ),
    "overlap as text": Case(
        _set("tiling", "overlap", value="lots"), MANIFEST_NAME, r"tiling\.overlap"
    ),
    "overlap 10**9": Case(_set("tiling", "overlap", value=1e9), MANIFEST_NAME, "overlap"),
    "min_valid 7": Case(_set("tiling", "min_valid", value=7), MANIFEST_NAME, "min-valid"),
    "band 0": Case(_set("tiling", "bands", value=[0]), MANIFEST_NAME, "bands"),
    "edge unknown": Case(_set("tiling", "edge", value="wrap"), MANIFEST_NAME, "edge"),
    "rasters as text": Case(_set("rasters", value="r.tif"), MANIFEST_NAME, "rasters"),
    "bad CRS": Case(
        _set("rasters", 0, "crs_wkt", value="NOT A CRS"), MANIFEST_NAME, r"rasters\[0\].*CRS"
    ),
    "short transform": Case(
        _set("rasters", 0, "transform", value=[1, 2]), MANIFEST_NAME, r"rasters\[0\]\.transform"
    ),
    "singular transform": Case(
        _set("rasters", 0, "transform", value=[0, 0, 0, 0, 0, 0]),
        MANIFEST_NAME,
        r"rasters\[0\]\.transform",
    ),
    "width -3": Case(_set("rasters", 0, "width", value=-3), MANIFEST_NAME, r"rasters\[0\]\.width"),
    "epsg as text": Case(
        _set("rasters", 0, "epsg", value="x"), MANIFEST_NAME, r"rasters\[0\]\.epsg"
    ),
    "first tile 5": Case(
        _set("rasters", 0, "first_tile_id", value=5), MANIFEST_NAME, "first_tile_id"
    ),
}

CASES = {**GRAPH_CASES, **ARRAY_CASES, **MANIFEST_CASES}
#: The cases ``snca index add`` runs as well (it loads the graph to extend it).
ADD_CASES = [
    "ff ff ff 7f at offset 0",
    "entry point beyond the count",
    "level multiplier NaN",
    "level-0 link beyond the count",
    "level-1 link to a level-0 element",
    "label 10**12",
    "object embeddings",
    "tile_size 0",
    "overlap as text",
    "bad CRS",
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the band-mean model, an index of a painted raster (12 tiles, an
    hnswlib graph with an upper level) and a second raster to add."""
    work = tmp_path_factory.mktemp("hostile")
    model = OnnxModel(make_band_mean_model(work / "m.onnx", tile_size=TILE))
    raster = painted_raster(work / "painted.tif", colour_grid(3, 4, seed=7), TILE)
    painted_raster(work / "more.tif", colour_grid(2, 2, seed=8), TILE)
    build_index([raster], model, work / "idx")
    return work


def _crafted(pristine: Path, tmp_path: Path, case: Case) -> Path:
    index = tmp_path / "idx"
    shutil.copytree(pristine / "idx", index)
    case.craft(index)
    if case.name != MANIFEST_NAME:
        resign_index(index)
    return index


def _snca(*args: str | Path) -> subprocess.CompletedProcess:
    """``snca ARGS`` in a fresh interpreter (no traceback: SNCA_DEBUG unset)."""
    env = {key: value for key, value in os.environ.items() if key != "SNCA_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "snca_cli.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_refused(done: subprocess.CompletedProcess, index: Path, case: Case) -> None:
    assert done.returncode == EXIT_BAD_INPUT, (
        f"exit {done.returncode} (negative: killed by a signal): {done.stderr[-2000:]}"
    )
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert "unexpected" not in line and "/proc/self/fd" not in line, line
    assert str(index) in line and case.name in line, line
    assert re.search(case.what, line), line


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_snca_search_refuses_a_crafted_index(pristine: Path, tmp_path: Path, case: Case) -> None:
    index = _crafted(pristine, tmp_path, case)
    _assert_refused(_snca("search", index, "--tile-id", QUERY), index, case)


@pytest.mark.slow
@pytest.mark.parametrize("name", ADD_CASES)
def test_snca_index_add_refuses_a_crafted_index(pristine: Path, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    index = _crafted(pristine, tmp_path, case)
    before = {p.name: p.read_bytes() for p in index.iterdir()}
    done = _snca("index", "add", index, pristine / "more.tif", "-m", pristine / "m.onnx")
    _assert_refused(done, index, case)
    assert {p.name: p.read_bytes() for p in index.iterdir()} == before  # left as it was


def test_random_resigned_graph_edits_never_crash(pristine: Path, tmp_path: Path) -> None:
    """400 random edits, half of a header field, half of a word of the elements and links (a
    changed vector or a link to another element can change answers: that is content, which
    only the checksum guards); every refusal names the graph."""
    shutil.copytree(pristine / "idx", tmp_path / "idx")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.index_campaigns",
            "graph",
            str(tmp_path),
            "400",
            "11",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode} (negative: killed by a signal): {done.stderr[-2000:]}"
    )
    report = json.loads(done.stdout.splitlines()[-1])
    header, body = report["header"], report["body"]
    assert header["changed"] == 0, report  # a header edit is refused or harmless
    assert header["unnamed"] == body["unnamed"] == 0, report
    assert header["refused"] >= 150 and body["refused"] >= 10, report


def test_a_huge_graph_capacity_is_harmless(pristine: Path, tmp_path: Path) -> None:
    """hnswlib reserves room for the manifest's count, never the file's capacity field."""
    index = _crafted(pristine, tmp_path, Case(_graph("max_elements", 2**62), GRAPH_NAME, ""))
    done = _snca("search", index, "--tile-id", QUERY)
    assert done.returncode == 0, done.stderr


def test_class_names_with_markup_are_shown_as_they_are(pristine: Path, tmp_path: Path) -> None:
    """Class names are text, never rich markup: ``[/]`` or ``[bold]`` are printed literally."""
    names = ["[/]", "b[bold]", "c[/x]"]
    index = _crafted(
        pristine, tmp_path, Case(_set("model", "class_names", value=names), MANIFEST_NAME, "")
    )
    done = _snca("search", index, "--tile-id", QUERY)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    shown = {name for name in names if name in done.stdout}
    classes = np.load(index / TILES_NAME)["class_index"]
    assert shown == {names[c] for c in np.unique(classes)}


def test_a_crafted_shard_is_refused_by_its_name(pristine: Path, tmp_path: Path) -> None:
    """A sharded index whose second graph is a copy of the first (same size, other labels)."""
    index = tmp_path / "idx"
    model = OnnxModel(pristine / "m.onnx")
    build_index([pristine / "painted.tif"], model, index, shard_size=5)
    shutil.copy(index / "index-000.hnsw", index / "index-001.hnsw")
    resign_index(index)
    done = _snca("search", index, "--tile-id", QUERY)
    _assert_refused(done, index, Case(lambda d: None, "index-001.hnsw", "labels"))
    assert json.loads((index / MANIFEST_NAME).read_text())["index"]["shard_size"] == 5
