"""The plugin's dock: model, raster layer, band mapping, tiling and index choices, actions, adapting
the model to a labelled layer, results.

The dock is only the user interface: it imports nothing from snca, shows what the controller
gives it (model metadata, provider, progress, search results) and emits signals for the buttons.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer, QgsVectorLayer
from qgis.gui import (
    QgsCollapsibleGroupBox,
    QgsFieldComboBox,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsRasterBandComboBox,
)
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QScrollBar,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

#: Columns of the results table ("#": rank; "Tile": the grid id of the classify outputs, its row
#: and column in the tooltip).
RESULT_COLUMNS = ("#", "Sim.", "Class", "Tile", "Raster")
#: Result rows the table shows without scrolling.
VISIBLE_RESULT_ROWS = 5
#: Width (px) the dock's fields and labels can shrink to.
MIN_FIELD_WIDTH = 120
#: Longest word a label shows whole; longer ones (paths) are elided in the middle.
ELIDE_CHARS = 36
#: onnxruntime providers (short names) that run on a GPU or another accelerator.
GPU_PROVIDERS = ("CUDA", "TensorRT", "ROCM", "MIGraphX", "Dml", "CoreML")
#: Most class names the model box lists in its text (more: in its tooltip only).
INLINE_CLASS_NAMES = 8
#: Lines of the status line shown (its tooltip has all of it).
STATUS_LINES = 3
#: What the clicks of the Find similar map tool do (its tooltip, and the status when it is on).
FIND_HINT = (
    "click a tile on the map to find the tiles most like it; Ctrl+click adds a tile to search "
    "for, Shift+click a tile to rank away from"
)
#: Lines of pip's output the install log keeps.
INSTALL_LOG_LINES = 2000
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
    training_resolution_m: tuple[float, float] | None = None


@dataclass(frozen=True)
class ResultRow:
    """One row of the results table; ``bounds`` are in the CRS named by ``crs_wkt``."""

    rank: int
    similarity: float
    class_name: str
    tile_id: int
    row: int
    col: int
    raster: str
    bounds: tuple[float, float, float, float]
    crs_wkt: str


def _resolution_text(resolution_cm: float | None) -> str:
    if resolution_cm is None:
        return "the raster's own resolution"
    return f"{resolution_cm / 100:g} m/px"


def elide_words(text: str, limit: int = ELIDE_CHARS) -> str:
    """``text`` with every word longer than ``limit`` characters (a path, a URL) cut in the
    middle with "…", so that a word-wrapped label can always be as narrow as the dock."""
    words = []
    for word in text.split(" "):
        if len(word) > limit:
            keep = (limit - 1) // 2
            word = f"{word[:keep]}\u2026{word[-keep:]}"
        words.append(word)
    return " ".join(words)


def wrapping_label(text: str = "") -> QLabel:
    """A label that wraps, can be selected, and never asks for more width than the dock has."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    label.setMinimumWidth(MIN_FIELD_WIDTH)
    return label


def set_label_text(label: QLabel, text: str) -> None:
    """Show ``text`` with long words elided; the full text is the tooltip."""
    label.setText(elide_words(text))
    label.setToolTip(text if elide_words(text) != text else "")


def _narrow(combo: QComboBox) -> QComboBox:
    """A combo box that shrinks with the dock instead of widening it to its longest entry."""
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(6)
    combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
    return combo


