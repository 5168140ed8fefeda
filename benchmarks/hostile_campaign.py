"""A campaign of hostile runs against the installed ``snca`` command line (issue #28).

Each run builds a fresh attack folder under a temporary folder (tiny generated rasters, models,
labels and indexes; see ``benchmarks/hostile_attacks.py`` for every kind and variant), runs
``snca`` on it as subprocesses (in their own process group), and deletes it. Every run is
checked for:

* **lost**: a file, folder or symbolic link that was in the attack folder before the run is
  gone or changed, other than the run's declared outputs (sha256 of every file before and
  after; a run whose commands all failed may change nothing at all);
* **stray**: a new file outside the declared outputs (a write outside ``-o``, a staging folder
  left behind);
* **crash**: killed by a signal the campaign did not send; **hang**: still running after the
  run's timeout (its process group is then killed);
* **traceback** / **unexpected**: ``Traceback`` in the output, ``unexpected`` in stderr;
* **exit** / **lines**: bad input must exit 2 with exactly one ``error:`` line, last; a run
  sent SIGINT or SIGTERM exits 130 or 143 with one ``interrupted``/``terminated`` line, is
  killed by that signal, or had finished (0); a run killed by ``SNCA_FAULT_AT`` exits -9 or 0;
* **message**: a line the issue calls misleading (``cover the same place`` for conflicting
  labels, ``File name too long``, ``/proc/self/fd``, Dask's ``Compute Failed``), or a line
  the run must print missing;
* **wrong**: a declared output that is not a complete file of its kind (a GeoPackage that is
  not SQLite, an index that does not verify), or what the attack checks (chips counted but
  not on disk, tiles lost by a concurrent merge, classes of a stale unit);
* **memory**: a command's peak resident memory (its ``VmHWM``, polled) above ``--max-rss-mib``;
* **setup**: the attack could not be built or started (reported, never hidden);
* **start-up**: a Ctrl-C traceback from Python's own start-up, before snca's first line ran
  (``site``, the standard streams, the console script importing its entry module; no frame in
  ``snca_cli``). CPython installs its SIGINT handler before it imports ``site``, so no package
  can turn a Ctrl-C in those first milliseconds into its own line. Counted apart from
  **traceback** (snca's code) and still a failing run.

Kinds that need root (a small or read-only tmpfs) are skipped when mounting fails.

    python benchmarks/hostile_campaign.py --runs 1000 --jobs 2 --out hostile.json
    python benchmarks/hostile_campaign.py --replay crafted-graph:123456   # one run again
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import hashlib
import json
import multiprocessing
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests/helpers: the generators of the attack data
    sys.path.append(str(ROOT))

from hostile_attacks import KILL_LINES, KINDS, Attack, SetupError, Site, Step  # noqa: E402

#: Failure kinds, in the order of the table's columns.
FAILURES = (
    "lost",
    "stray",
    "crash",
    "hang",
    "traceback",
    "unexpected",
    "exit",
    "lines",
    "message",
    "wrong",
    "memory",
    "setup",
    "start-up",
)
#: Never printed by any run: the misleading or leaking lines of the issue.
FORBIDDEN = ("/proc/self/fd", "Compute Failed", "File name too long", "MarkupError")
POLL_S = 0.02
#: Runs per progress line.
PROGRESS_EVERY = 25


def snca_command() -> str:
    """The installed console script: beside this Python, else on PATH."""
    beside = Path(sys.executable).with_name("snca")
    found = str(beside) if beside.exists() else shutil.which("snca")
    if found is None:
        raise SystemExit("no `snca` command found; install snca or pass --snca")
    return found


# --- snapshots --------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following symbolic links): folders, links with their
    target, files with their size and sha256."""
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            try:
                if os.path.islink(path):
                    entries[rel] = ("link", os.readlink(path))
                elif os.path.isdir(path):
                    entries[rel] = ("dir",)
                else:
                    entries[rel] = ("file", os.path.getsize(path), _sha256(path))
            except OSError as exc:
                entries[rel] = ("unreadable", exc.strerror)
    return entries


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def covered(rel: str, prefixes: list[str], globs: list[str]) -> bool:
    """Whether ``rel`` is one of ``prefixes`` or inside one, or it or a folder above it
    matches one of ``globs``."""
    if any(rel == p or rel.startswith(p + os.sep) for p in prefixes):
        return True
    parts = rel.split(os.sep)
    heads = [os.sep.join(parts[: n + 1]) for n in range(len(parts))]
    return any(fnmatch.fnmatch(head, glob) for head in heads for glob in globs)


