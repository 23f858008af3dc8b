"""The Files tab: choose customer files and folders, see what each holds before importing."""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QItemSelectionModel,
    QMimeData,
    QObject,
    QPoint,
    QRunnable,
    Qt,
    QThreadPool,
    QTimer,
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
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.file_list_model import (
    FileListModel,
    FileListProxy,
    FileStatus,
    path_key,
    plural,
)
from app.services.sources.customer_reader import ReadProblem
from app.services.sources.file_inspector import FileInspection, InspectionCancelled, inspect_file
from app.services.sources.file_search import find_customer_files
from app.views.widget_setup import setup_record_table

# The machine running this has two cores. Two threads overlap the disk waits of many small
# files; counting is CPU work under the GIL, so two big files at once would only fight the
# GUI thread for it (measured: GUI pauses of up to a second instead of <100 ms).
INSPECT_THREADS = 2
# Files at least this big are counted one at a time (about 10,000 customers, ~0.3 s).
LARGE_FILE_BYTES = 4 * 1024 * 1024
# A counting thread naps this long after every NAP_EVERY_S of work. Without it, every call
# the GUI thread makes into Python (each model.data() of a repaint, each timer slot) waits up
# to the interpreter's 5 ms switch interval for the GIL, and repaints stall for 200-400 ms;
# with it the GUI thread gets the GIL within ~2 ms. Costs counting about 10%.
NAP_EVERY_S = 0.002
NAP_S = 0.0002
# Tasks handed to the pool at once; the rest wait in our own queue, so removing or clearing
# files drops them cheaply instead of cancelling thousands of queued runnables.
_IN_FLIGHT_LIMIT = INSPECT_THREADS * 2
# Finished inspections are applied to the model in one go this often: 1,000 small files
# then cost ~10-30 view updates instead of 1,000.
APPLY_INTERVAL_MS = 100

EMPTY_HINT = ("No files yet. Drop customer files or folders here, "
              "or use Add Files… or Add Directory…")


