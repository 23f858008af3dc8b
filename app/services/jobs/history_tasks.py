"""The window's questions to the import history, answered on worker threads.

The jobs of a results folder (History tab), what earlier jobs did with the files on the
Files tab (and the mapping a spreadsheet's content was read with), deleting a job from the
history, and a retry file of a job's open failures.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.models.records import (
    ROW_ORIGINAL,
    ROW_RESULT,
    ROW_RETRIABLE,
    FailureRecord,
    FailureRow,
    retry_can_fix,
)
from app.services.jobs.history import running_check
from app.services.jobs.journal import (
    FileHistory,
    JobRecord,
    Journal,
    JournalError,
    journal_path,
)
from app.services.results.result_writers import RetryFolderWriter
from app.util.background import Pool, run_task, thread_pool


def load_jobs(output_dir: Path) -> list[JobRecord]:
    """The jobs of `output_dir`, newest first ([] when it has no history)."""
    if not journal_path(output_dir).exists():
        return []
    journal = Journal.open(output_dir, create=False)
    try:
        return journal.jobs(running_check(output_dir))
    finally:
        journal.close()


def look_up_files(output_dir: Path, sha256s: list[str]) -> dict[str, FileHistory]:
    """What earlier jobs of `output_dir` imported of these file contents."""
    if not sha256s or not journal_path(output_dir).exists():
        return {}
    journal = Journal.open(output_dir, create=False)
    try:
        return journal.file_history(sha256s)
    finally:
        journal.close()


@dataclass(frozen=True, slots=True)
class UsedMapping:
    """The mapping (file format, docs/mapping.md) and sheet an earlier job read a
    spreadsheet's content with."""

    job_id: int
    started: str
    mapping: dict[str, Any]
    sheet: str | None


def mapping_used_for(output_dir: Path, sha256: str) -> UsedMapping | None:
    """The mapping the latest job of `output_dir` that read this content (SHA-256) used for
    it: the job's mapping for its path of the file, else the job's mapping for every
    spreadsheet. None when no job (on the history list) read it, or that job mapped it
    from its header."""
    if not sha256 or not journal_path(output_dir).exists():
        return None
    journal = Journal.open(output_dir, create=False)
    try:
        # the file's path in that job is the key of its own mapping and sheet
        row = journal.connection.execute(
            "SELECT j.id, j.started, j.settings, f.path FROM job_files f "
            "JOIN jobs j ON j.id = f.job_id WHERE f.sha256 = ? AND j.hidden = 0 "
            "ORDER BY j.id DESC, f.file_index LIMIT 1", (sha256,)).fetchone()
    finally:
        journal.close()
    if row is None:
        return None
    job_id, started, settings_text, path = row
    try:
        settings = json.loads(settings_text or "{}")
    except ValueError:
        return None
    if not isinstance(settings, dict):
        return None
    file_mappings = settings.get("file_mappings") or {}
    file_sheets = settings.get("file_sheets") or {}
    mapping = (file_mappings.get(path) if isinstance(file_mappings, dict) else None) \
        or settings.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        return None
    sheet = (file_sheets.get(path) if isinstance(file_sheets, dict) else None) \
        or settings.get("sheet")
    return UsedMapping(int(job_id), str(started or ""), mapping,
                       str(sheet) if sheet else None)


def delete_job(output_dir: Path, job_id: int) -> None:
    """Take a job off the history list; its result files and failures stay."""
    journal = Journal.open(output_dir, create=False)
    try:
        journal.hide_job(job_id)
    finally:
        journal.close()


def _retry_fixes(row: FailureRow) -> bool:
    return bool(row[ROW_RETRIABLE]) and retry_can_fix(row[ROW_RESULT]) \
        and row[ROW_ORIGINAL][:1] == b"{"


def open_failures_of_job(output_dir: Path, job_id: int) -> tuple[int, Counter[str]]:
    """A job's open failures: how many a retry may fix, and the others by result (those
    need their data corrected first)."""
    journal = Journal.open(output_dir, create=False)
    try:
        # counted by SQL: the rows themselves (each with its customer's data) stay on disk
        counts = journal.connection.execute(
            "SELECT result, retriable AND substr(original, 1, 1) = X'7B', count(*) "
            "FROM failures WHERE state = 'open' AND last_job = ? GROUP BY 1, 2",
            (job_id,)).fetchall()
    finally:
        journal.close()
    fixable, to_correct = 0, Counter[str]()
    for result, entry_retriable, count in counts:
        if entry_retriable and retry_can_fix(result):  # as _retry_fixes decides for a row
            fixable += count
        else:
            to_correct[result] += count
    return fixable, to_correct


def write_open_failures_for_retry(output_dir: Path, job_id: int) -> tuple[Path | None, int]:
    """A retry folder with the open failures of a job that sending again may fix (see
    `retry_can_fix`; a resumed job's from before the interruption too).

    Returns the folder (None when there is nothing to retry) and how many customers it
    holds.
    """
    journal = Journal.open(output_dir, create=False)
    try:
        records = [FailureRecord.from_row(row) for row in journal.failure_rows(job=job_id)
                   if _retry_fixes(row)]
    finally:
        journal.close()
    if not records:
        return None, 0
    writer = RetryFolderWriter(Path(output_dir), datetime.now())
    writer.add_batch(0, records)
    writer.finish({"retryOf": f"job #{job_id}", "failed": len(records)}, [])
    return writer.folder, writer.customers_written


def _reported(on_error: Callable[[str], None]) -> Callable[[BaseException], None]:
    """An error handler that tells the user of a file or journal problem; anything else is
    a bug, raised again on the GUI thread."""

    def handle(error: BaseException) -> None:
        if not isinstance(error, OSError | JournalError):
            raise error
        on_error(str(error))

    return handle


class HistoryTasks(QObject):
    """Runs the window's history questions off the GUI thread (`Pool.JOURNAL`: one thread,
    so they run in the order asked, a delete, then the reload that follows it). Answers
    come back as signals; none comes once this object is deleted.

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

    def load_jobs(self, output_dir: Path) -> None:
        run_task(Pool.JOURNAL, lambda: load_jobs(output_dir),
                 on_done=lambda jobs: self.jobsLoaded.emit(jobs, "", output_dir),
                 on_error=_reported(lambda error: self.jobsLoaded.emit([], error, output_dir)),
                 owner=self)

    def look_up_files(self, output_dir: Path, sha256s: list[str]) -> None:
        run_task(Pool.JOURNAL, lambda: look_up_files(output_dir, sha256s),
                 on_done=lambda found: self.filesLookedUp.emit(found, "", output_dir),
                 on_error=_reported(
                     lambda error: self.filesLookedUp.emit({}, error, output_dir)),
                 owner=self)

    def delete_job(self, output_dir: Path, job_id: int) -> None:
        run_task(Pool.JOURNAL, lambda: delete_job(output_dir, job_id),
                 on_done=lambda _: self.jobDeleted.emit(job_id, ""),
                 on_error=_reported(lambda error: self.jobDeleted.emit(job_id, error)),
                 owner=self)

    def retry_open_failures(self, output_dir: Path, job_id: int) -> None:
        def written(result: tuple[Path | None, int]) -> None:
            folder, count = result
            self.retryWritten.emit(str(folder) if folder else "", count, "")

        run_task(Pool.JOURNAL, lambda: write_open_failures_for_retry(output_dir, job_id),
                 on_done=written,
                 on_error=_reported(lambda error: self.retryWritten.emit("", 0, error)),
                 owner=self)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the journal's pool (shared: other owners' reads too)."""
        return thread_pool(Pool.JOURNAL).waitForDone(timeout_ms)
