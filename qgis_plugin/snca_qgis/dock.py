"""The plugin's dock: model, raster layer, band mapping, tiling and index choices, actions, results.

The dock is only the user interface: it imports nothing from snca, shows what the controller
gives it (model metadata, provider, progress, search results) and emits signals for the buttons.
"""

from __future__ import annotations

from dataclasses import dataclass

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox, QgsRasterBandComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Columns of the results table.
RESULT_COLUMNS = ("Rank", "Similarity", "Class", "Tile", "Raster")
#: onnxruntime providers (short names) that run on a GPU or another accelerator.
GPU_PROVIDERS = ("CUDA", "TensorRT", "ROCM", "MIGraphX", "Dml", "CoreML")
#: Text of the class filter entry that keeps every class.
ANY_CLASS = "any class"


#: The overlap box's lowest value: the model's own ``tiles_overlap`` (its special text).
MODEL_OVERLAP = -1

@dataclass(frozen=True)
class ModelSummary:
    """What the dock shows about a loaded model."""

    name: str
    class_names: list[str]
    tile_size: int
    resolution_cm: float | None
    input_bands: int
    embedding_dim: int
    provider: str
    tiles_overlap_percent: float = 0.0


@dataclass(frozen=True)
class ResultRow:
    """One row of the results table; ``bounds`` are in the CRS named by ``crs_wkt``."""

    rank: int
    similarity: float
    class_name: str
    tile_id: int
    raster: str
    bounds: tuple[float, float, float, float]
    crs_wkt: str


def _resolution_text(resolution_cm: float | None) -> str:
    if resolution_cm is None:
        return "the raster's own resolution"
    return f"{resolution_cm / 100:g} m/px"