def _scrolling(*sections: QWidget) -> QScrollArea:
    """A vertically scrolling page of ``sections``, one below the other."""
    body = QWidget()
    layout = QVBoxLayout(body)
    layout.setContentsMargins(2, 2, 2, 2)
    for section in sections:
        layout.addWidget(section)
    layout.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(body)
    scroll.setFrameShape(QScrollArea.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
    return scroll


def _form(parent: QWidget) -> QFormLayout:
    """A form whose labels go above their fields when the dock is narrow."""
    form = QFormLayout(parent)
    form.setRowWrapPolicy(QFormLayout.WrapLongRows)
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    return form


def _file_widget(mode: QgsFileWidget.StorageMode, tooltip: str) -> QgsFileWidget:
    """A file chooser whose tooltip is the full path chosen (the field shows part of it)."""
    widget = QgsFileWidget()
    widget.setStorageMode(mode)
    widget.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
    widget.setMinimumWidth(MIN_FIELD_WIDTH)
    widget.setToolTip(tooltip)
    widget.fileChanged.connect(lambda path: widget.lineEdit().setToolTip(path or tooltip))
    return widget


class SncaDock(QDockWidget):
    """The dock widget. Signals fire on the buttons; the controller does the work.

    Three tabs: *Search* (the action buttons and the similar tiles, the table taking the room
    left), *Settings* (model, raster, outputs, search) and *Adapt*, the last two scrolling
    vertically only. The progress bar and the status line are pinned below the tabs, so the
    buttons, the status and :data:`VISIBLE_RESULT_ROWS` result rows show at any dock height
    from about 300 px (a 1366 x 768 window with another panel docked on the same side).
    """

    classify_requested = pyqtSignal()
    adapt_requested = pyqtSignal()
    index_requested = pyqtSignal()
    find_similar_toggled = pyqtSignal(bool)
    clear_examples_requested = pyqtSignal()
    cancel_requested = pyqtSignal()
    model_changed = pyqtSignal(str)
    install_requested = pyqtSignal()
    result_activated = pyqtSignal(object)  # ResultRow

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("SNCA Scene Search", parent)
        self.setObjectName("SncaSceneSearchDock")
        self._model: ModelSummary | None = None
        self._rows: list[ResultRow] = []
        self._busy = False
        self.band_boxes: list[QgsRasterBandComboBox] = []

        root = QWidget()
        layout = QVBoxLayout(root)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self._problem_box())
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.search_page = self._search_page()
        self.settings_scroll = _scrolling(
            self._model_group(), self._raster_group(), self._outputs_group(), self._search_group()
        )
        self.adapt_scroll = _scrolling(self._adapt_group())
        self.tabs.addTab(self.search_page, "Search")
        self.tabs.addTab(self.settings_scroll, "Settings")
        self.tabs.addTab(self.adapt_scroll, "Adapt")
        layout.addWidget(self.tabs, 1)
        # pinned below the tabs: always visible, whatever the dock's height
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setMaximumHeight(self.fontMetrics().height() + 4)
        layout.addWidget(self.progress)
        self.status_label = wrapping_label()
        self.status_label.setMaximumHeight(STATUS_LINES * self.fontMetrics().lineSpacing() + 4)
        self.status_label.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        layout.addWidget(self.status_label)
        self.setWidget(root)
        self.set_model(None)

    # --- building ------------------------------------------------------------------------
    def _problem_box(self) -> QWidget:
        """The runtime problem, the button that installs the runtime, pip's progress and log."""
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.message_label = wrapping_label()
        self.message_label.setTextFormat(Qt.PlainText)
        self.message_label.setStyleSheet("color: #a00000; font-weight: bold;")
        layout.addWidget(self.message_label)
        self.install_button = QPushButton("Install runtime")
        self.install_button.setToolTip(
            "Install snca and the packages QGIS lacks (onnxruntime, rasterio, ...) into the "
            "plugin's own folder with QGIS's Python's pip; QGIS's own packages stay as they are"
        )
        self.install_button.clicked.connect(self.install_requested)
        layout.addWidget(self.install_button, alignment=Qt.AlignLeft)
        self.install_progress = QProgressBar()
        self.install_progress.setRange(0, 0)  # pip gives no total: busy
        self.install_progress.setVisible(False)
        layout.addWidget(self.install_progress)
        self.install_log = QPlainTextEdit()
        self.install_log.setReadOnly(True)
        self.install_log.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.install_log.setMaximumBlockCount(INSTALL_LOG_LINES)
        self.install_log.setFixedHeight(8 * self.install_log.fontMetrics().lineSpacing())
        self.install_log.setVisible(False)
        layout.addWidget(self.install_log)
        box.setVisible(False)
        self.problem_box = box
        return box

    def _model_group(self) -> QGroupBox:
        group = QgsCollapsibleGroupBox("Model")
        form = _form(group)
        self.model_file = _file_widget(QgsFileWidget.GetFile, "The snca ONNX model")
        self.model_file.setFilter("ONNX models (*.onnx)")
        self.model_file.setDialogTitle("Choose an snca ONNX model")
        self.model_file.fileChanged.connect(self.model_changed)
        form.addRow("ONNX model", self.model_file)
        self.model_info = wrapping_label()
        form.addRow(self.model_info)
        self.provider_label = wrapping_label()
        form.addRow("Runs on", self.provider_label)
        return group

    def _raster_group(self) -> QGroupBox:
        group = QgsCollapsibleGroupBox("Raster")
        form = _form(group)
        self.layer_combo = _narrow(QgsMapLayerComboBox())
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.layerChanged.connect(self._layer_changed)
        form.addRow("Layer", self.layer_combo)
        self.warning_label = wrapping_label()
        self.warning_label.setStyleSheet("color: #a05000;")
        self.warning_label.setVisible(False)
        form.addRow(self.warning_label)
        bands = QWidget()
        self.bands_form = _form(bands)
        form.addRow(bands)
        self.overlap = QSpinBox()
        self.overlap.setMinimum(MODEL_OVERLAP)  # the maximum comes from snca's tiling rules
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
        group = QgsCollapsibleGroupBox("Outputs")
        form = _form(group)
        self.output_file = _file_widget(
            QgsFileWidget.SaveFile,
            "The tile GeoPackage of Classify layer (default: beside the raster)",
        )
        self.output_file.setFilter("GeoPackage (*.gpkg)")
        form.addRow("Tiles GeoPackage", self.output_file)
        self.class_map = QCheckBox("Also write the class-map raster")
        form.addRow(self.class_map)
        self.overwrite = QCheckBox("Overwrite existing outputs")
        form.addRow(self.overwrite)
        self.index_dir = _file_widget(
            QgsFileWidget.GetDirectory,
            "Folder of the similarity index; reused (and extended with new rasters) next time",
        )
        form.addRow("Index folder", self.index_dir)
        return group

    def _search_page(self) -> QWidget:
        """The actions and the similar tiles: the tab a user works in."""
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(2, 4, 2, 2)
        grid = QGridLayout()
        grid.setSpacing(3)
        self.classify_button = QPushButton("Classify layer")
        self.classify_button.clicked.connect(self.classify_requested)
        self.index_button = QPushButton("Build index")
        self.index_button.clicked.connect(self.index_requested)
        self.find_button = QPushButton("Find similar")
        self.find_button.setCheckable(True)
        self.find_button.setToolTip(FIND_HINT)
        self.find_button.toggled.connect(self.find_similar_toggled)
        self.clear_button = QPushButton("Clear examples")
        self.clear_button.setToolTip("Forget the clicked example tiles")
        self.clear_button.clicked.connect(self.clear_examples_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons = (
            self.classify_button,
            self.index_button,
            self.find_button,
            self.clear_button,
            self.cancel_button,
        )
        for number, button in enumerate(buttons):
            button.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
            button.setMinimumWidth(MIN_FIELD_WIDTH // 2)
            grid.addWidget(button, number // 2, number % 2)
        layout.addLayout(grid)
        layout.addWidget(self._results_group(), 1)
        return page

    def _search_group(self) -> QGroupBox:
        group = QgsCollapsibleGroupBox("Similar tiles")
        form = _form(group)
        self.k = QSpinBox()
        self.k.setRange(1, 1000)
        self.k.setValue(10)
        form.addRow("How many (k)", self.k)
        self.class_filter = _narrow(QComboBox())
        self.class_filter.setToolTip("Only return tiles predicted as this class")
        form.addRow("Class", self.class_filter)
        return group

    def _adapt_group(self) -> QGroupBox:
        group = QgsCollapsibleGroupBox("Adapt the model to a labelled layer")
        group.setToolTip(
            "Points or polygons with a class field over the raster layer: a point labels the "
            "tile under it, a polygon every tile at least half inside it. A new model with "
            "these classes (and 'unknown' for tiles unlike all of them) is written and loaded."
        )
        form = _form(group)
        self.labels_combo = _narrow(QgsMapLayerComboBox())
        self.labels_combo.setFilters(
            QgsMapLayerProxyModel.PointLayer | QgsMapLayerProxyModel.PolygonLayer
        )
        self.labels_combo.setAllowEmptyLayer(True)
        form.addRow("Labels", self.labels_combo)
        self.label_field = _narrow(QgsFieldComboBox())
        self.labels_combo.layerChanged.connect(self.label_field.setLayer)
        self.label_field.setLayer(self.labels_combo.currentLayer())
        form.addRow("Class field", self.label_field)
        self.adapted_file = _file_widget(
            QgsFileWidget.SaveFile,
            "The adapted model (default: beside the raster, <raster>.adapted.onnx)",
        )
        self.adapted_file.setFilter("ONNX models (*.onnx)")
        form.addRow("New model", self.adapted_file)
        self.adapt_button = QPushButton("Adapt model")
        self.adapt_button.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.adapt_button.setMinimumWidth(MIN_FIELD_WIDTH // 2)
        self.adapt_button.clicked.connect(self.adapt_requested)
        form.addRow(self.adapt_button)
        self.adapt_result = wrapping_label()
        form.addRow(self.adapt_result)
        self.adapt_group = group
        return group

    def set_adapt_result(self, text: str) -> None:
        """Show what the last adapting measured (accuracy, classes)."""
        set_label_text(self.adapt_result, text)

    def labels_layer(self) -> QgsVectorLayer | None:
        """The chosen label layer (None when none)."""
        layer = self.labels_combo.currentLayer()
        return layer if isinstance(layer, QgsVectorLayer) else None

    def _results_group(self) -> QGroupBox:
        group = QGroupBox("Similar tiles (double-click a row to zoom)")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(2, 2, 2, 2)
        table = QTableWidget(0, len(RESULT_COLUMNS))
        table.setHorizontalHeaderLabels(RESULT_COLUMNS)
        table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectRows)
        table.setTextElideMode(Qt.ElideMiddle)
        table.setWordWrap(False)
        table.verticalHeader().setVisible(False)
        rows = table.fontMetrics().height() + 6  # compact rows: more of them in a short dock
        table.verticalHeader().setDefaultSectionSize(rows)
        header = table.horizontalHeader()
        # rank, similarity and tile id are short: as wide as their text; class and raster
        # names share the rest (elided in the middle, in full in their tooltips)
        for column, name in enumerate(RESULT_COLUMNS):
            stretch = name in ("Class", "Raster")
            header.setSectionResizeMode(
                column, QHeaderView.Stretch if stretch else QHeaderView.ResizeToContents
            )
        header.setMinimumSectionSize(20)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        table.setMinimumHeight(
            header.sizeHint().height() + rows * VISIBLE_RESULT_ROWS + 2 * table.frameWidth() + 2
        )
        table.cellDoubleClicked.connect(self._row_activated)
        layout.addWidget(table)
        self.results_table = table
        return group

    def horizontal_scrollbars(self) -> dict[str, QScrollBar]:
        """The dock's horizontal scrollbars (settings, results), to check that none shows."""
        return {
            "settings": self.settings_scroll.horizontalScrollBar(),
            "adapt": self.adapt_scroll.horizontalScrollBar(),
            "results": self.results_table.horizontalScrollBar(),
        }

    # --- state shown -----------------------------------------------------------------------
    def show_problem(self, text: str, installable: bool = False, repair: bool = False) -> None:
        """Show a problem with the runtime above everything ("" hides it), with the button that
        installs (or, ``repair``, reinstalls) it when ``installable``."""
        self.message_label.setText(text)
        self.install_button.setText("Repair runtime" if repair else "Install runtime")
        self.install_button.setVisible(installable)
        self.install_button.setEnabled(True)
        self.problem_box.setVisible(bool(text))

    def install_started(self) -> None:
        """The runtime install runs: busy bar and pip's log shown, the button disabled."""
        self.install_button.setEnabled(False)
        self.install_log.clear()
        self.install_log.setVisible(True)
        self.install_progress.setVisible(True)

    def add_install_log(self, line: str) -> None:
        """Append one line of pip's output."""
        self.install_log.appendPlainText(line)

    def install_finished(self) -> None:
        """The runtime install ended (the log stays for reading)."""
        self.install_progress.setVisible(False)
        self.install_button.setEnabled(True)

    def set_warning(self, text: str | None) -> None:
        """Show a warning about the chosen raster and model (None hides it)."""
        set_label_text(self.warning_label, f"\u26a0 {text}" if text else "")
        self.warning_label.setVisible(bool(text))

    def warning_text(self) -> str:
        """The warning shown, "" when none."""
        return self.warning_label.toolTip() or self.warning_label.text()

    def set_actions_enabled(self, enabled: bool) -> None:
        """Enable or disable everything that runs the model (while a task runs, or without
        snca); without a model they stay disabled."""
        self._busy = not enabled
        usable = enabled and self._model is not None
        for button in (
            self.classify_button,
            self.index_button,
            self.find_button,
            self.adapt_button,
        ):
            button.setEnabled(usable)
        self.cancel_button.setEnabled(not enabled)

    def set_model(self, model: ModelSummary | None) -> None:
        """Show a model's metadata and rebuild one band chooser per model input band."""
        self._model = model
        self.set_actions_enabled(not self._busy)
        if model is None:
            self.model_info.setText("Choose an snca model (.onnx) exported by `snca export`.")
            self.provider_label.setText("-")
            self._rebuild_bands(0)
            self.class_filter.clear()
            self.class_filter.addItem(ANY_CLASS)
            return
        classes = ", ".join(model.class_names)
        trained = (
            f"; trained on {model.training_resolution_m[0]:g}-"
            f"{model.training_resolution_m[1]:g} m/px scenes"
            if model.training_resolution_m
            else ""
        )
        named = (
            f"classes: {html.escape(classes)}"
            if len(model.class_names) <= INLINE_CLASS_NAMES
            else "classes (their names: hover here)"
        )
        self.model_info.setText(
            f"<b>{html.escape(elide_words(model.name))}</b><br>{len(model.class_names)} "
            f"{named}<br>tiles {model.tile_size} x {model.tile_size} px "
            f"at {_resolution_text(model.resolution_cm)}{trained}; {model.input_bands} band(s) "
            f"in; {model.embedding_dim}-d embedding"
        )
        self.model_info.setToolTip(f"{model.name}\nclasses: {classes}")
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
            box = _narrow(QgsRasterBandComboBox())
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

    def overlap_percent(self) -> int | None:
        """The chosen overlap in percent of the tile, or None for the model's own."""
        value = self.overlap.value()
        return None if value == MODEL_OVERLAP else value

    def selected_class(self) -> str | None:
        """The class filter, or None for any class."""
        text = self.class_filter.currentText()
        return None if text in ("", ANY_CLASS) else text

    # --- progress and results ---------------------------------------------------------------
    def set_progress(self, percent: float) -> None:
        self.progress.setValue(int(round(percent)))

    def set_status(self, text: str) -> None:
        set_label_text(self.status_label, text)

    def status_text(self) -> str:
        """The status shown, in full (the label elides long paths; its tooltip has them)."""
        return self.status_label.toolTip() or self.status_label.text()

    def set_results(self, rows: list[ResultRow]) -> None:
        """Fill the results table, best first; no row stays selected from the last search."""
        self._rows = list(rows)
        self.results_table.clearSelection()
        self.results_table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            tile = f"tile {row.tile_id}: row {row.row}, col {row.col}"
            values = (
                (str(row.rank), f"rank {row.rank}"),
                (f"{row.similarity:.4f}", f"cosine similarity {row.similarity:.6f}"),
                (row.class_name, row.class_name),
                (str(row.tile_id), tile),
                (row.raster, row.raster),
            )
            for column, (value, tooltip) in enumerate(values):
                item = QTableWidgetItem(value)
                if column < 2 or column == 3:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                item.setToolTip(tooltip)
                self.results_table.setItem(index, column, item)
        self.results_table.setCurrentItem(None)

    def _row_activated(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._rows):
            self.result_activated.emit(self._rows[row])
