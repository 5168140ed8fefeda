"""The rich tables the commands print: one function per table, shared by the commands showing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnxruntime as ort
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.adapt import AdaptReport
from snca_cli.tasks.classify import ClassifySummary
from snca_cli.tasks.evaluate import METRIC_LABELS
from snca_cli.tasks.index.results import SearchResult


def summary_table(summary: ClassifySummary) -> Table:
    """Tiles and area of each class that has tiles, and the skipped tiles."""
    km2 = summary.class_area_km2
    empty = sum(1 for count in summary.class_tiles.values() if count == 0)
    table = Table(
        title=f"{summary.raster.name} ({summary.crs})",
        title_justify="left",
        caption=f"{empty} class(es) with no tile not shown" if empty else None,
        caption_justify="left",
    )
    table.add_column("class")
    table.add_column("tiles", justify="right")
    table.add_column("share", justify="right")
    table.add_column(f"area ({'km²' if km2 is not None else summary.area_unit})", justify="right")
    total_area = sum(summary.class_area.values()) + summary.skipped_area
    for name, count in summary.class_tiles.items():
        if count == 0:
            continue
        area = km2[name] if km2 is not None else summary.class_area[name]
        share = summary.class_area[name] / total_area if total_area else 0.0
        table.add_row(Text(name), f"{count:,}", f"{share:.1%}", f"{area:,.3f}")
    skipped_area = summary.skipped_area_km2 if km2 is not None else summary.skipped_area
    share = summary.skipped_area / total_area if total_area else 0.0
    table.add_row(
        "[dim](skipped)[/]", f"{summary.tiles_skipped:,}", f"{share:.1%}", f"{skipped_area:,.3f}"
    )
    return table


def results_table(result: SearchResult) -> Table:
    """The hits as a rich table (class and raster names are text, never markup)."""
    title = f"{len(result.hits)} most similar to {escape(result.query_label)}"
    if result.class_filter is not None:
        title += f" (class {escape(result.class_filter)})"
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("rank", "right"),
        ("similarity", "right"),
        ("tile", "right"),
        ("class", "left"),
        ("score", "right"),
        ("raster", "left"),
        ("window col,row", "right"),
        ("centre x, y", "right"),
    ):
        table.add_column(name, justify=justify)
    for hit in result.hits:
        tile = hit.tile
        minx, miny, maxx, maxy = tile.bounds
        digits = 6 if tile.crs.is_geographic else 1
        table.add_row(
            str(hit.rank),
            f"{hit.similarity:.4f}",
            str(tile.tile_id),
            Text(tile.class_name),
            f"{tile.score:.3f}",
            Text(tile.raster.name),
            f"{tile.window[0]},{tile.window[1]}",
            f"{(minx + maxx) / 2:.{digits}f}, {(miny + maxy) / 2:.{digits}f}",
        )
    return table


def files_table(rows: list[tuple[str, Path]]) -> Table:
    """What was written, where."""
    table = Table(title="files", title_justify="left")
    table.add_column("what")
    table.add_column("path")
    for what, path in rows:
        table.add_row(what, str(path))
    return table


#: The most a row of ``snca info`` shows: characters of a value, training keys.
MAX_INFO_CHARS, MAX_INFO_TRAINING_KEYS = 500, 30


def _at_most(text: str, limit: int = MAX_INFO_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how long it is."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _listed(names: list[str]) -> str:
    """The number of classes and the first names that fit in :data:`MAX_INFO_CHARS` with the
    count of the others."""
    shown = names[:1]
    length = sum(map(len, shown)) + 40  # the count, "... and N more"
    for name in names[1:]:
        length += len(name) + 2
        if length > MAX_INFO_CHARS:
            break
        shown.append(name)
    more = len(names) - len(shown)
    return f"{len(names)}: {', '.join(shown)}" + (f", ... and {more:,} more" if more else "")


def model_table(model: OnnxModel) -> Table:
    """The model's metadata, inputs and outputs, provider and SHA-256 as a two-column table;
    bounded however large the metadata (values cut, the first classes and training keys)."""
    meta = model.metadata
    table = Table(title=f"snca model {model.path.name}", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    resolution = "none (native)" if meta.resolution_m is None else f"{meta.resolution_m:g} m/px"
    rows = [
        ("file", str(model.path)),
        ("sha256", model.sha256),
        ("provider", model.provider_name),
        ("precision", model.choice.describe()),
        ("providers available", ", ".join(ort.get_available_providers())),
        ("model type", meta.model_type),
        ("backbone", meta.backbone or "-"),
        ("snca version", meta.snca_version or "-"),
        ("classes", _listed(meta.class_names)),
        ("tile size", f"{meta.tile_size} px"),
        ("input bands", str(meta.input_bands)),
        ("input scale", ", ".join(f"{k} / {v:g}" for k, v in meta.input_scale.items())),
        ("resolution", resolution),
        ("tiles overlap", f"{meta.tiles_overlap:g} %"),
        ("embedding dim", str(meta.embedding_dim)),
        (
            "orientations",
            "1 (each tile as it is)"
            if meta.orientations == 1
            else f"{meta.orientations} (outputs averaged over the flips and quarter turns)",
        ),
    ]
    for tensor in model.session.get_inputs():
        rows.append((f"input {tensor.name}", f"{tensor.type} {tensor.shape}"))
    for tensor in model.session.get_outputs():
        rows.append((f"output {tensor.name}", f"{tensor.type} {tensor.shape}"))
    training = list(meta.training.items())
    for key, value in training[:MAX_INFO_TRAINING_KEYS]:
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append((f"training.{_at_most(key, 80)}", text))
    if len(training) > MAX_INFO_TRAINING_KEYS:
        rows.append(("training ...", f"{len(training) - MAX_INFO_TRAINING_KEYS:,} more keys"))
    for key, value in rows:
        table.add_row(key, Text(_at_most(value)))  # names and paths as they are, never markup
    return table


def metrics_table(report: dict[str, Any], title: str) -> Table:
    """The headline metrics as a rich table, in percent."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value (%)", justify="right")
    for key, label in METRIC_LABELS.items():
        if key in report["metrics"]:
            table.add_row(label, f"{100 * report['metrics'][key]:.2f}")
    return table


def class_count_table(title: str, counts: dict[str, int]) -> Table:
    """Items per class, and their total."""
    table = Table(title=title, title_justify="left")
    table.add_column("class")
    table.add_column("count", justify="right")
    for name, count in counts.items():
        table.add_row(Text(name), str(count))
    table.add_section()
    table.add_row("total", str(sum(counts.values())))
    return table


def adapt_table(report: AdaptReport) -> Table:
    """Labelled tiles, precision and recall per class."""
    table = Table(title="classes", title_justify="left")
    for name, justify in (("class", "left"), ("tiles", "right"), ("precision", "right")):
        table.add_column(name, justify=justify)
    table.add_column("recall", justify="right")
    head = report.head
    for name, count in report.counts.items():
        precision, recall = head.precision.get(name), head.recall.get(name)
        table.add_row(
            Text(name),
            str(count),
            "-" if precision is None else f"{precision:.2f}",
            "-" if recall is None else f"{recall:.2f}",
        )
    return table