class SncaDock(QDockWidget):
    """The dock widget. Signals fire on the buttons; the controller does the work."""

    classify_requested = pyqtSignal()
    index_requested = pyqtSignal()
    find_similar_toggled = pyqtSignal(bool)
    cancel_requested = pyqtSignal()
    model_changed = pyqtSignal(str)
    result_activated = pyqtSignal(object)  # ResultRow

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("SNCA Scene Search", parent)
        self.setObjectName("SncaSceneSearchDock")
        self._model: ModelSummary | None = None
        self._rows: list[ResultRow] = []
        self.band_boxes: list[QgsRasterBandComboBox] = []

        body = QWidget()
        layout = QVBoxLayout(body)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message_label.setVisible(False)
        layout.addWidget(self.message_label)
        layout.addWidget(self._model_group())
        layout.addWidget(self._raster_group())
        layout.addWidget(self._outputs_group())
        layout.addWidget(self._actions_group())
        layout.addWidget(self._results_group(), stretch=1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.set_model(None)

    # --- building ------------------------------------------------------------------------
    def _model_group(self) -> QGroupBox:
        group = QGroupBox("Model")
        form = QFormLayout(group)
        self.model_file = QgsFileWidget()
        self.model_file.setFilter("ONNX models (*.onnx)")
        self.model_file.setDialogTitle("Choose an snca ONNX model")
        self.model_file.fileChanged.connect(self.model_changed)
        form.addRow("ONNX model", self.model_file)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.model_info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        form.addRow(self.model_info)
        self.provider_label = QLabel()
        form.addRow("Runs on", self.provider_label)
        return group

    def _raster_group(self) -> QGroupBox:
        group = QGroupBox("Raster")
        form = QFormLayout(group)
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        form.addRow("Layer", self.layer_combo)
        self.bands_form = QFormLayout()
        form.addRow(self.bands_form)
        self.overlap = QSpinBox()
        self.overlap.setRange(MODEL_OVERLAP, 90)
        self.overlap.setSuffix(" %")
        self.overlap.setValue(MODEL_OVERLAP)
        self.overlap.setSpecialValueText("model's")
        self.overlap.setToolTip(
            "Overlap between neighbouring tiles, in percent of the tile; lowest value: the "
            "model's tiles_overlap, as snca classify uses by default"
        )
        form.addRow("Overlap", self.overlap)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 4096)
        self.batch_size.setValue(32)
        self.batch_size.setToolTip("Tiles per model run: larger is faster and takes more memory")
        form.addRow("Batch size", self.batch_size)
        return group

    def _outputs_group(self) -> QGroupBox:
        group = QGroupBox("Outputs")
        form = QFormLayout(group)
        self.output_file = QgsFileWidget()
        self.output_file.setStorageMode(QgsFileWidget.SaveFile)
        self.output_file.setFilter("GeoPackage (*.gpkg)")
        self.output_file.setToolTip(
            "The tile GeoPackage of Classify layer (default: beside the raster)"
        )
        form.addRow("Tiles GeoPackage", self.output_file)
        self.class_map = QCheckBox("Also write the class-map raster")
        form.addRow(self.class_map)
        self.overwrite = QCheckBox("Overwrite existing outputs")
        form.addRow(self.overwrite)
        self.index_dir = QgsFileWidget()
        self.index_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.index_dir.setToolTip(
            "Folder of the similarity index; reused (and extended with new rasters) next time"
        )
        form.addRow("Index folder", self.index_dir)
        return group

    def _actions_group(self) -> QGroupBox:
        group = QGroupBox("Actions")
        layout = QVBoxLayout(group)
        row = QHBoxLayout()
        self.classify_button = QPushButton("Classify layer")
        self.classify_button.clicked.connect(self.classify_requested)
        self.index_button = QPushButton("Build index")
        self.index_button.clicked.connect(self.index_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        for button in (self.classify_button, self.index_button, self.cancel_button):
            row.addWidget(button)
        layout.addLayout(row)
        search = QHBoxLayout()
        self.find_button = QPushButton("Find similar")
        self.find_button.setCheckable(True)
        self.find_button.setToolTip("Click a tile on the map to list the tiles most like it")
        self.find_button.toggled.connect(self.find_similar_toggled)
        search.addWidget(self.find_button)
        search.addWidget(QLabel("k"))
        self.k = QSpinBox()
        self.k.setRange(1, 1000)
        self.k.setValue(10)
        search.addWidget(self.k)
        self.class_filter = QComboBox()
        self.class_filter.setToolTip("Only return tiles predicted as this class")
        search.addWidget(self.class_filter, stretch=1)
        layout.addLayout(search)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        return group

    def _results_group(self) -> QGroupBox:
        group = QGroupBox("Similar tiles (double-click to zoom)")
        layout = QVBoxLayout(group)
        self.results_table = QTableWidget(0, len(RESULT_COLUMNS))
        self.results_table.setHorizontalHeaderLabels(RESULT_COLUMNS)
        self.results_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.results_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.results_table.verticalHeader().setVisible(False)
        self.results_table.horizontalHeader().setStretchLastSection(True)
        self.results_table.cellDoubleClicked.connect(self._row_activated)
        layout.addWidget(self.results_table)
        return group

    # --- state shown -----------------------------------------------------------------------
    def show_problem(self, text: str) -> None:
        """Show a problem (a missing dependency) above everything; "" hides it."""
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #a00000; font-weight: bold;")
        self.message_label.setVisible(bool(text))

    def set_actions_enabled(self, enabled: bool) -> None:
        """Enable or disable everything that runs the model (while a task runs, or without snca)."""
        for button in (self.classify_button, self.index_button, self.find_button):
            button.setEnabled(enabled)
        self.cancel_button.setEnabled(not enabled)

    def set_model(self, model: ModelSummary | None) -> None:
        """Show a model's metadata and rebuild one band chooser per model input band."""
        self._model = model
        if model is None:
            self.model_info.setText("Choose an snca model (.onnx) exported by `snca export`.")
            self.provider_label.setText("-")
            self._rebuild_bands(0)
            self.class_filter.clear()
            self.class_filter.addItem(ANY_CLASS)
            return
        classes = ", ".join(model.class_names)
        self.model_info.setText(
            f"<b>{model.name}</b><br>{len(model.class_names)} classes: {classes}<br>"
            f"tiles {model.tile_size} x {model.tile_size} px at "
            f"{_resolution_text(model.resolution_cm)}; {model.input_bands} band(s) in; "
            f"{model.embedding_dim}-d embedding"
        )
        self.overlap.setSpecialValueText(f"model's ({model.tiles_overlap_percent:g} %)")
        device = "GPU" if model.provider in GPU_PROVIDERS else "CPU"
        self.provider_label.setText(f"{device} (onnxruntime {model.provider}ExecutionProvider)")
        self._rebuild_bands(model.input_bands)
        self.class_filter.clear()
        self.class_filter.addItem(ANY_CLASS)
        self.class_filter.addItems(model.class_names)

    def _rebuild_bands(self, count: int) -> None:
        while self.bands_form.rowCount():
            self.bands_form.removeRow(0)
        self.band_boxes = []
        for index in range(count):
            box = QgsRasterBandComboBox()
            box.setLayer(self.layer_combo.currentLayer())
            self.bands_form.addRow(f"Model band {index + 1} \u2190", box)
            self.band_boxes.append(box)
        self._default_bands()

    def _layer_changed(self, layer: QgsRasterLayer | None) -> None:
        for box in self.band_boxes:
            box.setLayer(layer)
        self._default_bands()

    def _default_bands(self) -> None:
        layer = self.layer_combo.currentLayer()
        count = layer.bandCount() if isinstance(layer, QgsRasterLayer) else 0
        for index, box in enumerate(self.band_boxes):
            if index < count:
                box.setBand(index + 1)

    # --- choices read by the controller ----------------------------------------------------
    def raster_layer(self) -> QgsRasterLayer | None:
        layer = self.layer_combo.currentLayer()
        return layer if isinstance(layer, QgsRasterLayer) else None

    def bands(self) -> tuple[int, ...]:
        """The raster bands (1-based) feeding the model's input bands, in order."""
        return tuple(box.currentBand() for box in self.band_boxes)

    def overlap_fraction(self) -> float | None:
        """The chosen overlap as a fraction of the tile, or None for the model's own."""
        value = self.overlap.value()
        return None if value == MODEL_OVERLAP else value / 100.0

    def selected_class(self) -> str | None:
        """The class filter, or None for any class."""
        text = self.class_filter.currentText()
        return None if text in ("", ANY_CLASS) else text

    # --- progress and results ---------------------------------------------------------------
    def set_progress(self, percent: float) -> None:
        self.progress.setValue(int(round(percent)))

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_results(self, rows: list[ResultRow]) -> None:
        """Fill the results table, best first."""
        self._rows = list(rows)
        self.results_table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            values = (
                str(row.rank),
                f"{row.similarity:.4f}",
                row.class_name,
                str(row.tile_id),
                row.raster,
            )
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column < 2:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.results_table.setItem(index, column, item)
        self.results_table.resizeColumnsToContents()

    def _row_activated(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._rows):
            self.result_activated.emit(self._rows[row])