def relative(path: Path, root: Path) -> str:
    return os.path.relpath(os.path.abspath(path), root)


# --- running one command -------------------------------------------------------------------


class Running:
    """One ``snca`` command running: its process, its logs and what was sent to it."""

    def __init__(self, step: Step, snca: str, cwd: Path, logs: Path, number: int, timeout: float):
        self.step = step
        self.args = [str(a) for a in step.args]
        self.cwd = cwd
        env = {k: v for k, v in os.environ.items() if k not in ("SNCA_DEBUG", "SNCA_FAULT_AT")}
        env["COLUMNS"] = "200"
        if step.fault:
            env["SNCA_FAULT_AT"] = str(step.fault)
        self.out, self.err = logs / f"{number}.out", logs / f"{number}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [snca, *step.args],
                cwd=cwd,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        self.started = time.monotonic()
        self.deadline = self.started + (step.timeout or timeout)
        self.sent = 0
        self.code: int | None = None
        self.hang = False
        self.rss_mib = 0.0
        self.seconds = 0.0

    def poll(self) -> bool:
        """Reap, signal or time out the command; whether it has ended."""
        if self.code is not None:
            return True
        self.rss_mib = max(self.rss_mib, peak_rss_mib(self.process.pid))
        pid, status, _ = os.wait4(self.process.pid, os.WNOHANG)
        now = time.monotonic()
        if pid:
            self._ended(status, now)
            return True
        step = self.step
        due = step.signal and not self.sent and now - self.started >= step.delay
        if due and (step.when is None or any(self.cwd.glob(step.when)) or now > self.deadline - 5):
            os.kill(self.process.pid, step.signal)
            self.sent = step.signal
        if now > self.deadline:
            self.hang = True
            self.kill_group()
            _, status, _ = os.wait4(self.process.pid, 0)
            self._ended(status, now)
            return True
        return False

    def _ended(self, status: int, now: float) -> None:
        self.code = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.code
        self.seconds = now - self.started
        self.kill_group()  # anything it left running (Dask workers)

    def kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def result(self) -> dict:
        read = lambda p: p.read_bytes().decode("utf-8", "replace")  # noqa: E731
        return {
            "command": "snca " + shlex.join(self.args),
            "cwd": str(self.cwd),
            "code": self.code,
            "signal": signal.Signals(self.sent).name if self.sent else None,
            "fault_at": self.step.fault or None,
            "hang": self.hang,
            "seconds": round(self.seconds, 2),
            "rss_mib": round(self.rss_mib, 1),
            "stdout": read(self.out),
            "stderr": read(self.err),
        }


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a running process so far (its ``VmHWM``; 0 once it has
    exited). Polled, because ``ru_maxrss`` of a child counts its parent's memory at fork."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_steps(attack: Attack, snca: str, logs: Path, timeout: float) -> list[dict]:
    """Run the attack's steps (a background step alongside the next); their results."""
    running: list[Running] = []
    results: list[dict] = []
    try:
        for number, step in enumerate(attack.steps):
            if step.before is not None:
                step.before()
            time.sleep(step.start_after)
            running.append(Running(step, snca, attack.cwd, logs, number, timeout))
            if step.background:
                continue
            while not all([r.poll() for r in running]):
                time.sleep(POLL_S)
            results += [r.result() for r in running]
            running = []
    finally:
        for left in running:
            left.kill_group()
            if left.code is None:
                os.wait4(left.process.pid, 0)
    return results