class _CancelToken:
    """Shared with worker threads; set when their results are no longer wanted."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


@dataclass(frozen=True, slots=True)
class _Job:
    """One file to count, and the list generation it was asked for."""

    path: Path
    generation: int
    large: bool


class _WorkerSignals(QObject):
    """Carries worker results to the GUI thread (queued: it lives in the GUI thread)."""

    # generation, files found, ReadProblems, sizes by path_key
    expanded = Signal(int, object, object, object)
    # _Job, FileInspection or None when cancelled
    inspected = Signal(object, object)


class _ExpandTask(QRunnable):
    """Expands files and folders (recursively) into customer files, and stats them."""

    def __init__(self, paths: list[Path], generation: int, signals: _WorkerSignals) -> None:
        super().__init__()
        self._paths = paths
        self._generation = generation
        self._signals = signals  # a Python reference keeps the QObject alive meanwhile

    def run(self) -> None:
        sizes: dict[str, int] = {}
        try:
            search = find_customer_files(self._paths)
            files, problems = search.files, list(search.problems)
            if search.skipped:
                names = ", ".join(Path(s.path).name for s in search.skipped[:5])
                more = len(search.skipped) - 5
                problems.append(ReadProblem(
                    str(self._paths[0]), f"skipped {len(search.skipped)} file(s) this app "
                    f"wrote itself ({names}{f' and {more} more' if more > 0 else ''})"))
            for path in files:
                # an unreadable file's size stays unknown: its inspection says why
                with contextlib.suppress(OSError):
                    sizes[path_key(path)] = os.path.getsize(path)
        except Exception as exc:  # e.g. a folder that cannot be listed
            files = []
            problems = [ReadProblem(str(self._paths[0]) if self._paths else "",
                                    f"the folder could not be searched ({exc})",
                                    fatal_for_file=True)]
        self._signals.expanded.emit(self._generation, files, problems, sizes)


class _InspectTask(QRunnable):
    """Counts the customers in one file on a pool thread."""

    def __init__(self, job: _Job, token: _CancelToken, signals: _WorkerSignals) -> None:
        super().__init__()
        self._job = job
        self._token = token
        self._signals = signals
        self._last_nap = 0.0

    def _cancelled(self) -> bool:
        """Polled by inspect_file every ~1 ms: stop when cancelled, and pace the GIL."""
        now = time.perf_counter()
        if now - self._last_nap >= NAP_EVERY_S:
            time.sleep(NAP_S)  # a real sleep: sleep(0) gives the GIL straight back to us
            self._last_nap = time.perf_counter()
        return self._token.cancelled

    def run(self) -> None:
        result: FileInspection | None
        path = self._job.path
        if self._token.cancelled:
            result = None
        else:
            try:
                self._last_nap = time.perf_counter()
                result = inspect_file(path, cancelled=self._cancelled)
            except InspectionCancelled:
                result = None
            except Exception as exc:  # never lose the result: the row would count forever
                result = FileInspection(path, problem=f"the file could not be read "
                                        f"({type(exc).__name__}: {exc})")
        self._signals.inspected.emit(self._job, result)


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
    (`add_paths`, `load_retry_folder`). Folders are searched on a worker thread, then each
    file is counted on a small thread pool; results reach the model in batches every
    APPLY_INTERVAL_MS so a thousand files never freeze the window.

    Signals:
        filesChanged(): rows were added or removed, or counts or statuses changed.
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
        self.proxy = FileListProxy(self)
        self.proxy.setSourceModel(self.model)

        # Worker plumbing. The signals object has no parent: the runnables hold Python
        # references to it, so it outlives any task still running when the tab goes away.
        self._signals = _WorkerSignals()
        self._signals.expanded.connect(self._on_expanded)
        self._signals.inspected.connect(self._on_inspected)
        self._inspect_pool = QThreadPool(self)
        self._inspect_pool.setMaxThreadCount(INSPECT_THREADS)
        # One thread for folder searches: they run in the order they were asked for, so
        # files appear in the order they were dropped.
        self._expand_pool = QThreadPool(self)
        self._expand_pool.setMaxThreadCount(1)
        self._generation = 0  # bumped by clear(): older results are dropped
        self._token = _CancelToken()
        self._expansions_pending = 0
        # Waiting to be handed to the pool; big files separately, as they go one at a time.
        self._queue: deque[Path] = deque()
        self._queue_large: deque[Path] = deque()
        self._running = 0  # tasks in the pool, of any generation
        self._running_large = 0
        self._outstanding = 0  # current generation: queued + running, results not back
        self._results: list[FileInspection] = []  # back, not yet applied to the model
        self._session_active = False
        self._session_total = 0
        self._session_done = 0
        self._apply_timer = QTimer(self)
        self._apply_timer.setInterval(APPLY_INTERVAL_MS)
        self._apply_timer.timeout.connect(self._apply_results)
        self._dialog: QFileDialog | None = None

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
        header.resizeSection(FileListModel.STATUS, char * 14)
        # Keep the order files were added in until the user clicks a header.
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

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
        QWidget.setTabOrder(self.clear_button, self.table)

    def _show_context_menu(self, pos: QPoint) -> None:
        if not self.table.selectionModel().hasSelection():
            return
        menu = QMenu(self)
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

    def _update_summary(self) -> None:
        files = self.model.rowCount()
        if not files:
            self.summary_label.setText("No files")  # the empty table itself says what to do
            return
        parts = [plural(files, "file")]
        total = self.model.total_customers()
        parts.append("counting customers…" if total is None else plural(total, "customer"))
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
        if self._session_total == 0:
            self.progress_bar.setRange(0, 0)  # still searching folders: indeterminate
            self.progress_label.setText("Looking for customer files…")
            return
        done = min(self._session_done, self._session_total)
        self.progress_bar.setRange(0, self._session_total)
        self.progress_bar.setValue(done)
        self.progress_label.setText(f"Checking {done:,} of {self._session_total:,} files…")

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
        # Qt's own dialog: the same on every platform, and drivable by tests.
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
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
        dialog.setNameFilters(["Customer files (*.json *.jsonl *.ndjson)", "All files (*)"])
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
        self._begin_session()
        self._expansions_pending += 1
        self._expand_pool.start(_ExpandTask(wanted, self._generation, self._signals))
        self._update_progress()

    def load_retry_folder(self, folder: Path) -> None:
        """Replace the list with the retry files in `folder` ("load retry files now")."""
        self.clear()
        self.add_paths([Path(folder)])
        self.statusMessage.emit(f"Loading retry files from {Path(folder).name}…")

    def clear(self) -> None:
        """Empty the list and drop any counting still under way."""
        self._cancel_all()
        had_rows = self.model.rowCount() > 0
        self.model.clear()
        self._update_summary()
        self._update_buttons()
        self._update_progress()
        if had_rows:
            self.filesChanged.emit()
        # A session that was under way ends on the next timer tick (not here), so that
        # load_retry_folder's clear-then-add is one session with one countingFinished.

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
        self._forget_queued({path_key(e.path) for e in removed})
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
        return bool(self._expansions_pending or self._outstanding or self._results)

    def set_locked(self, locked: bool) -> None:
        """Lock the list during an import: no adding, removing or clearing (incl. drops)."""
        self._locked = locked
        self.setAcceptDrops(not locked)
        self._update_buttons()

    def is_locked(self) -> bool:
        return self._locked

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop counting and wait for worker threads; call from the main window's close."""
        self._cancel_all()
        self._apply_timer.stop()
        self._expand_pool.waitForDone(wait_ms)
        self._inspect_pool.waitForDone(wait_ms)

    # -- counting machinery ----------------------------------------------------------------

    def _begin_session(self) -> None:
        if not self._session_active:
            self._session_active = True
            self._session_total = 0
            self._session_done = 0
        if not self._apply_timer.isActive():
            self._apply_timer.start()

    def _cancel_all(self) -> None:
        self._generation += 1
        self._token.cancelled = True  # running inspections stop at their next check
        self._token = _CancelToken()
        self._queue.clear()
        self._queue_large.clear()
        self._expansions_pending = 0
        self._outstanding = 0
        self._results.clear()
        self._session_total = 0
        self._session_done = 0

    def _forget_queued(self, keys: set[str]) -> None:
        """Removed files still waiting to be counted are not counted at all."""
        if not keys:
            return
        dropped = 0
        for name in ("_queue", "_queue_large"):
            queue: deque[Path] = getattr(self, name)
            kept = deque(p for p in queue if path_key(p) not in keys)
            dropped += len(queue) - len(kept)
            setattr(self, name, kept)
        self._outstanding -= dropped
        self._session_total -= dropped

    @Slot(int, object, object, object)
    def _on_expanded(self, generation: int, files: list[Path], problems: list[ReadProblem],
                     sizes: dict[str, int]) -> None:
        if generation != self._generation:
            return  # the list was cleared meanwhile
        self._expansions_pending -= 1
        new = self.model.add_paths(files, sizes)
        new_keys = {path_key(e.path) for e in new}
        # Already listed files that could not be read are counted again: fixed, perhaps.
        again = [p for p in files if path_key(p) not in new_keys
                 and (entry := self.model.entry_for(p)) is not None
                 and entry.status == FileStatus.INVALID]
        if again:
            self.model.update_entries({p: {"status": FileStatus.COUNTING, "customers": None,
                                           "invalid": 0, "detail": ""} for p in again})
        to_count = [e.path for e in new] + again
        for path in to_count:
            entry = self.model.entry_for(path)
            large = entry is not None and entry.size_bytes >= LARGE_FILE_BYTES
            (self._queue_large if large else self._queue).append(path)
        self._outstanding += len(to_count)
        self._session_total += len(to_count)
        self._feed()

        for problem in problems:
            self.statusMessage.emit(f"{problem.source_file}: {problem.message}")
        if new:
            self.statusMessage.emit(f"Added {plural(len(new), 'file')}; counting customers…")
        elif again:
            self.statusMessage.emit(f"Checking {plural(len(again), 'file')} again…")
        elif files:
            self.statusMessage.emit("Those files are already in the list")
        elif not problems:
            self.statusMessage.emit("No customer files (.json, .jsonl, .ndjson) found there")
        if new or again:
            self._update_summary()
            self._update_buttons()
            self.filesChanged.emit()
        self._update_progress()
        self._maybe_finish()

    def _feed(self) -> None:
        while self._running < _IN_FLIGHT_LIMIT:
            if self._queue_large and not self._running_large:
                job = _Job(self._queue_large.popleft(), self._generation, large=True)
                self._running_large += 1
            elif self._queue:
                job = _Job(self._queue.popleft(), self._generation, large=False)
            else:
                break
            self._running += 1
            self._inspect_pool.start(_InspectTask(job, self._token, self._signals))

    @Slot(object, object)
    def _on_inspected(self, job: _Job, result: FileInspection | None) -> None:
        # Only bookkeeping here: the model is updated in batches by _apply_results.
        self._running -= 1
        self._running_large -= job.large
        generation = job.generation
        if generation == self._generation:
            self._outstanding -= 1
            self._session_done += 1
            if result is not None:
                self._results.append(result)
        self._feed()
        if generation == self._generation and not self._outstanding \
                and not self._expansions_pending:
            self._apply_results()  # the last one: show it now, not at the next tick

    @Slot()
    def _apply_results(self) -> None:
        if self._results:
            results, self._results = self._results, []
            if self.model.apply_inspections(results):
                self._update_summary()
                self.filesChanged.emit()
        self._update_progress()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if not self._session_active or self.is_counting():
            return
        self._session_active = False
        self._apply_timer.stop()
        self._update_progress()
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
