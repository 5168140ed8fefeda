"""The attacks of ``benchmarks/hostile_campaign.py``: one builder per kind, each making a fresh
attack folder with tiny generated data and saying which ``snca`` commands to run against it,
what each must do and which paths it may write.

A builder gets a :class:`Site` (the attack folder and its generators) and a random generator;
it returns an :class:`Attack`: the issue item it covers (#28, 1-14, or ``holds`` for what the
issue confirmed holds), a short variant name, its :class:`Step` s and the declared outputs.
Everything else in the attack folder must come out byte for byte as it went in.

The data come from the test generators (``tests/helpers``): the band-mean model (a tile's class
is its brightest band), painted rasters, label points on tiles, planted staging folders,
crafted graph files and re-signed manifests.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from snca_cli.runtime import atomic
from tests.helpers import staging_attacks
from tests.helpers.evaluate_data import CLASSES, TEST, TRAIN, colour_model, write_scene
from tests.helpers.evaluate_data import COLOURS as SCENE_COLOURS
from tests.helpers.hnsw_files import FIELDS, HEADER, set_field
from tests.helpers.index_data import resign_index
from tests.helpers.labels import tile_points_file
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.rasters import BLUE, GREEN, ORIGIN, PIXEL, RED, painted, write_raster
from tests.helpers.scenes import make_scene_folder

#: Tile size of every generated model (px).
TILE = 8
#: The band-mean model's classes: a tile's class is its brightest band.
NAMES = ["red", "green", "blue"]
PALETTE = np.array([RED, GREEN, BLUE], np.uint8)
#: The work folder a cluster run keeps for its rerun (``snca_cli.tasks.units.work_folder``).
UNITS = ["out/.c.gpkg.units"]
#: What a Ctrl-C or SIGTERM run may print as its one line.
KILL_LINES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class SetupError(Exception):
    """Building an attack failed (reported as a failure of its own, never hidden)."""


@dataclass
class Step:
    """One ``snca`` command of an attack.

    ``expect``: ``ok`` (exit 0), ``bad`` (exit 2 with one ``error:`` line) or ``either``.
    ``signal`` is sent ``delay`` seconds after the start, once ``when`` (a glob under the
    attack folder) matches when given; ``fault`` sets ``SNCA_FAULT_AT`` (a SIGKILL at that file
    operation). A ``background`` step runs alongside the next one, which starts ``start_after``
    seconds later. ``before`` runs just before the step starts. Its stderr must mention
    ``mention`` and none of ``forbid``.
    """

    args: list[str]
    expect: str = "ok"
    signal: int = 0
    delay: float = 0.0
    when: str | None = None
    fault: int = 0
    background: bool = False
    start_after: float = 0.0
    before: Callable[[], None] | None = None
    timeout: float | None = None
    mention: str | None = None
    forbid: tuple[str, ...] = ()


@dataclass
class Attack:
    """What one run does: ``steps`` from the working folder ``cwd``; ``outputs`` may be written
    (files, or folders with everything under them), ``planted`` (the attacker's own files) may
    change or go, ``allowed`` globs may appear; ``check(results)`` returns what is wrong with
    the outputs (each a line)."""

    item: str
    variant: str
    steps: list[Step]
    cwd: Path
    outputs: list[Path] = field(default_factory=list)
    planted: list[Path] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    check: Callable[[list[dict]], list[str]] | None = None


class Site:
    """An attack folder and its generators; ``cleanups`` run after the attack (unmount, stop
    a server) whatever happened."""

    def __init__(self, root: Path, rng: np.random.Generator) -> None:
        self.root = root
        self.rng = rng
        self.cleanups: list[Callable[[], None]] = []

    def choice(self, options: list):
        """One of ``options``, at random."""
        return options[int(self.rng.integers(len(options)))]

    def folder(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model(self, name: str = "m.onnx", props: dict[str, str] | None = None) -> Path:
        """The band-mean model (3 bands, :data:`NAMES`, 8 px tiles), its metadata entries
        ``props`` replaced as written (any text)."""
        path = make_band_mean_model(self.root / name, tile_size=TILE, class_names=NAMES)
        if props:
            model = onnx.load(path)
            entries = {p.key: p.value for p in model.metadata_props} | props
            onnx.helper.set_model_props(model, entries)
            onnx.save(model, path)
        return path

    def colours(self, rows: int, cols: int) -> np.ndarray:
        """rows x cols tile colours drawn from :data:`PALETTE`."""
        return PALETTE[self.rng.integers(0, 3, (rows, cols))]

    def raster(
        self, name: str = "r.tif", rows: int = 4, cols: int = 4, colours: np.ndarray | None = None
    ) -> Path:
        """A painted GeoTIFF of rows x cols tiles (DEFLATE, so large ones stay small)."""
        colours = self.colours(rows, cols) if colours is None else colours
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_raster(path, painted(colours, TILE), compress="deflate")

    def labels(self, name: str, classes: dict, field: str = "cover") -> Path:
        """Points on tiles: ``classes`` maps a class value to its (row, col) tiles."""
        return tile_points_file(self.root / name, classes, tile=TILE, field=field)

    def snca(self, *args: object) -> None:
        """Run an snca command here, in this process, to set the attack up."""
        from typer.testing import CliRunner

        from snca_cli.cli import app

        result = CliRunner().invoke(app, [str(a) for a in args])
        if result.exit_code != 0:
            raise SetupError(f"setup `snca {' '.join(map(str, args))}`: {result.output[-300:]}")

    def index(self, name: str | Path, rasters: list[Path], model: Path) -> Path:
        """An index built from ``rasters`` with ``model`` (``name``: in the attack folder, or
        a path)."""
        self.snca("index", "build", *rasters, "-m", model, "-o", self.root / name)
        return self.root / name

    def mount_tmpfs(self, name: str, options: str) -> Path:
        """A tmpfs mounted at ``name`` (root only), unmounted by the cleanups."""
        path = self.folder(name)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        )
        if done.returncode != 0:
            raise SetupError(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
        self.cleanups.append(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
        return path

    def serve(self, handler: Callable[[socket.socket], None]) -> int:
        """A TCP server on 127.0.0.1 whose every connection goes to ``handler`` (in a thread);
        returns its port. Closed by the cleanups."""
        server = socket.create_server(("127.0.0.1", 0))
        connections: list[socket.socket] = []

        def accept() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                connections.append(connection)
                threading.Thread(target=handler, args=(connection,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

        def close() -> None:
            server.close()
            for connection in connections:
                connection.close()

        self.cleanups.append(close)
        return server.getsockname()[1]


# --- what outputs a command writes ---------------------------------------------------------


def classify_outputs(gpkg: Path, class_map: Path | None = None) -> list[Path]:
    """``-o X.gpkg`` writes X.gpkg and X.geojson; ``--class-map Y.tif`` Y.tif, its .aux.xml
    and Y.qml."""
    paths = [gpkg, gpkg.with_suffix(".geojson")]
    if class_map is not None:
        paths += [class_map, Path(f"{class_map}.aux.xml"), class_map.with_suffix(".qml")]
    return paths


def adapt_outputs(model: Path) -> list[Path]:
    """``snca adapt -o X.onnx`` writes the model, its cards, its record and its confusion plot."""
    stem = model.with_suffix("")
    return (
        [model]
        + [Path(f"{stem}{s}") for s in (".card.md", ".card.json", ".adapt.json")]
        + [Path(f"{stem}.confusion.png")]
    )


def manifest_rasters(index: Path) -> list[str]:
    """The file names of the rasters an index holds (empty when it cannot be read)."""
    try:
        payload = json.loads((index / "manifest.json").read_text())
        return [Path(r["path"]).name for r in payload["rasters"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def holds_rasters(index: Path, names: list[str]) -> Callable[[list[dict]], list[str]]:
    """A check: the index holds every raster of ``names``."""

    def check(_results: list[dict]) -> list[str]:
        missing = sorted(set(names) - set(manifest_rasters(index)))
        return [f"index {index.name} lost raster(s) {', '.join(missing)}"] if missing else []

    return check


# --- 1: planted staging folders ------------------------------------------------------------


def _random_journal(site: Site, target: staging_attacks.Site) -> dict:
    """A journal.json of random shape naming files outside the folder it is in."""
    victim = str(target.victim_file)
    names = [victim, "../victim2/important.txt", "sub/important.txt", "..", ".", "", "a" * 5000]
    names += [f"{target.out}/../victim2/important.txt", str(target.victim), 7, None]
    pairs = [
        {"name": site.choice(names), "staged": site.choice(names), "target": site.choice(names)}
        for _ in range(int(site.rng.integers(1, 4)))
    ]
    return {
        "format": site.choice([atomic.JOURNAL_FORMAT, 1, "x", None]),
        "staging": site.choice([staging_attacks.PLANTED, "..", victim]),
        "pairs": pairs,
        "primary": site.choice([None, str(target.victim), "../victim", victim]),
        "members": site.choice([[], [str(target.victim)], ["../victim"]]),
        "checksum": "0" * 64,
    }


def _plant(site: Site, target: staging_attacks.Site) -> tuple[str, list[Path]]:
    """Plant one random staging attack into ``target.out``; its name and the planted paths."""
    cases = staging_attacks.ISSUE_CASES + [
        "random journal",
        "forged journal naming outside",
        "forged set pointing outside",
        "symlinked staging folder",
        "symlinked lock file",
    ]
    case = site.choice(cases)
    staging = target.out / staging_attacks.PLANTED
    if case in staging_attacks.ISSUE_CASES:
        target.plant(case)
    elif case == "random journal":
        staging.mkdir()
        (staging / atomic.OWNER_NAME).write_text("")
        if site.rng.random() < 0.5:
            (staging / atomic.TOKEN_NAME).write_text("f" * 64)
        (staging / "payload").write_text(staging_attacks.ATTACKER)
        journal = json.dumps(_random_journal(site, target))
        (staging / atomic.JOURNAL_NAME).write_text(journal)
        staging_attacks.age(staging)
    elif case == "forged journal naming outside":
        names = ["../victim2/important.txt", str(target.victim_file), "sub/important.txt", ".."]
        staging_attacks.forge(target.out, [site.choice(names)])
    elif case == "forged set pointing outside":
        primary = site.choice([str(target.victim), "../victim", "../victim2"])
        staging_attacks.forge(target.out, ["x.txt"], primary=primary, members=(primary,))
    elif case == "symlinked staging folder":
        (target.victim / atomic.OWNER_NAME).write_text("")
        staging.symlink_to(target.victim, target_is_directory=True)
    else:
        staging.mkdir()
        (staging / atomic.OWNER_NAME).symlink_to(target.victim_file)
        (staging / "primary").write_text(str(target.victim))
        staging_attacks.age(staging)
    return case, [staging]


def planted_staging(site: Site) -> Attack:
    target = staging_attacks.Site(site.root)
    model, raster = site.model(), site.raster()
    case, planted = _plant(site, target)
    command = site.choice(["classify", "search a missing index", "index build", "search -o"])
    out = target.out
    if command == "classify":
        step = Step(["classify", raster, "-m", model, "-o", "a.gpkg"])
        outputs = classify_outputs(out / "a.gpkg")
    elif command == "search a missing index":
        step, outputs = Step(["search", "idx", "--tile-id", "1"], expect="bad"), []
    elif command == "index build":
        step, outputs = Step(["index", "build", raster, "-m", model, "-o", "idx"]), [out / "idx"]
    else:
        index = site.index("idx", [raster], model)
        step = Step(["search", index, "--tile-id", "2", "-o", "hits.gpkg"])
        outputs = classify_outputs(out / "hits.gpkg")
    step.mention = atomic.STAGING_PREFIX
    return Attack("1", f"{case}; {command}", [step], out, outputs, planted)


# --- 2, 8, 14: names from data ---------------------------------------------------------------


def _hostile_values(site: Site) -> list:
    """Class values that are paths, too long, markup, control characters or not text."""
    return [
        str(site.root / "victim"),
        "../../X",
        "..",
        ".",
        "",
        "a/b",
        "a_b",
        "A_B",
        "CON",
        "nul.txt",
        "x" * 300,
        "é" * 150,
        unicodedata.normalize("NFC", "Forêt"),
        unicodedata.normalize("NFD", "Forêt"),
        "chips.json",
        "[/]",
        "[bold]x[/bold]",
        "tab\there",
        "new\nline",
        "\x01ctl",
        "back\\slash",
        " lead",
        "trail.",
        '*?<>|:"',
        "tree 🌲",
        7,
        1.5,
        True,
    ]


def chips_names(site: Site) -> Attack:
    site.folder("victim")
    (site.root / "victim" / "keep.txt").write_text(staging_attacks.PRECIOUS)
    model = site.model()
    count = int(site.rng.integers(2, 6))
    pool = _hostile_values(site)
    values = [pool[i] for i in site.rng.choice(len(pool), count, replace=False)]
    cells = [(r, c) for r in range(4) for c in range(4)]
    order = site.rng.permutation(len(cells))
    classes = {v: [cells[order[2 * i]], cells[order[2 * i + 1]]] for i, v in enumerate(values)}
    labels = site.labels("labels.geojson", classes)
    same_name = site.rng.random() < 0.35
    if same_name:
        rasters = [site.raster("a/scene.tif"), site.raster("b/scene.tif")]
    else:
        rasters = [site.raster("r.tif")]
    out = site.folder("work", "deep") / "chips"
    args = ["chips", *rasters, "--labels", labels, "--field", "cover", "-m", model, "-o", out]
    step = Step(args, expect="either", forbid=("File name too long",))
    variant = "same raster name in two folders" if same_name else "hostile class values"
    names = ", ".join(repr(v)[:20] for v in values)
    return Attack(
        "8" if same_name else "2",
        f"{variant}: {names}",
        [step],
        out.parent,
        [out],
        check=lambda results: _chips_on_disk(out, results),
    )


def _chips_on_disk(out: Path, results: list[dict]) -> list[str]:
    """Every chip counted and listed is a file inside ``out``, in a safe folder."""
    if results[-1]["code"] != 0:
        return []
    problems = []
    on_disk = sorted(p for p in out.rglob("*.tif") if p.is_file())
    words = results[-1]["stdout"].split()
    said = int(words[words.index("wrote") + 1]) if "wrote" in words else -1
    record = json.loads((out / "chips.json").read_text())
    listed = [chip["file"] for chip in record["chips"]]
    if not (said == len(on_disk) == len(listed)):
        problems.append(f"{said} chips reported, {len(listed)} listed, {len(on_disk)} on disk")
    for name in listed:
        path = out / name
        if not path.is_file() or out.resolve() not in path.resolve().parents:
            problems.append(f"chips.json lists {name!r}, not a file inside the output")
    for folder in (p for p in out.iterdir() if p.is_dir()):
        if folder.name.startswith((".", " ")) or folder.name.endswith((".", " ")):
            problems.append(f"class folder {folder.name!r} is not a safe name")
    return problems


# --- 3 and concurrent writers --------------------------------------------------------------


def merge_vs_add(site: Site) -> Attack:
    model = site.model()
    index = site.index("r", [site.raster("r1.tif")], model)
    other = site.index("b", [site.raster("b1.tif")], model)
    big = site.raster("big.tif", rows=160, cols=160)
    add = Step(["index", "add", index, big, "-m", model], background=True)
    merge = Step(
        ["index", "merge", index, other, "-o", index, "--force"],
        start_after=float(site.rng.uniform(0.3, 3.0)),
    )
    return Attack(
        "3",
        f"merge {merge.start_after:.1f} s after the add started",
        [add, merge],
        site.root,
        [index],
        allowed=[".r.lock"],
        check=holds_rasters(index, ["r1.tif", "b1.tif", "big.tif"]),
    )


def concurrent_writers(site: Site) -> Attack:
    model = site.model()
    variant = site.choice(["two index adds", "two classify --force", "two index build --force"])
    start_after = float(site.rng.uniform(0.0, 1.5))
    if variant == "two index adds":
        index = site.index("idx", [site.raster("r.tif")], model)
        a, b = site.raster("a.tif", 12, 12), site.raster("b.tif", 12, 12)
        steps = [
            Step(["index", "add", index, a, "-m", model], background=True),
            Step(["index", "add", index, b, "-m", model], start_after=start_after),
        ]
        return Attack(
            "holds",
            variant,
            steps,
            site.root,
            [index],
            allowed=[".idx.lock"],
            check=holds_rasters(index, ["r.tif", "a.tif", "b.tif"]),
        )
    raster = site.raster("r.tif", 12, 12)
    if variant == "two classify --force":
        gpkg = site.root / "out" / "c.gpkg"
        args = ["classify", raster, "-m", model, "-o", gpkg, "--force"]
        outputs = classify_outputs(gpkg)
    else:
        args = ["index", "build", raster, "-m", model, "-o", site.root / "idx", "--force"]
        outputs = [site.root / "idx"]
    steps = [Step(args, background=True), Step(args, start_after=start_after)]
    return Attack("holds", variant, steps, site.root, outputs, allowed=[".idx.lock"])


# --- 4, 6, 9: outputs in an index, symlinked paths ------------------------------------------


def output_in_index(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    index = site.index("idx", [raster], model)
    force = ["--force"] if site.rng.random() < 0.7 else []
    name = site.choice(["tiles.gpkg", "hits.gpkg", "hits.geojson", "manifest.geojson"])
    variants = {
        f"search -o idx/{name}": ["search", index, "--tile-id", "3", "-o", index / name],
        "classify -o idx/c.gpkg": ["classify", raster, "-m", model, "-o", index / "c.gpkg"],
        "classify --class-map idx/c.tif": ["classify", raster, "-m", model, "-o"]
        + [site.root / "c.gpkg", "--class-map", index / "c.tif"],
        "index build -o idx/sub": ["index", "build", raster, "-m", model, "-o", index / "sub"],
        "chips -o idx/chips": ["chips", raster, "--labels", _two_classes(site), "--field"]
        + ["cover", "-m", model, "-o", index / "chips"],
    }
    variant = site.choice(list(variants))
    return Attack("4", variant, [Step(variants[variant] + force, expect="bad")], site.root)


def _two_classes(site: Site) -> Path:
    return site.labels("labels.geojson", {"a": [(0, 0), (0, 1)], "b": [(1, 0), (1, 1)]})


def symlinked_output(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    real = site.folder("o")
    (site.root / "olink").symlink_to(real, target_is_directory=True)
    link = site.root / "olink"
    variants = {
        "--class-map through a symlinked folder": ["-o", real / "c.gpkg", "--class-map"]
        + [link / "c.gpkg"],
        "-o through the link, --class-map real": ["-o", link / "c.tif", "--class-map"]
        + [real / "c.tif"],
        "--geojson through the link": ["-o", real / "c.gpkg", "--geojson", link / "c.gpkg"],
        "--class-map via o/../o": ["-o", real / "c.gpkg", "--class-map"]
        + [site.root / "o" / ".." / "o" / "c.gpkg"],
    }
    variant = site.choice(list(variants))
    if site.rng.random() < 0.5:
        (real / "keep.txt").write_text(staging_attacks.PRECIOUS)
    step = Step(["classify", raster, "-m", model, *variants[variant]], expect="bad")
    return Attack("6", variant, [step], site.root)


def symlinked_index(site: Site) -> Attack:
    model = site.model()
    index = site.index("idx", [site.raster("r.tif")], model)
    link = site.root / "idxlink"
    link.symlink_to(index.name, target_is_directory=True)
    a, b = site.raster("a.tif"), site.raster("b.tif")
    variant = site.choice(["add through the link", "adds through both spellings at once"])
    if variant == "add through the link":
        steps = [Step(["index", "add", link, a, "-m", model])]
        names = ["r.tif", "a.tif"]
    else:
        start = float(site.rng.uniform(0.0, 1.0))
        steps = [
            Step(["index", "add", index, a, "-m", model], background=True),
            Step(["index", "add", link, b, "-m", model], start_after=start),
        ]
        names = ["r.tif", "a.tif", "b.tif"]
    return Attack("9", variant, steps, site.root, [index], check=holds_rasters(index, names))


# --- 5: --force into what snca did not write --------------------------------------------------


def _user_folder(site: Site, name: str) -> Path:
    folder = site.folder(name)
    (folder / "notes.txt").write_text(staging_attacks.PRECIOUS)
    site.folder(name, "photos")
    (folder / "photos" / "a.jpg").write_bytes(os.urandom(64))
    return folder


def _scene_folder(site: Site) -> tuple[Path, Path, Path]:
    data = site.root / "scenes"
    for index, name in enumerate(TRAIN + TEST):
        write_scene(data / name, SCENE_COLOURS[name.split("/")[0]], index)
    split = {"seed": 7, "classes": CLASSES, "train": TRAIN, "val": [], "test": TEST}
    split_file = site.root / "split.json"
    split_file.write_text(json.dumps(split))
    return colour_model(site.root / "eval.onnx"), data, split_file


def force_user_folder(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    own = site.rng.random() < 0.3  # the control: --force over the command's own outputs
    variant = site.choice(["chips", "evaluate", "index build", "classify geojson", "class map"])
    root = site.root
    if variant == "chips":
        out = root / "user"
        args = ["chips", raster, "--labels", _two_classes(site), "--field", "cover", "-m", model]
        args += ["-o", out, "--force"]
        outputs = [out]
    elif variant == "evaluate":
        eval_model, data, split = _scene_folder(site)
        out = root / "user"
        args = ["evaluate", eval_model, data, "--split", split, "-o", out, "--force"]
        outputs = [out]
    elif variant == "index build":
        out = root / "user"
        args = ["index", "build", raster, "-m", model, "-o", out, "--force"]
        outputs = [out]
    elif variant == "classify geojson":
        out = root / "maps" / "x.gpkg"
        args = ["classify", raster, "-m", model, "-o", out, "--force"]
        outputs = classify_outputs(out)
    else:
        out = root / "maps" / "x.tif"
        args = ["classify", raster, "-m", model, "-o", root / "maps" / "x.gpkg"]
        args += ["--class-map", out, "--force"]
        outputs = classify_outputs(root / "maps" / "x.gpkg", out)
    if own:
        site.snca(*args[:-1])
        return Attack("5", f"{variant}: --force over its own outputs", [Step(args)], root, outputs)
    if variant in ("chips", "evaluate", "index build"):
        _user_folder(site, "user")
        if variant == "index build":
            (out / "manifest.json").write_text(site.choice(['{"format": "mine"}', "{}", "x"]))
    elif variant == "classify geojson":
        site.folder("maps")
        (root / "maps" / "x.geojson").write_text('{"type": "FeatureCollection", "features": []}')
        outputs = [out]
    else:
        site.folder("maps")
        (root / "maps" / "x.qml").write_text("<qgis>my style</qgis>")
        (root / "maps" / "x.tif.aux.xml").write_text("<PAMDataset>mine</PAMDataset>")
        outputs = classify_outputs(root / "maps" / "x.gpkg") + [out]
    return Attack(
        "5",
        f"{variant}: --force into what the user made",
        [Step(args, expect="either")],
        root,
        [] if variant in ("chips", "evaluate", "index build") else outputs,
    )


# --- 7: a resumed cluster run after the raster changed ------------------------------------------


def resume_changed_raster(site: Site) -> Attack:
    model = site.model()
    rows, cols = 170, 150  # 25,500 tiles: two work units of at most 20,000 tiles
    raster = site.raster("r.tif", rows, cols, PALETTE[np.zeros((rows, cols), int)])
    fresh = site.colours(rows, cols)
    keep_mtime = site.rng.random() < 0.5

    def replace_content() -> None:
        stat = raster.stat()
        write_raster(raster, painted(fresh, TILE), compress="deflate")
        if keep_mtime:
            os.utime(raster, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    gpkg = site.root / "out" / "c.gpkg"
    args = ["classify", raster, "-m", model, "-o", gpkg, "--workers", "1"]
    steps = [
        Step(args, signal=signal.SIGINT, when="out/.c.gpkg.units/unit-*/unit.json", timeout=120),
        Step(args + ["--force"], before=replace_content, timeout=180),
    ]

    def check(_results: list[dict]) -> list[str]:
        import pyogrio.raw

        meta, _, _, values = pyogrio.raw.read(gpkg, layer=0)[:4]
        fields = dict(zip(meta["fields"], values, strict=True))
        expected = fresh.reshape(rows, cols, 3).argmax(axis=2)
        got = fields["class_id"]
        wrong = int((expected[fields["row"], fields["col"]] != got).sum())
        return [f"{wrong} of {len(got)} tiles keep the old raster's classes"] if wrong else []

    variant = "raster rewritten, mtime kept" if keep_mtime else "raster rewritten"
    return Attack("7", variant, steps, site.root, classify_outputs(gpkg), [raster], UNITS, check)


# --- 10, 13: crafted index files -----------------------------------------------------------------


def _wild(site: Site, code: str, original: float) -> float:
    """A value for a ``struct`` field of type ``code`` that hnswlib may choke on."""
    if code == "d":
        return site.choice([math.nan, math.inf, -1.0, 0.0, 1e300, original * 2])
    bits = {"Q": 64, "I": 32, "i": 32}[code]
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code == "i" else (0, (1 << bits) - 1)
    options = [low, high, 0, 1, -1, high >> 1, int(original) - 1, int(original) + 1]
    options += [int(original) * 2, int(site.rng.integers(0, 1 << 62))]
    return min(max(site.choice(options), low), high)


def _search_or_add(site: Site, index: Path, model: Path) -> tuple[Step, list[Path], str]:
    """A reader or a writer of the crafted index."""
    command = site.choice(["search", "search --exact", "index add"])
    if command == "index add":
        step = Step(["index", "add", index, site.raster("new.tif"), "-m", model], expect="either")
        return step, [index], command
    args = ["search", index, "--tile-id", "0"] + (["--exact"] if "exact" in command else [])
    return Step(args, expect="either"), [], command


def crafted_graph(site: Site) -> Attack:
    model = site.model()
    index = site.index("idx", [site.raster("r.tif", 8, 8)], model)
    graph = index / "index.hnsw"
    kind = site.choice(["header", "body", "ff ff ff 7f at 0"])
    if kind == "header":
        values = HEADER.unpack_from(graph.read_bytes())
        codes = HEADER.format.lstrip("=").replace("6Q", "Q" * 6).replace("3Q", "Q" * 3)
        number = int(site.rng.integers(len(FIELDS)))
        value = _wild(site, codes[number], values[number])
        set_field(graph, FIELDS[number], value)
        what = f"{FIELDS[number]} = {value}"
    else:
        data = bytearray(graph.read_bytes())
        if kind == "body":
            position = HEADER.size + 4 * int(site.rng.integers((len(data) - HEADER.size) // 4))
            value = int(_wild(site, "I", 0))
            data[position : position + 4] = value.to_bytes(4, "little")
            what = f"word at {position} = {value}"
        else:
            data[:4] = b"\xff\xff\xff\x7f"
            what = kind
        graph.write_bytes(bytes(data))
    resign_index(index)
    step, outputs, command = _search_or_add(site, index, model)
    step.forbid = ("/proc/self/fd",)
    return Attack("10", f"{what}; {command}", [step], site.root, outputs)


def _npy_header(site: Site, path: Path) -> str:
    """Rewrite the header of a .npy file with a hostile one; what was done."""
    data = path.read_bytes()
    length = int.from_bytes(data[8:10], "little")
    body = data[10 + length :]
    header = site.choice(
        [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 3), }",
            "{'descr': '|O', 'fortran_order': False, 'shape': (64,), }",
            "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 64), }",
            "{'descr': '<U10', 'fortran_order': False, 'shape': (64,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }",
            "{'descr': '<f4', 'shape': (64, 3), }",
            "__import__('os').system('touch pwned')",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (64, 3), }",
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (64,), }",
        ]
    )
    text = header.encode("latin1") + b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    version = site.choice([b"\x01\x00", b"\x03\x00", b"\xff\xff"])
    path.write_bytes(b"\x93NUMPY" + version + len(text).to_bytes(2, "little") + text + body)
    return f"{path.name} header {header[:40]} v{version[0]}"


def crafted_npy(site: Site) -> Attack:
    model = site.model()
    index = site.index("idx", [site.raster("r.tif", 8, 8)], model)
    what = _npy_header(site, index / site.choice(["embeddings.npy", "tiles.npy"]))
    resign_index(index)
    step, outputs, command = _search_or_add(site, index, model)
    return Attack("13", f"{what}; {command}", [step], site.root, outputs)


def _hostile_json(site: Site):
    return site.choice(
        [0, -1, 1e300, math.nan, math.inf, "", "[/]", [], {}, None, True, "x" * 10000, 2**70]
    )


def _leaves(value, path=()):
    """Every (path, leaf) of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for number, item in enumerate(value):
            yield from _leaves(item, (*path, number))
    else:
        yield path, value


def crafted_manifest(site: Site) -> Attack:
    model = site.model()
    index = site.index("idx", [site.raster("r.tif", 6, 6)], model)
    payload = json.loads((index / "manifest.json").read_text())
    leaves = [p for p, _ in _leaves(payload) if p and p[0] not in ("files", "checksum")]
    where = leaves[int(site.rng.integers(len(leaves)))]
    value = _hostile_json(site)

    def edit(data: dict) -> None:
        node = data
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value

    resign_index(index, edit)
    step, outputs, command = _search_or_add(site, index, model)
    shown = "/".join(map(str, where))
    return Attack("13", f"{shown} = {repr(value)[:24]}; {command}", [step], site.root, outputs)


def corrupt_index(site: Site) -> Attack:
    model = site.model()
    index = site.index("idx", [site.raster("r.tif", 6, 6)], model)
    files = sorted(p for p in index.iterdir() if p.is_file())
    path = site.choice(files)
    data = bytearray(path.read_bytes())
    position = int(site.rng.integers(len(data)))
    data[position] ^= int(site.rng.integers(1, 256))
    path.write_bytes(bytes(data))
    step, outputs, command = _search_or_add(site, index, model)
    step.expect = "bad"
    return Attack(
        "holds", f"{path.name} byte {position} flipped; {command}", [step], site.root, outputs
    )


# --- 11, 12: bounded work -------------------------------------------------------------------------


def adapt_many_classes(site: Site) -> Attack:
    classes = int(site.choice([50, 100, 200]))
    side = int(math.ceil(math.sqrt(2 * classes)))
    raster = site.raster("r.tif", side, side)
    cells = [(r, c) for r in range(side) for c in range(side)]
    labels = site.labels(
        "labels.geojson", {f"class {i}": [cells[2 * i], cells[2 * i + 1]] for i in range(classes)}
    )
    out = site.root / "out" / "a.onnx"
    args = ["adapt", raster, "--labels", labels, "--field", "cover", "-m", site.model(), "-o", out]
    step = Step(args, expect="either", timeout=150)
    return Attack("11", f"{classes} classes", [step], site.root, adapt_outputs(out))


def _silent(connection: socket.socket) -> None:
    threading.Event().wait(600)


def _closing(connection: socket.socket) -> None:
    connection.close()


def _garbage(connection: socket.socket) -> None:
    connection.sendall(os.urandom(64) + b"\xff" * 64)
    threading.Event().wait(600)


def _http(connection: socket.socket) -> None:
    connection.recv(4096)
    connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>hello</html>")
    threading.Event().wait(600)


def hostile_scheduler(site: Site) -> Attack:
    peers = {"silent": _silent, "closes at once": _closing, "garbage": _garbage, "http": _http}
    variant = site.choice(list(peers))
    port = site.serve(peers[variant])
    args = ["classify", site.raster(), "-m", site.model(), "-o", site.root / "out" / "c.gpkg"]
    step = Step(args + ["--cluster", f"tcp://127.0.0.1:{port}"], expect="bad", timeout=60)
    step.forbid = ("Compute Failed", "MemoryError")
    outputs = classify_outputs(site.root / "out" / "c.gpkg")
    return Attack("12", f"scheduler that {variant}", [step], site.root, outputs, allowed=UNITS)


def bad_cluster_address(site: Site) -> Attack:
    address = site.choice(
        [
            "foo://x",
            ":notaport",
            "tcp://",
            "inproc://x",
            "tcp://127.0.0.1:1",
            "tcp://[::1",
            "tcp://localhost:99999",
            "tcp://:8786",
            "ucx://127.0.0.1:1",
            "tls://127.0.0.1:1",
            "tcp://256.1.1.1:8786",
            "tcp://127.0.0.1:-5",
            "\x01://x",  # a control character (a NUL cannot be passed as an argument at all)
            "tcp://" + "a" * 300 + ":1",
        ]
    )
    args = ["classify", site.raster(), "-m", site.model(), "-o", site.root / "out" / "c.gpkg"]
    step = Step(args + ["--cluster", address], expect="bad", timeout=60)
    step.forbid = ("Compute Failed",)
    outputs = classify_outputs(site.root / "out" / "c.gpkg")
    return Attack("13", f"--cluster {address[:30]!r}", [step], site.root, outputs, allowed=UNITS)


def huge_metadata(site: Site) -> Attack:
    size = int(site.choice([5, 20, 50])) * 1_000_000
    key = site.choice(["description", "class_names", "snca_version", "training"])
    value = "x" * size
    if key == "class_names":
        value = json.dumps({"0": value, "1": "b", "2": "c"})
    elif key != "description":
        value = json.dumps(value)
    model = site.model(props={key: value})
    command = site.choice(["info", "classify"])
    if command == "info":
        step, outputs = Step(["info", model], expect="either", timeout=45), []
    else:
        gpkg = site.root / "out" / "c.gpkg"
        step = Step(["classify", site.raster(), "-m", model, "-o", gpkg], expect="either")
        step.timeout, outputs = 45, classify_outputs(gpkg)
    return Attack("12", f"{size // 1_000_000} MB {key}; {command}", [step], site.root, outputs)


def many_workers(site: Site) -> Attack:
    workers = site.choice(["3", "16", "128", "100000", "-1"])
    gpkg = site.root / "out" / "c.gpkg"
    args = ["classify", site.raster(), "-m", site.model(), "-o", gpkg, "--workers", workers]
    step = Step(args, expect="bad", timeout=60)
    outputs = classify_outputs(gpkg)
    return Attack("12", f"--workers {workers}", [step], site.root, outputs, allowed=UNITS)


# --- 13: bad input that must not end in "unexpected" ------------------------------------------


def hostile_model(site: Site) -> Attack:
    key, value = site.choice(
        [
            ("class_names", '{"0": "[/]", "1": "[bold]x", "2": "[link=file:///etc]y"}'),
            ("class_names", '{"0": 1, "1": 2.5, "2": null}'),
            ("class_names", '["red", "green"]'),
            ("class_names", "not json"),
            ("tile_size", "0"),
            ("tile_size", "-8"),
            ("tile_size", "1e9"),
            ("tile_size", '"8"'),
            ("input_bands", "0"),
            ("embedding_dim", "0"),
            ("resolution_cm", "1e300"),
            ("resolution_cm", "-1"),
            ("resolution_cm", "NaN"),
            ("tiles_overlap", "inf"),
            ("input_scale", '{"uint8": 0}'),
            ("class_colours", '{"red": "not a colour"}'),
            ("standardization_std", "[0, 0, 0]"),
        ]
    )
    model = site.model(props={key: value})
    command = site.choice(["info", "classify"])
    if command == "info":
        step, outputs = Step(["info", model], expect="either"), []
    else:
        gpkg = site.root / "out" / "c.gpkg"
        step = Step(["classify", site.raster(), "-m", model, "-o", gpkg], expect="either")
        outputs = classify_outputs(gpkg)
    step.forbid = ("MarkupError",)
    return Attack("13", f"{key} = {value[:30]}; {command}", [step], site.root, outputs)


def bad_numbers(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    option, value = site.choice(
        [
            ("--resolution", v)
            for v in ("1e300", "inf", "-inf", "nan", "0", "-5", "1e-300", "1e400", "", "10 m m")
        ]
        + [("--overlap", v) for v in ("1e300", "-1", "nan", "100%", "8")]
        + [("--threads", v) for v in ("5000", "-1")]
        + [("--batch-size", v) for v in ("0", "-1", "100000000")]
        + [("--bands", v) for v in ("0", "4", "1,1,1,1", "-1", "a")]
        + [("--min-valid", v) for v in ("nan", "2", "-1")]
        + [("--top-k", v) for v in ("0", "-5")]
    )
    gpkg = site.root / "out" / "c.gpkg"
    args = ["classify", raster, "-m", model, "-o", gpkg, option, value]
    step = Step(args, expect="either", timeout=60)
    return Attack("13", f"{option} {value!r}", [step], site.root, classify_outputs(gpkg))


def symlink_loop(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    loop = site.root / "loop"
    loop.symlink_to("loop")
    gpkg = site.root / "out" / "c.gpkg"
    variant = site.choice(["raster", "model", "output folder", "index", "labels"])
    args = {
        "raster": ["classify", loop, "-m", model, "-o", gpkg],
        "model": ["classify", raster, "-m", loop, "-o", gpkg],
        "output folder": ["classify", raster, "-m", model, "-o", loop / "c.gpkg"],
        "index": ["search", loop, "--tile-id", "0"],
        "labels": ["chips", raster, "--labels", loop, "--field", "cover", "-m", model, "-o"]
        + [site.root / "chips"],
    }[variant]
    outputs = {"index": [], "labels": [site.root / "chips"]}.get(variant, classify_outputs(gpkg))
    step = Step(args, expect="bad")
    return Attack("13", f"symlink loop as the {variant}", [step], site.root, outputs)


def all_skipped(site: Site) -> Attack:
    model = site.model()
    variant = site.choice(["all no-data", "--min-valid 1 on a holed raster", "all NaN"])
    gpkg = site.root / "out" / "c.gpkg"
    if variant == "all no-data":
        raster = write_raster(site.root / "r.tif", np.zeros((3, 32, 32), np.uint8), nodata=0)
        extra: list[str] = []
    elif variant == "all NaN":
        data = np.full((3, 32, 32), np.nan, np.float32)
        raster = write_raster(site.root / "r.tif", data)
        extra = []
    else:
        data = painted(site.colours(4, 4), TILE)
        data[:, ::TILE, ::TILE] = 0
        raster = write_raster(site.root / "r.tif", data, nodata=0)
        extra = ["--min-valid", "1"]
    step = Step(["classify", raster, "-m", model, "-o", gpkg, *extra], expect="either")
    return Attack("13", variant, [step], site.root, classify_outputs(gpkg))


def failing_dask_unit(site: Site) -> Attack:
    raster = site.raster("r.tif", 16, 16)
    data = raster.read_bytes()
    raster.write_bytes(data[: len(data) // 2])
    gpkg = site.root / "out" / "c.gpkg"
    args = ["classify", raster, "-m", site.model(), "-o", gpkg, "--workers", "1"]
    step = Step(args, expect="bad", timeout=90, forbid=("Compute Failed",))
    outputs = classify_outputs(gpkg)
    return Attack("13", "truncated raster on a worker", [step], site.root, outputs, allowed=UNITS)


def bad_input(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    out = site.root / "out"
    variant = site.choice(
        [
            "missing raster",
            "not a raster",
            "truncated GeoTIFF",
            "smaller than a tile",
            "no CRS",
            "model without metadata",
            "model is a folder",
            "non-UTF-8 raster name",
            "non-UTF-8 output name",
            "output parent is a file",
            "output is a folder",
            "existing output without --force",
            "--lonlat out of range",
            "not an index",
            "convert --resolution inf",
            "empty --images class folder",
        ]
    )
    gpkg = out / "c.gpkg"
    command = ["classify", raster, "-m", model, "-o", gpkg]
    mention = None
    if variant == "missing raster":
        command[1] = site.root / "missing.tif"
    elif variant == "not a raster":
        (site.root / "notes.tif").write_text("hello\n")
        command[1] = site.root / "notes.tif"
    elif variant == "truncated GeoTIFF":
        data = raster.read_bytes()
        raster.write_bytes(data[: len(data) // 2])
    elif variant == "smaller than a tile":
        command[1] = write_raster(site.root / "tiny.tif", np.ones((3, 4, 40), np.uint8))
    elif variant == "no CRS":
        command[1] = write_raster(site.root / "n.tif", np.ones((3, 32, 32), np.uint8), crs=None)
    elif variant == "model without metadata":
        command[3] = make_band_mean_model(site.root / "bare.onnx", with_metadata=False)
    elif variant == "model is a folder":
        command[3] = site.folder("models")
    elif variant == "non-UTF-8 raster name":
        bad = Path(os.fsdecode(bytes(site.root) + b"/\xff.tif"))
        shutil.copyfile(raster, bad)
        command[1] = bad
    elif variant == "non-UTF-8 output name":
        command[5] = Path(os.fsdecode(bytes(out) + b"/\xfe.gpkg"))
    elif variant == "output parent is a file":
        (site.root / "file").write_text(staging_attacks.PRECIOUS)
        command[5] = site.root / "file" / "c.gpkg"
    elif variant == "output is a folder":
        site.folder("out", "c.gpkg")
        (gpkg / "keep.txt").write_text(staging_attacks.PRECIOUS)
        command.append("--force")
    elif variant == "existing output without --force":
        site.folder("out")
        (out / "c.geojson").write_text("{}")
    elif variant == "--lonlat out of range":
        index = site.index("idx", [raster], model)
        command = ["search", index, "--lonlat", site.choice(["200", "nan"]), "100"]
    elif variant == "not an index":
        folder = _user_folder(site, "notidx")
        (folder / "manifest.json").write_text("{}")
        command = ["search", folder, "--tile-id", "0"]
    elif variant == "convert --resolution inf":
        value = site.choice(["inf", "nan", "-1", "0", "1e300"])
        command = ["convert", model, "--to", "deepness", "-o", out / "d.onnx"]
        command += ["--resolution", value]
    else:
        data = make_scene_folder(site.root / "scenes", per_class=4, size=16)
        site.folder("scenes", "empty class")
        command = ["adapt", "--images", data, "-m", model, "-o", out / "a.onnx"]
        mention = "empty class"
        step = Step(command, expect="either", mention=mention)
        return Attack("14", variant, [step], site.root, adapt_outputs(out / "a.onnx"))
    item = "14" if variant == "convert --resolution inf" else "holds"
    outputs = classify_outputs(Path(command[-1])) if command[0] == "classify" else []
    return Attack(item, variant, [Step(command, expect="bad")], site.root, outputs)


def misleading_labels(site: Site) -> Attack:
    model, raster = site.model(), site.raster()
    variant = site.choice(["all-conflicting labels", "polygons under half a tile"])
    if variant == "all-conflicting labels":
        labels = site.labels("labels.geojson", {"a": [(0, 0), (1, 1)], "b": [(0, 0), (1, 1)]})
    else:
        labels = _small_polygons(site.root / "labels.geojson")
    out = site.root / "out"
    command = site.choice(["chips", "adapt"])
    target = out / ("chips" if command == "chips" else "a.onnx")
    args = [command, raster, "--labels", labels, "--field", "cover", "-m", model, "-o", target]
    step = Step(args, expect="bad", forbid=("cover the same place",))
    outputs = [target] if command == "chips" else adapt_outputs(target)
    return Attack("14", f"{variant}; {command}", [step], site.root, outputs)


def _small_polygons(path: Path) -> Path:
    """Squares a quarter of a tile wide at the centres of four tiles, two classes."""
    side = TILE * PIXEL / 4
    features = []
    for number, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        x = ORIGIN[0] + (col + 0.5) * TILE * PIXEL
        y = ORIGIN[1] - (row + 0.5) * TILE * PIXEL
        ring = [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]
        features.append(
            {
                "type": "Feature",
                "properties": {"cover": "ab"[number % 2]},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    crs = {"type": "name", "properties": {"name": "EPSG:32633"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    return path


# --- signals, faults, full and read-only file systems ------------------------------------------


#: The commands :func:`_writer` chooses from.
WRITERS = ["classify", "index build", "index add", "search -o", "chips", "adapt"]


def _writer(site: Site, out: Path, commands: list[str] = WRITERS) -> tuple[list, list[Path], str]:
    """A random writing command into ``out``: its arguments, outputs and name (``index add``
    extends an index made in ``out`` first)."""
    model = site.model()
    raster = site.raster("r.tif", int(site.rng.integers(4, 60)), int(site.rng.integers(4, 60)))
    command = site.choice(commands)
    if command == "classify":
        gpkg = out / "c.gpkg"
        args = ["classify", raster, "-m", model, "-o", gpkg, "--class-map", out / "c.tif"]
        return args, classify_outputs(gpkg, out / "c.tif"), command
    if command == "index build":
        return ["index", "build", raster, "-m", model, "-o", out / "idx"], [out / "idx"], command
    if command in ("index add", "search -o"):
        index = site.index(out / "idx" if command == "index add" else "idx", [raster], model)
        if command == "index add":
            more = site.raster("more.tif", 6, 6)
            return ["index", "add", index, more, "-m", model], [index], command
        hits = out / "hits.gpkg"
        return ["search", index, "--tile-id", "1", "-o", hits], classify_outputs(hits), command
    labels = _two_classes(site)
    if command == "chips":
        chips = out / "chips"
        args = ["chips", raster, "--labels", labels, "--field", "cover", "-m", model, "-o", chips]
        return args, [chips], command
    onnx = out / "a.onnx"
    args = ["adapt", raster, "--labels", labels, "--field", "cover", "-m", model, "-o", onnx]
    return args, adapt_outputs(onnx), command


def _with_old_outputs(site: Site, args: list, outputs: list[Path]) -> list:
    """Write the command's outputs once (the old version) and return its args with --force."""
    if args[:2] != ["index", "add"]:
        site.snca(*args)
        return args + ["--force"]
    return args


def _rerun(args: list) -> Step:
    """The same command again after a kill: it works (an ``index add`` whose raster went in
    before the kill is refused as already in the index)."""
    if args[:2] == ["index", "add"]:
        return Step(args, expect="either")
    return Step(args if "--force" in args else args + ["--force"])


def kill(site: Site) -> Attack:
    out = site.folder("out")
    args, outputs, command = _writer(site, out)
    old = site.rng.random() < 0.5
    if old:
        args = _with_old_outputs(site, args, outputs)
    sig = site.choice([signal.SIGINT, signal.SIGTERM])
    delay = float(site.choice([site.rng.uniform(0.0, 1.5), site.rng.uniform(0.0, 4.0)]))
    steps = [Step(args, signal=sig, delay=delay)]
    if site.rng.random() < 0.3:
        steps.append(_rerun(args))
    variant = f"{sig.name} at {delay:.2f} s; {command}{' over old outputs' if old else ''}"
    return Attack("13", variant, steps, site.root, outputs, allowed=["*.lock", "out/*.lock"])


def sigkill_commit(site: Site) -> Attack:
    out = site.folder("out")
    args, outputs, command = _writer(site, out)
    args = _with_old_outputs(site, args, outputs)
    at = int(site.rng.integers(1, 13))
    steps = [Step(args, fault=at)]
    if site.rng.random() < 0.5:
        steps.append(_rerun(args))
    allowed = ["*.lock", "out/*.lock", f"out/{atomic.STAGING_PREFIX}*", f"{atomic.STAGING_PREFIX}*"]
    return Attack(
        "holds",
        f"SIGKILL at file operation {at}; {command}",
        steps,
        site.root,
        outputs,
        allowed=allowed if len(steps) == 1 else ["*.lock", "out/*.lock"],
    )


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` up to ``leave`` bytes free."""
    with open(folder / "filler", "wb") as handle:
        chunk = b"\0" * 65536
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave:
                break
            try:
                handle.write(chunk[: max(1, min(len(chunk), free - leave))])
                handle.flush()
            except OSError:
                break


def disk_full(site: Site) -> Attack:
    disk = site.mount_tmpfs("disk", f"size={site.choice(['512k', '1m', '2m'])}")
    try:
        args, outputs, command = _writer(site, disk)
    except SetupError:  # the index an `index add` extends does not fit this disk
        args, outputs, command = _writer(site, disk, [c for c in WRITERS if c != "index add"])
    old = site.rng.random() < 0.6
    if old:
        try:
            args = _with_old_outputs(site, args, outputs)
        except SetupError:
            old = False  # the outputs do not fit: the attack runs without old ones
    leave = int(site.choice([0, 0, 4096, int(site.rng.integers(0, 65536))]))
    _fill(disk, leave)
    step = Step(args, expect="either")
    return Attack(
        "13",
        f"{leave} bytes free; {command}{' over old outputs' if old else ''}",
        [step],
        site.root,
        outputs,
    )


def read_only(site: Site) -> Attack:
    folder = site.mount_tmpfs("ro", "ro,size=64k")
    args, outputs, command = _writer(site, folder, [c for c in WRITERS if c != "index add"])
    if site.rng.random() < 0.25 and command in ("classify", "index build"):
        args += ["--workers", "1"]
        command += " --workers 1"
    step = Step(args, expect="bad")
    return Attack("13", f"read-only folder; {command}", [step], site.root, outputs)


@dataclass(frozen=True)
class Kind:
    """An attack kind: its builder, its share of the runs and whether it needs root (mount)."""

    build: Callable[[Site], Attack]
    weight: float
    items: str
    root: bool = False


KINDS: dict[str, Kind] = {
    "planted-staging": Kind(planted_staging, 9, "1"),
    "chips-names": Kind(chips_names, 7, "2, 8, 14"),
    "merge-vs-add": Kind(merge_vs_add, 1, "3"),
    "output-in-index": Kind(output_in_index, 4, "4"),
    "force-user-folder": Kind(force_user_folder, 5, "5"),
    "symlinked-output": Kind(symlinked_output, 3, "6"),
    "resume-changed-raster": Kind(resume_changed_raster, 0.3, "7"),
    "symlinked-index": Kind(symlinked_index, 3, "9"),
    "crafted-graph": Kind(crafted_graph, 7, "10"),
    "adapt-many-classes": Kind(adapt_many_classes, 0.3, "11"),
    "hostile-scheduler": Kind(hostile_scheduler, 0.6, "12, 13"),
    "huge-metadata": Kind(huge_metadata, 0.8, "12"),
    "many-workers": Kind(many_workers, 1.5, "12"),
    "bad-cluster-address": Kind(bad_cluster_address, 1, "13"),
    "crafted-npy": Kind(crafted_npy, 4, "13"),
    "crafted-manifest": Kind(crafted_manifest, 6, "13"),
    "hostile-model": Kind(hostile_model, 4, "13"),
    "bad-numbers": Kind(bad_numbers, 5, "13"),
    "symlink-loop": Kind(symlink_loop, 2, "13"),
    "all-skipped": Kind(all_skipped, 2, "13"),
    "failing-dask-unit": Kind(failing_dask_unit, 0.5, "13"),
    "misleading-labels": Kind(misleading_labels, 2, "14"),
    "bad-input": Kind(bad_input, 6, "13, 14"),
    "kill": Kind(kill, 12, "13"),
    "sigkill-commit": Kind(sigkill_commit, 3, "holds"),
    "concurrent-writers": Kind(concurrent_writers, 2, "3"),
    "corrupt-index": Kind(corrupt_index, 3, "holds"),
    "disk-full": Kind(disk_full, 3, "13", root=True),
    "read-only": Kind(read_only, 2, "13", root=True),
}
