"""The Failed Customers tab: every customer that was not imported, live during an import."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QSettings,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.models.failure_store import FailureStore
from app.models.failure_table_model import (
    COL_BATCH,
    COL_ERROR,
    COL_ID,
    COL_RESULT,
    COL_TIMESTAMP,
    COL_USERNAME,
    FailureTableModel,
)
from app.models.records import FailureRecord
from app.services.jobs.failure_list_tasks import FailureListTasks, FolderList
from app.services.jobs.journal import journal_path
from app.services.results.failure_export import EXPORT_FORMATS
from app.util.csv_separator import SEPARATOR_NAMES, separator_name, system_separator
from app.views.desktop_look import shortcut_text
from app.views.failure_detail_dialog import FailureDetailDialog
from app.views.growing_table_view import GrowingTableView
from app.views.text_only_delegate import TextOnlyDelegate
from app.views.widget_setup import setup_record_table

SUMMARY_INTERVAL_MS = 500  # the summary is counted again at most this often
LIVE_SUMMARY_INTERVAL_MS = 5000  # ... and while an import adds failures (a whole scan)
COPY_ON_WORKER_ROWS = 1000  # more selected rows than this are read off the GUI thread
SEARCH_DELAY_MS = 200  # wait for a pause in typing before searching 100,000 rows
COUNT_INTERVAL_MS = 2000  # countChanged at most this often during an import
PENDING_CHECK_MS = 1000  # how often "N new, press Refresh" is updated when not live
COPY_COLUMNS = ("Customer ID", "Username", "Result", "Error", "Timestamp", "Batch Info")
COLUMN_WIDTHS = {COL_ID: 110, COL_USERNAME: 180, COL_TIMESTAMP: 140, COL_BATCH: 190,
                 COL_RESULT: 130}  # minimum widths; id and timestamp also fit their text
ALL_RESULTS = "All results"


def format_count(total: int, shown: int | None = None) -> str:
    """"No failed customers", "1 failed customer", "1,234 failed customers (showing 12 of …)"."""
    if total == 0:
        return "No failed customers"
    text = f"{total:,} failed customer{'' if total == 1 else 's'}"
    if shown is not None:
        text += f" (showing {shown:,} of {total:,})"
    return text


def _cell(value: object) -> str:
    # one record per line, one field per tab: keep tabs and line breaks out of the cells
    text = "" if value is None else str(value)
    return text.replace("\t", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def records_as_tsv(records: list[FailureRecord]) -> str:
    """Tab-separated text with a header line, as pasted into a spreadsheet."""
    lines = ["\t".join(COPY_COLUMNS)]
    lines += ["\t".join(_cell(v) for v in (r.customer_id, r.username, r.result, r.error,
                                           r.timestamp, r.batch_info)) for r in records]
    return "\n".join(lines) + "\n"


class FailedCustomersTab(QWidget):
    """Tab listing the customers whose failure is still open: one row per customer, with
    search, result filter, sortable table, summary by error type, "Show resolved", and
    Refresh / Export… (with the CSV separator beside it) / Copy selected / Clear… buttons.

    The list is the results folder's journal, read a page at a time (see
    `FailureTableModel`): `refresh()` lists the folder's failures (an earlier version's
    failed_customers.json when there is no journal yet). During an import
    (`set_import_running(True)`) new failures appear several times a second while
    "Auto-refresh during import" is checked, and customers the import brings in are greyed
    as resolved; `import_finished()` lists the folder's failures again. `show_job(id)`
    lists one job's failures.

    Signals:
        countChanged(int): the number of open failures changed (during an import at most
            every COUNT_INTERVAL_MS; at its end at once).
        statusMessage(str): a message for the main window's status bar.
        refreshFinished(int): a Refresh finished; how many failures it lists.
        exportFinished(str): an export finished; the file written, or "" when it failed.
    """

    countChanged = Signal(int)
    statusMessage = Signal(str)
    refreshFinished = Signal(int)
    exportFinished = Signal(str)

    def __init__(self, store: FailureStore, output_dir: Callable[[], Path],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failedCustomersTab")
        self.setAccessibleName("Failed customers")
        self._store = store
        self._output_dir = output_dir
        self._import_running = False
        self._last_count = -1
        # the results folder the list shown belongs to (None: not known yet)
        self._list_folder: Path | None = None
        self._preparing = False  # the folder's list is being made ready (off this thread)
        self._refresh_again = False
        self._refresh_serial = 0  # the model's answer a refresh waits for (0: none)
        self._refresh_folder: Path | None = None
        self._cleared = False  # the user cleared the list: it stays so until a refresh
        self._export_dir: Path | None = None
        self._export_dialog: QFileDialog | None = None
        self._detail_dialogs: list[FailureDetailDialog] = []
        self.tasks = FailureListTasks(self)
        self.tasks.prepared.connect(self._prepared)
        self.tasks.exported.connect(self._exported)
        self.tasks.recordsRead.connect(self._copy_read_records)

        self.model = FailureTableModel(store, self)

        self._build_widgets()
        self._build_layout()
        self._connect()
        self._update_count()
        self._update_summary()

    # -- construction ----------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search id, name, error…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAccessibleName("Search failed customers")
        self.search_edit.setToolTip("Show only failures whose customer id, name, error, result "
                                    "or source file contains this text")

        self.result_combo = QComboBox()
        self.result_combo.addItem(ALL_RESULTS, None)
        self.result_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.result_combo.setAccessibleName("Result type filter")
        self.result_combo.setToolTip("Show only failures with this result")

        self.show_resolved_check = QCheckBox("Show resolved")
        self.show_resolved_check.setAccessibleName("Show resolved failures")
        self.show_resolved_check.setToolTip(
            "Also list, greyed, the customers that failed before and that a later import "
            "brought in, with the job that did")
        self.job_label = QLabel()
        self.job_label.setAccessibleName("Job shown")
        self.job_label.setVisible(False)
        self.all_jobs_button = QPushButton("Show all jobs")
        self.all_jobs_button.setAccessibleName("Show the failures of all jobs")
        self.all_jobs_button.setToolTip("List the open failures of every job again")
        self.all_jobs_button.setVisible(False)

        self.auto_refresh_check = QCheckBox("Auto-refresh during import")
        self.auto_refresh_check.setChecked(True)
        self.auto_refresh_check.setAccessibleName("Auto-refresh during import")
        self.auto_refresh_check.setToolTip("Show new failures as they happen while an import "
                                           "runs; turn off for very large imports and use "
                                           "Refresh instead")

        self.count_label = QLabel()
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter)
        font = self.count_label.font()
        font.setBold(True)
        self.count_label.setFont(font)
        self.count_label.setAccessibleName("Failed customer count")
        self.count_label.setToolTip("Customers whose failure is still open")

        self.table = GrowingTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("Failed customers table")
        self.table.setToolTip("Double-click a row (or press Enter) to see the customer's "
                              "complete details")
        setup_record_table(self.table)
        self.table.setItemDelegate(TextOnlyDelegate(self.table, self.model.cell))
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        # the scroll bar's room is kept from the start: the first failures of an import
        # would otherwise narrow the table as they arrive, and repaint it all twice
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        # QTableView's version of "uniform row heights": one fixed height for every row,
        # so nothing is measured per row when 100,000 of them arrive
        vertical = self.table.verticalHeader()
        vertical.setVisible(False)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        # The header would show which columns are fully selected by asking the selection
        # model, which checks every selected row through the Python model: seconds on each
        # repaint with 100,000 rows selected. It gets its own (empty) selection model instead;
        # with sorting enabled it never selects anything itself.
        self._header_selection = QItemSelectionModel(self.model, self.table)
        header.setSelectionModel(self._header_selection)
        header.setHighlightSections(False)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(True)
        header.setStretchLastSection(False)
        metrics = self.table.fontMetrics()
        fitted = {COL_ID: metrics.horizontalAdvance("50000001000000") + 16,
                  COL_TIMESTAMP: metrics.horizontalAdvance("2025-01-07 10:30:45") + 16}
        for column, width in COLUMN_WIDTHS.items():
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, max(width, fitted.get(column, 0)))
        header.setSectionResizeMode(COL_ERROR, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(60)
        # no sort indicator at first: rows stay in the order the failures happened
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)

        self.details_action = QAction("Show details…", self.table)
        self.copy_action = QAction("Copy selected", self.table)
        self.table.addAction(self.details_action)
        self.table.addAction(self.copy_action)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

        self.summary_label = QLabel()
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setWordWrap(False)
        # long error texts must not make the window wider
        self.summary_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.Preferred)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label.setAccessibleName("Summary by error type")
        self.summary_label.setToolTip("Failures by result and the most frequent error types")

        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Refresh failed customers")
        self.refresh_button.setToolTip("Load the open failures of the results folder again "
                                       "(from its import history)")
        self.export_button = QPushButton("Export…")
        self.export_button.setAccessibleName("Export failed customers")
        self.export_button.setToolTip("Save the failures shown (after search and filter) as "
                                      "CSV for Excel, complete JSON, or plain text")
        # Excel splits a CSV file at the computer's list separator (";" with Swedish,
        # German, French settings): that one is the default, the others are for a file
        # meant for another computer or program. Remembered with the window's settings.
        self.separator_combo = QComboBox()
        system = system_separator()
        choices = dict(SEPARATOR_NAMES)
        choices.setdefault(system, separator_name(system))  # another one set in Windows
        for separator, name in choices.items():
            self.separator_combo.addItem(
                f"{name} (this computer's)" if separator == system else name, separator)
        self.separator_combo.setCurrentIndex(self.separator_combo.findData(system))
        self.separator_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.separator_combo.setAccessibleName("CSV separator")
        self.separator_combo.setToolTip("What separates the cells of a CSV export; Excel "
                                        "expects this computer's list separator")
        self.separator_label = QLabel("CSV separator:")
        self.separator_label.setBuddy(self.separator_combo)
        self.copy_button = QPushButton("Copy selected")
        self.copy_button.setAccessibleName("Copy selected failed customers")
        self.copy_button.setToolTip("Copy the selected rows as tab-separated text "
                                    f"({shortcut_text(QKeySequence.StandardKey.Copy)})")
        self.clear_button = QPushButton("Clear…")
        self.clear_button.setAccessibleName("Clear failed customers")
        self.clear_button.setToolTip("Take the failures off this list (asks first; the import "
                                     "history and saved files keep them)")

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.setInterval(SUMMARY_INTERVAL_MS)
        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(COUNT_INTERVAL_MS)
        self._count_timer.timeout.connect(lambda: self._tell_count(self.model.open_count()))
        self._pending_timer = QTimer(self)
        self._pending_timer.setInterval(PENDING_CHECK_MS)
        self._pending_timer.timeout.connect(self._check_pending)

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.search_edit, 2)
        top.addWidget(self.result_combo)
        top.addWidget(self.show_resolved_check)
        top.addWidget(self.auto_refresh_check)
        top.addWidget(self.job_label)
        top.addWidget(self.all_jobs_button)
        top.addStretch(1)
        top.addWidget(self.count_label)

        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.separator_label)
        buttons.addWidget(self.separator_combo)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)  # apart from the others: it forgets data

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary_label)
        layout.addLayout(buttons)

        order = [self.search_edit, self.result_combo, self.show_resolved_check,
                 self.auto_refresh_check, self.all_jobs_button, self.table,
                 self.refresh_button, self.export_button, self.separator_combo,
                 self.copy_button, self.clear_button]
        for first, second in itertools.pairwise(order):
            QWidget.setTabOrder(first, second)

    def _connect(self) -> None:
        self.search_edit.textChanged.connect(lambda _text: self._search_timer.start())
        self.search_edit.returnPressed.connect(self._apply_search)
        self._search_timer.timeout.connect(self._apply_search)
        self.result_combo.currentIndexChanged.connect(self._on_result_filter_changed)
        self.auto_refresh_check.toggled.connect(self._update_live_updates)
        self.show_resolved_check.toggled.connect(self.model.set_show_resolved)
        self.all_jobs_button.clicked.connect(self.show_all_jobs)
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button.clicked.connect(self.export)
        self.copy_button.clicked.connect(self.copy_selected)
        self.clear_button.clicked.connect(self.clear)
        self.details_action.triggered.connect(self._open_current_details)
        self.copy_action.triggered.connect(self.copy_selected)
        self.table.doubleClicked.connect(self.open_details)
        self.table.installEventFilter(self)

        self.model.set_selection_model(self.table.selectionModel())
        self.model.loaded.connect(self._on_loaded)
        # new rows always change the counts: countsChanged alone updates the labels once
        self.model.countsChanged.connect(self._on_rows_changed)
        self.model.summaryChanged.connect(self._update_summary)
        self.model.storeChanged.connect(self.follow_import)
        self.model.queryFailed.connect(
            lambda error: self.statusMessage.emit(f"Could not read the failed customers: "
                                                  f"{error}"))
        self._summary_timer.timeout.connect(self.model.request_summary)

    # -- public API for the main window ----------------------------------------------------

    def set_import_running(self, running: bool) -> None:
        """Follow an import: live updates while it runs (if auto-refresh is checked)."""
        self._import_running = running
        if running:  # what it adds to a list of the store's own belongs to its folder
            self._list_folder = Path(self._output_dir())
        if not running:
            self._count_timer.stop()
            self._tell_count(self.model.open_count())
        self._update_live_updates()
        if running:
            self.follow_import()

    def import_running(self) -> bool:
        return self._import_running

    @property
    def auto_refresh(self) -> bool:
        """Whether new failures are shown as they happen while an import runs."""
        return self.auto_refresh_check.isChecked()

    @auto_refresh.setter
    def auto_refresh(self, on: bool) -> None:
        self.auto_refresh_check.setChecked(on)

    def restore_settings(self, settings: QSettings) -> None:
        """What the user chose here last time: auto-refresh, and the CSV separator (kept
        only while it is still offered: this computer's may have changed since)."""
        if (auto := settings.value("failed/auto_refresh")) is not None:
            self.auto_refresh = str(auto).lower() in ("true", "1")
        separator = settings.value("failed/csv_separator")
        if isinstance(separator, str) and (index := self.separator_combo.findData(
                separator)) >= 0:
            self.separator_combo.setCurrentIndex(index)

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("failed/auto_refresh", self.auto_refresh)
        settings.setValue("failed/csv_separator", self.separator_combo.currentData())

    def import_finished(self) -> None:
        """After an import: list the folder's failures again (the customers the import
        brought in leave the list, the ones it resolved too)."""
        self.set_import_running(False)
        self.refresh()

    def show_job(self, job_id: int) -> None:
        """List the failures of one job (its customers whose latest attempt was in it)."""
        self.job_label.setText(f"Job #{job_id}")
        self.job_label.setVisible(True)
        self.all_jobs_button.setVisible(True)
        self.model.set_job_filter(job_id)
        self.refresh()

    @Slot()
    def show_all_jobs(self) -> None:
        self.job_label.setVisible(False)
        self.all_jobs_button.setVisible(False)
        self.model.set_job_filter(None)
        self.refresh()

    def job_filter(self) -> int | None:
        return self.model.job_filter()

    @Slot()
    def refresh(self) -> None:
        """List the results folder's failures again, sorted again; `refreshFinished` tells
        when they are shown. During an import the list is already the folder's journal:
        it is only read again."""
        self._cleared = False
        if self._import_running:
            self._refresh_serial = self.model.reload()
            return
        if self._preparing:
            self._refresh_again = True  # one more round once the current one is done
            return
        self._preparing = True
        self._refresh_folder = Path(self._output_dir())
        self.tasks.prepare(self._refresh_folder, self._store)

    def is_loading(self) -> bool:
        """True while the results folder's failures are being read (see `refresh`)."""
        return self._preparing or self._refresh_serial > 0

    def failure_count(self) -> int:
        """Customers whose failure is still open (the count users see everywhere)."""
        return self.model.open_count()

    def _prepared(self, found: FolderList | None, error: str, folder: Path) -> None:
        self._preparing = False
        if error:
            self.statusMessage.emit(f"Could not load the failures of {folder}: {error}")
        elif found is not None and found.journal is not None and not self._cleared:
            self._store.attach(found.journal)
        elif found == FolderList() and (self._store.journal is not None
                                        or self._list_folder != folder):
            self._store.clear()  # a folder with no failures: not another folder's list
        if found is not None and not error:
            self._list_folder = folder
        self._refresh_serial = self.model.reload()
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()

    def _on_loaded(self, serial: int) -> None:
        self._update_count()
        self._request_summary()
        if not self._refresh_serial or serial < self._refresh_serial or self._preparing:
            return
        self._refresh_serial = 0
        job = self.model.job_filter()
        scope = f"job #{job}: " if job is not None else ""
        self.statusMessage.emit(f"Refreshed: {scope}{format_count(self.failure_count())}")
        self.refreshFinished.emit(self.model.rowCount())

    def follow_import(self) -> None:
        """While an import runs, the list is its results folder's journal, as soon as the
        import made it (unless the user cleared the list): called as the list changes and
        as the import reports progress."""
        if not self._import_running or self._cleared:
            return
        journal = journal_path(Path(self._output_dir()))
        if self._store.journal != journal and journal.exists():
            self._store.attach(journal)
            self.model.reload()

    # -- live updates, count and summary ---------------------------------------------------

    def _update_live_updates(self, *_args: Any) -> None:
        live = self._import_running and self.auto_refresh_check.isChecked()
        self.model.set_live_updates(live)
        # not live during an import: still say how many are waiting, once a second
        if self._import_running and not live:
            self._pending_timer.start()
        else:
            self._pending_timer.stop()
        self._summary_timer.setInterval(LIVE_SUMMARY_INTERVAL_MS if live
                                        else SUMMARY_INTERVAL_MS)
        self._update_count()

    def _check_pending(self) -> None:
        self.follow_import()
        self.model.check_pending()

    def _on_rows_changed(self, *_args: Any) -> None:
        self._update_count()
        self._update_summary()  # the counts by result now, the kinds of error in a moment
        self._request_summary()

    def _request_summary(self) -> None:
        if self.model.open_count() == 0:
            self._summary_timer.stop()
            self.model.request_summary()  # cleared: say so at once
        elif not self._summary_timer.isActive():
            self._summary_timer.start()  # at most one count per interval

    def _update_count(self) -> None:
        total = self.model.open_count()
        shown = self.model.rowCount()
        resolved = self.model.resolved_count() if self.model.shows_resolved() else 0
        if resolved:
            # the rows shown include the resolved ones: count them apart from the open
            listed = total + resolved
            text = f"{format_count(total)} · {resolved:,} resolved shown too"
            if shown != listed:
                text += f" (showing {shown:,} of {listed:,})"
        else:
            text = format_count(total, shown if shown != total else None)
        if self._import_running and not self.model.live_updates():
            pending = self.model.pending_count()
            if pending:
                text += f" · {pending:,} new, press Refresh"
        self.count_label.setText(text)
        self.count_label.setAccessibleDescription(text)
        self._update_result_combo(self.model.result_counts())
        self._tell_count(total)

    def _tell_count(self, total: int) -> None:
        """countChanged, at most once per COUNT_INTERVAL_MS while an import runs: the
        window shows the count in the tab's title, and a new title repaints the whole tab
        (Qt lays the tab widget out again), too much for every few hundred failures."""
        if total == self._last_count:
            return
        if self._import_running and self._count_timer.isActive():
            return  # told when the timer runs out, or when the import ends
        self._last_count = total
        self.countChanged.emit(total)
        if self._import_running:
            self._count_timer.start()

    def _update_summary(self) -> None:
        counts = self.model.result_counts()
        if not counts:
            self.summary_label.setText("")
            self.summary_label.setToolTip("Failures by result and the most frequent error types")
            return
        by_result = " · ".join(f"{n:,} {result}" for result, n in counts.most_common())
        types = self.model.error_type_summary(10)
        top = "  ·  ".join(f"{n:,}× {text}" for text, n in types[:3])
        self.summary_label.setText(f"By result: {by_result}\nTop errors: {top}")
        self.summary_label.setToolTip(
            "Most frequent kinds of error, each with an example:\n"
            + "\n".join(f"{n:,}× {text}" for text, n in types))

    def _update_result_combo(self, counts: dict[str, int]) -> None:
        combo = self.result_combo
        current = combo.currentData()
        combo.blockSignals(True)  # the selected result stays the same; no refiltering
        try:
            for i in range(combo.count() - 1, 0, -1):
                result = combo.itemData(i)
                if result not in counts and result != current:
                    combo.removeItem(i)
            present = {combo.itemData(i): i for i in range(1, combo.count())}
            for result in sorted(counts):
                label = f"{result} ({counts[result]:,})"
                if result in present:
                    combo.setItemText(present[result], label)
                    continue
                position = 1
                while position < combo.count() and combo.itemData(position) < result:
                    position += 1
                combo.insertItem(position, label, result)
                present = {combo.itemData(i): i for i in range(1, combo.count())}
            if current in present:
                combo.setItemText(present[current], f"{current} ({counts.get(current, 0):,})")
            combo.setCurrentIndex(max(0, combo.findData(current)) if current else 0)
        finally:
            combo.blockSignals(False)

    # -- filtering -------------------------------------------------------------------------

    def _apply_search(self) -> None:
        self._search_timer.stop()
        self.model.set_search_text(self.search_edit.text())

    def _on_result_filter_changed(self, _index: int) -> None:
        self.model.set_result_filter(self.result_combo.currentData())

    # -- copy, details ---------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        """The selected rows, in view order."""
        rows: set[int] = set()
        selection = self.table.selectionModel().selection()
        for i in range(selection.size()):
            rows.update(range(selection.at(i).top(), selection.at(i).bottom() + 1))
        return sorted(rows)

    def selected_records(self) -> list[FailureRecord]:
        """The selected rows' records, in view order (read now)."""
        return self.model.records_at(self.selected_rows())

    @Slot()
    def copy_selected(self) -> int:
        """Copy the selected rows, with a header line, as tab-separated text; many rows are
        read off the GUI thread first (a status message says when they are copied).
        Returns how many rows are copied."""
        rows = self.selected_rows()
        if not rows:
            self.statusMessage.emit("No failed customers selected to copy")
            return 0
        if len(rows) <= COPY_ON_WORKER_ROWS:
            self._copy(self.model.records_at(rows))
            return len(rows)
        source = self.model.source()
        if source.path is not None:
            self.statusMessage.emit(f"Copying {len(rows):,} failed customers…")
            self.tasks.read(source.path, [self.model.rowid(row) for row in rows], "copy")
        return len(rows)

    def _copy_read_records(self, records: list[FailureRecord], error: str,
                           _request: Any) -> None:
        if error:
            self.statusMessage.emit(f"Could not copy the failed customers: {error}")
            return
        self._copy(records)

    def _copy(self, records: list[FailureRecord]) -> None:
        QGuiApplication.clipboard().setText(records_as_tsv(records))
        n = len(records)
        self.statusMessage.emit(f"Copied {n:,} failed customer{'' if n == 1 else 's'}")

    def open_details(self, index: QModelIndex) -> FailureDetailDialog | None:
        """Open a (non-modal) detail window for the row at `index`."""
        if not index.isValid():
            return None
        record = self.model.record(index.row())
        if record is None:
            return None
        dialog = FailureDetailDialog(record, self)
        self._detail_dialogs.append(dialog)  # several may be open; keep them referenced
        dialog.finished.connect(lambda _result, d=dialog: self._forget_dialog(d))
        dialog.show()
        return dialog

    def _forget_dialog(self, dialog: FailureDetailDialog) -> None:
        if dialog in self._detail_dialogs:
            self._detail_dialogs.remove(dialog)

    def _open_current_details(self) -> None:
        self.open_details(self.table.currentIndex())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table and isinstance(event, QKeyEvent):
            if event.matches(QKeySequence.StandardKey.Copy):
                if event.type() == QEvent.Type.ShortcutOverride:
                    event.accept()  # ours, even if the window has a Ctrl+C shortcut
                    return True
                if event.type() == QEvent.Type.KeyPress:
                    self.copy_selected()
                    return True
            elif (event.type() == QEvent.Type.KeyPress
                  and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
                self._open_current_details()
                return True
        return super().eventFilter(watched, event)

    # -- clear -----------------------------------------------------------------------------

    @Slot()
    def clear(self) -> QMessageBox:
        """Ask (without blocking) whether to take the failures off the list; Yes does."""
        box = QMessageBox(QMessageBox.Icon.Question, "Clear failed customers",
                          "Clear the failed customers shown here?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        info = ("Nothing is deleted: the import history, failed_customers.json and the "
                "retry batches keep them, and Refresh lists them again.")
        if self._import_running:
            info += "\n\nAn import is running: failures still to come will appear again."
        box.setInformativeText(info)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result: self._on_clear_answer(box))
        box.open()
        return box

    def _on_clear_answer(self, box: QMessageBox) -> None:
        if box.standardButton(box.clickedButton()) != QMessageBox.StandardButton.Yes:
            return
        self._cleared = True
        self._store.clear()
        self.model.reload()
        self.statusMessage.emit("List cleared (the import history keeps the failures)")

    # -- export ----------------------------------------------------------------------------

    @Slot()
    def export(self) -> QFileDialog:
        """Ask (non-blocking, the system's own dialog) where to save the rows shown, then
        save them."""
        if self._export_dialog is not None and self._export_dialog.isVisible():
            self._export_dialog.raise_()
            return self._export_dialog
        dialog = QFileDialog(self, "Export failed customers")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        filters = list(EXPORT_FORMATS.values())
        dialog.setNameFilters(filters)
        dialog.selectNameFilter(EXPORT_FORMATS["csv"])
        dialog.setDefaultSuffix("csv")
        dialog.setDirectory(str(self._default_export_dir()))
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        dialog.selectFile(f"failed_customers_{stamp}.csv")
        dialog.filterSelected.connect(lambda name: self._on_export_filter(dialog, name))
        dialog.fileSelected.connect(lambda file: self._export_to(file, dialog.selectedNameFilter()))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setAccessibleName("Export failed customers")
        self._export_dialog = dialog
        dialog.destroyed.connect(self._forget_export_dialog)
        dialog.open()
        return dialog

    def _forget_export_dialog(self, *_args: Any) -> None:
        self._export_dialog = None

    def _default_export_dir(self) -> Path:
        if self._export_dir is not None and self._export_dir.is_dir():
            return self._export_dir
        folder = Path(self._output_dir()) / "failed_customers"
        return folder if folder.is_dir() else Path.cwd()

    @staticmethod
    def _format_for_filter(name_filter: str) -> str:
        for fmt, text in EXPORT_FORMATS.items():
            if text == name_filter:
                return fmt
        return "csv"

    def _on_export_filter(self, dialog: QFileDialog, name_filter: str) -> None:
        # keep the suggested name's extension in step with the chosen format
        fmt = self._format_for_filter(name_filter)
        dialog.setDefaultSuffix(fmt)
        chosen = dialog.selectedFiles()
        if chosen:
            path = Path(chosen[0])
            if path.suffix.lstrip(".").lower() in EXPORT_FORMATS and path.name:
                dialog.selectFile(path.with_suffix(f".{fmt}").name)

    def _export_to(self, file: str, name_filter: str) -> None:
        path = Path(file)
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in EXPORT_FORMATS:
            fmt = self._format_for_filter(name_filter)
            path = path.with_name(f"{path.name}.{fmt}")
        self._export_dir = path.parent
        source = self.model.source()
        rowids = self.model.order()  # what the user sees, in that order
        self.statusMessage.emit(f"Exporting {len(rowids):,} failed customers…")
        if source.path is None:
            rowids = rowids[:0]
        self.tasks.export(source.path or Path(), rowids, path, fmt, self.csv_separator())

    def csv_separator(self) -> str:
        """The separator chosen for CSV exports (at first this computer's list separator)."""
        return str(self.separator_combo.currentData())

    def _exported(self, path: str, count: int, error: str) -> None:
        if error:
            reason = f"Export failed: could not write {path}: {error}"
            self.statusMessage.emit(reason)
            box = QMessageBox(QMessageBox.Icon.Warning, "Export failed", reason,
                              QMessageBox.StandardButton.Ok, self)
            box.setInformativeText("Check that the folder exists, that you may write there "
                                   "and that the disk is not full.")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()
            self.exportFinished.emit("")
            return
        self.statusMessage.emit(
            f"Exported {count:,} failed customer{'' if count == 1 else 's'} to {path}")
        self.exportFinished.emit(path)
