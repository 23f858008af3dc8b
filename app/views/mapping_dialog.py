"""The mapping step for a spreadsheet: which column goes where, constants, saved profiles,
and a preview of the first entries exactly as they will be sent."""

from __future__ import annotations

import contextlib
import html
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.models.status_colours import StatusColours, Tone, status_colours
from app.services.sources import mapping_profiles
from app.services.sources.auto_mapping import TARGET_OF_ROLE, auto_map
from app.services.sources.mapping import DEFAULT_NULL_VALUES, Mapping, MappingError
from app.services.sources.row_mapping import column_key
from app.services.sources.spreadsheet_reader import (
    ColumnSample,
    PreviewRow,
    column_samples,
    preview_entries,
)
from app.services.sources.table_source import XLSX_SUFFIXES, TableError, listed_columns
from app.services.sources.xlsx_reader import list_sheets
from app.util.background import Pool, TaskHandle, run_task, thread_pool
from app.views.desktop_look import follow_palette, show_tone, tone_name
from app.views.widget_setup import describe, when_yes

NOT_IMPORTED = "— not imported —"
PREVIEW_ROWS = 20
PREVIEW_DELAY_MS = 250  # typing a target: preview once the typing pauses
AUTO_LABEL = "auto"
_USED_BEFORE = "\0used-before"  # the profile combo's item of the mapping of an earlier job

#: Targets offered in the target combos (any other path may be typed).
KNOWN_TARGETS: tuple[str, ...] = (*TARGET_OF_ROLE.values(),
                                  "person.customerCards[0].type",
                                  "person.customerCards[1].number",
                                  "person.customerCards[1].type",
                                  "person.homeStore", "person.customerGroup",
                                  "person.status", "person.gender", "person.title",
                                  "person.statisticalUseAllowed",
                                  "person.declarationAvailable",
                                  "person.householdId", "changeType")
DEFAULT_CONSTANTS: tuple[tuple[str, str], ...] = (("changeType", "CREATE"), ("type", "PERSON"))

_MISSING_ROLE = Qt.ItemDataRole.UserRole + 1  # a name item's column is not in this file
_UNMAPPED_ROLE = Qt.ItemDataRole.UserRole + 2  # ... is not imported


