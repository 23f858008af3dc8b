"""The window's questions to the import history, answered on worker threads.

The jobs of a results folder (History tab), what earlier jobs did with the files on the
Files tab, deleting a job from the history, and a retry file of a job's open failures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from app.models.records import ROW_ORIGINAL, ROW_RETRIABLE, FailureRecord
from app.services.jobs.history import running_check
from app.services.jobs.journal import (
    FileHistory,
    JobRecord,
    Journal,
    JournalError,
    journal_path,
)
from app.services.results.result_writers import RetryFolderWriter
from app.services.worker_pacing import GilPacer
from app.util.worker_pools import journal_reads


def load_jobs(output_dir: Path) -> list[JobRecord]:
    """The jobs of `output_dir`, newest first ([] when it has no history)."""
    if not journal_path(output_dir).exists():
        return []
    journal = Journal.open(output_dir, create=False)
    journal.pace = GilPacer()  # a worker of the window: let it paint meanwhile
    try:
        return journal.jobs(running_check(output_dir))
    finally:
        journal.close()


def look_up_files(output_dir: Path, sha256s: list[str]) -> dict[str, FileHistory]:
    """What earlier jobs of `output_dir` imported of these file contents."""
    if not sha256s or not journal_path(output_dir).exists():
        return {}
    journal = Journal.open(output_dir, create=False)
    journal.pace = GilPacer()
    try:
        return journal.file_history(sha256s)
    finally:
        journal.close()


def delete_job(output_dir: Path, job_id: int) -> None:
    """Take a job off the history list; its result files and failures stay."""
    journal = Journal.open(output_dir, create=False)
    try:
        journal.hide_job(job_id)
    finally:
        journal.close()


def write_open_failures_for_retry(output_dir: Path, job_id: int) -> tuple[Path | None, int]:
    """A retry folder with the open failures of a job that sending again may fix.

    Returns the folder (None when there is nothing to retry) and how many customers it
    holds.
    """
    journal = Journal.open(output_dir, create=False)
    try:
        records = [FailureRecord.from_row(row) for row in journal.failure_rows(job=job_id)
                   if row[ROW_RETRIABLE] and row[ROW_ORIGINAL][:1] == b"{"]
    finally:
        journal.close()
    if not records:
        return None, 0
    writer = RetryFolderWriter(Path(output_dir), datetime.now())
    writer.add_batch(0, records)
    writer.finish({"retryOf": f"job #{job_id}", "failed": len(records)}, [])
    return writer.folder, writer.customers_written


class _Bridge(QObject):
    done = Signal(str, object, object, object)  # task, result, error, request


class HistoryTasks(QObject):
    """Runs the window's history questions off the GUI thread.

    Signals:
        jobsLoaded(jobs, error, output_dir): the jobs of a folder, newest first.
        filesLookedUp(histories, error, output_dir): {sha256: FileHistory}.
        jobDeleted(job_id, error).
        retryWritten(folder, customers, error): a retry folder of a job's open failures
            (folder "" when there was nothing to retry).
    """

    jobsLoaded = Signal(object, str, object)
    filesLookedUp = Signal(object, str, object)
    jobDeleted = Signal(int, str)
    retryWritten = Signal(str, int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = journal_reads()  # one thread: in the order asked, a delete, then a reload
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

    def load_jobs(self, output_dir: Path) -> None:
        self._run("jobs", lambda: load_jobs(output_dir), output_dir, [])

    def look_up_files(self, output_dir: Path, sha256s: list[str]) -> None:
        self._run("files", lambda: look_up_files(output_dir, sha256s), output_dir, {})

    def delete_job(self, output_dir: Path, job_id: int) -> None:
        self._run("delete", lambda: delete_job(output_dir, job_id), job_id, None)

    def retry_open_failures(self, output_dir: Path, job_id: int) -> None:
        self._run("retry", lambda: write_open_failures_for_retry(output_dir, job_id),
                  job_id, (None, 0))

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the journal's pool (shared: other owners' reads too)."""
        return self._pool.waitForDone(timeout_ms)

    def _run(self, name: str, work: Callable[[], Any], request: Any, fallback: Any) -> None:
        bridge = self._bridge

        def run() -> None:
            try:
                result, error = work(), None
            except (OSError, JournalError) as exc:
                # without its traceback: that holds this frame, which holds the error
                result, error = fallback, exc.with_traceback(None)
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                bridge.done.emit(name, result, error, request)

        self._pool.start(run)

    def _on_done(self, name: str, result: Any, error: BaseException | None,
                 request: Any) -> None:
        message = "" if error is None else str(error)
        if name == "jobs":
            self.jobsLoaded.emit(result, message, request)
        elif name == "files":
            self.filesLookedUp.emit(result, message, request)
        elif name == "delete":
            self.jobDeleted.emit(int(request), message)
        elif name == "retry":
            folder, count = result
            self.retryWritten.emit(str(folder) if folder else "", int(count), message)
