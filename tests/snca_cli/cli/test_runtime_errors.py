"""Bad input to `snca classify`: one line `error: ...`, exit code 2, no traceback, no output."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from snca_cli.cli import app
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import RED, painted, truncated_geotiff, write_raster

runner = CliRunner()


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return make_band_mean_model(tmp_path / "model.onnx", tile_size=16)


def bad_input(case: str, tmp_path: Path, model: Path) -> tuple[list[str], str]:
    """Arguments for `snca classify` and the expected error line (a regex) for each case."""
    out = ["-o", str(tmp_path / "out" / "result.gpkg")]
    good = write_raster(tmp_path / "good.tif", painted([[RED, RED]], 16))
    if case == "missing file":
        raster = tmp_path / "missing.tif"
        return [str(raster), "-m", str(model), *out], f"raster {raster} does not exist"
    if case == "not a raster":
        raster = tmp_path / "notes.tif"
        raster.write_text("hello\n")
        return [str(raster), "-m", str(model), *out], "notes.tif is not a raster GDAL can read: "
    if case == "truncated GeoTIFF":
        raster = truncated_geotiff(tmp_path / "cut.tif")
        return [str(raster), "-m", str(model), *out], (
            r"cannot read cut.tif \(corrupt or truncated\?\): .*TIFFReadEncodedStrip"
        )
    if case == "smaller than a tile":
        raster = write_raster(tmp_path / "tiny.tif", np.ones((3, 10, 40), np.uint8))
        return [str(raster), "-m", str(model), *out], (
            "raster tiny.tif is 40 x 10 px, smaller than one 16 x 16 px tile of the model"
        )
    if case == "band count":
        raster = write_raster(tmp_path / "gray.tif", np.ones((1, 32, 32), np.uint8))
        return [str(raster), "-m", str(model), *out], (
            r"raster gray.tif has 1 band\(s\); the model takes 3, reading bands 1, 2, 3 "
            r"\(choose bands with --bands\)"
        )
    if case == "no CRS":
        raster = write_raster(tmp_path / "nocrs.tif", np.ones((3, 32, 32), np.uint8), crs=None)
        return [str(raster), "-m", str(model), *out], "raster nocrs.tif has no CRS"
    if case == "model without metadata":
        bare = make_band_mean_model(tmp_path / "bare.onnx", with_metadata=False)
        return [str(good), "-m", str(bare), *out], "model bare.onnx lacks the snca metadata keys"
    if case == "existing output":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "result.geojson").write_text("{}")
        message = "refusing to replace .*result.geojson: it is not a GeoJSON"
        return [str(good), "-m", str(model), *out], message
    if case == "output folder a link loop":  # was `unexpected RuntimeError: Symlink loop`
        (tmp_path / "out").symlink_to("out")
        message = "out is a symbolic link that leads to no folder .a loop or a missing target.$"
        return [str(good), "-m", str(model), *out], message
    if case == "raster a link loop":
        (tmp_path / "loop.tif").symlink_to("loop.tif")
        return [str(tmp_path / "loop.tif"), "-m", str(model), *out], "loop.tif does not exist"
    if case == "bad overlap":
        return [str(good), "-m", str(model), *out, "--overlap", "ten"], "overlap must be pixels"
    if case == "overlap of a whole tile":
        return [str(good), "-m", str(model), *out, "--overlap", "16"], "reads every pixel 256 times"
    if case == "overlap nan":
        return [str(good), "-m", str(model), *out, "--overlap", "nan"], "overlap must be pixels"
    if case == "too many threads":
        return [str(good), "-m", str(model), *out, "--threads", "5000"], "threads must be 0 .* to"
    if case == "negative threads":
        return [str(good), "-m", str(model), *out, "--threads", "-1"], "got -1"
    if case == "huge batch":
        args = [str(good), "-m", str(model), *out, "--batch-size", "10000000"]
        return args, "batch size must be 1 to 87,381 for this model's 16 px, 3-band tiles"
    if case == "model is a folder":
        return [str(good), "-m", str(tmp_path), *out], "is a folder, not an ONNX file"
    if case == "bad bands":
        return [str(good), "-m", str(model), *out, "--bands", "r,g,b"], "bands must be"
    if case == "bad resolution":
        return [str(good), "-m", str(model), *out, "--resolution", "fine"], "resolution must be"
    if case == "resolution 1e300":  # overflowed: `unexpected OverflowError`
        args = [str(good), "-m", str(model), *out, "--resolution", "1e300"]
        return args, r"resolution takes metres per pixel from 0.000001 to 1,000,000, .* 1e\+300$"
    raise AssertionError(case)


CASES = [
    "missing file",
    "not a raster",
    "truncated GeoTIFF",
    "smaller than a tile",
    "band count",
    "no CRS",
    "model without metadata",
    "existing output",
    "output folder a link loop",
    "raster a link loop",
    "bad overlap",
    "overlap of a whole tile",
    "overlap nan",
    "too many threads",
    "negative threads",
    "huge batch",
    "model is a folder",
    "bad bands",
    "bad resolution",
    "resolution 1e300",
]


def outputs_left(tmp_path: Path) -> list[str]:
    folder = tmp_path / "out"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != "result.geojson")


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(case: str, tmp_path: Path, model: Path) -> None:
    args, message = bad_input(case, tmp_path, model)
    result = runner.invoke(app, ["classify", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert outputs_left(tmp_path) == []


@pytest.mark.parametrize(
    "command",
    [
        ["classify", "{raster}", "-o", "{out}/result.gpkg"],
        ["info"],
        ["index", "build", "{raster}", "-o", "{out}/idx"],
        ["index", "add", "{out}/idx", "{raster}"],
        ["search", "{out}/idx", "--image", "{raster}"],
    ],
)
def test_a_missing_shipped_model_is_one_line(
    command: list[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(
        "snca_cli.runtime.default_model.default_model_path",
        lambda: tmp_path / "models" / "none.onnx",
    )
    raster = write_raster(tmp_path / "good.tif", painted([[RED, RED]], 16))
    paths = {"raster": str(raster), "out": str(tmp_path / "out")}
    result = runner.invoke(app, [part.format(**paths) for part in command])
    assert result.exit_code == 2, result.output
    hint = "name a model file" if command == ["info"] else "pass --model FILE"
    assert result.stderr.strip().splitlines() == [
        f"error: the default model snca-aid150-lite0.onnx is not installed; {hint}"
    ]
    assert outputs_left(tmp_path) == []


def snca(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh interpreter."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "snca_cli.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        **kwargs,
    )


@pytest.mark.parametrize(
    "case", [pytest.param("truncated GeoTIFF", marks=pytest.mark.slow), "missing file"]
)
def test_bad_input_through_a_real_process(case: str, tmp_path: Path, model: Path) -> None:
    args, message = bad_input(case, tmp_path, model)
    done = snca("classify", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert re.search(message, lines[0])
    assert outputs_left(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_ctrl_c_and_sigterm_stop_cleanly_with_no_output(
    tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    model = make_band_mean_model(tmp_path / "model.onnx", tile_size=8)
    colours = np.tile(np.array(RED), (256, 256, 1))
    raster = write_raster(tmp_path / "big.tif", painted(colours, 8))  # 65536 tiles
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "snca_cli.cli", "classify", str(raster), "-m", str(model)]
        + ["-o", str(out / "big.gpkg"), "--class-map", str(out / "big.tif")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # as from a terminal, even where this test runs as a background job (SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = process.stdout.readline()  # printed once the model is loaded, before the tiles
    assert first.startswith("model model.onnx"), first
    time.sleep(0.5)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines() == [f"{said}: stopped cleanly, no partial output was kept"]
    assert list(out.iterdir()) == []


@pytest.mark.slow  # a fresh interpreter per case (the fast lane keeps one real process)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{idx}", "--lonlat", "200", "100"], "error: longitude must be -180 to 180"),
        (["search", "{idx}", "--lonlat", "10", "-91"], "error: latitude must be -90 to 90"),
        (
            ["classify", "{bad_name}", "-o", "{out}/a.gpkg"],
            r"error: raster .*\\xff\.tif has a name",
        ),
        (
            ["classify", "{raster}", "-o", "{out}/\udcfe.gpkg"],
            r"error: output .*\\xfe\.gpkg has a name",
        ),
        (["index", "add", "{idx}", "{raster}", "--threads", "100000"], "error: threads must be"),
    ],
)
def test_more_bad_input_is_exactly_one_line_on_a_real_stderr(
    tmp_path: Path, model: Path, args: list[str], message: str
) -> None:
    """Issue case 8, in a real process whose stderr is no TTY: one line, no warnings, no bar."""
    from snca_cli.runtime.onnx_model import OnnxModel
    from snca_cli.tasks.index.build import build_index

    raster = write_raster(tmp_path / "good.tif", painted([[RED, RED]], 16))
    bad_name = Path(os.fsdecode(bytes(tmp_path) + b"/\xff.tif"))
    bad_name.write_bytes(raster.read_bytes())
    build_index([raster], OnnxModel(model), tmp_path / "idx")
    paths = {"idx": tmp_path / "idx", "raster": raster, "bad_name": bad_name, "out": tmp_path}
    argv = [part.format(**paths) for part in args]
    if argv[0] != "search":
        argv += ["-m", str(model)]
    done = snca(*argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(message, lines[0]), done.stderr


def test_a_read_only_folder_is_one_line(tmp_path: Path, model: Path) -> None:
    """Issue case 8: writing into a read-only file system (a read-only tmpfs: needs root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("needs root and mount(8) for a read-only tmpfs")
    try:
        raster = write_raster(tmp_path / "good.tif", painted([[RED, RED]], 16))
        args = ["classify", str(raster), "-m", str(model), "-o", str(folder / "a.gpkg")]
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            f"error: cannot write in {folder}: Read-only file system; nothing was changed"
        )
        args = ["index", "build", str(raster), "-m", str(model), "-o", str(folder / "idx")]
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Read-only file system" in result.stderr
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