# --- checks ---------------------------------------------------------------------------------


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def step_failures(step: Step, result: dict, max_rss: float) -> list[tuple[str, str]]:
    """What is wrong with one command's ending."""
    failures: list[tuple[str, str]] = []
    code, stderr = result["code"], result["stderr"]
    text = result["stdout"] + stderr
    if result["hang"]:
        return [("hang", f"still running after {step.timeout or 'the timeout'} s; killed")]
    sent = signal.Signals[result["signal"]] if result["signal"] else 0
    crashed = code < 0 and -code not in (sent, signal.SIGKILL if step.fault else 0)
    if crashed:
        failures.append(("crash", f"killed by {signal.Signals(-code).name}"))
    if "Traceback" in text and sent == signal.SIGINT and _in_python_start_up(text):
        return [("start-up", _line_with(text, "File")[:200])]
    if "Traceback" in text:
        failures.append(("traceback", "a traceback was printed"))
    if re.search(r"\bunexpected\b", stderr) or "error: unexpected" in result["stdout"]:
        failures.append(("unexpected", _line_with(stderr, "unexpected")))
    for text_part in FORBIDDEN + step.forbid:
        if text_part in text:
            failures.append(("message", f"printed {text_part!r}: {_line_with(text, text_part)}"))
    if step.mention and step.mention not in stderr:
        failures.append(("message", f"never mentions {step.mention!r}"))
    if result["rss_mib"] > max_rss:
        failures.append(("memory", f"peak {result['rss_mib']:.0f} MiB"))
    return failures if crashed else failures + _exit_failures(step, code, stderr, sent)


def _in_python_start_up(text: str) -> bool:
    """Whether a Ctrl-C traceback comes from before snca's first line of code ran: Python's own
    start-up (``site``, the standard streams, the console script's import of its entry
    module), where CPython has installed its SIGINT handler but runs no code of the package
    yet. No frame of it lies inside the ``snca_cli`` package."""
    frames = re.findall(r'File "([^"]+)"', text)
    return text.rstrip().endswith("KeyboardInterrupt") and not any(
        f"{os.sep}snca_cli{os.sep}" in frame for frame in frames
    )


def _exit_failures(step: Step, code: int, stderr: str, sent: int) -> list[tuple[str, str]]:
    if step.fault:
        return [] if code in (0, -signal.SIGKILL) else [("exit", f"exit {code}, not -9 or 0")]
    if sent:
        if code not in (0, 130, 143, -sent):
            return [("exit", f"exit {code} after {signal.Signals(sent).name}")]
        if code in (130, 143):
            said = KILL_LINES[signal.Signals(sent)]
            lines = [line for line in stderr.splitlines() if line.strip()]
            kills = [line for line in lines if line.startswith(("interrupted", "terminated"))]
            if len(kills) != 1 or not lines[-1].startswith(said) or error_lines(stderr):
                return [("lines", f"after {signal.Signals(sent).name}: {lines[-3:]}")]
        return []
    wanted = {"ok": (0,), "bad": (2,), "either": (0, 2)}[step.expect]
    if code not in wanted:
        return [("exit", f"exit {code}, expected {' or '.join(map(str, wanted))}")]
    if code == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        if len(error_lines(stderr)) != 1 or not lines[-1].startswith("error:"):
            return [("lines", f"{len(error_lines(stderr))} error lines: {lines[-3:]}")]
    return []


def _line_with(text: str, part: str) -> str:
    return next((line for line in text.splitlines() if part in line), "")[:300]


