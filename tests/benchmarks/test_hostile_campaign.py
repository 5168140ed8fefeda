"""benchmarks/hostile_campaign.py: its checks, shown a stand-in ``snca`` (a shell script) that
loses a file, crashes, prints a traceback or hangs, and a short campaign against the real CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_campaign import _in_python_start_up, covered, run_one, schedule

ROOT = Path(__file__).resolve().parents[2]
#: A kind whose one command must be refused (a symbolic link loop as the raster or model...);
#: its attack folder holds r.tif and m.onnx.
REFUSED = "symlink-loop"


def _stand_in(tmp_path: Path, body: str) -> str:
    """A fake ``snca`` running ``body`` (sh) in the attack's working folder."""
    script = tmp_path / "snca"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _failures(tmp_path: Path, body: str, timeout: float = 30.0) -> set[str]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    record = run_one(REFUSED, 3, _stand_in(tmp_path, body), timeout, 2048.0, str(work))
    assert list(work.iterdir()) == []  # nothing kept
    return {failure["kind"] for failure in record["failures"]}


def test_a_clean_refusal_passes(tmp_path: Path) -> None:
    assert _failures(tmp_path, 'echo "error: no such raster" >&2; exit 2') == set()


def test_a_lost_file_is_caught(tmp_path: Path) -> None:
    body = 'rm -f "$PWD/r.tif"; echo "error: no" >&2; exit 2'
    assert _failures(tmp_path, body) == {"lost"}


def test_a_file_written_by_a_refused_run_is_caught(tmp_path: Path) -> None:
    body = 'echo x > "$PWD/new.txt"; echo "error: no" >&2; exit 2'
    assert _failures(tmp_path, body) == {"stray"}


def test_tracebacks_unexpected_errors_and_extra_lines_are_caught(tmp_path: Path) -> None:
    body = 'echo Traceback >&2; echo "error: unexpected ValueError: x" >&2; exit 1'
    assert _failures(tmp_path, body) == {"traceback", "unexpected", "exit"}
    body = 'echo "error: one" >&2; echo "error: two" >&2; exit 2'
    assert _failures(tmp_path, body) == {"lines"}


def test_a_crash_and_a_hang_are_caught(tmp_path: Path) -> None:
    assert _failures(tmp_path, "kill -SEGV $$") == {"crash"}
    assert _failures(tmp_path, "sleep 30", timeout=1.0) == {"hang"}


def test_only_a_ctrl_c_before_snca_s_first_line_counts_as_python_s_start_up() -> None:
    site = (
        "Fatal Python error: init_import_site: Failed to import the site module\n"
        "Traceback (most recent call last):\n"
        '  File "<frozen site>", line 599, in main\n'
        '  File "<frozen codecs>", line 319, in decode\n'
        "KeyboardInterrupt\n"
    )
    wrapper = (
        "Traceback (most recent call last):\n"
        '  File "/venv/bin/snca", line 3, in <module>\n'
        "    from snca_cli.entry import main\n"
        "KeyboardInterrupt\n"
    )
    frame = '  File "/venv/lib/snca_cli/cli/__init__.py", line 9\n'
    ours = wrapper.replace("KeyboardInterrupt", f"{frame}KeyboardInterrupt")
    assert _in_python_start_up(site) and _in_python_start_up(wrapper)
    assert not _in_python_start_up(ours)  # snca's code was running: a traceback of ours
    assert not _in_python_start_up(wrapper.replace("KeyboardInterrupt", "ValueError: x"))


def test_the_schedule_gives_each_kind_its_share() -> None:
    plan = schedule(["kill", "crafted-graph", "merge-vs-add"], 100, 0)
    counts = {kind: sum(k == kind for k, _ in plan) for kind in ("kill", "crafted-graph")}
    assert len(plan) == 100 and counts["kill"] > counts["crafted-graph"] > 1
    assert plan == schedule(["kill", "crafted-graph", "merge-vs-add"], 100, 0)


def test_declared_outputs_cover_what_lies_under_them() -> None:
    assert covered("out/idx/manifest.json", ["out/idx"], [])
    assert not covered("out/idxb", ["out/idx"], [])
    assert covered("out/.c.gpkg.units/unit-1/a.npy", [], ["out/.c.gpkg.units"])


@pytest.mark.slow
def test_a_short_campaign_against_the_real_cli(tmp_path: Path) -> None:
    """Kinds whose items are fixed: planted staging folders, crafted graphs, kills."""
    out = tmp_path / "campaign.json"
    kinds = "planted-staging,crafted-graph,kill"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "hostile_campaign.py"), "--runs", "6"]
        + ["--kinds", kinds, "--seed", "5", "--tmp", str(tmp_path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    report = json.loads(out.read_text())
    assert report["table"]["total"]["runs"] == report["table"]["total"]["ok"] == 6
    assert {r["kind"] for r in report["records"]} == set(kinds.split(","))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["campaign.json"]
