"""What the dock's buttons do: load the model, classify the layer, build the index, find similar
tiles under a click, adapt the model to a labelled layer (the new model is loaded at once).
Every bit of real work is a call into ``snca_cli``; this module only collects the dock's
choices, runs the calls as QGIS tasks and puts the results on the map.

The shipped model (``snca_cli``'s default) is chosen when the dock opens. A plain click on the
map searches from the tile under it; Ctrl+click and Shift+click add positive and negative
examples to the current search (``TileIndex.search_examples``); "Clear examples" forgets them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgisInterface, QgsRubberBand
from qgis.PyQt.QtCore import QObject
from qgis.PyQt.QtGui import QColor

from snca_cli.contract.tiling import MAX_OVERLAP, TilingOptions, parse_overlap
from snca_cli.errors import SncaError
from snca_cli.runtime.default_model import default_model_path
from snca_cli.runtime.georef import raster_resolution_warning
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.tasks.adapt import AdaptConfig, AdaptReport, adapt_model
from snca_cli.tasks.classify import ClassifyConfig, ClassifyReport, classify, plan_targets
from snca_cli.tasks.index.build import IndexSummary, plan_index_update, update_index
from snca_cli.tasks.index.results import IndexedTile, SearchResult
from snca_cli.tasks.index.search import TileIndex
from snca_cli.tasks.index.store import MANIFEST_NAME
from snca_cli.tasks.output_names import (
    class_map_beside,
    default_adapted_model,
    default_classify_output,
    default_index_dir,
)
from snca_cli.tasks.units import RunOptions

from .dock import FIND_HINT, ModelSummary, ResultRow, SncaDock
from .label_layer import write_label_file
from .layers import (
    crs_for_snca,
    expand_legend,
    qgis_crs,
    query_tile_layer,
    similar_tiles_layer,
    style_class_layer,
    style_class_map,
)
from .map_tool import NEGATIVE, NEW, SimilarTileMapTool
from .raster_source import raster_file
from .tasks import SncaTask

#: Message-bar title.
TITLE = "SNCA"
#: Outline of the tile zoomed to from the results table.
HIGHLIGHT_COLOUR = "#ffff00"


class SncaController(QObject):
    """Connects the dock to snca: tasks, the map tool, the cached index, the result layers."""

    def __init__(self, iface: QgisInterface, dock: SncaDock) -> None:
        super().__init__(dock)
        self.iface = iface
        self.dock = dock
        self.model: OnnxModel | None = None
        self.task: SncaTask | None = None
        self.last_result: SearchResult | None = None
        self._indexes: dict[tuple[str, int], TileIndex] = {}
        self._similar_layer_id: str | None = None
        self._query_layer_id: str | None = None
        self.positives: list[IndexedTile] = []
        self.negatives: list[IndexedTile] = []
        self.highlight = QgsRubberBand(iface.mapCanvas(), QgsWkbTypes.PolygonGeometry)
        self.highlight.setStrokeColor(QColor(HIGHLIGHT_COLOUR))
        self.highlight.setFillColor(QColor(0, 0, 0, 0))
        self.highlight.setWidth(4)
        self._highlighted: ResultRow | None = None
        self._project_generation = 0
        QgsProject.instance().cleared.connect(self._project_cleared)
        self.map_tool = SimilarTileMapTool(iface.mapCanvas())
        self.map_tool.point_chosen.connect(self.find_similar_at)
        self.map_tool.deactivated.connect(lambda: dock.find_button.setChecked(False))
        dock.overlap.setMaximum(round(MAX_OVERLAP * 100))  # snca's own limit
        dock.model_changed.connect(self.load_model)
        dock.classify_requested.connect(self.classify)
        dock.adapt_requested.connect(self.adapt)
        dock.index_requested.connect(self.build_index)
        dock.find_similar_toggled.connect(self.set_find_similar)
        dock.cancel_requested.connect(self.cancel)
        dock.result_activated.connect(self.zoom_to)
        dock.clear_examples_requested.connect(self.clear_examples)
        dock.layer_combo.layerChanged.connect(self._tiling_changed)
        dock.overlap.valueChanged.connect(self._tiling_changed)
        dock.set_actions_enabled(True)
        shipped = default_model_path()
        if shipped.is_file():
            dock.model_file.setFilePath(str(shipped))  # loads it (fileChanged)

    # --- feedback ---------------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        self.dock.set_status(f"error: {message}")
        self.iface.messageBar().pushMessage(TITLE, message, level=Qgis.Warning, duration=10)

    def _info(self, message: str, warnings: list[str] | None = None) -> None:
        """Show a task's result in the status line and the message bar, with the warnings
        its report carries (each as ``warning: LINE``, as the command line prints it)."""
        lines = [f"warning: {warning}" for warning in warnings or []]
        self.dock.set_status("\n".join([message, *lines]))
        self.iface.messageBar().pushMessage(TITLE, message, level=Qgis.Success, duration=5)
        for line in lines:
            self.iface.messageBar().pushMessage(TITLE, line, level=Qgis.Warning, duration=10)

    def _tiling_changed(self, *_changed: object) -> None:
        self.update_warning()

    def update_warning(self) -> str | None:
        """Show (and return) the resolution warning for the chosen raster and model."""
        warning = None
        layer = self.dock.raster_layer()
        if self.model is not None and layer is not None:
            try:
                warning = raster_resolution_warning(
                    raster_file(layer), self.model.metadata, self.tiling_options()
                )
            except SncaError:
                warning = None
        self.dock.set_warning(warning)
        return warning

    # --- model ------------------------------------------------------------------------------
    def load_model(self, path: str) -> OnnxModel | None:
        """Load the model chosen in the dock and show its metadata (None when it fails)."""
        self.model = None
        self.dock.set_model(None)
        if not path:
            return None
        try:
            model = OnnxModel(path)
        except SncaError as exc:
            self._fail(str(exc))
            return None
        metadata = model.metadata
        self.model = model
        self.dock.set_model(
            ModelSummary(
                name=model.path.name,
                class_names=list(metadata.class_names),
                tile_size=metadata.tile_size,
                resolution_cm=metadata.resolution_cm,
                input_bands=metadata.input_bands,
                embedding_dim=metadata.embedding_dim,
                provider=model.provider_name,
                tiles_overlap_percent=metadata.tiles_overlap,
                training_resolution_m=metadata.training_resolution_m,
            )
        )
        self.dock.set_status(f"model {model.path.name} loaded ({model.provider_name})")
        self.update_warning()
        return model

    def _require_model(self) -> OnnxModel:
        if self.model is None:
            raise SncaError("choose an snca ONNX model first")
        return self.model

    def _require_raster(self) -> tuple[QgsRasterLayer, Path]:
        layer = self.dock.raster_layer()
        if layer is None:
            raise SncaError("choose a raster layer first")
        return layer, raster_file(layer)

    def tiling_options(self) -> TilingOptions:
        """The tiling options chosen in the dock (its percent parsed as typed text is)."""
        bands = self.dock.bands()
        percent = self.dock.overlap_percent()
        return TilingOptions(
            overlap=None if percent is None else parse_overlap(f"{percent}%"),
            bands=bands if bands and all(b > 0 for b in bands) else None,
        )

    # --- tasks ------------------------------------------------------------------------------
    def _project_cleared(self) -> None:
        """The project was closed (or a new one opened): a running task's layers no longer
        belong anywhere; they are not added to the next project."""
        self._project_generation += 1
        self._similar_layer_id = self._query_layer_id = None
        self.highlight.reset(QgsWkbTypes.PolygonGeometry)

    def _project_changed_since(self, task: SncaTask) -> bool:
        """Whether the project the task was started in was closed meanwhile; then the status
        says where its outputs are."""
        if task.project_generation == self._project_generation:
            return False
        what = task.description().removeprefix(f"{TITLE}: ")
        self.dock.set_status(
            f"{what}: done, but the project it was started in was closed; its outputs are on "
            "disk and were not added to this project"
        )
        return True

    def _start(self, task: SncaTask) -> SncaTask:
        task.project_generation = self._project_generation
        self.task = task
        self.dock.set_actions_enabled(False)
        self.dock.set_progress(0)
        task.progressChanged.connect(self.dock.set_progress)
        QgsApplication.taskManager().addTask(task)
        return task

    def _task_over(self, task: SncaTask) -> bool:
        """Common end of a task; True when it succeeded."""
        if self.task is task:
            self.task = None
        self.dock.set_actions_enabled(True)
        if task.was_cancelled:
            self.dock.set_progress(0)
            what = task.description().removeprefix(f"{TITLE}: ")
            self.dock.set_status(f"cancelled: nothing was written ({what})")
            self.iface.messageBar().pushMessage(
                TITLE, f"{what}: cancelled", level=Qgis.Info, duration=5
            )
            return False
        if task.error is not None:
            self._fail(task.error)
            return False
        self.dock.set_progress(100)
        return True

    def cancel(self) -> None:
        """Cancel the running task (its outputs are never half-written)."""
        if self.task is not None:
            self.task.cancel()

    def _task_inputs(self) -> tuple[OnnxModel, Path, TilingOptions] | None:
        """The model, raster file and checked tiling options of the dock, or None (after
        showing why) when one of them is missing or invalid."""
        try:
            model = self._require_model()
            _layer, raster = self._require_raster()
            options = self.tiling_options()
            options.check()
        except SncaError as exc:
            self._fail(str(exc))
            return None
        return model, raster, options

    def classify(self) -> SncaTask | None:
        """Start classifying the chosen layer; the styled tile layer appears when done."""
        inputs = self._task_inputs()
        if inputs is None:
            return None
        model, raster, options = inputs
        output = Path(self.dock.output_file.filePath() or default_classify_output(raster))
        class_map = class_map_beside(output) if self.dock.class_map.isChecked() else None
        force = self.dock.overwrite.isChecked()
        try:
            targets = plan_targets([raster], output, class_map=class_map)
        except SncaError as exc:
            self._fail(str(exc))
            return None
        existing = [p for p in targets[0].paths() if p.exists()]
        if existing and not force:
            self._fail(f"{existing[0]} exists; tick 'Overwrite existing outputs' to replace it")
            return None
        batch_size = self.dock.batch_size.value()
        config = ClassifyConfig(targets, options, force=force, batch_size=batch_size)

        def work(progress, cancelled) -> ClassifyReport:
            return classify(config, model, RunOptions(progress, cancelled))

        warning = self.update_warning()
        self.dock.set_status(
            f"classifying {raster.name}..." + (f" (warning: {warning})" if warning else "")
        )
        return self._start(SncaTask(f"SNCA: classify {raster.name}", work, self._classified))

    def _classified(self, task: SncaTask) -> None:
        if not self._task_over(task) or self._project_changed_since(task):
            return
        report: ClassifyReport = task.result
        (summary,) = report.summaries
        stem = summary.raster.stem
        layer = QgsVectorLayer(f"{summary.output}|layername={stem}", f"{stem} classes", "ogr")
        style_class_layer(layer, summary.class_colours)
        if summary.class_map is not None:
            class_map = QgsRasterLayer(str(summary.class_map), f"{stem} class map")
            style_class_map(class_map, summary.class_colours, summary.class_tiles)
            QgsProject.instance().addMapLayer(class_map)
        QgsProject.instance().addMapLayer(layer)
        expand_legend(layer)
        self._info(
            f"classified {summary.tiles_classified} tiles of {summary.raster.name} "
            f"({summary.tiles_skipped} skipped) in {summary.elapsed_s:.1f} s on "
            f"{summary.provider}: {summary.output.name}",
            report.warnings,
        )

    def adapt(self) -> SncaTask | None:
        """Start adapting the model to the chosen label layer over the chosen raster; the new
        model is loaded when done and its cross-validated accuracy shown."""
        inputs = self._task_inputs()
        if inputs is None:
            return None
        model, raster, options = inputs
        layer = self.dock.labels_layer()
        field = self.dock.label_field.currentField()
        output = Path(self.dock.adapted_file.filePath() or default_adapted_model(raster))
        folder = Path(tempfile.mkdtemp(prefix="snca-labels-"))
        try:
            labels = write_label_file(layer, field, folder)
        except SncaError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self._fail(str(exc))
            return None
        config = AdaptConfig(
            output=output,
            model=model.path,
            rasters=[raster],
            labels=labels,
            field=field,
            tiling=options,
            force=self.dock.overwrite.isChecked(),
            labels_name=f"layer {layer.name()}",
        )

        def work(progress, cancelled) -> AdaptReport:
            try:
                return adapt_model(config, lambda _label: progress, cancelled)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        self.dock.set_status(f"adapting {model.path.name} to the labels of {layer.name()}...")
        return self._start(SncaTask(f"SNCA: adapt to {layer.name()}", work, self._adapted))

    def _adapted(self, task: SncaTask) -> None:
        if not self._task_over(task):
            return
        report: AdaptReport = task.result
        classes = ", ".join(
            f"{name} {report.head.recall.get(name, float('nan')):.0%}" for name in report.counts
        )
        self.dock.set_adapt_result(
            f"{report.summary_line()}. Recall per class: {classes}. Model card: {report.card.name}"
        )
        for warning in report.warnings:
            self.iface.messageBar().pushMessage(TITLE, warning, level=Qgis.Warning, duration=10)
        self.dock.model_file.setFilePath(str(report.model))  # loads it (fileChanged)
        self._info(f"adapted model {report.model.name} loaded: {report.summary_line()}")

    def index_dir(self, raster: Path) -> Path:
        """The index folder chosen in the dock, or the default one beside the raster."""
        chosen = self.dock.index_dir.filePath()
        return Path(chosen) if chosen else default_index_dir(raster)

    def build_index(self) -> SncaTask | None:
        """Build the index for the chosen layer, or add the layer to the existing index."""
        inputs = self._task_inputs()
        if inputs is None:
            return None
        model, raster, options = inputs
        index_dir = self.index_dir(raster)
        try:
            update = plan_index_update(index_dir, [raster], replace=self.dock.overwrite.isChecked())
        except SncaError as exc:
            self._fail(str(exc))
            return None
        if not update.rasters:
            self._info(f"{raster.name} is already in index {index_dir.name}: ready to search")
            return None
        rebuild = update.rebuild
        batch_size = self.dock.batch_size.value()

        def work(progress, cancelled) -> IndexSummary | None:
            return update_index(update, model, options, batch_size, RunOptions(progress, cancelled))

        verb = "indexing" if rebuild else "adding to the index:"
        self.dock.set_status(f"{verb} {raster.name}...")
        return self._start(SncaTask(f"SNCA: index {raster.name}", work, self._indexed))

    def _indexed(self, task: SncaTask) -> None:
        if not self._task_over(task):
            return
        summary: IndexSummary = task.result
        self._indexes = {k: v for k, v in self._indexes.items() if k[0] != str(summary.index_dir)}
        self._info(
            f"index {summary.index_dir.name}: {summary.count} tiles ({summary.added} added, "
            f"{summary.skipped} skipped, {summary.ann}) in {summary.seconds:.1f} s",
            summary.warnings,
        )

    # --- search -----------------------------------------------------------------------------
    def open_index(self, index_dir: Path) -> TileIndex:
        """The index in ``index_dir``, opened once and kept while its manifest is unchanged."""
        manifest = index_dir / MANIFEST_NAME
        if not manifest.is_file():
            raise SncaError(f"no index in {index_dir}: build it first (Build index)")
        key = (str(index_dir), manifest.stat().st_mtime_ns)
        index = self._indexes.get(key)
        if index is None:
            index = TileIndex.open(index_dir)
            self._indexes = {key: index}
        return index

    def set_find_similar(self, active: bool) -> None:
        """Turn the map tool on or off."""
        canvas = self.iface.mapCanvas()
        if active:
            canvas.setMapTool(self.map_tool)
            self.dock.set_status(FIND_HINT)
        elif canvas.mapTool() is self.map_tool:
            canvas.unsetMapTool(self.map_tool)

    def clear_examples(self) -> None:
        """Forget the clicked examples: the next click starts a new search."""
        self.positives, self.negatives = [], []
        self.dock.set_status("examples cleared: click a tile on the map")

    def find_similar_at(
        self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem, mode: str = NEW
    ) -> SearchResult | None:
        """Search the tiles most similar to the tile under ``point`` (in ``crs``): a new search
        (``NEW``), or with that tile added as a ``POSITIVE`` or ``NEGATIVE`` example."""
        try:
            layer, raster = self._require_raster()
            index = self.open_index(self.index_dir(raster))
            transform = QgsCoordinateTransform(crs, layer.crs(), QgsProject.instance())
            at = transform.transform(point)
            tile = index.tile_at(at.x(), at.y(), crs=crs_for_snca(layer.crs()))
            positives, negatives = list(self.positives), list(self.negatives)
            if mode == NEW or not positives:
                positives, negatives = [], []
            if mode == NEGATIVE and positives:
                negatives.append(tile)
            else:
                positives.append(tile)
            started = time.perf_counter()
            result = index.search_examples(
                positives,
                negatives,
                k=self.dock.k.value(),
                class_filter=self.dock.selected_class(),
            )
            elapsed = time.perf_counter() - started
        except SncaError as exc:
            self._fail(str(exc))
            return None
        self.positives, self.negatives = positives, negatives
        self.show_result(result)
        query = result.query
        examples = (
            f"{len(positives)} example(s)" + (f", {len(negatives)} unlike" if negatives else "")
            if len(positives) + len(negatives) > 1
            else f"tile {query.tile_id} (row {query.row}, col {query.col}) of {query.raster.name}"
        )
        self.dock.set_status(
            f"{len(result.hits)} tiles like {examples}, {query.class_name}, in "
            f"{elapsed * 1000:.1f} ms ({result.backend}); Ctrl+click adds an example, "
            "Shift+click one to rank away from"
        )
        return result

    def show_result(self, result: SearchResult) -> None:
        """Put the hits and the example tiles on the map and the hits in the results table."""
        project = QgsProject.instance()
        crs = qgis_crs(result.query.crs)
        context = project.transformContext()
        old = project.mapLayer(self._query_layer_id) if self._query_layer_id else None
        query = query_tile_layer(result.positives, result.negatives, crs, context, old)
        if query is not old:
            if old is not None:
                project.removeMapLayer(old.id())
            project.addMapLayer(query)
            self._query_layer_id = query.id()
        old = project.mapLayer(self._similar_layer_id) if self._similar_layer_id else None
        similar = similar_tiles_layer(result.hits, crs, context, old)
        if similar is not old:
            if old is not None:
                project.removeMapLayer(old.id())
            project.addMapLayer(similar)  # above the query layer: its labels on top
            self._similar_layer_id = similar.id()
        expand_legend(similar)
        self.highlight.reset(QgsWkbTypes.PolygonGeometry)
        self._highlighted = None
        self.last_result = result
        self.dock.set_results(
            [
                ResultRow(
                    rank=hit.rank,
                    similarity=hit.similarity,
                    class_name=hit.tile.class_name,
                    tile_id=hit.tile.tile_id,
                    row=hit.tile.row,
                    col=hit.tile.col,
                    raster=hit.tile.raster.name,
                    bounds=hit.tile.bounds,
                    crs_wkt=hit.tile.crs.to_wkt(),
                )
                for hit in result.hits
            ]
        )

    def similar_layer(self) -> QgsVectorLayer | None:
        """The similar-tiles layer, when it is in the project."""
        if self._similar_layer_id is None:
            return None
        return QgsProject.instance().mapLayer(self._similar_layer_id)

    def query_layer(self) -> QgsVectorLayer | None:
        """The query-tile layer, when it is in the project."""
        if self._query_layer_id is None:
            return None
        return QgsProject.instance().mapLayer(self._query_layer_id)

    def zoom_to(self, row: ResultRow) -> None:
        """Zoom the map to a result tile (with a margin of one tile around it)."""
        canvas = self.iface.mapCanvas()
        source = QgsCoordinateReferenceSystem.fromWkt(row.crs_wkt)
        transform = QgsCoordinateTransform(
            source, canvas.mapSettings().destinationCrs(), QgsProject.instance()
        )
        tile = transform.transformBoundingBox(QgsRectangle(*row.bounds))
        self.highlight.setToGeometry(QgsGeometry.fromRect(tile), None)
        self._highlighted = row
        extent = QgsRectangle(tile)
        extent.scale(3.0)
        canvas.setExtent(extent)
        canvas.refresh()

    def highlighted_tile(self) -> dict | None:
        """The tile outlined after a zoom from the table: rank, tile_id, raster."""
        row = self._highlighted
        if row is None:
            return None
        return {"rank": row.rank, "tile_id": row.tile_id, "raster": row.raster}

    def unload(self) -> None:
        """Stop the map tool and cancel a running task (called when the plugin unloads)."""
        self.set_find_similar(False)
        # the dock outlives this call until Qt deletes it: layer removals must not reach us
        self.dock.layer_combo.layerChanged.disconnect(self._tiling_changed)
        self.dock.overlap.valueChanged.disconnect(self._tiling_changed)
        self.iface.mapCanvas().scene().removeItem(self.highlight)
        QgsProject.instance().cleared.disconnect(self._project_cleared)
        if self.task is not None:
            self.task.detach()
            self.task = None
        self._indexes = {}
