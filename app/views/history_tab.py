"""The History tab: every import job of the results folder, and what can be done with one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.history_model import HistoryModel, HistoryProxy
from app.models.jobs import RESUMABLE, JobRecord, JobState
from app.services.jobs.history_tasks import HistoryTasks
from app.services.sources.error_report import save_report_copy
from app.views.widget_setup import describe, setup_record_table


class HistoryTab(QWidget):
    """Lists the jobs of the results folder, newest first, sortable by any column.

    Actions on the selected job: open the results folder, show its failures, retry its open
    failures, resume it (interrupted or cancelled jobs), open or save a copy of its error
    report (rows of spreadsheets refused before sending), delete it from the history (asks;
    result files stay).

    Signals:
        showFailuresRequested(int): show this job's failures on the Failed Customers tab.
        retryRequested(int): import this job's open failures again.
        resumeRequested(object): resume this JobRecord.
        jobsLoaded(int): the list was (re)loaded; how many jobs it shows.
        statusMessage(str): a message for the status bar.
    """

    showFailuresRequested = Signal(int)
    retryRequested = Signal(int)
    resumeRequested = Signal(object)
    jobsLoaded = Signal(int)
    statusMessage = Signal(str)

    def __init__(self, output_dir: Callable[[], Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyTab")
        self._output_dir = output_dir
        self._busy = False
        self.tasks = HistoryTasks(self)
        self.tasks.jobsLoaded.connect(self._loaded)
        self.tasks.jobDeleted.connect(self._deleted)
        self.model = HistoryModel(self)
        self.proxy = HistoryProxy(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self._update_buttons()

    def _build(self) -> None:
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        setup_record_table(self.table)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(HistoryModel.FILES, QHeaderView.ResizeMode.Stretch)
        # widths from the font, not from measuring 1,000 rows
        char = self.fontMetrics().horizontalAdvance("0")
        for column, chars in ((HistoryModel.JOB, 11), (HistoryModel.STARTED, 18),
                              (HistoryModel.CUSTOMERS, 11), (HistoryModel.IMPORTED, 11),
                              (HistoryModel.FAILED, 10), (HistoryModel.OPEN, 14),
                              (HistoryModel.STATE, 25), (HistoryModel.DURATION, 10)):
            header.resizeSection(column, char * chars)
        header.setSortIndicator(HistoryModel.JOB, Qt.SortOrder.DescendingOrder)
        self.table.setSortingEnabled(True)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _index: self.show_failures())

        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open Results Folder")
        self.failures_button = QPushButton("Show Failures")
        self.retry_button = QPushButton("Retry Open Failures")
        self.resume_button = QPushButton("Resume")
        self.delete_button = QPushButton("Delete from History…")
        self.report_button = QPushButton("Error Report")
        report_menu = QMenu(self.report_button)
        self.open_report_action = report_menu.addAction("Open")
        self.save_report_action = report_menu.addAction("Save a Copy…")
        self.open_report_action.triggered.connect(self.open_error_report)
        self.save_report_action.triggered.connect(self.open_save_report_dialog)
        self.report_button.setMenu(report_menu)
        self._children: list[QFileDialog] = []
        describe(((self.table, "Import jobs", "Every import into this results folder; "
                   "double-click a job to see its failures"),
                  (self.folder_label, "Results folder"),
                  (self.refresh_button, "Refresh history", "Read the history again"),
                  (self.open_button, "Open results folder",
                   "Open the folder with the result files"),
                  (self.failures_button, "Show failures",
                   "List this job's failures on the Failed Customers tab"),
                  (self.retry_button, "Retry open failures",
                   "Load this job's open failures as retry files, ready to import again"),
                  (self.resume_button, "Resume job",
                   "Send what an interrupted or cancelled job had not sent yet"),
                  (self.report_button, "Error report",
                   "The job's error report: the spreadsheet rows refused before sending, "
                   "with the reasons (open it, or save a copy)"),
                  (self.delete_button, "Delete from history",
                   "Take the job off this list (asks first; result files stay)")))
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button.clicked.connect(self.open_folder)
        self.failures_button.clicked.connect(self.show_failures)
        self.retry_button.clicked.connect(self.retry_open_failures)
        self.resume_button.clicked.connect(self.resume)
        self.delete_button.clicked.connect(self.ask_delete)

        buttons = QHBoxLayout()
        for button in (self.refresh_button, self.open_button, self.failures_button,
                       self.retry_button, self.resume_button, self.report_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)  # apart: it changes the history
        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    # -- loading ----------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Load the jobs of the results folder (off the GUI thread); `jobsLoaded` follows."""
        folder = Path(self._output_dir())
        self.folder_label.setText(f"Import jobs in {folder}")
        self.tasks.load_jobs(folder)

    def _loaded(self, jobs: list[JobRecord], error: str, folder: Path) -> None:
        if Path(folder) != Path(self._output_dir()):
            return  # the folder changed meanwhile: a newer load is on its way
        if error:
            self.statusMessage.emit(f"Could not read the import history: {error}")
        selected = self.selected_job()
        self.model.set_jobs(jobs)
        if selected is not None:
            self.select_job(selected.id)
        self._update_buttons()
        self.jobsLoaded.emit(len(jobs))

    def select_job(self, job_id: int) -> bool:
        for row in range(self.proxy.rowCount()):
            job = self.proxy.job_at(row)
            if job is not None and job.id == job_id:
                self.table.selectionModel().setCurrentIndex(
                    self.proxy.index(row, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows)
                return True
        return False

    def jobs(self) -> list[JobRecord]:
        """The jobs listed, as loaded."""
        return self.model.jobs()

    def selected_job(self) -> JobRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.job_at(rows[0].row()) if rows else None

    def _update_buttons(self) -> None:
        job = self.selected_job()
        self.failures_button.setEnabled(job is not None)
        self.retry_button.setEnabled(job is not None and job.open_failures > 0
                                     and not self._busy)
        self.resume_button.setEnabled(job is not None and job.state in RESUMABLE
                                      and not self._busy)
        self.delete_button.setEnabled(job is not None and job.state not in (
            JobState.RUNNING, JobState.PAUSED))
        self.report_button.setEnabled(self.error_report() is not None)

    def error_report(self, job: JobRecord | None = None) -> Path | None:
        """The error report of `job` (default: the selected one) when the file exists."""
        job = job if job is not None else self.selected_job()
        report = getattr(job, "error_report", None) if job is not None else None
        if not report:
            return None
        path = Path(report)
        if not path.is_absolute():
            path = Path(self._output_dir()) / path
        return path if path.is_file() else None

    def set_busy(self, busy: bool) -> None:
        """While an import runs, nothing that starts another may be pressed."""
        self._busy = busy
        self._update_buttons()

    # -- actions ----------------------------------------------------------------------------

    @Slot()
    def open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._output_dir())))

    @Slot()
    def open_error_report(self) -> bool:
        report = self.error_report()
        if report is None:
            self.statusMessage.emit("This job has no error report (any more)")
            self._update_buttons()
            return False
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(report))):
            return True
        # no program on this computer opens a .csv: say so, and offer to save it elsewhere
        self.statusMessage.emit(f"No program on this computer opens {report.name}: save a "
                                "copy and open it with Excel or a text editor")
        self.open_save_report_dialog()
        return False

    @Slot()
    def open_save_report_dialog(self) -> QFileDialog | None:
        report, job = self.error_report(), self.selected_job()
        if report is None or job is None:
            return None
        dialog = QFileDialog(self, "Save a copy of the error report",
                             str(Path.home() / f"error_report_job_{job.id}.csv"),
                             "CSV files (*.csv)")
        dialog.setObjectName("save_error_report_dialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.fileSelected.connect(lambda path: self.save_error_report(report, Path(path)))
        self._children.append(dialog)
        dialog.finished.connect(lambda _result, d=dialog: self._forget(d))
        dialog.open()
        return dialog

    def _forget(self, dialog: QFileDialog) -> None:
        if dialog in self._children:
            self._children.remove(dialog)
        dialog.deleteLater()

    def save_error_report(self, report: Path, target: Path) -> bool:
        try:
            save_report_copy(report, target)
        except OSError as exc:
            self.statusMessage.emit(f"The error report was not saved: {exc.strerror or exc}")
            return False
        self.statusMessage.emit(f"Error report saved as {target}")
        return True

    @Slot()
    def show_failures(self) -> None:
        job = self.selected_job()
        if job is not None:
            self.showFailuresRequested.emit(job.id)

    @Slot()
    def retry_open_failures(self) -> None:
        job = self.selected_job()
        if job is not None:
            self.retryRequested.emit(job.id)

    @Slot()
    def resume(self) -> None:
        job = self.selected_job()
        if job is not None and job.state in RESUMABLE:
            self.resumeRequested.emit(job)

    @Slot()
    def ask_delete(self) -> QMessageBox | None:
        job = self.selected_job()
        if job is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Delete from history",
                          f"Delete job #{job.id} from the history?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          self)
        box.setObjectName("delete_job_prompt")
        box.setInformativeText("Its retry files, failure lists and single-failure files stay "
                               "in the results folder; its open failures stay open.")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result: self._delete_answered(box, job.id))
        box.open()
        return box

    def _delete_answered(self, box: QMessageBox, job_id: int) -> None:
        if box.standardButton(box.clickedButton()) == QMessageBox.StandardButton.Yes:
            self.tasks.delete_job(Path(self._output_dir()), job_id)

    def _deleted(self, job_id: int, error: str) -> None:
        if error:
            self.statusMessage.emit(f"Could not delete job #{job_id}: {error}")
        else:
            self.statusMessage.emit(f"Job #{job_id} deleted from the history "
                                    "(its result files stay)")
        self.refresh()
