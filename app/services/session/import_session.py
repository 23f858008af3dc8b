"""An import's flow from Start to its end, apart from any window: the session decides, a
window (or a test) shows its questions and answers them through its methods."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal

from app.models.failure_store import FailureStore
from app.models.file_list_model import FileEntry
from app.models.jobs import RESUMABLE, FileHistory, JobRecord, JobState
from app.models.records import retry_can_fix
from app.services.connection.connection_profiles import PROFILES, ConnectionSettings
from app.services.jobs.history_tasks import (
    open_failures_of_job,
    write_open_failures_for_retry,
)
from app.services.jobs.job_plan import Repeat
from app.services.jobs.journal import JournalError
from app.services.pipeline.import_engine import retry_folder_strategy
from app.services.pipeline.import_events import ImportSettings, ImportSummary
from app.services.pipeline.qt_import_runner import ImportRunner
from app.services.results.cloud_folders import cloud_folder_note, cloud_sync_service
from app.services.results.disk_space import folder_write_problem
from app.services.session.import_options import (
    ConnectionOptions,
    RunOptions,
    import_settings,
    token_provider,
)
from app.services.sources.mapping import MappingError
from app.services.sources.source_options import Assignment, OnExisting, SourceOptions
from app.services.sources.table_source import is_spreadsheet
from app.util.atomic_files import make_private_folder
from app.util.background import Pool, run_task
from app.util.keep_awake import KeepAwake
from app.util.wording import plural

# the review before Start writes its error report here, inside the results folder
REVIEW_FOLDER = ".review"
REVIEW_REPORT = "error_report_review.csv"
# a resumed job runs with these of its own settings
JOB_RUN_SETTINGS = ("batch_size", "concurrency", "max_retries", "timeout_s")


@dataclass(frozen=True, slots=True)
class FileChoice:
    """The files an import could take: those ready now, every listed one (for "import
    them again"), those an earlier import took, and the customers in the ready ones (None
    while they are counted)."""

    ready: list[Path] = field(default_factory=list)
    listed: list[Path] = field(default_factory=list)
    imported_before: list[FileEntry] = field(default_factory=list)
    customers: int | None = None


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """Everything Start needs, as the user set it."""

    connection: ConnectionOptions
    run: RunOptions
    sources: SourceOptions
    files: FileChoice


class ImportInputs(Protocol):
    """Where a session takes its options from (the window's tabs, a test's values)."""

    def request(self) -> ImportRequest:
        """The options and files as they are now."""

    def restore(self, connection: ConnectionSettings | None, run: RunOptions) -> None:
        """Show a resumed job's options (`connection` None: keep the current one)."""


