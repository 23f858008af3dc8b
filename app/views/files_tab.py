"""The Files tab: choose customer files and folders, see what each holds before importing."""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QItemSelectionModel,
    QMimeData,
    QPoint,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.file_inspection import FileInspection
from app.models.file_list_model import (
    SPREADSHEET_READY,
    FileEntry,
    FileListModel,
    FileListProxy,
    FileStatus,
)
from app.models.jobs import FileHistory
from app.services.jobs.history_tasks import HistoryTasks, UsedMapping, mapping_used_for
from app.services.jobs.journal import JournalError
from app.services.session.import_session import FileChoice
from app.services.sources.customer_reader import ReadProblem
from app.services.sources.file_checker import FileChecker
from app.services.sources.file_fingerprint import fingerprint
from app.services.sources.file_search import SkippedFile
from app.services.sources.mapping import Mapping, MappingError
from app.services.sources.source_options import SourceOptions
from app.services.sources.table_source import SPREADSHEET_SUFFIXES
from app.util.background import Pool, TaskHandle, run_task
from app.util.paths import path_key
from app.util.wording import plural
from app.views.mapping_dialog import MappingDialog
from app.views.widget_setup import setup_record_table

EMPTY_HINT = ("No files yet. Drop customer files or folders here, "
              "or use Add Files… or Add Directory…")
CUSTOMER_FILE_FILTER = ("Customer files (*.json *.jsonl *.ndjson "
                        + " ".join(f"*{s}" for s in SPREADSHEET_SUFFIXES) + ")")
SPREADSHEET_FILTER = "Spreadsheets (" + " ".join(f"*{s}" for s in SPREADSHEET_SUFFIXES) + ")"