def malformed(path: Path) -> str | None:
    """Why an output is not a complete file of its kind (None when it is)."""
    from snca_cli.errors import SncaError
    from snca_cli.tasks.index.store import read_index

    if path.is_dir():
        if (path / "manifest.json").exists():
            try:
                read_index(path)
            except SncaError as exc:
                return f"index {path.name} does not verify: {exc}"
        return None
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".gpkg":
        if not data.startswith(b"SQLite format 3\0"):
            return f"{path.name} is not a GeoPackage (starts {data[:8]!r})"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        return None if verdict == "ok" else f"{path.name} is damaged: {verdict}"
    if suffix in (".geojson", ".json"):
        try:
            json.loads(data)
        except ValueError as exc:
            return f"{path.name} is not complete JSON: {exc}"
    if suffix == ".tif" and data[:4] not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return f"{path.name} is not a TIFF (starts {data[:8]!r})"
    if suffix == ".png" and not data.startswith(b"\x89PNG"):
        return f"{path.name} is not a PNG"
    return None


def attack_failures(
    attack: Attack, root: Path, before: dict, after: dict, results: list[dict]
) -> list[tuple[str, str]]:
    """What the run lost, left or wrote wrong."""
    failed = all(r["code"] == 2 for r in results)
    planted = [relative(p, root) for p in attack.planted]
    declared = [] if failed else [relative(p, root) for p in attack.outputs]
    failures = []
    for rel, entry in before.items():
        if after.get(rel) != entry and not covered(rel, declared + planted, []):
            now = after.get(rel)
            what = "gone" if now is None else f"now {now[0]}" if now[0] != entry[0] else "changed"
            failures.append(("lost", f"{rel} ({entry[0]}) {what}"))
    parents = {str(parent) for p in attack.outputs for parent in Path(relative(p, root)).parents}
    for rel in sorted(set(after) - set(before)):
        if rel in parents and after[rel] == ("dir",):
            continue  # the folder an output goes into
        if not covered(rel, declared + planted, attack.allowed):
            failures.append(("stray", f"{rel} appeared"))
    for output in attack.outputs if not failed else []:
        if output.exists() and (problem := malformed(output)):
            failures.append(("wrong", problem))
    if attack.check is not None:
        try:
            failures += [("wrong", line) for line in attack.check(results)]
        except Exception as exc:  # noqa: BLE001 - what the check met is a finding too
            failures.append(("wrong", f"output could not be checked: {type(exc).__name__}: {exc}"))
    return _compact(failures)


def _compact(failures: list[tuple[str, str]], most: int = 6) -> list[tuple[str, str]]:
    """At most ``most`` lines per failure kind (a stray folder lists every file in it)."""
    kept: list[tuple[str, str]] = []
    for kind in FAILURES:
        lines = [detail for k, detail in failures if k == kind]
        kept += [(kind, line) for line in lines[:most]]
        if len(lines) > most:
            kept.append((kind, f"... and {len(lines) - most} more"))
    return kept


# --- one run ------------------------------------------------------------------------------


def run_one(kind: str, seed: int, snca: str, timeout: float, max_rss: float, tmp: str | None):
    """Build, run and check one attack; its record."""
    started = time.monotonic()
    record: dict = {"kind": kind, "seed": seed, "item": KINDS[kind].items, "variant": ""}
    work = Path(tempfile.mkdtemp(prefix="snca-hostile-", dir=tmp))
    root, logs = work / "site", work / "logs"
    root.mkdir()
    logs.mkdir()
    site = Site(root, np.random.default_rng(seed))
    failures: list[tuple[str, str]] = []
    results: list[dict] = []
    try:
        try:
            attack = KINDS[kind].build(site)
        except (SetupError, OSError) as exc:
            failures.append(("setup", f"{type(exc).__name__}: {exc}"[:500]))
        else:
            record.update(item=attack.item, variant=attack.variant)
            before = snapshot(root)
            try:
                results = run_steps(attack, snca, logs, timeout)
            except (OSError, ValueError) as exc:  # a command that cannot be started at all
                failures.append(("setup", f"{type(exc).__name__}: {exc}"[:500]))
            else:
                for step, result in zip(attack.steps, results, strict=True):
                    failures += step_failures(step, result, max_rss)
                failures += attack_failures(attack, root, before, snapshot(root), results)
    finally:
        for cleanup in reversed(site.cleanups):
            cleanup()
        shutil.rmtree(work, ignore_errors=True)
    record["seconds"] = round(time.monotonic() - started, 2)
    record["failures"] = [{"kind": k, "detail": d} for k, d in failures]
    record["steps"] = [_step_record(r, bool(failures)) for r in results]
    return record


