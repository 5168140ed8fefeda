"""A full disk during classify, index build/add and search -o: the old outputs stay intact, no
partial set or staging folder is left, and the error is one clear line.

The real test writes to a small tmpfs filled up to a few KiB or to the last byte (needs root and
``mount``; skipped elsewhere with the reason); the simulated one makes the writer, or the making
of the staging folder, raise ENOSPC and runs anywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from snca_cli.tasks.index import store as store_module
from tests.helpers.classify_data import COLOURS, NAMES
from tests.helpers.index_data import TILE, colour_grid
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import painted, painted_raster, write_raster

runner = CliRunner()
FREE_BYTES = 40 * 1024  # less than one GeoPackage


def _mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mount a tmpfs on ``folder``; the reason when it cannot be."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "needs root and mount(8) for a small tmpfs"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (unmounted afterwards)."""
    folder = tmp_path / "disk"
    reason = _mount_tmpfs(folder, "2m")
    if reason:
        pytest.skip(reason)
    try:
        yield folder
    finally:
        # lazy: a memory map of the index the search command opened may still hold it
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(disk: Path, left: int) -> None:
    """Leave at most ``left`` bytes free on ``disk``."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as handle:
        handle.write(b"\0" * max(free - left, 0))
    assert shutil.disk_usage(disk).free <= left


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "filler"
    }


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=TILE, class_names=NAMES)
    return {
        "model": model,
        "a": painted_raster(tmp_path / "a.tif", colour_grid(3, 4, seed=1), TILE),
        "b": painted_raster(tmp_path / "b.tif", colour_grid(2, 3, seed=2), TILE),
        "scene": write_raster(tmp_path / "scene.tif", painted(COLOURS, TILE)),
    }


def _commands(folder: Path, inputs: dict[str, Path]) -> dict[str, tuple[list[str], list[str]]]:
    """(what makes the old outputs, the run that meets the full disk) per command."""
    model = ["-m", str(inputs["model"])]
    out, idx = folder / "t.gpkg", folder / "idx"
    classify = ["classify", str(inputs["a"]), *model, "-o", str(out)]
    classify += ["--class-map", str(folder / "t.tif")]
    build = ["index", "build", str(inputs["a"]), *model, "-o", str(idx)]
    search = ["search", str(idx), "--tile-id", "1", "-o", str(folder / "s.gpkg")]
    return {
        "classify": (classify, [*classify[:1], str(inputs["scene"]), *classify[2:], "--force"]),
        "index build": (build, [*build[:2], str(inputs["b"]), *build[3:], "--force"]),
        "index add": (build, ["index", "add", str(idx), str(inputs["b"]), *model]),
        "search -o": (build, [*search, "--force"]),
    }


@pytest.mark.parametrize("left", [FREE_BYTES, 0], ids=["40 KiB free", "0 bytes free"])
@pytest.mark.parametrize("command", ["classify", "index build", "index add", "search -o"])
def test_a_full_disk_leaves_the_old_outputs(
    disk: Path, inputs: dict[str, Path], command: str, left: int
) -> None:
    """With 0 bytes free the staging folder's token (and the index lock's pid) cannot be
    written: that once escaped as `unexpected OSError` and left the staging folder behind."""
    before_args, args = _commands(disk, inputs)[command]
    assert runner.invoke(app, before_args).exit_code == 0
    if command == "search -o":
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
    before = _snapshot(disk)
    _fill(disk, left)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left on the device")
    assert "nothing was changed" in lines[0]
    assert _snapshot(disk) == before  # the old outputs, byte for byte; no partial new file
    assert not list(disk.glob(".snca-staging-*"))
    (disk / "filler").unlink()
    again = runner.invoke(app, args)  # with space again, the rerun is not blocked
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("where", ["outputs", "staging folder"])
@pytest.mark.parametrize("command", ["classify", "index build", "index add", "search -o"])
def test_a_simulated_enospc_leaves_the_old_outputs(
    tmp_path: Path,
    inputs: dict[str, Path],
    command: str,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    before_args, args = _commands(folder, inputs)[command]
    assert runner.invoke(app, before_args).exit_code == 0
    if command == "search -o":
        assert runner.invoke(app, args).exit_code == 0
    before = _snapshot(folder)

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "staging folder":  # what 0 bytes free fails first
        monkeypatch.setattr("snca_cli.runtime.atomic._write_token", full)
    else:
        for module in ("snca_cli.tasks.classify", "snca_cli.tasks.index.results"):
            monkeypatch.setattr(f"{module}.write_polygons", full)
        monkeypatch.setattr(store_module, "write_tile_table", full)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left on the device to write")
    assert _snapshot(folder) == before
    assert not list(folder.glob(".snca-staging-*"))