def constant_value(text: str) -> Any:
    """A constant typed as text: true/false become booleans, everything else stays text
    (an identifier such as 0150 keeps its zero)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text.strip()


def constant_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(error: BaseException) -> str:
    """Why the file could not be read, as shown inline."""
    if isinstance(error, TableError | MappingError | OSError | ValueError):
        return str(error) or type(error).__name__
    return f"{type(error).__name__}: {error}"  # a reader bug is shown, never a crash


class MappingDialog(QDialog):
    """Maps one spreadsheet's columns to entry targets, with a live preview.

    Shown with `open()` (never `exec()`); on OK `mapping()` and `sheet()` hold the result
    and `mapping_label()` what the Files tab shows ("auto", a profile's name, "… (edited)").
    `from_job`: `mapping` is the one that job used for this file's content; the dialog
    says so, and offers it again under *Mapping*.
    Reading the file (columns, samples, preview) runs on `Pool.SPREADSHEETS`: a big
    workbook is loaded whole before its first row comes out. Closing never waits for it:
    the answer of a closed (or deleted) dialog is dropped.

    Signals: previewUpdated() once the preview (or its error) is shown.
    """

    previewUpdated = Signal()

    def __init__(self, path: Path, sheet: str | None = None, mapping: Mapping | None = None,
                 parent: QWidget | None = None, *, from_job: int | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mappingDialog")
        self._path = Path(path)
        self._sheet = sheet
        self._given = mapping
        self._columns: list[ColumnSample] = []
        self._base: dict[str, Any] | None = None  # the mapping the tables were filled from
        self._base_label = mapping.name if mapping is not None and mapping.name else AUTO_LABEL
        # the mapping an earlier job read this content with (None: none given)
        self._used_before = mapping if from_job is not None else None
        self._from_job = from_job
        self._used_label = f"as in job #{from_job}"
        if self._used_before is not None:
            self._base_label = self._used_label
        self._result: Mapping | None = None
        self._name = mapping.name if mapping is not None else ""
        # the reads under way: a newer one of a kind replaces the older, whose answer is
        # then dropped (and which never runs if it had not started yet)
        self._columns_task: TaskHandle[tuple[list[str], list[ColumnSample]]] | None = None
        self._preview_task: TaskHandle[list[PreviewRow]] | None = None
        self._filling = False
        self._only_if_fits = False
        self._last_preview: list[PreviewRow] = []
        self._children: list[QDialog] = []  # open file dialogs and prompts, kept alive
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._start_preview)

        self.setWindowTitle(f"Map the columns of {self._path.name}")
        self._build()
        self.resize(1180, 720)
        self._reload_profiles()
        self._load_columns()

    # -- building ----------------------------------------------------------------------

    def _build(self) -> None:
        self.file_label = QLabel(f"<b>{html.escape(self._path.name)}</b>")
        self.file_label.setToolTip(str(self._path))
        self.sheet_label = QLabel("S&heet")
        self.sheet_combo = QComboBox()
        self.sheet_label.setBuddy(self.sheet_combo)
        is_workbook = self._path.suffix.lower() in XLSX_SUFFIXES
        self.sheet_label.setVisible(is_workbook)
        self.sheet_combo.setVisible(is_workbook)
        self.sheet_combo.currentIndexChanged.connect(self._sheet_chosen)

        self.profile_combo = QComboBox()
        self.profile_combo.setMinimumContentsLength(22)
        profile_label = QLabel("&Mapping")
        profile_label.setBuddy(self.profile_combo)
        self.profile_combo.activated.connect(self._profile_chosen)
        self.save_profile_button = QPushButton("Save as Profile…")
        self.import_button = QPushButton("Import…")
        self.export_button = QPushButton("Export…")
        self.save_profile_button.clicked.connect(self.ask_profile_name)
        self.import_button.clicked.connect(self.open_import_dialog)
        self.export_button.clicked.connect(self.open_export_dialog)

        top = QHBoxLayout()
        top.addWidget(self.file_label)
        top.addSpacing(12)
        top.addWidget(self.sheet_label)
        top.addWidget(self.sheet_combo)
        top.addStretch(1)
        top.addWidget(profile_label)
        top.addWidget(self.profile_combo)
        top.addWidget(self.save_profile_button)
        top.addWidget(self.import_button)
        top.addWidget(self.export_button)

        # columns
        self.columns_table = QTableWidget(0, 3)
        self.columns_table.setHorizontalHeaderLabels(("Column", "Sample values", "Goes to"))
        self.columns_table.verticalHeader().setVisible(False)
        self.columns_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.columns_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.columns_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.columns_table.setWordWrap(False)
        self.columns_table.setTabKeyNavigation(False)
        header = self.columns_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        char = self.fontMetrics().horizontalAdvance("0")
        header.resizeSection(0, char * 18)
        header.resizeSection(2, char * 34)
        self.columns_table.verticalHeader().setDefaultSectionSize(
            self.fontMetrics().height() + 14)
        follow_palette(self.columns_table, self._colour_column_names)
        self.unmapped_label = QLabel()
        self.unmapped_label.setWordWrap(True)
        self.add_target_button = QPushButton("Map Column Again")
        self.add_target_button.clicked.connect(self.add_target_for_selected)
        self.null_edit = QLineEdit(", ".join(v for v in DEFAULT_NULL_VALUES if v))
        self.null_edit.setPlaceholderText("e.g. NULL, -")
        self.null_edit.textChanged.connect(self._changed)
        null_label = QLabel("Cells meaning &empty")
        null_label.setBuddy(self.null_edit)
        columns_group = QGroupBox("Columns")
        columns_layout = QVBoxLayout(columns_group)
        columns_layout.addWidget(self.columns_table, 1)
        below = QHBoxLayout()
        below.addWidget(self.unmapped_label, 1)
        below.addWidget(self.add_target_button)
        columns_layout.addLayout(below)
        nulls = QHBoxLayout()
        nulls.addWidget(null_label)
        nulls.addWidget(self.null_edit, 1)
        columns_layout.addLayout(nulls)

        # constants
        self.constants_table = QTableWidget(0, 2)
        self.constants_table.setHorizontalHeaderLabels(("Target", "Value (same for every row)"))
        self.constants_table.verticalHeader().setVisible(False)
        self.constants_table.setTabKeyNavigation(False)
        self.constants_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch)
        self.constants_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.Stretch)
        self.constants_table.itemChanged.connect(self._changed)
        self.add_constant_button = QPushButton("Add")
        self.remove_constant_button = QPushButton("Remove")
        self.add_constant_button.clicked.connect(lambda: self.add_constant("", "", edit=True))
        self.remove_constant_button.clicked.connect(self.remove_selected_constants)
        constants_group = QGroupBox("Constants")
        constants_layout = QVBoxLayout(constants_group)
        constants_layout.addWidget(self.constants_table, 1)
        constant_buttons = QHBoxLayout()
        constant_buttons.addWidget(self.add_constant_button)
        constant_buttons.addWidget(self.remove_constant_button)
        constant_buttons.addStretch(1)
        constants_layout.addLayout(constant_buttons)

        left_split = QSplitter(Qt.Orientation.Vertical)
        left_split.addWidget(columns_group)
        left_split.addWidget(constants_group)
        left_split.setStretchFactor(0, 3)
        left_split.setStretchFactor(1, 2)
        left_split.setChildrenCollapsible(False)
        left_split.setSizes([420, 220])

        # preview
        self.preview_summary = QLabel("Reading the file…")
        self.preview_summary.setWordWrap(True)
        self.preview_view = QTextEdit()
        self.preview_view.setReadOnly(True)
        self.preview_view.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.preview_view.setFont(mono)
        preview_group = QGroupBox(f"Preview: the first {PREVIEW_ROWS} rows as they are sent")
        preview_layout = QVBoxLayout(preview_group)
        preview_layout.addWidget(self.preview_summary)
        preview_layout.addWidget(self.preview_view, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left_split)
        split.addWidget(preview_group)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        split.setSizes([700, 460])

        self.error_label = QLabel()
        self.error_label.setObjectName("mappingError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        show_tone(self.error_label, Tone.ERROR)
        self.error_label.setVisible(False)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Use This Mapping")
        self.ok_button.setEnabled(False)  # until the file's columns are read
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        self.used_before_label = QLabel()
        self.used_before_label.setObjectName("mappingUsedBefore")
        self.used_before_label.setWordWrap(True)
        self.used_before_label.setTextFormat(Qt.TextFormat.PlainText)
        if self._used_before is not None:
            self.used_before_label.setText(
                f"The mapping job #{self._from_job} used for this file's content: the same "
                "spreadsheet was imported before. Choose Automatic under Mapping to map it "
                "from its header instead.")
        self.used_before_label.setVisible(self._used_before is not None)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.used_before_label)
        layout.addWidget(split, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        describe((
            (self.sheet_combo, "Sheet", "The sheet of the workbook to import"),
            (self.profile_combo, "Saved mapping", "Load a saved mapping, or map the columns "
             "automatically from the header"),
            (self.save_profile_button, "Save as profile", "Save this mapping under a name, "
             "to use it for the next file of this layout"),
            (self.import_button, "Import mapping file", "Load a mapping file (.json) and "
             "keep it as a saved mapping"),
            (self.export_button, "Export mapping file", "Write this mapping to a file, "
             "to share it"),
            (self.columns_table, "Columns", "Each column of the file with sample values and "
             "the target it goes to; type any target path, e.g. "
             "person.customerCards[0].number"),
            (self.add_target_button, "Map column again", "Send the selected column to one "
             "more target (e.g. a customer id that is also the card number)"),
            (self.null_edit, "Cells meaning empty", "Cell texts that mean no value, "
             "separated by commas; an empty cell never sets a value"),
            (self.constants_table, "Constants", "Values set on every entry"),
            (self.add_constant_button, "Add constant"),
            (self.remove_constant_button, "Remove constant", "Remove the selected constants"),
            (self.preview_view, "Preview", "The first rows as the entries sent, or why a "
             "row is refused"),
            (self.ok_button, "Use this mapping")))

    # -- reading the file (worker thread) --------------------------------------------------

    def _load_columns(self) -> None:
        path, sheet = self._path, self._sheet
        is_workbook = path.suffix.lower() in XLSX_SUFFIXES
        self.preview_summary.setText("Reading the file…")

        def work() -> tuple[list[str], list[ColumnSample]]:
            sheets = ([s.name for s in list_sheets(path) if s.is_worksheet]
                      if is_workbook else [])
            return sheets, column_samples(path, sheet=sheet)

        self._cancel_reads()  # a preview of the other columns is of no use any more
        self._columns_task = run_task(
            Pool.SPREADSHEETS, work, on_done=self._columns_read,
            on_error=lambda error: self._columns_read(None, _reason(error)), owner=self)

    def _start_preview(self) -> None:
        try:
            mapping = self._build_mapping()
        except MappingError as exc:
            self._show_error(f"The mapping cannot be used: {exc}")
            self.preview_summary.setText("No preview: fix the mapping first.")
            self.preview_view.clear()
            self.previewUpdated.emit()
            return
        path, sheet = self._path, self._sheet
        self.preview_summary.setText("Updating the preview…")
        if self._preview_task is not None:
            self._preview_task.cancel()
        self._preview_task = run_task(
            Pool.SPREADSHEETS,
            lambda: preview_entries(path, mapping, sheet=sheet, count=PREVIEW_ROWS),
            on_done=self._preview_read,
            on_error=lambda error: self._preview_read(None, _reason(error)), owner=self)

    def _cancel_reads(self) -> None:
        for task in (self._columns_task, self._preview_task):
            if task is not None:
                task.cancel()
        self._columns_task = self._preview_task = None

    def _columns_read(self, result: tuple[list[str], list[ColumnSample]] | None,
                      error: str = "") -> None:
        self._columns_task = None
        if result is None:
            self._show_error(f"{self._path.name} cannot be read: {error}")
            self.preview_summary.setText("No preview: the file cannot be read.")
            self.ok_button.setEnabled(False)
            self.previewUpdated.emit()
            return
        sheets, columns = result
        self._fill_sheets(sheets)
        self._columns = columns
        self.ok_button.setEnabled(True)
        mapping = self._given
        if mapping is not None and self._only_if_fits:
            known = {column_key(c.name) for c in columns}
            if any(column_key(col) not in known for col in mapping.fields.values()):
                mapping = None  # another layout: start from its header
        self._only_if_fits = False
        self._fill_from(mapping or self._auto_mapping())
        self._start_preview()

    def _preview_read(self, rows: list[PreviewRow] | None, error: str = "") -> None:
        self._preview_task = None
        if rows is None:
            self._show_error(f"No preview: {error}")
            self.preview_summary.setText("No preview.")
            self.preview_view.clear()
        else:
            self._show_error("")
            self._show_preview(rows)
        self.previewUpdated.emit()

    def is_reading(self) -> bool:
        """A read of the file (columns or preview) is under way."""
        return self._columns_task is not None or self._preview_task is not None

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Wait for the worker (tests; the pool is shared: other owners' reads of
        spreadsheets are waited for too)."""
        return thread_pool(Pool.SPREADSHEETS).waitForDone(timeout_ms)

    # -- filling the tables ----------------------------------------------------------------

    def _fill_sheets(self, sheets: list[str]) -> None:
        if not self.sheet_combo.isVisible() and self._path.suffix.lower() not in XLSX_SUFFIXES:
            return
        self.sheet_combo.blockSignals(True)
        self.sheet_combo.clear()
        self.sheet_combo.addItem("First sheet with data", None)
        for name in sheets:
            self.sheet_combo.addItem(name, name)
        index = self.sheet_combo.findData(self._sheet) if self._sheet else 0
        self.sheet_combo.setCurrentIndex(max(index, 0))
        self.sheet_combo.blockSignals(False)

    def _sheet_chosen(self, _index: int) -> None:
        sheet = self.sheet_combo.currentData()
        if sheet == self._sheet:
            return
        self._sheet = sheet
        # another sheet, other columns: keep the mapping being edited if it fits
        try:
            self._given = self._build_mapping()
        except MappingError:
            self._given = None
        self._only_if_fits = True
        self._load_columns()

    def _auto_mapping(self) -> Mapping:
        mapping = auto_map([c.name for c in self._columns]).mapping
        self._base_label = AUTO_LABEL
        return mapping

    def _fill_from(self, mapping: Mapping) -> None:
        """Show `mapping` in the tables (the baseline for telling edits)."""
        self._filling = True
        try:
            by_column: dict[str, list[str]] = {}
            known = {column_key(c.name): c.name for c in self._columns}
            missing: list[tuple[str, str]] = []
            for target, column in mapping.fields.items():
                name = known.get(column_key(column))
                if name is None:
                    missing.append((column, target))
                else:
                    by_column.setdefault(name, []).append(target)
            self.columns_table.setRowCount(0)
            for sample in self._columns:
                targets = by_column.get(sample.name) or [""]
                for target in targets:
                    self._add_column_row(sample, target)
            for column, target in missing:
                self._add_column_row(ColumnSample(column), target, missing=True)
            self.null_edit.setText(", ".join(v for v in mapping.null_values if v))
            self.constants_table.setRowCount(0)
            set_elsewhere = set(mapping.fields) | set(mapping.constants)
            constants: dict[str, Any] = {target: value for target, value in DEFAULT_CONSTANTS
                                         if target not in set_elsewhere}
            constants.update(mapping.constants)
            for target, value in constants.items():
                self.add_constant(target, constant_text(value))
            self._name = mapping.name
        finally:
            self._filling = False
        with contextlib.suppress(MappingError):
            self._base = self._build_mapping().to_dict()
        self._update_unmapped()

    def _add_column_row(self, sample: ColumnSample, target: str, *,
                        missing: bool = False) -> None:
        row = self.columns_table.rowCount()
        self.columns_table.insertRow(row)
        name_item = QTableWidgetItem(sample.name)
        name_item.setData(Qt.ItemDataRole.UserRole, sample.name)
        if missing:
            name_item.setData(_MISSING_ROLE, True)
            name_item.setForeground(QBrush(status_colours(self.columns_table.palette()).error))
            name_item.setToolTip(f"{sample.name} is not a column of this file")
        samples = " · ".join(sample.samples) if sample.samples else ""
        samples_item = QTableWidgetItem(samples if not missing else "(not in this file)")
        samples_item.setToolTip("\n".join(sample.samples) or "no values in the first rows")
        self.columns_table.setItem(row, 0, name_item)
        self.columns_table.setItem(row, 1, samples_item)
        combo = QComboBox()
        combo.setEditable(True)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.addItem(NOT_IMPORTED)
        combo.addItems(list(KNOWN_TARGETS))
        combo.setAccessibleName(f"Target of {sample.name}")
        combo.setToolTip("Where this column goes in the entry; type any target path, e.g. "
                         "person.customerCards[0].number")
        combo.setCurrentText(target or NOT_IMPORTED)
        combo.currentTextChanged.connect(self._changed)
        self.columns_table.setCellWidget(row, 2, combo)

    def add_target_for_selected(self) -> None:
        """One more row for the selected column, to send it to a second target."""
        rows = self.columns_table.selectionModel().selectedRows()
        if not rows:
            self._show_error("Select a column first, then Map Column Again.")
            return
        name = self._column_of_row(rows[0].row())
        sample = next((c for c in self._columns if c.name == name), ColumnSample(name))
        self._add_column_row(sample, "")
        self._update_unmapped()

    def add_constant(self, target: str, value: str, *, edit: bool = False) -> None:
        was_filling = self._filling
        self._filling = True
        row = self.constants_table.rowCount()
        self.constants_table.insertRow(row)
        self.constants_table.setItem(row, 0, QTableWidgetItem(target))
        self.constants_table.setItem(row, 1, QTableWidgetItem(value))
        self._filling = was_filling
        if edit:
            self.constants_table.setCurrentCell(row, 0)
            target_item = self.constants_table.item(row, 0)
            if target_item is not None:
                self.constants_table.editItem(target_item)
        self._changed()

    def remove_selected_constants(self) -> None:
        rows = sorted({i.row() for i in self.constants_table.selectedIndexes()}, reverse=True)
        for row in rows:
            self.constants_table.removeRow(row)
        if rows:
            self._changed()

    # -- the mapping -------------------------------------------------------------------------

    def _name_item(self, row: int) -> QTableWidgetItem:
        """The item naming the column of `row` (every row of the columns table has one)."""
        item = self.columns_table.item(row, 0)
        assert item is not None, f"row {row} of the columns table has no name"
        return item

    def _column_of_row(self, row: int) -> str:
        return str(self._name_item(row).data(Qt.ItemDataRole.UserRole))

    def target_of_row(self, row: int) -> str:
        combo = self.columns_table.cellWidget(row, 2)
        text = combo.currentText().strip() if isinstance(combo, QComboBox) else ""
        return "" if text in ("", NOT_IMPORTED) else text

    def set_target(self, column: str, target: str) -> None:
        """Choose the target of `column` (its first row), as a user would."""
        for row in range(self.columns_table.rowCount()):
            if self._column_of_row(row) == column:
                combo = self.columns_table.cellWidget(row, 2)
                assert isinstance(combo, QComboBox)
                combo.setCurrentText(target or NOT_IMPORTED)
                return
        raise KeyError(column)

    def _build_mapping(self) -> Mapping:
        fields: dict[str, str] = {}
        for row in range(self.columns_table.rowCount()):
            target = self.target_of_row(row)
            if not target:
                continue
            column = self._column_of_row(row)
            if target in fields:
                raise MappingError(f"{target} gets two columns ({fields[target]} and "
                                   f"{column}); choose one")
            fields[target] = column
        constants: dict[str, Any] = {}
        for row in range(self.constants_table.rowCount()):
            target_item = self.constants_table.item(row, 0)
            value_item = self.constants_table.item(row, 1)
            target = target_item.text().strip() if target_item else ""
            value = value_item.text() if value_item else ""
            if not target and not value.strip():
                continue  # a row just added
            if not target:
                raise MappingError(f"the constant {value!r} needs a target path")
            if not value.strip():
                raise MappingError(f"{target}: the constant needs a value (or remove it)")
            constants[target] = constant_value(value)
        nulls = tuple(dict.fromkeys(["", *(v.strip() for v in self.null_edit.text().split(",")
                                            if v.strip())]))
        return Mapping(name=self._name, fields=fields, constants=constants,
                       null_values=nulls)

    def _changed(self, *_args: object) -> None:
        if self._filling:
            return
        self._update_unmapped()
        self._preview_timer.start()

    def _update_unmapped(self) -> None:
        mapped_columns: set[str] = set()
        for row in range(self.columns_table.rowCount()):
            if self.target_of_row(row):
                mapped_columns.add(self._column_of_row(row))
        for row in range(self.columns_table.rowCount()):
            name_item = self._name_item(row)
            name = name_item.data(Qt.ItemDataRole.UserRole)
            unmapped = name not in mapped_columns
            name_item.setData(_UNMAPPED_ROLE, unmapped)
            font = name_item.font()
            font.setItalic(unmapped)
            name_item.setFont(font)
            if unmapped:
                name_item.setToolTip(f"{name} is not imported: choose a target, or leave it "
                                     "out")
        unmapped_names = self.unmapped_columns()
        self.unmapped_label.setText(
            "Not imported: " + listed_columns(unmapped_names) if unmapped_names
            else "Every column is imported.")
        show_tone(self.unmapped_label, Tone.WARNING if unmapped_names else None)
        self._colour_column_names(self.columns_table,
                                  status_colours(self.columns_table.palette()))

    def _colour_column_names(self, _table: QWidget, colours: StatusColours) -> None:
        """Column names in the palette's colours: those not in the file as errors, those not
        imported as warnings on a warning background."""
        for row in range(self.columns_table.rowCount()):
            item = self._name_item(row)
            unmapped = bool(item.data(_UNMAPPED_ROLE))
            if item.data(_MISSING_ROLE):
                item.setForeground(QBrush(colours.error))
            else:
                item.setForeground(QBrush(colours.warning) if unmapped else QBrush())
            item.setBackground(QBrush(colours.warning_background) if unmapped else QBrush())

    def unmapped_columns(self) -> list[str]:
        mapped = {self._column_of_row(r)
                  for r in range(self.columns_table.rowCount()) if self.target_of_row(r)}
        return [c.name for c in self._columns if c.name not in mapped]

    def columns(self) -> list[str]:
        """The file's columns (once read)."""
        return [c.name for c in self._columns]

    # -- preview -------------------------------------------------------------------------------

    def _show_preview(self, rows: list[PreviewRow]) -> None:
        self._last_preview = rows
        sent = sum(1 for r in rows if r.entry is not None)
        refused = len(rows) - sent
        if not rows:
            self.preview_summary.setText("The file holds no rows below its header.")
        else:
            text = f"First {len(rows)} rows: {sent} will be sent"
            text += (f", {refused} refused (the preview says why, in red)." if refused
                     else ".")
            self.preview_summary.setText(text)
        parts: list[str] = []
        red = tone_name(self.preview_view, Tone.ERROR)
        for row in rows:
            if row.entry is not None:
                body = html.escape(json.dumps(row.entry, ensure_ascii=False, indent=2))
                parts.append(f"<p style='margin:0'><b>Row {row.row_number}</b></p>"
                             f"<pre style='margin:0 0 8px 0'>{body}</pre>")
            else:
                reasons = "".join(
                    f"<li>{html.escape(issue.column or 'row')}"
                    + (f" ({html.escape(issue.value)})" if issue.value else "")
                    + f": {html.escape(issue.message)}</li>" for issue in row.issues)
                parts.append(f"<p style='margin:0; color:{red}'><b>Row {row.row_number}: "
                             f"not sent</b></p><ul style='margin:0 0 8px 0; "
                             f"color:{red}'>{reasons}</ul>")
        self.preview_view.setHtml("".join(parts))

    def preview_rows(self) -> list[PreviewRow]:
        """The rows the preview shows now."""
        return list(self._last_preview)

    def preview_text(self) -> str:
        return self.preview_view.toPlainText()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    # -- profiles --------------------------------------------------------------------------------

    def _reload_profiles(self, select: str | None = None) -> None:
        self.profile_combo.blockSignals(True)
        self.profile_combo.clear()
        self.profile_combo.addItem("Automatic (from the header)", None)
        if self._used_before is not None:
            self.profile_combo.addItem(self._used_label.capitalize(), _USED_BEFORE)
        for profile in mapping_profiles.list_profiles():
            self.profile_combo.addItem(profile.name, str(profile.path))
            index = self.profile_combo.count() - 1
            if profile.problem:
                item_model = self.profile_combo.model()
                item = item_model.item(index)  # type: ignore[attr-defined]
                item.setEnabled(False)
                item.setToolTip(profile.problem)
        wanted = select if select is not None else (
            self._base_label if self._base_label != AUTO_LABEL else None)
        index = (self.profile_combo.findData(_USED_BEFORE) if wanted == self._used_label
                 else self.profile_combo.findText(wanted) if wanted else 0)
        self.profile_combo.setCurrentIndex(max(index, 0))
        self.profile_combo.blockSignals(False)

    def _profile_chosen(self, index: int) -> None:
        path = self.profile_combo.itemData(index)
        if path is None:
            mapping = self._auto_mapping()
        elif path == _USED_BEFORE and self._used_before is not None:
            mapping = self._used_before
            self._base_label = self._used_label
        else:
            try:
                mapping = mapping_profiles.load_mapping(Path(path))
            except MappingError as exc:
                self._show_error(str(exc))
                return
            self._base_label = mapping.name
        self._fill_from(mapping)
        self._start_preview()

    def ask_profile_name(self) -> QInputDialog:
        dialog = QInputDialog(self)
        dialog.setObjectName("profileNameDialog")
        dialog.setWindowTitle("Save as profile")
        dialog.setLabelText("Name of the saved mapping:")
        dialog.setTextValue(self._name or self._path.stem)
        dialog.textValueSelected.connect(self.save_profile)
        self._keep(dialog)
        dialog.open()
        return dialog

    def save_profile(self, name: str, overwrite: bool = False) -> bool:
        """Save the mapping as a profile named `name`; asks before replacing one."""
        try:
            mapping = self._build_mapping()
            mapping.name = name.strip()
            mapping_profiles.save_profile(mapping, overwrite=overwrite)
        except MappingError as exc:
            if "exists already" in str(exc) and not overwrite:
                box = QMessageBox(QMessageBox.Icon.Question, "Replace saved mapping",
                                  f"A saved mapping named {name!r} exists already. "
                                  "Replace it?",
                                  QMessageBox.StandardButton.Yes
                                  | QMessageBox.StandardButton.No, self)
                box.setObjectName("replaceProfilePrompt")
                when_yes(box, lambda: self.save_profile(name, overwrite=True))
                self._keep(box)
                box.open()
                return False
            self._show_error(f"Not saved: {exc}")
            return False
        self._name = mapping.name
        self._base_label = mapping.name
        self._base = mapping.to_dict()
        self._reload_profiles(select=mapping.name)
        self._show_error("")
        self.preview_summary.setText(f"Saved as {mapping.name!r}. " +
                                     self.preview_summary.text())
        return True

    def open_import_dialog(self) -> QFileDialog:
        dialog = QFileDialog(self, "Import a mapping file", str(self._path.parent),
                             "Mapping files (*.json);;All files (*)")
        dialog.setObjectName("importMappingDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(lambda path: self.import_mapping_file(Path(path)))
        self._keep(dialog)
        dialog.open()
        return dialog

    def import_mapping_file(self, path: Path) -> bool:
        """Use the mapping in `path` and keep it as a saved profile (unless one of that
        name exists: then it is used for this file only, and the user is told)."""
        try:
            mapping = mapping_profiles.read_mapping_file(path)
        except MappingError as exc:
            self._show_error(f"Not imported: {exc}")
            return False
        note = ""
        try:
            mapping_profiles.import_profile(path)
        except MappingError as exc:
            note = (f"Used for this file but not saved: {exc} (Save as Profile… replaces "
                    "it).")
        self._base_label = mapping.name
        self._reload_profiles(select=mapping.name)
        self._fill_from(mapping)
        self._show_error(note)
        self._start_preview()
        return True

    def open_export_dialog(self) -> QFileDialog:
        name = self._name or self._path.stem
        dialog = QFileDialog(self, "Export the mapping", str(self._path.parent / f"{name}.json"),
                             "Mapping files (*.json)")
        dialog.setObjectName("exportMappingDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("json")
        dialog.fileSelected.connect(lambda path: self.export_mapping_file(Path(path)))
        self._keep(dialog)
        dialog.open()
        return dialog

    def export_mapping_file(self, path: Path) -> bool:
        try:
            mapping = self._build_mapping()
            if not mapping.name:
                mapping.name = path.stem
            mapping_profiles.export_mapping(mapping, path)
        except (MappingError, OSError) as exc:
            self._show_error(f"Not exported: {exc}")
            return False
        self._show_error("")
        self.preview_summary.setText(f"Exported to {path.name}. " + self.preview_summary.text())
        return True

    def _keep(self, widget: QDialog) -> None:
        """Keep an open file dialog or prompt alive until it closes, then let it go."""
        self._children.append(widget)
        widget.finished.connect(lambda _result, w=widget: self._forget(w))

    def _forget(self, widget: QDialog) -> None:
        if widget in self._children:
            self._children.remove(widget)
        widget.deleteLater()

    # -- result ----------------------------------------------------------------------------------

    def accept(self) -> None:
        try:
            mapping = self._build_mapping()
        except MappingError as exc:
            self._show_error(f"The mapping cannot be used: {exc}")
            return
        if not mapping.fields:
            self._show_error("No column is imported: choose a target for at least one column.")
            return
        known = {column_key(c.name) for c in self._columns}
        absent = [c for c in dict.fromkeys(mapping.fields.values()) if column_key(c) not in known]
        if absent:
            self._show_error("This file has no column " + ", ".join(repr(c) for c in absent)
                             + ": choose another target for it, or another mapping.")
            return
        self._result = mapping
        super().accept()

    def mapping(self) -> Mapping | None:
        """The mapping chosen (after OK), None before."""
        return self._result

    def sheet(self) -> str | None:
        """The workbook sheet chosen; None for a CSV file or the first sheet with data."""
        return self._sheet

    def mapping_label(self) -> str:
        """What the Files tab shows: "auto", a profile's name, or that name + " (edited)"."""
        if self._result is None:
            return self._base_label
        if self._base is not None and self._result.to_dict() == self._base:
            return self._base_label
        return f"{self._base_label} (edited)"

    def done(self, result: int) -> None:
        self._preview_timer.stop()
        self._cancel_reads()  # answers still on their way are dropped
        super().done(result)
