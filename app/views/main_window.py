"""The main window: Files, Import, Failed Customers and History tabs, menus, drops, prompts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QAction, QCloseEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QTabWidget, QWidget

from app.models.failure_store import FailureStore
from app.services.connection.secret_store import SecretStore
from app.services.pipeline.qt_import_runner import ImportRunner
from app.services.sandbox.demo import DemoEnvironment
from app.services.session.import_session import (
    ImportOutcome,
    ImportSession,
    Notice,
    Page,
    ReviewRequest,
)
from app.views import desktop_look as keys
from app.views import import_prompts as prompts
from app.views.demo_adapter import DemoAdapter
from app.views.failed_customers_tab import FailedCustomersTab
from app.views.files_tab import FilesTab
from app.views.history_tab import HistoryTab
from app.views.import_tab import ImportTab
from app.views.review_dialog import ReviewDialog
from app.views.session_inputs import TabInputs

APP_TITLE = "Bulk Customer Import"
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def app_icon() -> QIcon:
    return QIcon(str(RESOURCES / "app_icon.svg"))


class MainWindow(QMainWindow):
    """Holds the four tabs and shows what the `ImportSession` running the imports decides:
    its notices, progress and questions (asked here, answered back to it).

    Drops of files and folders anywhere on the window go to the Files tab.
    """

    def __init__(self, *, store: FailureStore | None = None,
                 secrets: SecretStore | None = None, demo: DemoEnvironment | None = None,
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qsettings = settings if settings is not None else QSettings()
        self.secrets = secrets if secrets is not None else SecretStore()
        self.files_tab = FilesTab()
        self.import_tab = ImportTab(self.secrets)
        self.session = ImportSession(TabInputs(self.files_tab, self.import_tab), store, self)
        # the Import tab's own method: one of the window's would make a reference cycle
        # (window -> tab -> window) that only the cycle collector could free
        self.failed_tab = FailedCustomersTab(self.session.store, self.import_tab.output_dir)
        self.history_tab = HistoryTab(self.import_tab.output_dir)
        self.review_dialog: ReviewDialog | None = None  # the review before Start, when open
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.tabs = QTabWidget()
        self.pages = {Page.FILES: self.files_tab, Page.IMPORT: self.import_tab}
        for tab, title in ((self.files_tab, "&Files"), (self.import_tab, "&Import"),
                           (self.failed_tab, "Failed &Customers"),
                           (self.history_tab, "&History")):
            self.tabs.addTab(tab, title)
        self.tabs.setAccessibleName("Main tabs")
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage("Ready", 3000)
        self._build_actions()
        self._connect()
        self._restore_settings()
        self.demo = DemoAdapter(self, demo) if demo is not None else None
        self._update_files_summary()
        self._update_actions()
        self._output_dir_changed()  # the folder's history, files imported before, failures

    @property
    def runner(self) -> ImportRunner:
        """The session's runner (its signals say how the running import goes)."""
        return self.session.runner

    def _action(self, menu: QMenu, text: str, slot: Callable[[], object],
                shortcut: QKeySequence | QKeySequence.StandardKey | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text.replace("&", "").rstrip("…"))
        action.triggered.connect(slot)
        self.addAction(action)
        menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        a, bar, files, session = self._action, self.menuBar(), self.files_tab, self.session
        menu = bar.addMenu("&File")
        self.add_files_action = a(menu, "Add &Files…", files.open_add_files_dialog,
                                  QKeySequence.StandardKey.Open)
        self.add_dir_action = a(menu, "Add &Directory…", files.open_add_directory_dialog,
                                keys.ADD_DIRECTORY_KEYS)
        self.load_retry_action = a(menu, "&Load Retry Files…", self.choose_retry_folder,
                                   keys.LOAD_RETRY_KEYS, "Load a retry_batches folder to "
                                   "import the failed customers again")
        self.open_results_action = a(menu, "Open &Results Folder", self.open_results_folder,
                                     keys.OPEN_RESULTS_KEYS)
        menu.addSeparator()
        self.quit_action = a(menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        menu = bar.addMenu("&Import")
        self.start_action = a(menu, "&Start Import", self.start_import, keys.START_IMPORT_KEYS)
        self.pause_action = a(menu, "&Pause / Resume", session.toggle_pause, keys.PAUSE_KEYS)
        self.cancel_action = a(menu, "&Cancel Import", session.ask_cancel, keys.CANCEL_KEYS)
        menu.addSeparator()
        self.test_action = a(menu, "&Test Connection", self.import_tab.test_connection,
                             keys.TEST_CONNECTION_KEYS)
        menu = bar.addMenu("&View")
        self.view_actions = [a(menu, f"&{i + 1} {title}", self._show_tab(i), keys.TAB_KEYS[i])
                             for i, title in enumerate(("Files", "Import", "Failed Customers",
                                                        "History"))]
        self.about_action = a(bar.addMenu("&Help"), "&About", self.show_about)

    def _show_tab(self, index: int) -> Callable[[], None]:
        return lambda: self.tabs.setCurrentIndex(index)

    def _status(self, timeout_ms: int) -> Callable[[str], None]:
        return lambda text: self.statusBar().showMessage(text, timeout_ms)

    def _connect(self) -> None:
        files, tab, history, s = self.files_tab, self.import_tab, self.history_tab, self.session
        tab.startRequested.connect(self.start_import)
        tab.pauseToggled.connect(s.toggle_pause)
        tab.cancelRequested.connect(s.ask_cancel)
        tab.retryRequested.connect(s.retry_after_pause)
        tab.otherFolderRequested.connect(lambda: prompts.choose_folder(
            self, "other_results_folder_dialog", "Choose another folder for the result files",
            self.import_tab.output_dir().parent, self.session.move_results))
        tab.outputDirChanged.connect(self._output_dir_changed)
        files.filesChanged.connect(self._update_files_summary)
        files.filesChanged.connect(lambda: self.import_tab.set_column_suggestions(
            self.files_tab.spreadsheet_columns()))
        files.countingFinished.connect(self._update_files_summary)
        files.statusMessage.connect(self._status(5000))
        self.failed_tab.statusMessage.connect(self._status(8000))
        self.failed_tab.countChanged.connect(lambda count: self.tabs.setTabText(
            self.tabs.indexOf(self.failed_tab),
            f"Failed &Customers ({count:,})" if count else "Failed &Customers"))
        history.statusMessage.connect(self._status(8000))
        history.showFailuresRequested.connect(self.show_job_failures)
        history.retryRequested.connect(s.retry_job_failures)
        history.resumeRequested.connect(s.resume)
        history.jobsLoaded.connect(lambda _count: self.session.jobs_loaded(
            self.import_tab.output_dir(), self.history_tab.jobs()))
        s.notice.connect(self._show_notice)
        s.importedBeforeAsked.connect(lambda before: prompts.ask_about_imported_files(
            self, before, self.session.answer_imported_before))
        s.reviewAsked.connect(self._review)
        s.importStarting.connect(tab.import_starting)
        s.importStarting.connect(lambda start: files.set_status(start.files, "importing"))
        for follower in (self._update_actions, tab.set_running, self.files_tab.set_locked,
                         self.failed_tab.set_import_running, self.history_tab.set_busy):
            s.runningChanged.connect(follower)
        s.progressChanged.connect(tab.show_progress)
        # the list is the import's journal from the moment the import made it: its first
        # failures are not copied into the list's own database first
        s.progressChanged.connect(lambda _progress: self.failed_tab.follow_import())
        s.logMessage.connect(tab.append_log)
        s.pausedChanged.connect(tab.set_paused)
        s.pausedItself.connect(tab.show_pause_problem)
        s.pauseProblemShown.connect(tab.show_pause_problem)
        s.pauseProblemCleared.connect(tab.hide_pause_problem)
        s.cloudFolderFound.connect(lambda service, note: prompts.note(
            self, "cloud_folder_warning", f"Results folder in {service}", note))
        s.importEnded.connect(self.history_tab.refresh)
        s.importEnded.connect(self.failed_tab.import_finished)
        s.importFinished.connect(self._import_finished)
        s.importCrashed.connect(lambda message, paths: files.set_status(paths, "failed", message))
        s.retryOffered.connect(lambda offer: prompts.offer_retry(self, offer, s.accept_retry))
        s.retryFilesChosen.connect(self._load_retry_folder)
        s.resumeOffered.connect(lambda job: prompts.offer_resume(self, job, s.resume))
        s.signInAsked.connect(lambda job: prompts.ask_sign_in(
            self, job, self.import_tab.connection.missing_secrets(), lambda: s.resume(job)))
        s.cancelAsked.connect(lambda text: prompts.confirm_cancel(self, text, s.cancel,
                                                                  s.importEnded))
        s.closeAsked.connect(lambda: prompts.confirm_close(self, s.stop_and_close, s.importEnded))
        s.closeReady.connect(self.close)

    def _restore_settings(self) -> None:
        s = self.qsettings
        geometry, state = s.value("window/geometry"), s.value("window/state")
        keys.place_window(self, geometry, s.value("window/normal_rect"))
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(str(s.value("window/tab", 0) or 0)))
        self.import_tab.restore_settings(s)
        if last := s.value("files/last_folder"):
            self.files_tab.last_folder = str(last)
        self.failed_tab.restore_settings(s)

    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/normal_rect", self.normalGeometry())  # checked before restoring
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        if not self.session.fixed_connection:
            self.import_tab.save_settings(s)
        if self.files_tab.last_folder:
            s.setValue("files/last_folder", str(self.files_tab.last_folder))
        self.failed_tab.save_settings(s)
        s.sync()

    def dragEnterEvent(self, event: QDropEvent) -> None:
        if event.mimeData().hasUrls() and not self.session.running:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.files_tab.add_paths(paths)
            self.tabs.setCurrentWidget(self.files_tab)
            event.acceptProposedAction()

    def _update_files_summary(self) -> None:
        if not self.session.running:  # while it runs, the Import tab says what is imported
            files = self.files_tab
            self.import_tab.set_files_summary(len(files.ready_files()), files.total_customers(),
                                              spreadsheets=files.spreadsheet_count(),
                                              listed=files.model.rowCount())

    def choose_retry_folder(self) -> None:
        prompts.choose_folder(self, "retry_folder_dialog", "Choose a retry_batches folder",
                              self.import_tab.output_dir(), self.load_retry_files)

    def load_retry_files(self, folder: Path) -> None:
        """A fresh file list holding the retry files of `folder`."""
        self.session.load_retry_files(folder)

    def _load_retry_folder(self, folder: Path, strategy: str) -> None:
        self.files_tab.load_retry_folder(folder)
        if strategy:  # the retry treats existing customers as its import did
            self.import_tab.set_run_settings({"on_existing": strategy})

    def open_results_folder(self) -> None:
        prompts.open_folder(self.import_tab.output_dir())

    def show_job_failures(self, job_id: int) -> None:
        self.failed_tab.show_job(job_id)
        self.tabs.setCurrentWidget(self.failed_tab)

    def _output_dir_changed(self) -> None:
        self.files_tab.set_output_dir(self.import_tab.output_dir())
        self.history_tab.refresh()
        if not self.session.running:
            self.failed_tab.refresh()

    def start_import(self) -> None:
        self.session.start()

    def _show_notice(self, notice: Notice) -> None:
        if notice.outcome:
            self.import_tab.show_outcome(notice.outcome)
        if notice.page is not None:
            self.tabs.setCurrentWidget(self.pages[notice.page])
        if notice.status:
            self.statusBar().showMessage(notice.status, notice.status_ms)

    def _update_actions(self) -> None:
        running = self.session.running
        for action in (self.start_action, self.add_files_action, self.add_dir_action,
                       self.load_retry_action):
            action.setEnabled(not running)
        for action in (self.pause_action, self.cancel_action):
            action.setEnabled(running)

    def _review(self, review: ReviewRequest) -> None:
        if self.review_dialog is not None:  # still open
            self.review_dialog.raise_()
        else:
            self.review_dialog = prompts.review(self, review, self._reviewed)

    def _reviewed(self, start: bool) -> None:
        self.review_dialog = None
        self.session.answer_review(start)

    def _import_finished(self, outcome: ImportOutcome) -> None:
        self.files_tab.set_status(outcome.imported, "imported")
        for path, count in outcome.failed:  # the journal's word follows (refresh_history)
            self.files_tab.set_status([path], "partly", f"{count:,} customers failed")
        self.files_tab.refresh_history()  # the journal's word on each file

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.session.may_close():
            event.ignore()  # the session asks first, and says when it has stopped
            return
        self.save_settings()
        self.files_tab.shutdown()
        event.accept()

    def show_about(self) -> None:
        prompts.show_about(self, APP_TITLE)
