"""Processing algorithms: Classify raster, Build index, Search similar tiles, Adapt model.

They run from the toolbox, in batch mode, in the modeler and with ``qgis_process``
(``qgis_process run snca:classifyraster -- INPUT=... OUTPUT=...``). Each one is a thin
wrapper over one ``snca_cli`` call, with the Processing feedback as progress and cancel hooks,
and every warning of the task in the Processing log.

This module loads without the snca runtime: parameters, names and help need QGIS only, and
``snca_cli`` is imported when an algorithm runs. When the plugin found no working runtime, the
provider creates the algorithms with the line that says how to install it (``unavailable``):
the Processing dialog shows it (:meth:`SncaAlgorithm.canExecute`) and every run
(``processing.run``, ``qgis_process``, batch mode) stops with it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsFeatureSink,
    QgsMapLayer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
    QgsWkbTypes,
)

if TYPE_CHECKING:
    from snca_cli.contract.tiling import TilingOptions
    from snca_cli.runtime.onnx_model import OnnxModel
    from snca_cli.tasks.units import RunOptions

GROUP = "Scene embeddings"
GROUP_ID = "sceneembeddings"

#: The help of the parameters several algorithms share (one paragraph each).
MODEL_HELP = (
    "ONNX model: an snca model file (.onnx); empty: the model shipped with the plugin "
    "(snca-aid150-lite0, 30 scene classes of the AID data set)."
)
BANDS_HELP = (
    "Model bands: the raster bands fed to the model, in the model's band order (a BGR raster "
    "for an RGB model: 3, 2, 1); empty: the raster's first bands."
)
TILING_HELP = (
    "Tile overlap: the share of a tile that neighbouring tiles cover, in % of the tile; "
    "empty: the model's own overlap (its tiles_overlap, as snca classify without --overlap).\n"
    "Minimum valid pixel fraction: tiles with a smaller fraction of valid (not no-data) "
    "pixels are skipped."
)
BATCH_HELP = "Tiles per model run: the batch size; larger runs faster and takes more memory."

#: Post-processors must outlive the algorithm run that created them (Processing calls them
#: after the run, when loading the outputs); keyed by output.
_POST_PROCESSORS: dict[str, QgsProcessingLayerPostProcessorInterface] = {}


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Styles an output when Processing loads it, as the dock styles its layers."""

    def __init__(self, style: Callable[[QgsMapLayer], None]) -> None:
        super().__init__()
        self.style = style

    def postProcessLayer(
        self, layer: QgsMapLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        self.style(layer)


def _style_on_load(
    context: QgsProcessingContext, output: str, style: Callable[[QgsMapLayer], None]
) -> None:
    """Have ``style`` applied to ``output`` (a path or a layer id) if Processing loads it."""
    if not output or not context.willLoadLayerOnCompletion(output):
        return
    post_processor = StyleOnLoad(style)
    _POST_PROCESSORS[output] = post_processor
    context.layerToLoadOnCompletionDetails(output).setPostProcessor(post_processor)


def _push_warning(feedback: QgsProcessingFeedback, line: str) -> None:
    """A task's warning line in the Processing log, as the command line prints it."""
    feedback.pushWarning(f"warning: {line}")


class SncaAlgorithm(QgsProcessingAlgorithm):
    """Shared parameters, the missing runtime's message, and the translation of snca errors
    into Processing errors.

    ``unavailable`` is empty when the runtime works, else the one line that says how to
    install it: the algorithm is listed as usual but never runs.
    """

    MODEL = "MODEL"
    OVERLAP = "OVERLAP"
    MIN_VALID = "MIN_VALID"
    BATCH_SIZE = "BATCH_SIZE"

    def __init__(self, unavailable: str = "") -> None:
        super().__init__()
        self.unavailable = unavailable

    def group(self) -> str:
        return GROUP

    def groupId(self) -> str:
        return GROUP_ID

    def createInstance(self) -> SncaAlgorithm:
        return type(self)(self.unavailable)

    def canExecute(self) -> tuple[bool, str]:
        """Whether the runtime works; if not, how to install it (the dialog shows it)."""
        return not self.unavailable, self.unavailable

    def checkParameterValues(
        self, parameters: dict, context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """Without the runtime, how to install it (before any complaint about parameters)."""
        if self.unavailable:
            return False, self.unavailable
        return super().checkParameterValues(parameters, context)

    def _add_model_parameter(
        self, description: str = "ONNX model (empty: the shipped model)"
    ) -> None:
        """An optional model file: ``qgis_process`` (QGIS 3.22) ignores file defaults, so the
        shipped model is what an empty value means, not a default path."""
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL, description, QgsProcessingParameterFile.File, "onnx", None, True
            )
        )

    def _add_tiling_parameters(self, batch_size: bool = True) -> None:
        self.addParameter(
            QgsProcessingParameterNumber(
                self.OVERLAP,
                "Tile overlap, % (empty: the model's)",
                QgsProcessingParameterNumber.Double,
                None,
                True,
                0.0,
                90.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_VALID,
                "Minimum valid pixel fraction of a tile",
                QgsProcessingParameterNumber.Double,
                0.5,
                False,
                0.0,
                1.0,
            )
        )
        if not batch_size:
            return
        self.addParameter(
            QgsProcessingParameterNumber(
                self.BATCH_SIZE,
                "Tiles per model run",
                QgsProcessingParameterNumber.Integer,
                32,
                False,
                1,
                4096,
            )
        )

    def _model(self, parameters: dict, context: QgsProcessingContext) -> OnnxModel:
        """The chosen model, or the shipped one when none is chosen."""
        from snca_cli.runtime.default_model import resolve_model
        from snca_cli.runtime.onnx_model import OnnxModel

        path = self.parameterAsFile(parameters, self.MODEL, context)
        return OnnxModel(resolve_model(path or None, hint="choose an ONNX model"))

    def _options(
        self, parameters: dict, context: QgsProcessingContext, bands: list[int] | None = None
    ) -> TilingOptions:
        from snca_cli.contract.tiling import TilingOptions

        chosen = parameters.get(self.OVERLAP)
        overlap = (
            None
            if chosen is None or chosen == ""
            else self.parameterAsDouble(parameters, self.OVERLAP, context)
        )
        options = TilingOptions(
            overlap=None if overlap is None else overlap / 100.0,
            min_valid=self.parameterAsDouble(parameters, self.MIN_VALID, context),
            bands=tuple(bands) if bands else None,
        )
        options.check()
        return options

    @staticmethod
    def _run(feedback: QgsProcessingFeedback) -> RunOptions:
        """The task's hooks on the Processing feedback: progress, cancel, and each warning
        line in the log as the command line prints it."""
        from snca_cli.tasks.units import RunOptions

        def progress(done: int, total: int) -> None:
            feedback.setProgress(100.0 * done / total if total else 100.0)

        return RunOptions(
            progress=progress,
            cancelled=feedback.isCanceled,
            warn=lambda line: _push_warning(feedback, line),
        )

    def processAlgorithm(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        if self.unavailable:  # a caller that skipped checkParameterValues
            raise QgsProcessingException(self.unavailable)
        from snca_cli.errors import Cancelled, SncaError

        try:
            return self.run_snca(parameters, context, feedback)
        except Cancelled:
            raise QgsProcessingException("cancelled: nothing was written") from None
        except SncaError as exc:
            raise QgsProcessingException(str(exc)) from None

    def run_snca(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """The algorithm itself; SncaError becomes a QgsProcessingException."""
        raise NotImplementedError


class ClassifyRasterAlgorithm(SncaAlgorithm):
    """Classify every tile of a raster into a GeoPackage (and optionally a class map)."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    TOP_K = "TOP_K"
    OUTPUT = "OUTPUT"
    CLASS_MAP = "CLASS_MAP"
    TILES = "TILES"

    def name(self) -> str:
        return "classifyraster"

    def displayName(self) -> str:
        return "Classify raster"

    def shortHelpString(self) -> str:
        return (
            "Cuts the raster into the model's tiles, classifies every tile with enough valid "
            "pixels and writes a GeoPackage of tile polygons (class_id, class_name, score, "
            "top-k classes), an EPSG:4326 GeoJSON beside it and, optionally, a class-map "
            "raster (band 1 class id, band 2 confidence %).\n"
            f"{MODEL_HELP}\n{BANDS_HELP}\n{TILING_HELP}\n{BATCH_HELP}\n"
            "Best classes per tile: how many of the most likely classes each tile records "
            "(top1_name, top1_prob, ...)."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Raster layer"))
        self._add_model_parameter()
        self.addParameter(
            QgsProcessingParameterBand(
                self.BANDS,
                "Model bands, in order (empty: the first)",
                None,
                self.INPUT,
                True,
                True,
            )
        )
        self._add_tiling_parameters()
        self.addParameter(
            QgsProcessingParameterNumber(
                self.TOP_K,
                "Best classes per tile",
                QgsProcessingParameterNumber.Integer,
                3,
                False,
                1,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT, "Classified tiles (GeoPackage)", QgsProcessing.TypeVectorPolygon
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.CLASS_MAP, "Class map", None, True, False)
        )
        self.addOutput(QgsProcessingOutputNumber(self.TILES, "Tiles classified"))

    def run_snca(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        from snca_cli.tasks.classify import ClassifyConfig, classify, plan_targets

        from .layers import style_class_layer, style_class_map
        from .raster_source import raster_file

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("choose a raster layer")
        raster = raster_file(layer)
        model = self._model(parameters, context)
        bands = self.parameterAsInts(parameters, self.BANDS, context)
        options = self._options(parameters, context, bands)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(output).suffix.lower() != ".gpkg":
            raise QgsProcessingException(
                f"the classified tiles go to a GeoPackage (.gpkg), not {output}"
            )
        class_map = self.parameterAsOutputLayer(parameters, self.CLASS_MAP, context) or None
        feedback.pushInfo(f"model {model.path.name} on onnxruntime {model.provider_name}")
        config = ClassifyConfig(
            plan_targets([raster], Path(output), class_map=Path(class_map) if class_map else None),
            options,
            top_k=self.parameterAsInt(parameters, self.TOP_K, context),
            force=True,  # Processing outputs are always overwritten
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
        )
        (summary,) = classify(config, model, self._run(feedback)).summaries
        feedback.pushInfo(
            f"{summary.tiles_classified} tiles classified, {summary.tiles_skipped} skipped, "
            f"in {summary.elapsed_s:.1f} s"
        )
        colours, counts = summary.class_colours, summary.class_tiles
        _style_on_load(context, output, lambda layer: style_class_layer(layer, colours))
        results: dict[str, Any] = {self.OUTPUT: output, self.TILES: summary.tiles_classified}
        if class_map:
            _style_on_load(
                context, class_map, lambda layer: style_class_map(layer, colours, counts)
            )
            results[self.CLASS_MAP] = class_map
        return results


class BuildIndexAlgorithm(SncaAlgorithm):
    """Build a similar-tile index for some rasters, or add them to an existing one."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    APPEND = "APPEND"
    INDEX = "INDEX"
    COUNT = "COUNT"

    def name(self) -> str:
        return "buildindex"

    def displayName(self) -> str:
        return "Build index"

    def shortHelpString(self) -> str:
        return (
            "Embeds every tile of the rasters with the model and writes a similar-tile index "
            "folder (hnswlib graph when hnswlib is installed, else exact search). With "
            "'Add to an existing index' the rasters are appended to the index in the folder "
            "(built with the same model and tiling) instead of replacing it.\n"
            f"{MODEL_HELP}\n{BANDS_HELP} Comma separated: 3,2,1.\n{TILING_HELP}\n{BATCH_HELP}"
        )

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.INPUT, "Raster layers", QgsProcessing.TypeRaster
            )
        )
        self._add_model_parameter()
        self.addParameter(
            QgsProcessingParameterString(
                self.BANDS,
                "Model bands, e.g. 3,2,1 (empty: the first)",
                "",
                False,
                True,
            )
        )
        self._add_tiling_parameters()
        self.addParameter(
            QgsProcessingParameterBoolean(self.APPEND, "Add to an existing index", False)
        )
        self.addParameter(QgsProcessingParameterFolderDestination(self.INDEX, "Index folder"))
        self.addOutput(QgsProcessingOutputNumber(self.COUNT, "Tiles in the index"))

    def _bands(self, parameters: dict, context: QgsProcessingContext) -> list[int]:
        from snca_cli.contract.tiling import parse_bands

        return list(parse_bands(self.parameterAsString(parameters, self.BANDS, context)) or ())

    def run_snca(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        from snca_cli.tasks.index.build import plan_index_update, update_index
        from snca_cli.tasks.index.store import read_index

        from .raster_source import raster_file

        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException("choose at least one raster layer")
        rasters = [raster_file(layer) for layer in layers]
        model = self._model(parameters, context)
        options = self._options(parameters, context, self._bands(parameters, context))
        index_dir = Path(self.parameterAsFileOutput(parameters, self.INDEX, context))
        batch_size = self.parameterAsInt(parameters, self.BATCH_SIZE, context)
        append = self.parameterAsBoolean(parameters, self.APPEND, context)
        update = plan_index_update(index_dir, rasters, replace=not append)
        summary = update_index(update, model, options, batch_size, self._run(feedback))
        if summary is None:
            feedback.pushInfo(f"every raster is already in index {index_dir}")
            return {self.INDEX: str(index_dir), self.COUNT: read_index(index_dir).manifest.count}
        feedback.pushInfo(
            f"index {index_dir}: {summary.count} tiles ({summary.added} added, "
            f"{summary.skipped} skipped, {summary.ann})"
        )
        return {self.INDEX: str(index_dir), self.COUNT: summary.count}


class SearchSimilarAlgorithm(SncaAlgorithm):
    """The tiles of an index most similar to the tile under a point."""

    INDEX = "INDEX"
    POINT = "POINT"
    K = "K"
    CLASS = "CLASS"
    EXACT = "EXACT"
    OUTPUT = "OUTPUT"
    QUERY = "QUERY"

    def name(self) -> str:
        return "searchsimilar"

    def displayName(self) -> str:
        return "Search similar tiles"

    def shortHelpString(self) -> str:
        return (
            "Finds the indexed tile under the point and returns the k tiles of the index most "
            "similar to it (cosine similarity of the embeddings; the query tile itself is "
            "excluded), ranked from 1, optionally only tiles predicted as one class.\n"
            "Index folder: an index built by Build index (or snca index build).\n"
            "Only tiles of this class: a class name of the index's model; empty: any class.\n"
            "Exact search: compare with every tile of the index instead of searching the "
            "hnswlib graph (exact, slower on large indexes; without hnswlib every search is "
            "exact).\n"
            "Similar tiles load as the dock shows them: fills on a fixed similarity ramp, "
            "labelled with their rank; Query tile: the tile under the point, as a cyan outline."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                self.INDEX, "Index folder", QgsProcessingParameterFile.Folder
            )
        )
        self.addParameter(QgsProcessingParameterPoint(self.POINT, "Point on the query tile"))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.K,
                "Number of similar tiles",
                QgsProcessingParameterNumber.Integer,
                10,
                False,
                1,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.CLASS, "Only tiles of this class (empty: any class)", "", False, True
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(self.EXACT, "Exact search (no hnswlib graph)", False)
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.OUTPUT, "Similar tiles", QgsProcessing.TypeVectorPolygon
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.QUERY, "Query tile", QgsProcessing.TypeVectorPolygon, None, True, True
            )
        )

    def run_snca(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        from snca_cli.tasks.index.search import TileIndex

        from .layers import (
            crs_for_snca,
            hit_features,
            qgis_crs,
            query_feature,
            query_tile_fields,
            similar_tile_fields,
            style_query_layer,
            style_similar_layer,
        )

        index = TileIndex.open(
            self.parameterAsFile(parameters, self.INDEX, context),
            exact=self.parameterAsBoolean(parameters, self.EXACT, context),
        )
        point = self.parameterAsPoint(parameters, self.POINT, context)
        point_crs = self.parameterAsPointCrs(parameters, self.POINT, context)
        class_filter = self.parameterAsString(parameters, self.CLASS, context).strip() or None
        result = index.search_point(
            point.x(),
            point.y(),
            crs=crs_for_snca(point_crs) if point_crs.isValid() else None,
            k=self.parameterAsInt(parameters, self.K, context),
            class_filter=class_filter,
        )
        feedback.pushInfo(
            f"query tile {result.query.tile_id} ({result.query.class_name}): "
            f"{len(result.hits)} hits in {result.seconds * 1000:.1f} ms ({result.backend})"
        )
        crs = qgis_crs(result.query.crs)
        transform_context = context.transformContext()
        sink, dest = self.parameterAsSink(
            parameters, self.OUTPUT, context, similar_tile_fields(), QgsWkbTypes.Polygon, crs
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        for feature in hit_features(result.hits, crs, transform_context):
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        _style_on_load(context, dest, style_similar_layer)
        results: dict[str, Any] = {self.OUTPUT: dest}
        query_sink, query_dest = self.parameterAsSink(
            parameters, self.QUERY, context, query_tile_fields(), QgsWkbTypes.Polygon, crs
        )
        if query_sink is not None:
            query = query_feature(result.query, "positive", crs, transform_context)
            query_sink.addFeature(query, QgsFeatureSink.FastInsert)
            _style_on_load(context, query_dest, style_query_layer)
            results[self.QUERY] = query_dest
        return results


class AdaptModelAlgorithm(SncaAlgorithm):
    """A new model for the classes of a labelled point or polygon layer (``snca adapt``)."""

    INPUT = "INPUT"
    LABELS = "LABELS"
    FIELD = "FIELD"
    FOLDS = "FOLDS"
    OUTPUT = "OUTPUT"
    CV_ACCURACY = "CV_ACCURACY"
    UNKNOWN_THRESHOLD = "UNKNOWN_THRESHOLD"
    CARD = "CARD"

    def name(self) -> str:
        return "adaptmodel"

    def displayName(self) -> str:
        return "Adapt model to a labelled layer"

    def shortHelpString(self) -> str:
        return (
            "Teaches the model the classes of a point or polygon layer: a point labels the "
            "tile under it, a polygon every tile at least half inside it (tiles cut as "
            "Classify raster cuts them). The labelled tiles are embedded, a class-balanced "
            "head is fitted and cross-validated, and a new ONNX model is written with the same "
            "embedding (indexes built with the base model stay valid), the new classes and a "
            "calibrated threshold below which tiles are classified 'unknown'. Beside it: a "
            "model card (.card.md, .card.json), a report (.adapt.json) and a confusion matrix "
            "(.confusion.png).\n"
            "Base ONNX model: the model to adapt; empty: the model shipped with the plugin.\n"
            f"{TILING_HELP}\n"
            "Cross-validation folds: at most this many (fewer when a class has fewer "
            "labelled tiles)."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.INPUT, "Raster layers the labels lie on", QgsProcessing.TypeRaster
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.LABELS,
                "Labels (points or polygons)",
                [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon],
            )
        )
        self.addParameter(QgsProcessingParameterField(self.FIELD, "Class field", None, self.LABELS))
        self._add_model_parameter("Base ONNX model (empty: the shipped model)")
        self._add_tiling_parameters(batch_size=False)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.FOLDS,
                "Cross-validation folds (at most)",
                QgsProcessingParameterNumber.Integer,
                5,
                False,
                2,
                50,
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT, "Adapted model", "ONNX models (*.onnx)"
            )
        )
        self.addOutput(QgsProcessingOutputNumber(self.CV_ACCURACY, "Cross-validated accuracy"))
        self.addOutput(
            QgsProcessingOutputNumber(self.UNKNOWN_THRESHOLD, "Unknown below this similarity")
        )
        self.addOutput(QgsProcessingOutputFile(self.CARD, "Model card"))

    def run_snca(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        from snca_cli.tasks.adapt import AdaptConfig, adapt_model

        from .label_layer import write_label_file
        from .raster_source import raster_file

        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException("choose at least one raster layer")
        labels = self.parameterAsVectorLayer(parameters, self.LABELS, context)
        fields = self.parameterAsFields(parameters, self.FIELD, context)
        field = fields[0] if fields else ""
        output = Path(self.parameterAsFileOutput(parameters, self.OUTPUT, context))
        base = self.parameterAsFile(parameters, self.MODEL, context)
        if output.suffix.lower() != ".onnx":
            raise QgsProcessingException(
                f"the adapted model is an ONNX file (.onnx), not {output.name}"
            )
        run = self._run(feedback)
        with tempfile.TemporaryDirectory(prefix="snca-labels-") as folder:
            report = adapt_model(
                AdaptConfig(
                    output=output,
                    model=Path(base) if base else None,
                    rasters=[raster_file(layer) for layer in layers],
                    labels=write_label_file(labels, field, Path(folder)),
                    field=field,
                    tiling=self._options(parameters, context),
                    folds=self.parameterAsInt(parameters, self.FOLDS, context),
                    force=True,  # Processing outputs are always overwritten
                    labels_name=f"layer {labels.name()}",
                ),
                progress=lambda _label: run.progress,
                cancelled=run.cancelled,
            )
        for warning in report.warnings:
            _push_warning(feedback, warning)
        feedback.pushInfo(report.summary_line())
        accuracy = report.head.cv_accuracy
        return {
            self.OUTPUT: str(report.model),
            self.CV_ACCURACY: float("nan") if accuracy is None else accuracy,
            self.UNKNOWN_THRESHOLD: report.head.rule.threshold,
            self.CARD: str(report.card),
        }