def local_paths(mime: QMimeData) -> list[Path]:
    """Local files and folders in dragged data (Explorer, Finder, file managers)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class _FileTable(QTableView):
    """The file table: Delete/Backspace asks to remove rows; empty, it shows a hint."""

    deleteRequested = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # A key press rather than a QShortcut: shortcuts only fire in an active window,
        # which offscreen tests and some window managers do not give us.
        if (event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            self.deleteRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.viewport().rect().adjusted(24, 0, -24, 0), int(flags),
                             EMPTY_HINT)
            painter.end()


class FilesTab(QWidget):
    """The Files tab: the list of customer files to import, counted before the import.

    Files and folders come from the buttons, from drag and drop, or from the main window
    (`add_paths`, `load_retry_folder`). A `FileChecker` searches folders and counts each
    file off the GUI thread; counts reach the model in batches, so a thousand files never
    freeze the window.

    A spreadsheet (CSV, Excel) added opens the mapping step (`MappingDialog`), one file at
    a time; cancelling it takes the file off the list again (the user backed out of adding
    it). Before the step opens, the spreadsheet's content is fingerprinted and the results
    folder's history asked which mapping the latest job that read that content used: the
    step then starts from it (same content, same mapping, whatever the file is called).
    *Edit Mapping…* changes a listed spreadsheet's mapping.

    Signals:
        filesChanged(): rows were added or removed, or counts, statuses or mappings changed.
        countingFinished(): every file added so far has been searched and counted.
        statusMessage(str): a one-line message for the status bar.
    """

    filesChanged = Signal()
    countingFinished = Signal()
    statusMessage = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("filesTab")
        self.setAcceptDrops(True)
        self._last_folder: Path | None = None
        self._locked = False

        self.model = FileListModel(self)
        self.model.set_warning_icon(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        self.proxy = FileListProxy(self)
        self.proxy.setSourceModel(self.model)

        self.checker = FileChecker(self)
        self.checker.filesFound.connect(self._on_files_found)
        # said after what the search found (the later message is the one shown)
        self._links_skipped: list[str] = []
        self.checker.linksSkipped.connect(self._links_skipped.extend)
        self.checker.inspected.connect(self._apply_inspections)
        self.checker.progressChanged.connect(self._update_progress)
        self.checker.finished.connect(self._on_counting_finished)
        # what earlier imports into the results folder did with these files (by content)
        self._output_dir: Path | None = None
        self.history = HistoryTasks(self)
        self.history.filesLookedUp.connect(self._histories_found)
        self._dialog: QFileDialog | None = None
        # spreadsheets waiting for their mapping step, and the one open (with whether it
        # came from adding the file: cancelling then removes it)
        self._mapping_queue: deque[Path] = deque()
        self._mapping_dialog: MappingDialog | None = None
        # the spreadsheet whose earlier mapping is being looked up (its step opens next)
        self._recalling: TaskHandle[tuple[str, UsedMapping | None]] | None = None
        self._columns: dict[str, list[str]] = {}  # spreadsheet path -> its columns

        self._build_ui()
        self._update_summary()
        self._update_buttons()

    # -- UI ------------------------------------------------------------------------------

    def _build_ui(self) -> None:
        self.add_files_button = QPushButton("Add Files…", self)
        self.add_files_button.setToolTip("Choose customer files (.json, .jsonl, .ndjson)")
        self.add_files_button.setAccessibleName("Add files")
        self.add_files_button.setAccessibleDescription(
            "Opens a dialog to choose one or more customer files to import")
        self.add_files_button.clicked.connect(self.open_add_files_dialog)

        self.add_dir_button = QPushButton("Add Directory…", self)
        self.add_dir_button.setToolTip(
            "Choose a folder: every customer file in it and in its subfolders is added")
        self.add_dir_button.setAccessibleName("Add directory")
        self.add_dir_button.setAccessibleDescription(
            "Opens a dialog to choose a folder; its customer files, including those in "
            "subfolders, are added")
        self.add_dir_button.clicked.connect(self.open_add_directory_dialog)

        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setToolTip("Remove the selected files from the list (Delete)")
        self.remove_button.setAccessibleName("Remove selected files")
        self.remove_button.setAccessibleDescription(
            "Removes the selected files from the list; the files themselves are not deleted")
        self.remove_button.clicked.connect(self.remove_selected)

        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setToolTip("Remove every file from the list")
        self.clear_button.setAccessibleName("Clear file list")
        self.clear_button.setAccessibleDescription(
            "Removes every file from the list; the files themselves are not deleted")
        self.clear_button.clicked.connect(self.clear)

        self.edit_mapping_button = QPushButton("Edit Mapping…", self)
        self.edit_mapping_button.setToolTip(
            "Change how the selected spreadsheet's columns become customers")
        self.edit_mapping_button.setAccessibleName("Edit mapping")
        self.edit_mapping_button.setAccessibleDescription(
            "Opens the mapping step for the selected spreadsheet: columns, constants, "
            "saved mappings and a preview")
        self.edit_mapping_button.clicked.connect(self.edit_selected_mapping)

        self.table = _FileTable(self)
        self.table.setObjectName("filesTable")
        self.table.setModel(self.proxy)
        self.table.setAccessibleName("Customer files")
        self.table.setAccessibleDescription(
            "Files to import with their kind, number of customers, size and status. "
            "Press Delete to remove the selected files.")
        # Cells have their own tooltips (full path, reason); this one is for the rest.
        self.table.setToolTip("Customer files to import. Hover a file for its full path or "
                              "its status for the reason; press Delete to remove selected files.")
        setup_record_table(self.table)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the file's end
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._show_context_menu)
        self.table.deleteRequested.connect(self.remove_selected)
        vertical = self.table.verticalHeader()
        vertical.setVisible(False)
        # Fixed row heights: the view never measures a thousand rows to lay them out.
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        # No ResizeToContents: it would measure every row on every update.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(FileListModel.NAME, QHeaderView.ResizeMode.Stretch)
        char = self.fontMetrics().horizontalAdvance("0")
        header.resizeSection(FileListModel.KIND, char * 12)
        header.resizeSection(FileListModel.CUSTOMERS, char * 20)
        header.resizeSection(FileListModel.SIZE, char * 10)
        header.resizeSection(FileListModel.STATUS, char * 26)
        header.resizeSection(FileListModel.MAPPING, char * 18)
        # Keep the order files were added in until the user clicks a header.
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(self._double_clicked)

        self.summary_label = QLabel(self)
        self.summary_label.setObjectName("filesSummary")
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setAccessibleName("File list summary")
        self.summary_label.setToolTip("Files listed, customers in them, and unreadable files")

        self.progress_label = QLabel(self)
        self.progress_label.setAccessibleName("Counting progress")
        self.progress_label.setToolTip("Customers are counted in every file before import")
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setAccessibleName("Counting progress")
        self.progress_bar.setToolTip("Files checked so far")
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumWidth(220)
        self.progress_label.setVisible(False)
        self.progress_bar.setVisible(False)

        buttons = QHBoxLayout()
        for button in (self.add_files_button, self.add_dir_button, self.remove_button,
                       self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.edit_mapping_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary_label, 1)
        bottom.addWidget(self.progress_label)
        bottom.addWidget(self.progress_bar)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

        QWidget.setTabOrder(self.add_files_button, self.add_dir_button)
        QWidget.setTabOrder(self.add_dir_button, self.remove_button)
        QWidget.setTabOrder(self.remove_button, self.clear_button)
        QWidget.setTabOrder(self.clear_button, self.edit_mapping_button)
        QWidget.setTabOrder(self.edit_mapping_button, self.table)

    def _show_context_menu(self, pos: QPoint) -> None:
        if not self.table.selectionModel().hasSelection():
            return
        menu = QMenu(self)
        if self.selected_spreadsheet() is not None:
            edit = menu.addAction("Edit Mapping…")
            edit.setEnabled(not self._locked)
            edit.triggered.connect(self.edit_selected_mapping)
        action = menu.addAction("Remove from List")
        action.setEnabled(not self._locked)
        action.triggered.connect(self.remove_selected)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _update_buttons(self) -> None:
        has_rows = self.model.rowCount() > 0
        has_selection = self.table.selectionModel().hasSelection()
        self.add_files_button.setEnabled(not self._locked)
        self.add_dir_button.setEnabled(not self._locked)
        self.remove_button.setEnabled(not self._locked and has_selection)
        self.clear_button.setEnabled(not self._locked and has_rows)
        self.edit_mapping_button.setEnabled(not self._locked
                                            and self.selected_spreadsheet() is not None)
        self.edit_mapping_button.setVisible(self.model.spreadsheet_count() > 0)

    def _update_summary(self) -> None:
        files = self.model.rowCount()
        if not files:
            self.summary_label.setText("No files")  # the empty table itself says what to do
            return
        parts = [plural(files, "file")]
        total = self.model.total_customers()
        sheets = self.model.spreadsheet_count()
        if sheets == files and total == 0:
            parts.append("rows counted at Start")
        else:
            parts.append("counting customers…" if total is None
                         else plural(total, "customer"))
            if sheets:
                parts.append(f"rows of {plural(sheets, 'spreadsheet')} counted at Start")
        invalid = self.model.invalid_count()
        if invalid:
            parts.append(plural(invalid, "invalid file"))
        self.summary_label.setText(" · ".join(parts))

    def _update_progress(self) -> None:
        counting = self.is_counting()
        self.progress_bar.setVisible(counting)
        self.progress_label.setVisible(counting)
        if not counting:
            return
        done, total = self.checker.progress()
        if total == 0:
            self.progress_bar.setRange(0, 0)  # still searching folders: indeterminate
            self.progress_label.setText("Looking for customer files…")
            return
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)
        self.progress_label.setText(f"Checking {done:,} of {total:,} files…")

    # -- file dialogs --------------------------------------------------------------------

    @property
    def last_folder(self) -> Path | None:
        """The folder the file dialogs open in; the main window persists it (QSettings)."""
        return self._last_folder

    @last_folder.setter
    def last_folder(self, value: str | Path | None) -> None:
        self._last_folder = Path(value) if value else None

    def _new_dialog(self, name: str, caption: str) -> QFileDialog | None:
        if self._dialog is not None:  # one at a time: bring the open one forward
            self._dialog.raise_()
            self._dialog.activateWindow()
            return None
        start = self._last_folder if self._last_folder else Path.home()
        dialog = QFileDialog(self, caption, str(start))
        dialog.setObjectName(name)
        dialog.setAccessibleName(caption)
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self._dialog = dialog
        return dialog

    def _dialog_closed(self, dialog: QFileDialog) -> None:
        if self._dialog is dialog:
            self._dialog = None
        dialog.deleteLater()

    @Slot()
    def open_add_files_dialog(self) -> None:
        """Open the (non-blocking) dialog for choosing customer files."""
        dialog = self._new_dialog("addFilesDialog", "Add customer files")
        if dialog is None:
            return
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setNameFilters([CUSTOMER_FILE_FILTER, SPREADSHEET_FILTER, "All files (*)"])
        dialog.filesSelected.connect(self._files_chosen)
        dialog.open()

    @Slot()
    def open_add_directory_dialog(self) -> None:
        """Open the (non-blocking) dialog for choosing a folder (searched recursively)."""
        dialog = self._new_dialog("addDirectoryDialog", "Add a folder of customer files")
        if dialog is None:
            return
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.filesSelected.connect(self._folder_chosen)
        dialog.open()

    def _files_chosen(self, files: Sequence[str]) -> None:
        if files:
            self._last_folder = Path(files[0]).parent
            self.add_paths([Path(f) for f in files])

    def _folder_chosen(self, folders: Sequence[str]) -> None:
        if folders:
            self._last_folder = Path(folders[0])
            self.add_paths([Path(f) for f in folders])

    # -- drag and drop -------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if not self._locked and local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if not self._locked and local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [] if self._locked else local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)  # never checks the disk here: folders are searched off-thread

    # -- public API ----------------------------------------------------------------------

    def add_paths(self, paths: Iterable[str | Path]) -> None:
        """Add files and folders (searched recursively, on a worker thread).

        Rows appear in "counting" state as soon as the search returns, then fill in as
        files are counted. Files already listed are not added twice; an already listed
        file marked "invalid" is counted again (it may have been fixed meanwhile).
        """
        wanted = [Path(p) for p in paths]
        if not wanted:
            return
        self.checker.search(wanted)

    def load_retry_folder(self, folder: Path) -> None:
        """Replace the list with the retry files in `folder` ("load retry files now")."""
        self.clear()
        self.add_paths([Path(folder)])
        self.statusMessage.emit(f"Loading retry files from {Path(folder).name}…")

    def clear(self) -> None:
        """Empty the list and drop any counting still under way."""
        self.checker.cancel_all()
        self._mapping_queue.clear()  # a look-up under way finds its file gone
        had_rows = self.model.rowCount() > 0
        self.model.clear()
        self._update_summary()
        self._update_buttons()
        self._update_progress()
        if had_rows:
            self.filesChanged.emit()

    def remove_selected(self) -> None:
        """Remove the selected rows from the list (the files stay on disk)."""
        if self._locked:
            return
        selection = self.table.selectionModel()
        proxy_rows = sorted({i.row() for i in selection.selectedRows()})
        if not proxy_rows:
            return
        source_rows = [self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in proxy_rows]
        removed = self.model.remove_rows(source_rows)
        self.checker.forget({path_key(e.path) for e in removed})
        # Select the row that took the first removed one's place: Delete can be pressed again.
        remaining = self.proxy.rowCount()
        if remaining:
            row = min(proxy_rows[0], remaining - 1)
            self.table.selectionModel().setCurrentIndex(
                self.proxy.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
        self._update_summary()
        self._update_buttons()
        self._update_progress()
        self.filesChanged.emit()
        self.statusMessage.emit(f"Removed {plural(len(removed), 'file')} from the list")

    def ready_files(self) -> list[Path]:
        """Files to import now, in the order they were added (see FileListModel.ready_paths)."""
        return self.model.ready_paths()

    def total_customers(self) -> int | None:
        """Entries in every readable listed file; None while counting."""
        if self.is_counting():
            return None
        return self.model.total_customers()

    def ready_customers(self) -> int | None:
        """Entries in the files ready_files() returns (what an import reads); None while
        counting. Use this as an import's expected total: total_customers() also counts
        files already imported."""
        if self.is_counting():
            return None
        return self.model.ready_customers()

    def set_status(self, paths: Iterable[str | Path], status: str, detail: str = "") -> None:
        """Set the status of listed files, e.g. "importing", "imported", "failed"."""
        if self.model.set_status(paths, status, detail):
            self._update_summary()
            self.filesChanged.emit()

    def is_counting(self) -> bool:
        """True while folders are being searched or files counted."""
        return self.checker.is_busy()

    def set_locked(self, locked: bool) -> None:
        """Lock the list during an import: no adding, removing or clearing (incl. drops)."""
        self._locked = locked
        self.setAcceptDrops(not locked)
        self._update_buttons()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop counting and wait for worker threads; call from the main window's close."""
        self.checker.shutdown(wait_ms)

    # -- counting machinery ----------------------------------------------------------------

    def _on_files_found(self, files: list[Path], sizes: dict[str, int],
                        problems: list[ReadProblem], skipped: list[SkippedFile]) -> None:
        new = self.model.add_paths(files, sizes)
        new_keys = {path_key(e.path) for e in new}
        # Spreadsheets are not counted here: their rows become customers only through
        # a mapping, chosen next; the review before Start counts and checks them.
        sheets = [e.path for e in new if e.is_spreadsheet]
        if sheets:
            self.model.update_entries({p: {"status": FileStatus.READY, "kind": "spreadsheet",
                                           "detail": SPREADSHEET_READY,
                                           "mapping_name": "auto"} for p in sheets})
            self._mapping_queue.extend(sheets)
        # Already listed files that could not be read are counted again: fixed, perhaps.
        again = [p for p in files if path_key(p) not in new_keys
                 and (entry := self.model.entry_for(p)) is not None
                 and entry.status == FileStatus.INVALID and not entry.is_spreadsheet]
        if again:
            self.model.update_entries({p: {"status": FileStatus.COUNTING, "customers": None,
                                           "invalid": 0, "detail": ""} for p in again})
        to_count = [e.path for e in new if not e.is_spreadsheet] + again
        known_sizes = {path_key(p): entry.size_bytes for p in to_count
                       if (entry := self.model.entry_for(p)) is not None}
        self.checker.inspect(to_count, known_sizes)

        for problem in problems:
            self.statusMessage.emit(f"{problem.source_file}: {problem.message}")
        if skipped:
            names = ", ".join(Path(s.path).name for s in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            self.statusMessage.emit(f"Skipped {plural(len(skipped), 'file')} this app wrote "
                                    f"itself ({names}{more})")
        if new:
            self.statusMessage.emit(f"Added {plural(len(new), 'file')}; counting customers…")
        elif again:
            self.statusMessage.emit(f"Checking {plural(len(again), 'file')} again…")
        elif files:
            self.statusMessage.emit("Those files are already in the list")
        elif not problems and not skipped:
            self.statusMessage.emit("No customer files (.json, .jsonl, .ndjson) or "
                                    "spreadsheets (.csv, .tsv, .xlsx, .xlsm) found there")
        if self._links_skipped:
            notes, self._links_skipped[:] = list(self._links_skipped), []
            self.statusMessage.emit(
                f"Not followed: {plural(len(notes), 'link')} to other folders ("
                + "; ".join(notes[:3]) + (" …" if len(notes) > 3 else "") + ")")
        if new or again:
            self._update_summary()
            self._update_buttons()
            self.filesChanged.emit()
        if sheets:
            self._open_next_mapping()

    @Slot(object)
    def _apply_inspections(self, results: list[FileInspection]) -> None:
        if self.model.apply_inspections(results):
            self._update_summary()
            self.filesChanged.emit()
        self._look_up([r.sha256 for r in results if r.sha256])

    # -- spreadsheets: the mapping step -------------------------------------------------------

    def selected_spreadsheet(self) -> FileEntry | None:
        """The selected file when exactly one is selected and it is a spreadsheet."""
        rows = self.table.selectionModel().selectedRows()
        if len(rows) != 1:
            return None
        entry = self.proxy.entry_at(rows[0])
        return entry if entry is not None and entry.is_spreadsheet else None

    def _double_clicked(self, index: Any) -> None:
        entry = self.proxy.entry_at(index)
        if entry is not None and entry.is_spreadsheet and not self._locked:
            self.edit_mapping(entry.path)

    @Slot()
    def edit_selected_mapping(self) -> None:
        entry = self.selected_spreadsheet()
        if entry is not None:
            self.edit_mapping(entry.path)

    def edit_mapping(self, path: Path) -> MappingDialog | None:
        """Open the mapping step for a listed spreadsheet; Cancel keeps its mapping."""
        if self._locked:
            return None
        if self._mapping_dialog is not None:
            self._mapping_dialog.raise_()
            self._mapping_dialog.activateWindow()
            return None
        if self._recalling is not None:
            return None  # an added spreadsheet's step is about to open: one at a time
        return self._open_mapping(Path(path), adding=False)

    def mapping_dialog(self) -> MappingDialog | None:
        """The mapping step open now, if any."""
        return self._mapping_dialog

    def _open_next_mapping(self) -> None:
        if self._mapping_dialog is not None or self._recalling is not None:
            return  # one at a time: the next opens when this one closes
        while self._mapping_queue:
            path = self._mapping_queue.popleft()
            if self.model.entry_for(path) is not None:  # removed meanwhile: skip it
                self._recall_mapping(path)
                return

    def _recall_mapping(self, path: Path) -> None:
        """Fingerprint an added spreadsheet and look up the mapping an earlier job read its
        content with (on the journal's thread: hashing a big workbook, or a history another
        program holds, never blocks the window); then open its mapping step."""
        folder = self._output_dir

        def work() -> tuple[str, UsedMapping | None]:
            sha256 = fingerprint(path).sha256
            if folder is None:
                return sha256, None
            try:
                return sha256, mapping_used_for(folder, sha256)
            except (JournalError, sqlite3.Error):
                return sha256, None  # no usable history: map it as if new

        def done(result: tuple[str, UsedMapping | None] | None) -> None:
            self._recalling = None
            sha256, used = result if result is not None else ("", None)
            if sha256 and self.model.entry_for(path) is not None:
                self.model.update_entry(path, sha256=sha256)
                self._look_up([sha256])  # what earlier jobs imported of it
            # removed (or the list cleared) meanwhile: on to the next
            if self._open_mapping(path, adding=True, used=used) is None:
                self._open_next_mapping()

        def failed(error: BaseException) -> None:
            done(None)  # unreadable now: its mapping step says why
            if not isinstance(error, OSError):
                raise error

        self._recalling = run_task(Pool.JOURNAL, work, on_done=done, on_error=failed,
                                   owner=self)

    def _open_mapping(self, path: Path, *, adding: bool,
                      used: UsedMapping | None = None) -> MappingDialog | None:
        entry = self.model.entry_for(path)
        if entry is None:
            return None
        mapping: Mapping | None = None
        if entry.mapping:
            try:
                mapping = Mapping.from_dict(entry.mapping)
            except MappingError:
                mapping = None
        sheet = entry.sheet
        from_job: int | None = None
        if mapping is None and used is not None:
            try:
                mapping = Mapping.from_dict(used.mapping)
            except MappingError:
                mapping = None  # a mapping this version cannot read: map it afresh
            else:
                from_job = used.job_id
                sheet = sheet or used.sheet
        dialog = MappingDialog(entry.path, sheet=sheet, mapping=mapping, parent=self,
                               from_job=from_job)
        if adding and self._mapping_queue:
            dialog.setWindowTitle(f"{dialog.windowTitle()} ({len(self._mapping_queue):,} "
                                  "more waiting)")
        dialog.finished.connect(lambda result: self._mapping_done(dialog, entry.path, result,
                                                                  adding))
        self._mapping_dialog = dialog
        dialog.open()
        return dialog

    def _mapping_done(self, dialog: MappingDialog, path: Path, result: int,
                      adding: bool) -> None:
        if self._mapping_dialog is dialog:
            self._mapping_dialog = None
        mapping = dialog.mapping()
        if dialog.columns():
            self._columns[path_key(path)] = dialog.columns()
        if result == QDialog.DialogCode.Accepted and mapping is not None:
            if self.model.update_entry(path, mapping=mapping.to_dict(), sheet=dialog.sheet(),
                                       mapping_name=dialog.mapping_label()):
                self.statusMessage.emit(f"{path.name}: mapping {dialog.mapping_label()}")
                self.filesChanged.emit()
        elif adding and not self._locked:
            # backing out of the mapping step backs out of adding the file
            removed = self.model.remove_paths([path])
            if removed:
                self._update_summary()
                self._update_buttons()
                self.filesChanged.emit()
                self.statusMessage.emit(f"{path.name} was not added: its mapping step was "
                                        "cancelled")
        dialog.deleteLater()
        self._open_next_mapping()

    def file_mappings(self) -> dict[str, dict[str, Any]]:
        """Mappings (file format) of the listed spreadsheets that have one, by path."""
        return {str(e.path): dict(e.mapping) for e in self.model.entries()
                if e.is_spreadsheet and e.mapping}

    def file_sheets(self) -> dict[str, str]:
        """The sheet chosen for each listed workbook that has one, by path."""
        return {str(e.path): e.sheet for e in self.model.entries()
                if e.is_spreadsheet and e.sheet}

    def source_options(self) -> SourceOptions:
        """How the listed files are read: their mappings and sheets."""
        return SourceOptions(file_mappings=self.file_mappings(), file_sheets=self.file_sheets())

    def file_choice(self) -> FileChoice:
        """What an import could take from the list (see FileChoice)."""
        return FileChoice(ready=self.ready_files(),
                          listed=[e.path for e in self.model.entries()],
                          imported_before=self.imported_before(),
                          customers=self.ready_customers())

    def spreadsheet_count(self) -> int:
        return self.model.spreadsheet_count()

    def spreadsheet_columns(self) -> list[str]:
        """Columns of the listed spreadsheets seen in their mapping step (suggestions)."""
        listed = {path_key(e.path) for e in self.model.entries()}
        names: dict[str, None] = {}
        for key, columns in self._columns.items():
            if key in listed:
                names.update(dict.fromkeys(columns))
        return list(names)

    # -- history ----------------------------------------------------------------------------

    def set_output_dir(self, folder: Path) -> None:
        """The results folder whose import history flags files imported before."""
        folder = Path(folder)
        if folder == self._output_dir:
            return
        self._output_dir = folder
        self.refresh_history()

    def refresh_history(self) -> None:
        """Ask again what earlier imports did with every listed file (after an import)."""
        self._look_up([e.sha256 for e in self.model.entries() if e.sha256])

    def _look_up(self, sha256s: list[str]) -> None:
        if self._output_dir is not None and sha256s:
            self.history.look_up_files(self._output_dir, sha256s)

    def _histories_found(self, histories: dict[str, FileHistory], error: str,
                         folder: Path) -> None:
        if error or Path(folder) != self._output_dir:
            return  # unreadable history, or another folder chosen meanwhile
        if self.model.apply_histories(histories):
            self._update_summary()
            self.filesChanged.emit()

    def imported_before(self) -> list[FileEntry]:
        """Listed files an earlier import took, in whole or in part."""
        return self.model.imported_before()

    def _on_counting_finished(self) -> None:
        self._update_summary()
        total = self.model.total_customers()
        if self.model.rowCount():
            message = (f"Counted {plural(total or 0, 'customer')} in "
                       f"{plural(self.model.rowCount(), 'file')}")
            invalid = self.model.invalid_count()
            if invalid:
                message += f"; {plural(invalid, 'file')} cannot be imported (see Status)"
            self.statusMessage.emit(message)
        self.countingFinished.emit()
