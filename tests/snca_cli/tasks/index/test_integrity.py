"""Issue cases 3 and 4: concurrent writers never lose tiles; a damaged index file is refused
with one line naming it, never loaded (zero crashes, zero silently changed answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.index.build import add_to_index, build_index
from snca_cli.tasks.index.store import (
    DATA_FILES,
    MANIFEST_NAME,
    index_lock,
    lock_path,
    read_index,
)
from snca_cli.tasks.units import RunOptions
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.rasters import painted_raster

ROOT = Path(__file__).resolve().parents[4]


def _campaign(*args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-m", "tests.helpers.index_campaigns", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_every_byte_flip_in_every_index_file_is_refused_or_harmless(
    tmp_path: Path, index_dir: Path
) -> None:
    report = _campaign("flips", str(tmp_path), "120", "16")
    assert sorted(report) == sorted([MANIFEST_NAME, *DATA_FILES])
    for name, outcome in report.items():
        assert outcome["changed"] == 0, (name, outcome)  # no silent change
        assert outcome["unnamed"] == 0, (name, outcome)  # the message names the file
        assert outcome["refused"] + outcome["same"] == 120
        if name != MANIFEST_NAME:  # only a flip in the manifest's spacing can be harmless
            assert outcome["refused"] == 120, (name, outcome)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_twenty_pairs_of_concurrent_adds_keep_every_tile(tmp_path: Path, model: OnnxModel) -> None:
    base = painted_raster(tmp_path / "base.tif", colour_grid(3, 4, seed=1), TILE)
    painted_raster(tmp_path / "a.tif", colour_grid(2, 3, seed=2), TILE)
    painted_raster(tmp_path / "b.tif", colour_grid(2, 2, seed=3), TILE)
    build_index([base], model, tmp_path / "pristine")
    (tmp_path / "m.onnx").write_bytes(model.path.read_bytes())
    trials = _campaign("adds", str(tmp_path), "20")
    assert len(trials) == 20
    for trial in trials:
        assert trial["codes"] == [0, 0], trial
        assert trial["rasters"][0] == "base.tif"
        assert sorted(trial["rasters"][1:]) == ["a.tif", "b.tif"], trial
        assert trial["count"] == 12 + 6 + 4, trial


def test_a_second_writer_waits_for_the_first_and_says_so(
    tmp_path: Path, model: OnnxModel, index_dir: Path
) -> None:
    second = painted_raster(tmp_path / "second.tif", colour_grid(2, 3, seed=9), TILE)
    held = threading.Event()

    def hold() -> None:
        with index_lock(index_dir):
            held.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    messages: list[str] = []
    started = time.perf_counter()
    add_to_index(index_dir, [second], model, run=RunOptions(waiting=messages.append))
    waited = time.perf_counter() - started
    holder.join()
    assert waited >= 0.3
    assert len(messages) == 1 and f"pid {os.getpid()}" in messages[0]
    assert "being written by another process" in messages[0]
    assert read_index(index_dir).manifest.count == 18


def test_a_lock_file_planted_as_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious data")
    lock_path(tmp_path / "idx").symlink_to(victim)  # taking the lock would truncate the target
    with pytest.raises(SncaError, match="cannot lock index"), index_lock(tmp_path / "idx"):
        pass
    assert victim.read_text() == "precious data"