def _step_record(result: dict, failing: bool) -> dict:
    """What the JSON keeps of a command: its output tails only for failing runs."""
    kept = {k: v for k, v in result.items() if k not in ("stdout", "stderr")}
    if failing:
        kept["stderr_tail"] = result["stderr"].splitlines()[-4:]
        kept["stdout_tail"] = result["stdout"].splitlines()[-2:]
    return kept


# --- the campaign ---------------------------------------------------------------------------


def can_mount() -> str | None:
    """Why tmpfs mounts cannot be made here (None when they can)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "needs root and mount(8)"
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder], capture_output=True
        )
        if done.returncode != 0:
            return f"cannot mount a tmpfs: {done.stderr.decode().strip()}"
        subprocess.run(["umount", folder], check=False)
    return None


def schedule(kinds: list[str], runs: int, seed: int) -> list[tuple[str, int]]:
    """``runs`` (kind, seed) pairs: each kind's share by its weight (at least one each when
    there are enough runs), in a random order."""
    weights = np.array([KINDS[k].weight for k in kinds], float)
    exact = runs * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    if runs >= len(kinds):
        counts = np.maximum(counts, 1)
    for index in np.argsort(counts - exact):
        if counts.sum() >= runs:
            break
        counts[index] += 1
    while counts.sum() > runs:
        counts[int(np.argmax(counts))] -= 1
    rng = np.random.default_rng(seed)
    order = [k for k, c in zip(kinds, counts, strict=True) for _ in range(c)]
    rng.shuffle(order)
    return [
        (kind, int(s)) for kind, s in zip(order, rng.integers(0, 2**31, len(order)), strict=True)
    ]


def tally(records: list[dict]) -> dict[str, dict]:
    """Per kind: runs, ok, and the runs with each failure kind; plus ``total``."""
    table: dict[str, dict] = {}
    for record in records:
        for name in (record["kind"], "total"):
            row = table.setdefault(
                name, {"runs": 0, "ok": 0, "seconds": 0.0, **dict.fromkeys(FAILURES, 0)}
            )
            row["runs"] += 1
            row["seconds"] += record["seconds"]
            kinds = {f["kind"] for f in record["failures"]}
            row["ok"] += not kinds
            for kind in kinds:
                row[kind] += 1
    return table


def print_table(table: dict[str, dict]) -> None:
    short = {
        "traceback": "trace",
        "unexpected": "unexp",
        "message": "msg",
        "memory": "mem",
        "start-up": "start",
    }
    heads = ["kind", "items", "runs", "ok", *(short.get(f, f) for f in FAILURES), "s/run"]
    print(f"{heads[0]:<22} {heads[1]:<8}" + "".join(f"{h:>7}" for h in heads[2:]))
    for name, row in sorted(table.items(), key=lambda kv: (kv[0] == "total", kv[0])):
        items = KINDS[name].items if name in KINDS else ""
        cells = [row["runs"], row["ok"], *(row[f] for f in FAILURES)]
        print(
            f"{name:<22} {items:<8}"
            + "".join(f"{c:>7}" for c in cells)
            + f"{row['seconds'] / max(row['runs'], 1):>7.1f}"
        )


def print_failing(records: list[dict]) -> None:
    """Every failing run, grouped by issue item, with what reproduces it."""
    failing = [r for r in records if r["failures"]]
    if not failing:
        return
    print(f"\nfailing runs ({len(failing)}), by issue item:")
    for item in sorted({r["item"] for r in failing}, key=_item_key):
        print(f"\n== item {item}")
        for record in (r for r in failing if r["item"] == item):
            kinds = ", ".join(sorted({f["kind"] for f in record["failures"]}))
            print(f"-- {record['kind']}:{record['seed']} [{kinds}] {record['variant']}")
            for failure in record["failures"]:
                print(f"   {failure['kind']}: {failure['detail']}")
            for step in record["steps"]:
                extra = f", {step['signal']} sent" if step["signal"] else ""
                extra += f", SNCA_FAULT_AT={step['fault_at']}" if step["fault_at"] else ""
                print(f"   $ {step['command']}")
                print(f"     exit {step['code']}{extra} in {step['seconds']} s")
                for line in step.get("stderr_tail", []):
                    print(f"     | {line[:200]}")


def _item_key(item: str) -> tuple:
    first = item.split(",")[0]
    return (0, int(first)) if first.isdigit() else (1, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--kinds", help="comma-separated attack kinds (default: all)")
    parser.add_argument("--replay", metavar="KIND:SEED", help="run one attack again")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per command")
    parser.add_argument("--max-rss-mib", type=float, default=2048.0)
    parser.add_argument("--snca", help="the snca command [default: the installed one]")
    parser.add_argument("--tmp", help="where attack folders go [default: the temp folder]")
    parser.add_argument("--out", type=Path, help="write the figures and every run as JSON")
    parser.add_argument("--list", action="store_true", help="list the attack kinds and exit")
    args = parser.parse_args()
    if args.list:
        for name, kind in KINDS.items():
            print(f"{name:<22} items {kind.items:<9} weight {kind.weight}")
        return
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # a background job: let runs get it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    snca = args.snca or snca_command()
    no_mount = can_mount()
    if args.replay:
        kind, seed = args.replay.split(":")
        plan = [(kind, int(seed))]
    else:
        kinds = args.kinds.split(",") if args.kinds else list(KINDS)
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise SystemExit(f"unknown kinds {', '.join(sorted(unknown))}; see --list")
        skipped = [k for k in kinds if KINDS[k].root and no_mount]
        for kind in skipped:
            print(f"skipping {kind}: {no_mount}")
        kinds = [k for k in kinds if k not in skipped]
        plan = schedule(kinds, args.runs, args.seed)
    print(f"{len(plan)} runs of {len({k for k, _ in plan})} kinds, {args.jobs} at once, {snca}")
    started = time.monotonic()
    records = []
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = [
            pool.submit(run_one, kind, seed, snca, args.timeout, args.max_rss_mib, args.tmp)
            for kind, seed in plan
        ]
        for future in concurrent.futures.as_completed(futures):
            records.append(future.result())
            record = records[-1]
            if record["failures"]:
                kinds = ",".join(sorted({f["kind"] for f in record["failures"]}))
                print(f"  FAIL {record['kind']}:{record['seed']} [{kinds}] {record['variant']}")
            if len(records) % PROGRESS_EVERY == 0:
                elapsed = time.monotonic() - started
                print(f"  {len(records)}/{len(plan)} runs in {elapsed:.0f} s", flush=True)
    seconds = time.monotonic() - started
    table = tally(records)
    print()
    print_table(table)
    total = table.get("total", {f: 0 for f in FAILURES} | {"runs": 0, "ok": 0})
    print(
        f"\n{total['runs']} runs in {seconds:.0f} s ({seconds / max(total['runs'], 1):.2f} s a "
        f"run, {args.jobs} at once): {total['ok']} clean; runs with lost files {total['lost']}, "
        f"crashes {total['crash']}, hangs {total['hang']}, tracebacks {total['traceback']}, "
        f"'unexpected' {total['unexpected']}; Ctrl-C during Python's own start-up, before any "
        f"snca code: {total['start-up']}"
    )
    print_failing(records)
    if args.out is not None:
        payload = {
            "runs": len(records),
            "seed": args.seed,
            "jobs": args.jobs,
            "seconds": round(seconds, 1),
            "snca": snca,
            "skipped_kinds": {} if not no_mount else {k: no_mount for k in KINDS if KINDS[k].root},
            "table": table,
            "records": sorted(records, key=lambda r: (r["kind"], r["seed"])),
        }
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"\nwrote {args.out}")
    if any(r["failures"] for r in records):
        sys.exit(1)


if __name__ == "__main__":
    main()
