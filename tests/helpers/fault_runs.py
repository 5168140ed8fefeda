"""Kill a writer with SIGKILL at every file operation of its commit and look at what is left.

Run as ``python -m tests.helpers.fault_runs SCENARIO WORKDIR [fallback]`` (a fresh
interpreter, so no onnxruntime thread exists when it forks). For N = 1, 2, ... it restores the
old outputs, forks a child that runs the scenario's write with ``SNCA_FAULT_AT=N`` (killed at
its N-th file operation), then records the state: right after the kill (``before``), and after
the recovery the next writer runs (``after``, and ``left``: staging folders left after it). It
stops at the first N the child survives. Prints one JSON list of
``{"at": N, "killed": bool, "before": state, "after": state, "left": n}``.

Scenarios: ``add`` (index add), ``build`` (index build --force), ``classify`` (GeoPackage,
GeoJSON and class map), ``search`` (search -o: .gpkg and .geojson); ``fallback`` publishes
folders by two renames, as where no atomic exchange exists. A state names which version each
output holds (``old``, ``new``, ``absent`` or ``broken``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pyogrio
import rasterio

from snca_cli.errors import SncaError
from snca_cli.runtime import atomic
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.classify import classify_raster
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import read_index

MAX_POINTS = 40


def _index_state(index_dir: Path, old: int, new: int) -> str:
    if not index_dir.exists():
        return "absent"
    try:
        count = read_index(index_dir).manifest.count
    except SncaError:
        return "broken"
    return {old: "old", new: "new"}.get(count, f"count {count}")


def _layer_state(path: Path, old: int, new: int) -> str:
    if not path.exists():
        return "absent"
    try:
        count = len(pyogrio.read_info(path, layer=0)["fields"])
    except Exception:  # noqa: BLE001 - any unreadable file is a broken one
        return "broken"
    return {old: "old", new: "new"}.get(count, f"{count} fields")


def _map_state(path: Path) -> str:
    if not path.exists():
        return "absent"
    try:
        with rasterio.open(path) as src:
            names = json.loads(src.tags()["class_names"])
            src.read(1)
    except Exception:  # noqa: BLE001
        return "broken"
    return "new" if names[0] == "new_0" else "old"


def _scenario(name: str, work: Path):
    """(write, state, restore, folder) of a scenario; ``work`` holds what the test made."""
    idx, pristine = work / "idx", work / "pristine"
    if name in ("add", "build"):
        old = read_index(pristine).manifest.count
        new = old + 6 if name == "add" else 6

        def write() -> None:
            model = OnnxModel(work / "m.onnx")
            if name == "add":
                add_to_index(idx, [work / "second.tif"], model)
            else:
                build_index([work / "second.tif"], model, idx, force=True)

        def state() -> dict[str, str]:
            return {"index": _index_state(idx, old, new)}

        def restore() -> None:
            for leftover in work.glob(".snca-staging-*"):
                shutil.rmtree(leftover)
            shutil.rmtree(idx, ignore_errors=True)
            shutil.copytree(pristine, idx)

        return write, state, restore, work
    out = work / "out"
    if name == "classify":
        outputs = ["a.gpkg", "a.geojson", "a_classes.tif"]
    else:
        outputs = ["s.gpkg", "s.geojson"]
    if name == "classify":

        def write() -> None:
            model = OnnxModel(work / "new.onnx")
            classify_raster(
                work / "r.tif",
                model,
                out / "a.gpkg",
                top_k=2,
                force=True,
                class_map=out / "a_classes.tif",
            )

        fields = len(pyogrio.read_info(work / "old" / "a.gpkg", layer=0)["fields"])

        def state() -> dict[str, str]:
            # old: top-1, new: top-2 (two more fields)
            return {
                "gpkg": _layer_state(out / "a.gpkg", fields, fields + 2),
                "geojson": _layer_state(out / "a.geojson", fields, fields + 2),
                "map": _map_state(out / "a_classes.tif"),
            }
    else:

        def write() -> None:
            with TileIndex.open(idx) as index:
                index.search_tile_id(1, k=3).write(out / "s.gpkg", force=True)

        def state() -> dict[str, str]:
            # old: the hits of another query, written with k=2 (the new ones have k=3)
            return {
                "gpkg": _count_state(out / "s.gpkg", 2, 3),
                "geojson": _count_state(out / "s.geojson", 2, 3),
            }

    def restore() -> None:
        for leftover in out.glob(".snca-staging-*"):
            shutil.rmtree(leftover)
        for name_ in outputs:
            shutil.copy(work / "old" / name_, out / name_)

    return write, state, restore, out


def _count_state(path: Path, old: int, new: int) -> str:
    if not path.exists():
        return "absent"
    try:
        count = pyogrio.read_info(path, layer="similar_tiles")["features"]
    except Exception:  # noqa: BLE001
        return "broken"
    return {old: "old", new: "new"}.get(count, f"{count} features")


def main(name: str, work: Path, fallback: bool) -> list[dict]:
    write, state, restore, folder = _scenario(name, work)
    if fallback:  # as where no atomic exchange of folders exists
        atomic.exchange = lambda a, b: False
    runs = []
    for at in range(1, MAX_POINTS + 1):
        restore()
        pid = os.fork()
        if pid == 0:  # the child: write, killed at its at-th file operation
            os.environ[atomic.FAULT_ENV] = str(at)
            try:
                write()
            except BaseException:  # noqa: BLE001
                os._exit(3)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed and os.waitstatus_to_exitcode(status) != 0:
            runs.append({"at": at, "killed": False, "error": status})
            break
        before = state()
        atomic.recover_outputs(folder)  # what the next writer does first
        leftovers = len(list(folder.glob(f"{atomic.STAGING_PREFIX}*")))
        runs.append(
            {"at": at, "killed": killed, "before": before, "after": state(), "left": leftovers}
        )
        if not killed:
            break
    return runs


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]), "fallback" in sys.argv[3:])))
