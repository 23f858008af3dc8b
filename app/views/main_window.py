"""The main window: Files, Import, Failed Customers and History tabs, menus, drops, prompts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QTabWidget, QWidget

from app.models.failure_store import FAILED_CUSTOMERS_FILE, FailureStore
from app.models.file_list_model import FileEntry
from app.models.jobs import RESUMABLE, JobRecord, JobState, files_text
from app.services.connection.auth import TokenProvider
from app.services.connection.connection_profiles import (
    PROFILES,
    ConnectionSettings,
    customers_url,
    extra_headers,
    households_url,
    make_token_provider,
)
from app.services.connection.secret_store import SecretStore
from app.services.jobs.job_plan import Repeat
from app.services.pipeline.import_engine import retry_folder_strategy
from app.services.pipeline.import_events import ImportSettings, ImportSummary
from app.services.pipeline.qt_import_runner import ImportRunner
from app.services.results.cloud_folders import cloud_folder_note, cloud_sync_service
from app.services.results.disk_space import folder_write_problem
from app.services.sandbox.demo import DEMO_TOKEN, DemoEnvironment, demo_results_folder
from app.services.sources.source_options import OnExisting, SourceOptions
from app.services.sources.table_source import is_spreadsheet
from app.util.atomic_files import make_private_folder
from app.util.wording import plural
from app.version import app_version, runtime_versions
from app.views.failed_customers_tab import FailedCustomersTab
from app.views.files_tab import FilesTab
from app.views.history_tab import HistoryTab
from app.views.import_tab import ImportTab
from app.views.review_dialog import ReviewDialog
from app.views.widget_setup import when_yes

APP_TITLE = "Bulk Customer Import"
# the review before Start writes its error report here, inside the results folder
REVIEW_FOLDER = ".review"
REVIEW_REPORT = "error_report_review.csv"
OUTPUT_DIR_SETTLE_MS = 400  # typing a folder name: look it up once the typing pauses
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def app_icon() -> QIcon:
    return QIcon(str(RESOURCES / "app_icon.svg"))


class MainWindow(QMainWindow):
    """Holds the four tabs and runs imports through an `ImportRunner`.

    Drops of files and folders anywhere on the window go to the Files tab. On start, and
    when the results folder changes, it offers to resume a job that was interrupted.
    """

    def __init__(self, *, store: FailureStore | None = None,
                 secrets: SecretStore | None = None, demo: DemoEnvironment | None = None,
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store if store is not None else FailureStore()
        self.secrets = secrets if secrets is not None else SecretStore()
        self.demo = demo
        self.qsettings = settings if settings is not None else QSettings()
        self.runner = ImportRunner(self.store, self)
        self._import_files: list[Path] = []
        self._close_when_stopped = False
        self._prompts: list[QMessageBox] = []  # open non-modal prompts, kept alive
        self._cloud_folders_named: set[Path] = set()  # warned about once per window
        self.review_dialog: ReviewDialog | None = None  # the review before Start, when open

        self.setWindowTitle(APP_TITLE + (" – demo" if demo else ""))
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.files_tab = FilesTab()
        self.import_tab = ImportTab(self.secrets)
        # the Import tab's own method: one of the window's would make a reference cycle
        # (window -> tab -> window) that only the cycle collector could free
        self.failed_tab = FailedCustomersTab(self.store, self.import_tab.output_dir)
        self.history_tab = HistoryTab(self.import_tab.output_dir)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.files_tab, "&Files")
        self.tabs.addTab(self.import_tab, "&Import")
        self.tabs.addTab(self.failed_tab, "Failed &Customers")
        self.tabs.addTab(self.history_tab, "&History")
        self._resume_offered: set[tuple[str, int]] = set()
        self._output_timer = QTimer(self)
        self._output_timer.setSingleShot(True)
        self._output_timer.setInterval(OUTPUT_DIR_SETTLE_MS)
        self._output_timer.timeout.connect(self._output_dir_changed)
        self.tabs.setAccessibleName("Main tabs")
        self.setCentralWidget(self.tabs)
        self.statusBar().showMessage("Ready", 3000)
        self._build_actions()
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._update_files_summary()
        self._update_actions()
        self._output_dir_changed()  # the folder's history, files imported before, failures

    # -- building ------------------------------------------------------------------------

    def _action(self, text: str, slot: Callable[[], object],
                shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip or text.replace("&", "").rstrip("…"))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.add_files_action = self._action("Add &Files…", self.files_tab.open_add_files_dialog,
                                             QKeySequence.StandardKey.Open)
        self.add_dir_action = self._action("Add &Directory…",
                                           self.files_tab.open_add_directory_dialog,
                                           "Ctrl+Shift+O")
        self.load_retry_action = self._action("&Load Retry Files…", self.choose_retry_folder,
                                              "Ctrl+R", "Load a retry_batches folder to "
                                              "import the failed customers again")
        self.open_results_action = self._action("Open &Results Folder",
                                                self.open_results_folder, "Ctrl+Shift+R")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.start_action = self._action("&Start Import", self.start_import, "Ctrl+Return")
        self.pause_action = self._action("&Pause / Resume", self.toggle_pause, "Ctrl+P")
        self.cancel_action = self._action("&Cancel Import", self.ask_cancel, "Ctrl+.")
        self.test_action = self._action("&Test Connection",
                                        self.import_tab.connection.start_test, "Ctrl+T")
        self.view_actions = [
            self._action(f"&{i + 1} {title}", lambda _=False, i=i: self.tabs.setCurrentIndex(i),
                         f"Ctrl+{i + 1}")
            for i, title in enumerate(("Files", "Import", "Failed Customers", "History"))]
        self.about_action = self._action("&About", self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.add_files_action, self.add_dir_action, self.load_retry_action,
                       self.open_results_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        import_menu = bar.addMenu("&Import")
        for action in (self.start_action, self.pause_action, self.cancel_action):
            import_menu.addAction(action)
        import_menu.addSeparator()
        import_menu.addAction(self.test_action)
        view_menu = bar.addMenu("&View")
        for action in self.view_actions:
            view_menu.addAction(action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)

    def _connect(self) -> None:
        self.import_tab.startRequested.connect(self.start_import)
        self.import_tab.pauseToggled.connect(self.toggle_pause)
        self.import_tab.cancelRequested.connect(self.ask_cancel)
        self.files_tab.filesChanged.connect(self._update_files_summary)
        self.files_tab.filesChanged.connect(lambda: self.import_tab.set_column_suggestions(
            self.files_tab.spreadsheet_columns()))
        self.files_tab.countingFinished.connect(self._update_files_summary)
        self.files_tab.statusMessage.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.failed_tab.statusMessage.connect(lambda text: self.statusBar().showMessage(text,
                                                                                        8000))
        self.failed_tab.countChanged.connect(self._update_failed_title)
        self.runner.progressChanged.connect(self.import_tab.show_progress)
        self.runner.logMessage.connect(self.import_tab.append_log)
        self.runner.problemFound.connect(
            lambda message: self.statusBar().showMessage(f"Not read: {message}", 8000))
        self.runner.retryFileWritten.connect(
            lambda path: self.statusBar().showMessage(f"Retry file written: {Path(path).name}",
                                                      4000))
        self.runner.finished.connect(self._import_finished)
        self.runner.crashed.connect(self._import_crashed)
        self.runner.noteTold.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.runner.pausedItself.connect(self._import_paused_itself)
        self.import_tab.retryRequested.connect(self.retry_after_pause)
        self.import_tab.otherFolderRequested.connect(self.choose_other_results_folder)
        self.import_tab.output_edit.textChanged.connect(lambda _text: self._output_timer.start())
        self.history_tab.statusMessage.connect(
            lambda text: self.statusBar().showMessage(text, 8000))
        self.history_tab.showFailuresRequested.connect(self.show_job_failures)
        self.history_tab.retryRequested.connect(self.retry_job_failures)
        self.history_tab.resumeRequested.connect(self.resume_job)
        self.history_tab.jobsLoaded.connect(self._offer_resume)
        self.history_tab.tasks.retryWritten.connect(self._retry_written)

    # -- settings ------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.qsettings
        geometry = s.value("window/geometry")
        restored = isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(geometry)
        if not restored:
            self.resize(1180, 780)
        state = s.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(s.value("window/tab", 0) or 0))
        try:
            connection = json.loads(str(s.value("connection/settings", "{}")))
        except json.JSONDecodeError:
            connection = {}
        if connection:
            self.import_tab.connection.set_settings(ConnectionSettings.from_dict(connection))
        try:
            run = json.loads(str(s.value("import/settings", "{}")))
        except json.JSONDecodeError:
            run = {}
        self.import_tab.set_run_settings(run)
        last = s.value("files/last_folder")
        if last:
            self.files_tab.last_folder = str(last)
        auto = s.value("failed/auto_refresh")
        if auto is not None:
            self.failed_tab.auto_refresh_check.setChecked(str(auto).lower() in ("true", "1"))
        if self.demo is not None:
            self._apply_demo()

    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        if self.demo is None:  # the demo's sandbox address changes every start
            s.setValue("connection/settings",
                       json.dumps(self.import_tab.connection.settings().to_dict()))
            run = self.import_tab.run_settings()
            run["output_dir"] = str(run["output_dir"])
            s.setValue("import/settings", json.dumps(run))
        if self.files_tab.last_folder:
            s.setValue("files/last_folder", str(self.files_tab.last_folder))
        s.setValue("failed/auto_refresh", self.failed_tab.auto_refresh_check.isChecked())
        s.sync()

    def _apply_demo(self) -> None:
        assert self.demo is not None
        connection = self.import_tab.connection
        connection.remember_check.setChecked(False)
        connection.set_settings(ConnectionSettings(profile="sandbox", host=self.demo.base_url,
                                                   tenant="demo"))
        connection.set_token(DEMO_TOKEN)
        run = self.import_tab.run_settings()
        # two retries keep the demo's staged outage short: a few seconds, not half a minute;
        # a results folder per launch, because each launch's sandbox starts empty (an
        # earlier demo's history would skip customers this sandbox never saw)
        self.import_tab.set_run_settings({
            "output_dir": demo_results_folder(Path(run["output_dir"])), "max_retries": 2})
        self.files_tab.add_paths(self.demo.files)
        self.tabs.setCurrentWidget(self.files_tab)
        self.statusBar().showMessage("Demo: sample customers are loaded and the local sandbox "
                                     "API is selected. Press Ctrl+Enter to import.", 15000)

    # -- files ---------------------------------------------------------------------------

    def output_dir(self) -> Path:
        """The results folder the Import tab names (imports, history and failures live there)."""
        return self.import_tab.output_dir()

    def failed_file(self) -> Path:
        return self.output_dir() / FAILED_CUSTOMERS_FILE

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and not self.runner.running:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            self.files_tab.add_paths(paths)
            self.tabs.setCurrentWidget(self.files_tab)
            event.acceptProposedAction()

    def _update_files_summary(self) -> None:
        if self.runner.running:
            return  # the Import tab says what is being imported
        self.import_tab.set_files_summary(len(self.files_tab.ready_files()),
                                          self.files_tab.total_customers(),
                                          spreadsheets=self.files_tab.model.spreadsheet_count())

    def _update_failed_title(self, count: int) -> None:
        title = f"Failed &Customers ({count:,})" if count else "Failed &Customers"
        self.tabs.setTabText(self.tabs.indexOf(self.failed_tab), title)

    def choose_retry_folder(self) -> None:
        start = str(self.import_tab.run_settings()["output_dir"])
        dialog = QFileDialog(self, "Choose a retry_batches folder", start)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setObjectName("retry_folder_dialog")
        dialog.fileSelected.connect(lambda path: self.load_retry_files(Path(path)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def load_retry_files(self, folder: Path) -> None:
        """The "Yes, load them now" action: a fresh file list holding the retry files."""
        if self.runner.running:
            return
        self.files_tab.load_retry_folder(folder)
        self.tabs.setCurrentWidget(self.files_tab)
        message = (f"Loaded retry files from {folder.name}: check the connection, then "
                   "Start Import")
        strategy = retry_folder_strategy([folder])
        if strategy and self.import_tab.run_settings().get("on_existing") != strategy:
            # the retry treats existing customers as its import did
            self.import_tab.set_run_settings({"on_existing": strategy})
            message += f" (existing customers: {OnExisting(strategy).label.lower()})"
        self.statusBar().showMessage(message, 10000)

    def open_results_folder(self) -> None:
        folder = Path(self.import_tab.run_settings()["output_dir"])
        make_private_folder(folder)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # -- running -------------------------------------------------------------------------

    def _update_actions(self) -> None:
        running = self.runner.running
        self.start_action.setEnabled(not running)
        self.pause_action.setEnabled(running)
        self.cancel_action.setEnabled(running)
        for action in (self.add_files_action, self.add_dir_action, self.load_retry_action):
            action.setEnabled(not running)

    def start_import(self) -> None:
        """Start: asks first when files were imported before (skip, the rest, or again)."""
        if self.runner.running:
            return
        files = self.files_tab.ready_files()
        before = self.files_tab.imported_before()
        if not files and not before:
            self.import_tab.show_outcome("Nothing to import: add customer files on the Files "
                                         "tab first.")
            self.tabs.setCurrentWidget(self.files_tab)
            return
        if self._connection_problems() or self._options_problems() \
                or self._results_folder_problem():
            return
        if before:
            self._ask_about_imported_files(before)
            return
        self._review_then_start(files, Repeat.REST)

    def _results_folder_problem(self) -> bool:
        """Refuse Start, saying why, when nothing can be written in the results folder (a
        read-only or full disk, no permission): before anything is sent."""
        problem = folder_write_problem(self.output_dir())
        if problem:
            text = f"Cannot start: {problem}."
            self.import_tab.show_outcome(text)
            self.statusBar().showMessage(text, 15000)
            self.tabs.setCurrentWidget(self.import_tab)
        return bool(problem)

    def _options_problems(self) -> bool:
        problem = self.import_tab.options_problem()
        if problem:
            self.import_tab.show_outcome(f"Cannot start: {problem}.")
            self.tabs.setCurrentWidget(self.import_tab)
        return bool(problem)

    def _source_options(self) -> SourceOptions:
        run = self.import_tab.run_settings()
        assignment = run.get("assignment")
        return SourceOptions(file_mappings=self.files_tab.file_mappings(),
                             file_sheets=self.files_tab.file_sheets(),
                             assignment=dict(assignment) if isinstance(assignment, dict)
                             else {})

    def _review_then_start(self, files: list[Path], repeat: Repeat) -> ReviewDialog | None:
        """Start; when spreadsheets are among `files`, every row is checked first and the
        review says what is valid (Import Valid Rows Only starts, Back does not)."""
        if self.runner.running:
            return None
        if not any(is_spreadsheet(f) for f in files):
            self._start(files, repeat)
            return None
        if self.review_dialog is not None:
            self.review_dialog.raise_()
            return self.review_dialog
        folder = self.output_dir() / REVIEW_FOLDER
        try:
            make_private_folder(folder)
            report: Path | None = folder / REVIEW_REPORT
        except OSError:
            report = None  # the review still runs; it has no report to offer
        dialog = ReviewDialog(files, self._source_options(), report_path=report, parent=self)
        self.review_dialog = dialog

        def answered(result: int) -> None:
            if self.review_dialog is dialog:
                self.review_dialog = None
            dialog.deleteLater()
            if result == ReviewDialog.DialogCode.Accepted:
                self._start(files, repeat)
            else:
                self.tabs.setCurrentWidget(self.files_tab)
                self.statusBar().showMessage("Not started: change the mappings or the files, "
                                             "then Start again", 8000)

        dialog.finished.connect(answered)
        dialog.open()
        dialog.start()
        return dialog

    def _connection_problems(self) -> bool:
        problems = self.import_tab.connection.problems()
        if problems:
            self.import_tab.show_outcome("Cannot start: " + "; ".join(problems) + ".")
            self.tabs.setCurrentWidget(self.import_tab)
        return bool(problems)

    def _ask_about_imported_files(self, before: list[FileEntry]) -> QMessageBox:
        lines = []
        for entry in before[:8]:
            history = entry.history
            assert history is not None
            when = history.last_imported_at.replace("T", " ")[:16]
            if history.all_imported:
                what = f"all {history.records:,} customers imported"
            else:
                what = (f"{len(history.imported):,} imported, "
                        f"{history.records - len(history.imported):,} not yet")
            lines.append(f"• {entry.name}: {what} ({when}, job #{history.last_job})")
        if len(before) > 8:
            lines.append(f"• and {len(before) - 8:,} more")
        box = QMessageBox(QMessageBox.Icon.Question, "Imported before",
                          f"{plural(len(before), 'file')} of the list "
                          f"{'was' if len(before) == 1 else 'were'} imported into this "
                          "results folder before:\n\n" + "\n".join(lines), parent=self)
        box.setObjectName("imported_before_prompt")
        rest = box.addButton("Send Only What Is Not Imported", QMessageBox.ButtonRole.AcceptRole)
        skip = box.addButton("Skip Them", QMessageBox.ButtonRole.RejectRole)
        again = box.addButton("Import Them Again", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(rest)
        box.setInformativeText("Sending customers that are in the service already only "
                               "gives CONFLICT failures.")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._prompts.append(box)
        box.destroyed.connect(lambda _=None, b=box: self._forget_prompt(b))

        def answered(_result: int) -> None:
            clicked = box.clickedButton()
            ready = self.files_tab.ready_files()
            earlier = {e.path for e in before}
            if clicked is rest:
                self._review_then_start(ready, Repeat.REST)
            elif clicked is skip:
                self._review_then_start([f for f in ready if f not in earlier], Repeat.SKIP)
            elif clicked is again:
                listed = [e.path for e in self.files_tab.model.entries()]
                self._review_then_start([f for f in listed if f in earlier or f in ready],
                                        Repeat.ALL)

        box.finished.connect(answered)
        box.open()
        return box

    def _import_settings(self) -> tuple[ImportSettings, TokenProvider]:
        connection = self.import_tab.connection
        connection.save_secrets()
        settings, secrets = connection.settings(), connection.secrets()
        run = self.import_tab.run_settings()
        import_settings = ImportSettings(
            customers_url=customers_url(settings), households_url=households_url(settings),
            extra_headers=extra_headers(secrets), connection=settings.to_dict(),
            proxy=secrets.proxy.reveal().strip(),
            file_mappings=self.files_tab.file_mappings(),
            file_sheets=self.files_tab.file_sheets(),
            **run)  # type: ignore[arg-type]
        auth = make_token_provider(settings, secrets, timeout_s=float(run["timeout_s"]))
        return import_settings, auth

    def _start(self, files: list[Path], repeat: Repeat, resume_job: int | None = None
               ) -> None:
        if self.runner.running:
            return
        if not files and resume_job is None:
            self.import_tab.show_outcome("Nothing to import: every file listed was imported "
                                         "before and is skipped.")
            return
        import_settings, auth = self._import_settings()
        if self.demo is not None:
            self.demo.before_import(import_settings.max_retries, import_settings.concurrency)
        self._import_files = files
        self.files_tab.set_status(files, "importing")
        self.files_tab.set_locked(True)
        self.import_tab.reset_progress()
        self.import_tab.set_running(True)
        self.import_tab.set_files_summary(len(files), self.files_tab.ready_customers(),
                                          importing=True)
        self.failed_tab.set_import_running(True)
        self.history_tab.set_busy(True)
        self.tabs.setCurrentWidget(self.import_tab)
        self.runner.start(files, import_settings, auth,
                          expected_total=None if resume_job else
                          self.files_tab.ready_customers(),
                          resume_job=resume_job, repeat=repeat)
        self._update_actions()
        self._warn_if_cloud_folder(Path(import_settings.output_dir))

    def _warn_if_cloud_folder(self, folder: Path) -> None:
        """Say once, without stopping the import, that a sync client uploads every result
        file (the first result file is written only once a customer fails)."""
        service = cloud_sync_service(folder)
        if service is None or folder in self._cloud_folders_named:
            return
        self._cloud_folders_named.add(folder)
        note = cloud_folder_note(folder, service)
        self.import_tab.append_log(logging.WARNING, note)
        box = QMessageBox(QMessageBox.Icon.Warning, f"Results folder in {service}", note,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("cloud_folder_warning")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.show()

    # -- jobs ------------------------------------------------------------------------------

    def show_job_failures(self, job_id: int) -> None:
        self.failed_tab.show_job(job_id)
        self.tabs.setCurrentWidget(self.failed_tab)

    def retry_job_failures(self, job_id: int) -> None:
        if not self.runner.running:
            self.history_tab.tasks.retry_open_failures(self.output_dir(), job_id)

    def _retry_written(self, folder: str, customers: int, error: str) -> None:
        if error:
            self.statusBar().showMessage(f"Could not write the retry files: {error}", 10000)
        elif not folder:
            self.statusBar().showMessage("Nothing to retry: those failures need their data "
                                         "corrected first (see the Failed Customers tab)",
                                         10000)
        else:
            self.load_retry_files(Path(folder))
            self.statusBar().showMessage(f"{customers:,} open failures loaded as retry files: "
                                         "check the connection, then Start Import", 10000)

    def resume_job(self, job: JobRecord) -> None:
        """Resume an interrupted or cancelled job, with the connection it was run with."""
        if self.runner.running or job.state not in RESUMABLE:
            return
        connection = job.settings.get("connection")
        if isinstance(connection, dict) and connection.get("profile") in PROFILES \
                and self.demo is None:
            self.import_tab.connection.set_settings(ConnectionSettings.from_dict(connection))
        run = {key: job.settings[key] for key in ("batch_size", "concurrency", "max_retries",
                                                  "timeout_s") if key in job.settings}
        self.import_tab.set_run_settings(run)
        if self._connection_problems():
            self.statusBar().showMessage(f"To resume job #{job.id}, enter the missing "
                                         "sign-in details, then press Resume again", 10000)
            return
        self._start([Path(f.path) for f in job.files], Repeat.REST, resume_job=job.id)

    def _offer_resume(self, _count: int) -> None:
        """A job of this results folder was interrupted: offer to carry on (once)."""
        if self.runner.running:
            return
        folder = str(self.output_dir())
        for job in self.history_tab.model.jobs():
            key = (folder, job.id)
            if job.state is not JobState.INTERRUPTED or key in self._resume_offered:
                continue
            self._resume_offered.add(key)
            box = self._prompt(
                "Resume the interrupted import?",
                f"Job #{job.id} (started {job.started.replace('T', ' ')[:16]}, "
                f"{files_text(job)}) stopped before it finished: {job.succeeded:,} customers "
                "were imported. Resume it now? Only what was not sent yet is sent.",
                QMessageBox.Icon.Question)
            box.setObjectName("resume_prompt")
            when_yes(box, lambda j=job: self.resume_job(j))
            box.open()
            return

    def _output_dir_changed(self) -> None:
        self.files_tab.set_output_dir(self.output_dir())
        self.history_tab.refresh()
        if not self.runner.running:
            self.failed_tab.refresh()

    def _import_paused_itself(self, reason: str) -> None:
        self.import_tab.show_pause_problem(reason)
        self.statusBar().showMessage(f"Paused: {reason}", 15000)
        self.tabs.setCurrentWidget(self.import_tab)

    def retry_after_pause(self) -> None:
        """The banner's Retry: go on (the result files are written again first)."""
        if self.runner.running:
            self.import_tab.hide_pause_problem()
            self.runner.resume()
            self.import_tab.set_paused(self.runner.paused)

    def choose_other_results_folder(self) -> QFileDialog:
        """The banner's Choose Another Folder: the result files go there from now on."""
        dialog = QFileDialog(self, "Choose another folder for the result files",
                             str(self.output_dir().parent))
        dialog.setObjectName("other_results_folder_dialog")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(lambda path: self.move_results(Path(path)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def move_results(self, folder: Path) -> None:
        if not self.runner.running:
            return  # it ended while the folder was being chosen: nothing to move
        problem = self.runner.move_results(folder)
        if problem is not None:
            self.import_tab.show_pause_problem(problem)
            return
        self.import_tab.hide_pause_problem()
        self.import_tab.set_paused(self.runner.paused)
        self.import_tab.append_log(logging.WARNING, f"The result files of this import now go "
                                   f"to {folder}; the import history stays in "
                                   f"{self.output_dir()}")

    def toggle_pause(self) -> None:
        if not self.runner.running:
            return
        if self.runner.paused:
            self.runner.resume()
        else:
            self.runner.pause()
        self.import_tab.set_paused(self.runner.paused)

    def ask_cancel(self) -> None:
        if not self.runner.running:
            return
        if self.runner.pause_reason:
            # the results folder may not take retry files now: the history keeps the rest
            text = ("Stop the import now? The customers not sent yet stay in the import "
                    "history: resume the job from the History tab once the problem is "
                    "solved, and nothing is lost.")
        else:
            text = ("Stop the import now? Batches under way get a few seconds to finish; "
                    "every customer not sent yet goes to the retry files, so nothing is "
                    "lost.")
        box = self._prompt("Cancel the import?", text, QMessageBox.Icon.Question)
        box.setObjectName("cancel_prompt")
        when_yes(box, lambda: self.runner.cancel("the import was cancelled"))
        box.open()

    def _prompt(self, title: str, text: str, icon: QMessageBox.Icon) -> QMessageBox:
        box = QMessageBox(icon, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._prompts.append(box)
        box.destroyed.connect(lambda _=None, b=box: self._forget_prompt(b))
        return box

    def _forget_prompt(self, box: QMessageBox) -> None:
        if box in self._prompts:
            self._prompts.remove(box)

    def _import_finished(self, summary: ImportSummary) -> None:
        self._after_import()
        imported, failed = [], []
        for path in self._import_files:
            count = summary.failed_by_file.get(str(path), 0)
            if count:
                failed.append((path, count))
            else:
                imported.append(path)
        self.files_tab.set_status(imported, "imported")
        for path, count in failed:
            self.files_tab.set_status([path], "failed", f"{count:,} customers failed")
        self.files_tab.refresh_history()  # the journal's word on each file
        text = (f"Finished in {summary.duration_s:.1f} s: {summary.succeeded:,} imported, "
                f"{summary.failed:,} failed")
        if summary.skipped_already_imported:
            text += f", {summary.skipped_already_imported:,} imported before (not sent)"
        if summary.resolved:
            text += f"; {summary.resolved:,} earlier failures resolved"
        if summary.refused:
            text = f"Not started: {summary.refused}"
        elif summary.fatal_error:
            text = f"Stopped: {summary.fatal_error}. {summary.failed:,} customers not imported."
        elif summary.error:
            text = (f"Stopped: {summary.error}. {summary.succeeded:,} imported; what was not "
                    "sent is kept in the import history (History tab: Resume).")
        elif summary.cancelled:
            text = (f"Cancelled: {summary.succeeded:,} imported; {summary.failed:,} not "
                    "imported are in the retry files.")
        if not summary.result_files_complete:
            text += (" Some result files could not be written; every outcome is in the import "
                     "history (resume the job, or retry its failures, once there is room).")
        self.import_tab.show_outcome(text)
        self.statusBar().showMessage(text, 15000)
        if self._close_when_stopped:
            self.close()
            return
        if summary.retry_dir is not None and summary.retry_files:
            self._offer_retry(summary)

    def _offer_retry(self, summary: ImportSummary) -> None:
        box = self._prompt(
            "Retry files created",
            f"{summary.retry_customers:,} customers could not be imported and were saved, ready to "
            f"import again, in\n{summary.retry_dir}\n\nRetry files created – load them now?",
            QMessageBox.Icon.Information)
        box.setObjectName("retry_prompt")
        box.setModal(False)
        box.setWindowModality(Qt.WindowModality.NonModal)
        folder = summary.retry_dir
        when_yes(box, lambda: self.load_retry_files(folder))
        box.show()

    def _import_crashed(self, message: str) -> None:
        self._after_import()
        self.import_tab.show_outcome(f"The import stopped unexpectedly: {message}")
        self.files_tab.set_status(self._import_files, "failed", message)
        if self._close_when_stopped:
            self.close()

    def _after_import(self) -> None:
        self.history_tab.set_busy(False)
        self.history_tab.refresh()
        self.import_tab.set_running(False)
        self.files_tab.set_locked(False)
        self.failed_tab.set_import_running(False)
        self.failed_tab.import_finished()
        if self.demo is not None:
            self.demo.after_import()
        self._update_actions()

    # -- closing -------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.runner.running:
            event.ignore()
            if self._close_when_stopped:
                return  # already stopping
            box = self._prompt("Close during an import?",
                               "An import is running. Stop it and close? Customers not sent "
                               "yet go to the retry files.", QMessageBox.Icon.Warning)
            box.setObjectName("close_prompt")
            when_yes(box, self._stop_and_close)
            box.open()
            return
        self.save_settings()
        self.files_tab.shutdown()
        event.accept()

    def _stop_and_close(self) -> None:
        self._close_when_stopped = True
        self.runner.cancel("the window was closed")

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, f"About {APP_TITLE}",
                          f"{APP_TITLE} {app_version()}\n\nLoads customer files, imports them "
                          "in batches to the Customer Profile API, shows every customer that "
                          "failed and why, and re-imports the failures.\n\n"
                          f"{runtime_versions()}", QMessageBox.StandardButton.Ok, self)
        box.setObjectName("about_box")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