class Page(Enum):
    """Where the user should look after a notice."""

    FILES = "files"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell: `outcome` for the Import tab's state line, `status` for the
    status bar (shown `status_ms`), `page` to bring to the front."""

    outcome: str = ""
    status: str = ""
    status_ms: int = 10_000
    page: Page | None = None


@dataclass(frozen=True, slots=True)
class RetryOffer:
    """What the end of an import offers to send again: the customers a retry may fix (the
    service was unavailable or slow, the import stopped first), and the others by result,
    which need their data (or the duplicate strategy) changed first. From the job's open
    failures in the history (a resumed job's from before the interruption too), or, for an
    import without history, from its retry files in `folder`."""

    customers: int
    to_correct: Counter[str]
    job: int | None = None
    folder: Path | None = None


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """The review before Start: the files to check, how they are read, where its report
    goes (None: it offers none), and, by file, what earlier jobs imported of those whose
    customers imported then are not sent again."""

    files: list[Path]
    sources: SourceOptions
    report: Path | None
    imported_before: dict[Path, FileHistory] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportStart:
    """An import about to start: its files, its settings, the customers counted in them."""

    files: list[Path]
    settings: ImportSettings
    customers: int | None


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """How an import ended: its summary, the words for it, and each file's fate."""

    summary: ImportSummary
    text: str
    imported: list[Path]
    failed: list[tuple[Path, int]]  # a file, and how many of its customers failed


def outcome_text(summary: ImportSummary) -> str:
    """One paragraph on how an import ended, for the Import tab and the status bar."""
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
    return text


@dataclass(slots=True)
class _Pending:
    """An import waiting for the user's answer (files imported before, the review)."""

    request: ImportRequest
    files: list[Path] = field(default_factory=list)
    repeat: Repeat = Repeat.REST
    review: ReviewRequest | None = None


class ImportSession(QObject):
    """Runs imports one at a time, from Start to their end, and keeps the failure list.

    It owns the `FailureStore` (fed from the import's failure events) and the
    `ImportRunner`. Start checks the options, asks about files imported before, has
    spreadsheets reviewed, then runs; at the end it offers the retry files; when a results
    folder's history shows an interrupted job it offers to resume it (once); it pauses,
    resumes, moves the result files elsewhere, cancels, and stops before a window closes.
    Questions are signals; their answers come back through `answer_imported_before`,
    `answer_review`, `load_retry_files`, `resume`, `cancel` and `stop_and_close`.

    Signals:
        notice(Notice): something to tell the user (why Start was refused, what was loaded,
            a file that could not be read, how the import ended).
        importedBeforeAsked(list[FileEntry]): send the rest, skip them or send them again?
        reviewAsked(ReviewRequest): check the spreadsheets' rows before starting.
        importStarting(ImportStart): about to start (the runner has not started yet).
        runningChanged(bool): an import started or ended.
        progressChanged(ImportProgress), logMessage(int level, str): the running import's
            progress and log.
        pausedChanged(bool): paused or going on, at the user's word.
        pausedItself(str reason): the import paused itself (a full disk, a busy history);
            a notice says so too.
        pauseProblemShown(str reason), pauseProblemCleared(): the reason it stays paused.
        cloudFolderFound(str service, str note): a sync client uploads the results folder.
        importEnded(): an import ended, however (before importFinished/importCrashed).
        importFinished(ImportOutcome): it ended with a summary.
        importCrashed(str message, list[Path] files): it ended with an unexpected error.
        retryOffered(RetryOffer): customers a retry may fix: load them now
            (`accept_retry`)?
        retryFilesChosen(Path folder, str strategy): load these retry files (and set the
            duplicate strategy they were written with, when not "").
        resumeOffered(JobRecord): an interrupted job of the results folder: resume it?
        signInAsked(JobRecord): a resume lacks sign-in details: ask for them, then
            `resume(job)` again.
        cancelAsked(str text): stop the running import?
        closeAsked(): an import runs: stop it and close?
        closeReady(): stopped as asked before closing: close now.
    """

    notice = Signal(object)
    importedBeforeAsked = Signal(object)
    reviewAsked = Signal(object)
    importStarting = Signal(object)
    runningChanged = Signal(bool)
    progressChanged = Signal(object)
    logMessage = Signal(int, str)
    pausedChanged = Signal(bool)
    pausedItself = Signal(str)
    pauseProblemShown = Signal(str)
    pauseProblemCleared = Signal()
    cloudFolderFound = Signal(str, str)
    importEnded = Signal()
    importFinished = Signal(object)
    importCrashed = Signal(str, object)
    retryOffered = Signal(object)
    retryFilesChosen = Signal(object, str)
    resumeOffered = Signal(object)
    signInAsked = Signal(object)
    cancelAsked = Signal(str)
    closeAsked = Signal()
    closeReady = Signal()

    def __init__(self, inputs: ImportInputs, store: FailureStore | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.inputs = inputs
        self.store = store if store is not None else FailureStore()
        self.runner = ImportRunner(self)
        # a connection set for this session only (the demo's sandbox): a resumed job keeps
        # it, and it is not worth saving
        self.fixed_connection = False
        self._pending: _Pending | None = None
        self._files: list[Path] = []
        self._results_dir: Path | None = None  # the history's folder of the running import
        self._outcome = ""  # the state line of the last import's end
        self._close_when_stopped = False
        self._resume_offered: set[tuple[str, int]] = set()
        self._cloud_folders_named: set[Path] = set()  # looked at (and warned about) once
        self._keep_awake = KeepAwake()  # no idle sleep (nor App Nap) while an import runs
        runner = self.runner
        runner.failuresFound.connect(self.store.upsert)
        runner.failuresResolved.connect(self.store.resolve)
        runner.progressChanged.connect(self.progressChanged)
        runner.logMessage.connect(self.logMessage)
        runner.pausedItself.connect(self._paused_itself)
        runner.problemFound.connect(lambda message: self._tell(f"Not read: {message}", 8000))
        runner.noteTold.connect(lambda message: self._tell(message, 15_000))
        runner.retryFileWritten.connect(
            lambda path: self._tell(f"Retry file written: {Path(path).name}", 4000))
        runner.finished.connect(self._finished)
        runner.crashed.connect(self._crashed)

    def _tell(self, status: str, status_ms: int) -> None:
        self.notice.emit(Notice(status=status, status_ms=status_ms))

    @property
    def running(self) -> bool:
        return self.runner.running

    @property
    def paused(self) -> bool:
        return self.runner.paused

    # -- starting ------------------------------------------------------------------------

    def start(self) -> None:
        """Start: refused with a notice when something is missing; asks first when files
        were imported before, and has spreadsheets reviewed."""
        if self.running:
            return
        if self._pending is not None and self._pending.review is not None:
            self.reviewAsked.emit(self._pending.review)  # still open: to the front
            return
        request = self.inputs.request()
        choice = request.files
        if not choice.ready and not choice.imported_before:
            self.notice.emit(Notice(outcome="Nothing to import: add customer files on the "
                                    "Files tab first.", page=Page.FILES))
            return
        refusal = self._start_problem(request)
        if refusal is not None:
            self.notice.emit(refusal)
            return
        if choice.imported_before:
            self._pending = _Pending(request)
            self.importedBeforeAsked.emit(list(choice.imported_before))
            return
        self._review_then_start(request, list(choice.ready), Repeat.REST)

    def _start_problem(self, request: ImportRequest) -> Notice | None:
        problems = request.connection.problems()
        if problems:
            return Notice(outcome="Cannot start: " + "; ".join(problems) + ".",
                          page=Page.IMPORT)
        try:
            Assignment.from_dict(request.sources.assignment)
        except MappingError as exc:
            return Notice(outcome=f"Cannot start: Assignment: {exc}.", page=Page.IMPORT)
        # nothing can be written in the results folder (read-only, full, no permission):
        # refused before anything is sent
        problem = folder_write_problem(request.run.output_dir)
        if problem:
            text = f"Cannot start: {problem}."
            return Notice(outcome=text, status=text, status_ms=15_000, page=Page.IMPORT)
        return None

    def answer_imported_before(self, repeat: Repeat | None) -> None:
        """The answer to importedBeforeAsked: REST sends what was not imported, SKIP leaves
        those files out, ALL sends them again; None starts nothing."""
        pending, self._pending = self._pending, None
        if pending is None or repeat is None:
            return
        choice = pending.request.files
        earlier = {entry.path for entry in choice.imported_before}
        if repeat is Repeat.SKIP:
            files = [f for f in choice.ready if f not in earlier]
        elif repeat is Repeat.ALL:
            files = [f for f in choice.listed if f in earlier or f in choice.ready]
        else:
            files = list(choice.ready)
        self._review_then_start(pending.request, files, repeat)

    def _review_then_start(self, request: ImportRequest, files: list[Path],
                           repeat: Repeat) -> None:
        if not any(is_spreadsheet(f) for f in files):
            self._start(request, files, repeat)
            return
        folder = request.run.output_dir / REVIEW_FOLDER
        try:
            make_private_folder(folder)
            report: Path | None = folder / REVIEW_REPORT
        except OSError:
            report = None  # the review still runs; it has no report to offer
        # sending "the rest" leaves out what earlier jobs imported: the review says so
        # before Start, next to its valid and invalid counts
        earlier = ({entry.path: entry.history for entry in request.files.imported_before
                    if entry.history is not None and len(entry.history.imported)
                    and entry.path in files} if repeat is Repeat.REST else {})
        review = ReviewRequest(files, request.sources, report, earlier)
        self._pending = _Pending(request, files, repeat, review)
        self.reviewAsked.emit(review)

    def answer_review(self, start: bool) -> None:
        """The review's answer: import the valid rows, or go back."""
        pending, self._pending = self._pending, None
        if pending is None or pending.review is None:
            return
        if start:
            self._start(pending.request, pending.files, pending.repeat)
        else:
            self.notice.emit(Notice(status="Not started: change the mappings or the files, "
                                    "then Start again", status_ms=8000, page=Page.FILES))

    def _start(self, request: ImportRequest, files: list[Path], repeat: Repeat,
               resume_job: int | None = None) -> None:
        if self.running:
            return
        if not files and resume_job is None:
            self.notice.emit(Notice(outcome="Nothing to import: every file listed was "
                                    "imported before and is skipped."))
            return
        settings = import_settings(request.connection, request.run, request.sources)
        auth = token_provider(request.connection, request.run)
        customers = request.files.customers
        self._files = list(files)
        self._results_dir = Path(settings.output_dir)
        self.importStarting.emit(ImportStart(list(files), settings, customers))
        self.notice.emit(Notice(page=Page.IMPORT))
        self.runner.start(files, settings, auth,
                          expected_total=None if resume_job else customers,
                          resume_job=resume_job, repeat=repeat)
        self._keep_awake.hold()  # on the GUI thread, as its release (Windows wants that)
        self.runningChanged.emit(True)
        self._warn_if_cloud_folder(Path(settings.output_dir))

    def _warn_if_cloud_folder(self, folder: Path) -> None:
        """Once per folder, without stopping the import: a sync client uploads every result
        file (the first one is written only once a customer fails)."""
        if folder in self._cloud_folders_named:
            return  # looked at already (the look-up may read a sync client's files)
        self._cloud_folders_named.add(folder)
        service = cloud_sync_service(folder)
        if service is None:
            return
        note = cloud_folder_note(folder, service)
        self.logMessage.emit(logging.WARNING, note)
        self.cloudFolderFound.emit(service, note)

    # -- while it runs -------------------------------------------------------------------

    def _paused_itself(self, reason: str) -> None:
        self.pausedItself.emit(reason)
        self.notice.emit(Notice(status=f"Paused: {reason}", status_ms=15_000,
                                page=Page.IMPORT))

    def toggle_pause(self) -> None:
        if not self.running:
            return
        if self.runner.paused:
            self.runner.resume()
        else:
            self.runner.pause()
        self.pausedChanged.emit(self.runner.paused)

    def retry_after_pause(self) -> None:
        """Go on after the import paused itself (the result files are written again)."""
        if self.running:
            self.pauseProblemCleared.emit()
            self.runner.resume()
            self.pausedChanged.emit(self.runner.paused)

    def move_results(self, folder: Path) -> None:
        """The running import's result files go to `folder` from now on."""
        if not self.running:
            return  # it ended while the folder was being chosen: nothing to move
        problem = self.runner.move_results(folder)
        if problem is not None:
            self.pauseProblemShown.emit(problem)
            return
        self.pauseProblemCleared.emit()
        self.pausedChanged.emit(self.runner.paused)
        self.logMessage.emit(logging.WARNING, f"The result files of this import now go to "
                             f"{folder}; the import history stays in {self._results_dir}")

    def ask_cancel(self) -> None:
        if not self.running:
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
        self.cancelAsked.emit(text)

    def cancel(self) -> None:
        """The answer Yes to cancelAsked."""
        self.runner.cancel("the import was cancelled")

    def may_close(self) -> bool:
        """Whether a window may close now; while an import runs it asks (closeAsked) once,
        and closeReady follows the stop."""
        if not self.running:
            return True
        if not self._close_when_stopped:
            self.closeAsked.emit()
        return False

    def stop_and_close(self) -> None:
        """The answer Yes to closeAsked: stop, then closeReady."""
        self._close_when_stopped = True
        self.runner.cancel("the window was closed")

    # -- the end -------------------------------------------------------------------------

    def _finished(self, summary: ImportSummary) -> None:
        self._keep_awake.release()
        self.importEnded.emit()
        self.runningChanged.emit(False)
        imported: list[Path] = []
        failed: list[tuple[Path, int]] = []
        for path in self._files:
            count = summary.failed_by_file.get(str(path), 0)
            if count:
                failed.append((path, count))
            else:
                imported.append(path)
        text = self._outcome = outcome_text(summary)
        self.importFinished.emit(ImportOutcome(summary, text, imported, failed))
        self.notice.emit(Notice(outcome=text, status=text, status_ms=15_000))
        if self._close_when_stopped:
            self.closeReady.emit()
        elif summary.job is not None and summary.open_failures and self._results_dir:
            folder, job = self._results_dir, summary.job
            run_task(Pool.JOURNAL, lambda: open_failures_of_job(folder, job),
                     on_done=lambda found: self._offer_retry(
                         RetryOffer(found[0], found[1], job=job)),
                     on_error=lambda _error: None,  # no offer; History's Retry remains
                     owner=self)
        elif summary.retry_dir is not None and summary.retry_files:
            # no history: the retry files are what there is
            to_correct = Counter({result: count for result, count
                                  in summary.failed_by_result.items()
                                  if not retry_can_fix(result)})
            self._offer_retry(RetryOffer(summary.retry_customers, to_correct,
                                         folder=summary.retry_dir))

    def _offer_retry(self, offer: RetryOffer) -> None:
        if self.running:
            return  # another import started meanwhile: not now
        if offer.customers:
            self.retryOffered.emit(offer)
        elif offer.to_correct:
            count = sum(offer.to_correct.values())
            text = (f"{plural(count, 'customer')} failed for their data: correct them "
                    "(Failed Customers tab) before importing them again")
            # on the Import tab's state line too: the status bar moves on
            self.notice.emit(Notice(outcome=f"{self._outcome} · {text}", status=text,
                                    status_ms=15_000))

    def accept_retry(self, offer: RetryOffer) -> None:
        """The answer Yes to retryOffered: load what a retry may fix as the next files."""
        if offer.job is not None:
            self.retry_job_failures(offer.job)
        elif offer.folder is not None:
            self.load_retry_files(offer.folder)

    def _crashed(self, message: str) -> None:
        self._keep_awake.release()
        self.importEnded.emit()
        self.runningChanged.emit(False)
        self.importCrashed.emit(message, list(self._files))
        self.notice.emit(Notice(outcome=f"The import stopped unexpectedly: {message}"))
        if self._close_when_stopped:
            self.closeReady.emit()

    def load_retry_files(self, folder: Path, what: str = "") -> bool:
        """Load a retry folder as the next import's files, with the duplicate strategy of
        the import that wrote it; False (and nothing said) while an import runs. `what`
        names what was loaded in the notice (default: the folder's retry files)."""
        if self.running:
            return False
        strategy = retry_folder_strategy([folder]) or ""
        if strategy and self.inputs.request().run.on_existing == strategy:
            strategy = ""  # already so
        self.retryFilesChosen.emit(folder, strategy)
        message = (f"{what or f'Loaded retry files from {folder.name}'}: check the "
                   "connection, then Start Import")
        if strategy:
            message += f" (existing customers: {OnExisting(strategy).label.lower()})"
        self.notice.emit(Notice(status=message, page=Page.FILES))
        return True

    def retry_job_failures(self, job_id: int) -> None:
        """Write a job's open failures that sending again may fix as retry files (off the
        GUI thread), then load them."""
        if self.running:
            return
        folder = self.inputs.request().run.output_dir
        run_task(Pool.JOURNAL, lambda: write_open_failures_for_retry(folder, job_id),
                 on_done=self._retry_written, on_error=self._retry_not_written, owner=self)

    def _retry_written(self, written: tuple[Path | None, int]) -> None:
        folder, customers = written
        if folder is None:
            self.notice.emit(Notice(status="Nothing to retry: those failures need their "
                                    "data corrected first (see the Failed Customers tab)"))
            return
        # one notice, and only when they were loaded (an import may have started meanwhile)
        self.load_retry_files(Path(folder),
                              f"{customers:,} open failures loaded as retry files")

    def _retry_not_written(self, error: BaseException) -> None:
        if not isinstance(error, OSError | JournalError):
            raise error  # a bug: reported on the GUI thread
        self.notice.emit(Notice(status=f"Could not write the retry files: {error}"))

    # -- jobs ------------------------------------------------------------------------------

    def jobs_loaded(self, folder: Path, jobs: Sequence[JobRecord]) -> None:
        """A results folder's jobs were read: offer to resume an interrupted one (once)."""
        if self.running:
            return
        for job in jobs:
            key = (str(folder), job.id)
            if job.state is not JobState.INTERRUPTED or key in self._resume_offered:
                continue
            self._resume_offered.add(key)
            self.resumeOffered.emit(job)
            return

    def resume(self, job: JobRecord) -> None:
        """Resume an interrupted or cancelled job, with the connection and the run settings
        it was started with (secrets as entered now)."""
        if self.running or job.state not in RESUMABLE:
            return
        described = job.settings.get("connection")
        connection = (ConnectionSettings.from_dict(described)
                      if isinstance(described, dict) and described.get("profile") in PROFILES
                      and not self.fixed_connection else None)
        values = {key: job.settings[key] for key in JOB_RUN_SETTINGS if key in job.settings}
        self.inputs.restore(connection, self.inputs.request().run.updated(values))
        request = self.inputs.request()
        if request.connection.problems():
            text = (f"To resume job #{job.id}: {'; '.join(request.connection.problems())}, "
                    "then press Resume again (History tab)")
            self.notice.emit(Notice(outcome=text, status=text, page=Page.IMPORT))
            self.signInAsked.emit(job)  # a missing secret is asked for at once
            return
        self._start(request, [Path(f.path) for f in job.files], Repeat.REST,
                    resume_job=job.id)
