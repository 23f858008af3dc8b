"""The Import tab: connection, run settings, Start/Pause/Cancel, live progress and the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QGuiApplication, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.models.jobs import duration_text
from app.models.status_colours import StatusColours, Tone
from app.services.connection.connection_profiles import ConnectionSettings
from app.services.connection.secret_store import SecretStore
from app.services.pipeline.import_events import ImportProgress, ImportState, default_output_dir
from app.services.session.import_options import ConnectionOptions, RunOptions
from app.services.session.import_session import ImportStart
from app.services.sources.mapping import MappingError
from app.services.sources.source_options import Assignment, AssignmentMode, OnExisting
from app.util.wording import plural
from app.views.connection_panel import ConnectionPanel
from app.views.desktop_look import (
    PAUSE_KEYS,
    START_IMPORT_KEYS,
    follow_palette,
    shortcut_text,
    show_tone,
)
from app.views.widget_setup import describe

LOG_LEVELS = {"All messages": logging.DEBUG, "Information": logging.INFO,
              "Warnings and errors": logging.WARNING, "Errors only": logging.ERROR}
MAX_LOG_LINES = 5000
_STATE_TEXTS = {
    ImportState.STARTING: "Starting…",
    ImportState.RUNNING: "Importing…",
    ImportState.PAUSED: "Paused: batches under way finish, nothing new is sent",
    ImportState.STOPPING: "Stopping…",
    ImportState.WRITING: "Writing the result files…",
    ImportState.FINISHED: "Finished",
}
# requests may be under way: how many at once is worth showing
_SENDING_STATES = frozenset({ImportState.RUNNING, ImportState.PAUSED, ImportState.STOPPING})
OUTPUT_DIR_SETTLE_MS = 400  # typing a folder name: say so once the typing pauses


@dataclass(frozen=True, slots=True)
class Preset:
    title: str
    batch_size: int
    concurrency: int
    retries: int
    timeout_s: int


PRESETS = (
    Preset("Careful (slow or busy service)", 25, 2, 8, 120),
    Preset("Standard", 50, 5, 5, 60),
    Preset("Fast (service rated for it)", 100, 8, 5, 60),
)
CUSTOM_PRESET = "Custom"

ASSIGNMENT_MODES = (("None", AssignmentMode.NONE), ("Single value", AssignmentMode.SINGLE),
                    ("Round robin over values", AssignmentMode.ROUND_ROBIN),
                    ("By column", AssignmentMode.COLUMN))
#: Offered for the assignment's target (any other path may be typed).
ASSIGNMENT_TARGETS = ("person.homeStore", "person.customerGroup", "person.status",
                      "person.languageCode", "person.customerCards[0].type")


def format_duration(seconds: float | None) -> str:
    return "–" if seconds is None else duration_text(seconds)


def _banner_style(banner: QWidget, colours: StatusColours) -> None:
    banner.setStyleSheet(
        f"#pauseBanner {{ background: {colours.warning_background.name()}; "
        f"border: 1px solid {colours.warning.name()}; }} "
        f"#pauseBanner QLabel {{ color: {colours.on_warning.name()}; }}")


def _saved(settings: QSettings, key: str) -> dict[str, object]:
    """A JSON object saved under `key`; {} when there is none (or it cannot be read)."""
    try:
        value = json.loads(str(settings.value(key, "{}")))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class ImportTab(QWidget):
    """Collects what an import needs and shows how it goes.

    Its options, typed: `connection_options()`, `run_options()` and
    `assignment_settings()`; `set_run_options`, `set_connection_settings` and
    `set_connection_options` fill it in, `set_run_settings` from a saved or partial
    dict (`saved_settings()` is what is saved). `options_problem()` says why the customer
    options (on existing customers, assignment) cannot be used.

    Signals: startRequested(), pauseToggled(), cancelRequested(); retryRequested() and
    otherFolderRequested() from the banner `show_pause_problem` shows when the import paused
    itself (a full disk, the import history held by another program);
    outputDirChanged(Path) once a new results folder is named (typing settled). The window
    feeds `show_progress` / `append_log` back from the import.
    """

    startRequested = Signal()
    pauseToggled = Signal()
    cancelRequested = Signal()
    retryRequested = Signal()
    otherFolderRequested = Signal()
    outputDirChanged = Signal(object)

    def __init__(self, secrets: SecretStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.connection = ConnectionPanel(secrets)
        self._log_entries: list[tuple[int, str]] = []
        self._build_settings()
        self._build_options()
        self._build_run_area()
        self._build_log()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.connection)
        left_layout.addWidget(self.settings_group)
        left_layout.addWidget(self.options_group)
        left_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(430)

        right = QVBoxLayout()
        right.addWidget(self.run_group)
        right.addWidget(self.log_group, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll, 4)
        layout.addLayout(right, 5)
        self.set_running(False)

    # -- building ------------------------------------------------------------------------

    def _build_settings(self) -> None:
        self.settings_group = QGroupBox("Settings")
        self.preset_combo = QComboBox()
        for preset in PRESETS:
            self.preset_combo.addItem(preset.title, preset)
        self.preset_combo.addItem(CUSTOM_PRESET, None)
        self.batch_spin = self._spin(1, 1000, 50, " customers")
        self.concurrency_spin = self._spin(1, 32, 5, " requests at once")
        self.retries_spin = self._spin(0, 20, 5, " retries")
        self.timeout_spin = self._spin(5, 600, 60, " s")
        self.output_edit = QLineEdit(str(default_output_dir()))
        self.output_button = QPushButton("Browse…")
        output_row = QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(self.output_button)
        form = QFormLayout(self.settings_group)
        form.addRow("Pre&set", self.preset_combo)
        form.addRow("&Batch size", self.batch_spin)
        form.addRow("&Concurrency", self.concurrency_spin)
        form.addRow("&Retries per batch", self.retries_spin)
        form.addRow("Time&out per request", self.timeout_spin)
        output_label = QLabel("Results &folder")
        output_label.setBuddy(self.output_edit)
        form.addRow(output_label, output_row)
        describe((
                (self.preset_combo, "Settings preset", "Sensible combinations of the values "
                 "below"),
                (self.batch_spin, "Batch size", "Customers sent in one request"),
                (self.concurrency_spin, "Concurrency", "Requests under way at the same time"),
                (self.retries_spin, "Retries per batch", "How often a batch is sent again "
                 "after a busy or failing service (429, 5xx, timeouts)"),
                (self.timeout_spin, "Timeout per request", "How long to wait for an answer"),
                (self.output_edit, "Results folder", "Where retry files and failure records "
                 "are written"),
                (self.output_button, "Choose results folder", "Choose the results folder")))
        self.preset_combo.setCurrentIndex(1)
        self.preset_combo.currentIndexChanged.connect(self._apply_preset)
        for spin in (self.batch_spin, self.concurrency_spin, self.retries_spin,
                     self.timeout_spin):
            spin.valueChanged.connect(self._spin_changed)
        self.output_button.clicked.connect(self._choose_output_dir)
        self._output_timer = QTimer(self)
        self._output_timer.setSingleShot(True)
        self._output_timer.setInterval(OUTPUT_DIR_SETTLE_MS)
        self._output_timer.timeout.connect(lambda: self.outputDirChanged.emit(self.output_dir()))
        self.output_edit.textChanged.connect(lambda _text: self._output_timer.start())

    def _build_options(self) -> None:
        self.options_group = QGroupBox("Customers")
        self.on_existing_combo = QComboBox()
        for choice in OnExisting:
            self.on_existing_combo.addItem(choice.label, choice.value)
        self.assign_mode_combo = QComboBox()
        for title, mode in ASSIGNMENT_MODES:
            self.assign_mode_combo.addItem(title, mode.value)
        self.assign_target_edit = QLineEdit()
        self.assign_target_edit.setPlaceholderText("e.g. person.homeStore")
        target_completer = QCompleter(list(ASSIGNMENT_TARGETS), self.assign_target_edit)
        target_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        target_completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.assign_target_edit.setCompleter(target_completer)
        self.assign_value_edit = QLineEdit()
        self.assign_column_edit = QLineEdit()
        self.assign_column_edit.setPlaceholderText("a spreadsheet column, or a path in a JSON "
                                                   "entry")
        self._column_model = QStringListModel(self)
        column_completer = QCompleter(self._column_model, self.assign_column_edit)
        column_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        column_completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.assign_column_edit.setCompleter(column_completer)
        self.options_error = QLabel()
        self.options_error.setObjectName("optionsError")
        self.options_error.setWordWrap(True)
        self.options_error.setTextFormat(Qt.TextFormat.PlainText)
        show_tone(self.options_error, Tone.ERROR)
        self.options_error.setVisible(False)
        form = QFormLayout(self.options_group)
        form.addRow("On e&xisting customers", self.on_existing_combo)
        form.addRow("&Assign", self.assign_mode_combo)
        self._target_label = QLabel("&Target path")
        self._target_label.setBuddy(self.assign_target_edit)
        self._value_label = QLabel("&Value")
        self._value_label.setBuddy(self.assign_value_edit)
        self._column_label = QLabel("Co&lumn")
        self._column_label.setBuddy(self.assign_column_edit)
        form.addRow(self._target_label, self.assign_target_edit)
        form.addRow(self._value_label, self.assign_value_edit)
        form.addRow(self._column_label, self.assign_column_edit)
        form.addRow(self.options_error)
        describe((
            (self.on_existing_combo, "On existing customers", "What happens to a customer "
             "the service has already: a failure (Create), skipped, or updated"),
            (self.assign_mode_combo, "Assignment", "Set one target (a home store, a customer "
             "group…) on every customer: one value, values in turn, or from a column"),
            (self.assign_target_edit, "Assignment target path", "Where the value goes, e.g. "
             "person.homeStore or person.customerGroup"),
            (self.assign_value_edit, "Assignment value", "The value set on every customer; "
             "for round robin, values separated by commas"),
            (self.assign_column_edit, "Assignment column", "The column (spreadsheets) or "
             "entry path (JSON) the value is taken from")))
        self.assign_mode_combo.currentIndexChanged.connect(self._assignment_mode_changed)
        for edit in (self.assign_target_edit, self.assign_value_edit, self.assign_column_edit):
            edit.textChanged.connect(self._check_options)
        self._assignment_mode_changed()

    def _assignment_mode_changed(self) -> None:
        mode = AssignmentMode(self.assign_mode_combo.currentData())
        active = mode is not AssignmentMode.NONE
        by_value = mode in (AssignmentMode.SINGLE, AssignmentMode.ROUND_ROBIN)
        for widget in (self._target_label, self.assign_target_edit):
            widget.setVisible(active)
        for widget in (self._value_label, self.assign_value_edit):
            widget.setVisible(by_value)
        for widget in (self._column_label, self.assign_column_edit):
            widget.setVisible(mode is AssignmentMode.COLUMN)
        self._value_label.setText("&Values" if mode is AssignmentMode.ROUND_ROBIN else "&Value")
        self.assign_value_edit.setPlaceholderText(
            "e.g. S001, S002, S003 (in turn)" if mode is AssignmentMode.ROUND_ROBIN
            else "e.g. S001")
        self._check_options()

    def set_column_suggestions(self, columns: list[str]) -> None:
        """Spreadsheet columns offered for *By column*."""
        self._column_model.setStringList(columns)

    def _assignment_fields(self) -> dict[str, object]:
        """The assignment as typed, in Assignment.to_dict's form (not checked)."""
        mode = AssignmentMode(self.assign_mode_combo.currentData())
        text = self.assign_value_edit.text()
        values = ([v.strip() for v in text.split(",") if v.strip()]
                  if mode is AssignmentMode.ROUND_ROBIN else [text.strip()] if text.strip()
                  else [])
        return {"mode": mode.value, "target": self.assign_target_edit.text().strip(),
                "values": values, "column": self.assign_column_edit.text().strip()}

    def assignment(self) -> Assignment:
        """The assignment as entered; raises MappingError (a message for the user)."""
        return Assignment.from_dict(self._assignment_fields())

    def options_problem(self) -> str | None:
        """Why the customer options cannot be used (Start is refused), None when they can."""
        try:
            self.assignment()
        except MappingError as exc:
            return f"Assignment: {exc}"
        return None

    def _check_options(self) -> None:
        problem = self.options_problem()
        self.options_error.setText(problem or "")
        self.options_error.setVisible(problem is not None)

    def assignment_settings(self) -> dict[str, object]:
        """The assignment in Assignment.to_dict's form; as typed when it cannot be used
        (kept so in the settings; Start refuses it with the reason)."""
        try:
            return self.assignment().to_dict()
        except MappingError:
            return self._assignment_fields()

    def _set_assignment(self, data: object) -> None:
        if not isinstance(data, dict):
            return
        mode = str(data.get("mode") or AssignmentMode.NONE.value)
        index = self.assign_mode_combo.findData(mode)
        self.assign_mode_combo.setCurrentIndex(max(index, 0))
        self.assign_target_edit.setText(str(data.get("target") or ""))
        values = data.get("values") or []
        if isinstance(values, str):
            values = [values]
        self.assign_value_edit.setText(", ".join(str(v) for v in values))
        self.assign_column_edit.setText(str(data.get("column") or ""))
        self._check_options()

    @staticmethod
    def _spin(low: int, high: int, value: int, suffix: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setGroupSeparatorShown(True)
        return spin

    def _build_run_area(self) -> None:
        self.run_group = QGroupBox("Import")
        self.start_button = QPushButton("Start Import")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.files_label = QLabel("No files loaded")
        self.files_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("")
        self.state_label = QLabel("Ready")
        self.state_label.setWordWrap(True)  # a long state never widens the window
        self.done_value = QLabel("–")
        self.succeeded_value = QLabel("–")
        self.failed_value = QLabel("–")
        self.rate_value = QLabel("–")
        self.eta_value = QLabel("–")
        self.elapsed_value = QLabel("–")
        self.at_once_value = QLabel("–")
        self.at_once_value.setToolTip(
            "Requests under way at the same time now, of the most your settings allow: "
            "fewer while the service answers 'too many requests' or slows down")
        self.file_value = QLabel("")
        self.file_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_pause_banner()
        bold = QFont()
        bold.setBold(True)
        for value in (self.done_value, self.succeeded_value, self.failed_value,
                      self.rate_value, self.eta_value, self.elapsed_value,
                      self.at_once_value):
            value.setFont(bold)
        show_tone(self.succeeded_value, Tone.SUCCESS)
        self._failures_shown = False  # the Failed figure turns red from the first failure

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        grid = QGridLayout()
        figures = (("Done", self.done_value), ("Imported", self.succeeded_value),
                   ("Failed", self.failed_value), ("Customers / s", self.rate_value),
                   ("Time left", self.eta_value), ("Elapsed", self.elapsed_value),
                   ("Requests at once", self.at_once_value))
        columns = 4
        for i, (title, value) in enumerate(figures):
            label = QLabel(title)
            label.setBuddy(value)
            grid.addWidget(label, i // columns * 2, i % columns)
            grid.addWidget(value, i // columns * 2 + 1, i % columns)
            value.setAccessibleName(title)
        layout = QVBoxLayout(self.run_group)
        layout.addWidget(self.files_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.state_label)
        layout.addWidget(self.pause_banner)
        layout.addLayout(grid)
        layout.addWidget(self.file_value)
        describe((
                (self.start_button, "Start import",
                 f"Import every ready file ({shortcut_text(START_IMPORT_KEYS)})"),
                (self.pause_button, "Pause or resume", "Stop sending new batches for now; "
                 f"batches under way finish ({shortcut_text(PAUSE_KEYS)})"),
                (self.cancel_button, "Cancel import", "Stop; customers not yet sent go to the "
                 "retry files"),
                (self.progress_bar, "Import progress")))
        self.start_button.clicked.connect(self.startRequested)
        self.pause_button.clicked.connect(self.pauseToggled)
        self.cancel_button.clicked.connect(self.cancelRequested)

    def _build_pause_banner(self) -> None:
        """Shown while the import paused itself: why, and what can be done about it."""
        self.pause_banner = QFrame()
        self.pause_banner.setObjectName("pauseBanner")
        self.pause_banner.setFrameShape(QFrame.Shape.StyledPanel)
        # a background and text colour of its own, for a light or a dark palette
        follow_palette(self.pause_banner, _banner_style)
        self.pause_text = QLabel()
        self.pause_text.setWordWrap(True)
        self.pause_text.setTextFormat(Qt.TextFormat.PlainText)
        self.pause_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("&Retry")
        self.other_folder_button = QPushButton("Choose Another &Folder…")
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.other_folder_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self.pause_banner)
        layout.addWidget(self.pause_text)
        layout.addLayout(buttons)
        describe((
            (self.pause_text, "Why the import paused"),
            (self.retry_button, "Retry", "Go on once there is room again, or the import "
             "history is free; the result files are written again"),
            (self.other_folder_button, "Choose another results folder", "Write this "
             "import's result files into another folder from now on")))
        self.retry_button.clicked.connect(self.retryRequested)
        self.other_folder_button.clicked.connect(self.otherFolderRequested)
        self.pause_banner.setVisible(False)

    def show_pause_problem(self, reason: str) -> None:
        """The import paused itself: say why; offer Retry and another results folder."""
        text = reason[:1].upper() + reason[1:]
        self.pause_text.setText(f"{text}.\n\nFree some space (or make the folder writable, "
                                "or close the program that holds the import history), then "
                                "Retry. Or choose another folder for the result files. "
                                "Cancel stops: what was not sent stays in the import history, "
                                "to resume later.")
        self.pause_banner.setVisible(True)
        self.set_paused(True)

    def hide_pause_problem(self) -> None:
        self.pause_banner.setVisible(False)

    def _build_log(self) -> None:
        self.log_group = QGroupBox("Log")
        self.log_level_combo = QComboBox()
        self.log_level_combo.addItems(list(LOG_LEVELS))
        self.log_level_combo.setCurrentIndex(1)
        self.log_filter_edit = QLineEdit()
        self.log_filter_edit.setPlaceholderText("Filter log…")
        self.log_filter_edit.setClearButtonEnabled(True)
        self.copy_log_button = QPushButton("Copy")
        self.clear_log_button = QPushButton("Clear")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(MAX_LOG_LINES)
        self.log_view.setFont(QFont("monospace"))
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        top = QHBoxLayout()
        top.addWidget(self.log_level_combo)
        top.addWidget(self.log_filter_edit, 1)
        top.addWidget(self.copy_log_button)
        top.addWidget(self.clear_log_button)
        layout = QVBoxLayout(self.log_group)
        layout.addLayout(top)
        layout.addWidget(self.log_view, 1)
        describe(((self.log_level_combo, "Log level"),
                  (self.log_filter_edit, "Filter log"),
                  (self.copy_log_button, "Copy log"),
                  (self.clear_log_button, "Clear log"),
                  (self.log_view, "Import log")))
        self.log_level_combo.currentIndexChanged.connect(self._rebuild_log)
        self.log_filter_edit.textChanged.connect(self._rebuild_log)
        self.copy_log_button.clicked.connect(self.copy_log)
        self.clear_log_button.clicked.connect(self.clear_log)

    # -- settings ------------------------------------------------------------------------

    def _apply_preset(self) -> None:
        preset = self.preset_combo.currentData()
        if preset is None:
            return
        for spin, value in ((self.batch_spin, preset.batch_size),
                            (self.concurrency_spin, preset.concurrency),
                            (self.retries_spin, preset.retries),
                            (self.timeout_spin, preset.timeout_s)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    def _spin_changed(self) -> None:
        values = (self.batch_spin.value(), self.concurrency_spin.value(),
                  self.retries_spin.value(), self.timeout_spin.value())
        for index in range(self.preset_combo.count()):
            preset = self.preset_combo.itemData(index)
            if preset is not None and values == (preset.batch_size, preset.concurrency,
                                                 preset.retries, preset.timeout_s):
                break
        else:
            index = self.preset_combo.findText(CUSTOM_PRESET)
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(index)
        self.preset_combo.blockSignals(False)

    def _choose_output_dir(self) -> None:
        dialog = QFileDialog(self, "Choose the results folder", self.output_edit.text())
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda path: self.output_edit.setText(path))
        dialog.open()

    def output_dir(self) -> Path:
        """The results folder named here (imports, history and failures live there)."""
        return Path(self.output_edit.text().strip() or default_output_dir())

    def run_options(self) -> RunOptions:
        """How the import runs, as set here (what has no control here keeps its default)."""
        return RunOptions(batch_size=self.batch_spin.value(),
                          concurrency=self.concurrency_spin.value(),
                          max_retries=self.retries_spin.value(),
                          timeout_s=float(self.timeout_spin.value()),
                          output_dir=self.output_dir(),
                          on_existing=str(self.on_existing_combo.currentData()))

    def set_run_options(self, options: RunOptions) -> None:
        for spin, value in ((self.batch_spin, options.batch_size),
                            (self.concurrency_spin, options.concurrency),
                            (self.retries_spin, options.max_retries),
                            (self.timeout_spin, int(options.timeout_s))):
            spin.setValue(value)
        if self.output_edit.text() != str(options.output_dir):
            self.output_edit.setText(str(options.output_dir))
        index = self.on_existing_combo.findData(options.on_existing)
        if index >= 0:
            self.on_existing_combo.setCurrentIndex(index)

    def saved_settings(self) -> dict[str, object]:
        """The run options and the assignment, JSON-ready, for `set_run_settings`."""
        return {**self.run_options().to_dict(), "assignment": self.assignment_settings()}

    def set_run_settings(self, values: Mapping[str, object]) -> None:
        """Take the options `values` names (saved settings, or some of them: see
        RunOptions.updated); the others stay as they are."""
        self.set_run_options(self.run_options().updated(values))
        if "assignment" in values:
            self._set_assignment(values["assignment"])

    def restore_settings(self, settings: QSettings) -> None:
        """The connection (its secrets from the keychain) and the run options as saved."""
        connection = _saved(settings, "connection/settings")
        if connection:
            self.set_connection_settings(ConnectionSettings.from_dict(connection))
        self.set_run_settings(_saved(settings, "import/settings"))

    def save_settings(self, settings: QSettings) -> None:
        """Save the connection (never its secrets) and the run options."""
        settings.setValue("connection/settings", json.dumps(self.connection_settings().to_dict()))
        settings.setValue("import/settings", json.dumps(self.saved_settings()))

    # -- connection ----------------------------------------------------------------------

    def connection_options(self) -> ConnectionOptions:
        return self.connection.options()

    def connection_settings(self) -> ConnectionSettings:
        """The connection without its secrets (what is saved)."""
        return self.connection.settings()

    def set_connection_settings(self, settings: ConnectionSettings) -> None:
        """A profile's fields; its secrets as kept for it this session or in the keychain."""
        self.connection.set_settings(settings)

    def set_connection_options(self, options: ConnectionOptions, *,
                               remember_secrets: bool | None = None) -> None:
        """A whole connection, secrets included; `remember_secrets` sets whether they go to
        the keychain."""
        self.connection.set_options(options)
        if remember_secrets is not None:
            self.connection.remember_check.setChecked(remember_secrets)

    def save_secrets(self) -> None:
        """Keep the secrets for this session (and in the keychain, when asked to)."""
        self.connection.save_secrets()

    def test_connection(self) -> None:
        self.connection.start_test()

    # -- running -------------------------------------------------------------------------

    def set_files_summary(self, files: int, customers: int | None, *,
                          importing: bool = False, spreadsheets: int = 0,
                          listed: int = 0) -> None:
        """What the next import takes: `files` ready of `listed` on the Files tab."""
        ready = plural(files, "file")
        if importing:
            # customers not counted (spreadsheets are read as they go): not "0 customers"
            counted = f" · {customers:,} customers" if customers else ""
            self.files_label.setText(f"Importing {ready}{counted}")
        elif not files and listed:
            which = "the file" if listed == 1 else f"the {listed:,} files"
            self.files_label.setText(f"Nothing new to import: {which} on the Files tab "
                                     "went in; add files there")
        elif not files:
            self.files_label.setText("No files loaded: add files on the Files tab")
        elif customers is None:
            self.files_label.setText(f"{ready} ready (still counting customers)")
        elif spreadsheets:
            counted = f" · {customers:,} customers in JSON files" if customers else ""
            self.files_label.setText(
                f"{ready} ready{counted} · rows of "
                f"{plural(spreadsheets, 'spreadsheet')} are checked when you start")
        else:
            self.files_label.setText(f"{ready} ready · {plural(customers, 'customer')}")

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for widget in (self.connection, self.settings_group, self.options_group):
            widget.setEnabled(not running)
        if not running:
            self.pause_button.setText("Pause")
            self.hide_pause_problem()

    def import_starting(self, start: ImportStart) -> None:
        """An import starts: its secrets are kept, its progress shown from nothing."""
        self.save_secrets()
        self.reset_progress()
        self.set_files_summary(len(start.files), start.customers, importing=True)

    def set_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")

    def reset_progress(self) -> None:
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")
        for value in (self.done_value, self.succeeded_value, self.failed_value,
                      self.rate_value, self.eta_value, self.elapsed_value,
                      self.at_once_value):
            value.setText("–")
        self.state_label.setText("Starting…")
        self.file_value.clear()

    def show_progress(self, p: ImportProgress) -> None:
        self.progress_bar.setValue(int(p.fraction * 1000))
        self.progress_bar.setFormat(f"{p.fraction * 100:.1f} %")
        total = p.expected_total
        self.done_value.setText(f"{p.done:,} / {total:,}" if total else f"{p.done:,}")
        self.succeeded_value.setText(f"{p.succeeded:,}")
        self.failed_value.setText(f"{p.failed:,}")
        if (p.failed > 0) != self._failures_shown:  # "0" in red would read as a problem
            self._failures_shown = p.failed > 0
            show_tone(self.failed_value, Tone.ERROR if self._failures_shown else None)
        self.rate_value.setText(f"{p.rate:,.0f}")
        self.eta_value.setText(format_duration(p.eta_s))
        self.elapsed_value.setText(format_duration(p.elapsed_s))
        if p.concurrency and p.state in _SENDING_STATES:
            self.at_once_value.setText(f"{p.concurrency} of {p.concurrency_ceiling}")
        elif p.state == ImportState.FINISHED:
            self.at_once_value.setText("–")
        state = _STATE_TEXTS[p.state]
        if p.state == ImportState.PAUSED and p.pause_reason:
            # the reason, with a folder's whole path, is in the banner below
            state = "Paused: see why below"
        elif p.state != ImportState.PAUSED:
            self.hide_pause_problem()
        if p.state == ImportState.WRITING and p.writes_pending:
            state = f"Writing the result files… ({p.writes_pending:,} batches of failures left)"
        self.state_label.setText(state)
        if p.current_file and p.state != ImportState.FINISHED:
            self.file_value.setText(f"Reading {Path(p.current_file).name}")
        elif p.state == ImportState.FINISHED:
            self.file_value.clear()

    def show_outcome(self, text: str) -> None:
        self.state_label.setText(text)

    # -- log -----------------------------------------------------------------------------

    def append_log(self, level: int, message: str) -> None:
        self._log_entries.append((level, message))
        if len(self._log_entries) > MAX_LOG_LINES:
            del self._log_entries[: len(self._log_entries) - MAX_LOG_LINES]
        if self._log_visible(level, message):
            self.log_view.appendPlainText(self._format(level, message))

    def _log_visible(self, level: int, message: str) -> bool:
        wanted = LOG_LEVELS[self.log_level_combo.currentText()]
        needle = self.log_filter_edit.text().strip().lower()
        return level >= wanted and (not needle or needle in message.lower())

    @staticmethod
    def _format(level: int, message: str) -> str:
        return f"{logging.getLevelName(level):<7} {message}"

    def _rebuild_log(self) -> None:
        lines = [self._format(level, message) for level, message in self._log_entries
                 if self._log_visible(level, message)]
        self.log_view.setPlainText("\n".join(lines))
        self.log_view.moveCursor(QTextCursor.MoveOperation.End)

    def copy_log(self) -> None:
        QGuiApplication.clipboard().setText(self.log_view.toPlainText())

    def clear_log(self) -> None:
        self._log_entries.clear()
        self.log_view.clear()
