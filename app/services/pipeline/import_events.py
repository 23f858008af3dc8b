"""Settings, progress figures, the final summary, and the listener an import reports to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from platformdirs import user_documents_path

from app.models.records import FailureRecord
from app.services.jobs.journal_writer import JOURNAL_WAIT_S


def default_output_dir() -> Path:
    """Where result files go unless the user chooses: a folder under Documents, easy to find."""
    return user_documents_path() / "Bulk Customer Import"


@dataclass(slots=True)
class ImportSettings:
    """How an import talks to the API. Defaults suit the real service."""

    customers_url: str
    households_url: str | None = None  # None: the sibling of customers_url
    batch_size: int = 50
    concurrency: int = 5
    max_retries: int = 5  # per batch, for 429/5xx/timeouts/connection errors
    timeout_s: float = 60.0  # whole request, from connect to the last byte of the answer
    connect_timeout_s: float = 15.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer Retry-After is capped to this
    cancel_grace_s: float = 5.0  # how long requests in flight may finish after Cancel
    extra_headers: dict[str, str] = field(default_factory=dict)
    output_dir: Path = field(default_factory=default_output_dir)
    save_api_responses: bool = True
    write_single_failures: bool = True
    verify_tls: bool = True
    proxy: str = ""  # a proxy set by hand; "" uses the environment's or the system's
    reader_process: bool | None = None  # None: a separate reader process for large imports
    writer_process: bool | None = None  # None: result files written by a process likewise
    # keep the import in the results folder's history (journal): resume, skipping what
    # earlier imports brought in, the failure list across imports. Off: a throwaway run.
    keep_history: bool = True
    # how the connection was made, without secrets (profile, host, tenant, sign-in, user),
    # kept with the job so that it can be resumed with the same connection
    connection: dict[str, str] = field(default_factory=dict)
    # spreadsheets: mappings in their file format (docs/mapping.md), None = from the header;
    # by file path where a file has its own; the sheet of a workbook likewise
    mapping: dict[str, Any] | None = None
    file_mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    sheet: str | None = None
    file_sheets: dict[str, str] = field(default_factory=dict)
    # a target path set on every customer sent (SourceOptions.Assignment.to_dict form)
    assignment: dict[str, Any] = field(default_factory=dict)
    # a customer the service already has: "create" (a failure), "skip" or "update"
    on_existing: str = "create"
    # how long the import history may stay unavailable (another program holding it, a
    # full disk) before the import pauses sending, or, as it starts, gives up
    journal_wait_s: float = JOURNAL_WAIT_S
    # the cell separator of the error report (a CSV for Excel); None: the system's list
    # separator (`;` where numbers have a decimal comma)
    csv_delimiter: str | None = None


class ImportState(StrEnum):
    """Where an import stands (`ImportEngine.state`, `ImportProgress.state`)."""

    STARTING = "starting"  # created, `run()` not called yet
    RUNNING = "running"
    PAUSED = "paused"  # by the user, or by the import itself (see `pause_reason`)
    STOPPING = "stopping"  # cancelled or stopped by an error: requests under way finish
    WRITING = "writing"  # everything sent: the last result files are being written
    FINISHED = "finished"


@dataclass(slots=True)
class ImportCounts:
    """What became of an import's customers so far: the engine counts here, once; its
    progress reports and its summary read these counts."""

    read: int = 0  # entries read from the files (refused ones too)
    succeeded: int = 0
    failed: int = 0
    updated: int = 0  # existing customers updated (on_existing "update")
    skipped_existing: int = 0  # existing customers left as they are ("skip")
    skipped: int = 0  # not sent: an earlier job imported them
    resolved: int = 0  # open failures of earlier jobs this import resolved
    invalid: int = 0  # rows or entries refused before sending (INVALID failures)
    # resumed: customers the interrupted run had created already (the service said CONFLICT)
    created_before_interruption: int = 0
    failed_by_result: Counter[str] = field(default_factory=Counter)
    failed_by_file: Counter[str] = field(default_factory=Counter)  # source file -> failures

    @property
    def done(self) -> int:
        """Customers finished, whatever their outcome."""
        return self.succeeded + self.failed + self.updated + self.skipped_existing

    def add_failures(self, failures: list[FailureRecord]) -> None:
        self.failed += len(failures)
        self.failed_by_result.update(f.result for f in failures)
        self.failed_by_file.update(f.source_file for f in failures)


@dataclass(slots=True)
class ImportProgress:
    """A snapshot of a running import, reported a few times a second."""

    state: ImportState
    read: int = 0
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0  # customers in requests under way
    bytes_done: int = 0
    bytes_total: int = 0
    elapsed_s: float = 0.0
    rate: float = 0.0  # customers finished per second, recent
    eta_s: float | None = None
    current_file: str = ""
    expected_total: int | None = None  # when the caller counted the files beforehand
    skipped: int = 0  # not sent: imported before (they count as done for the bar)
    retry_files: int = 0
    writes_pending: int = 0  # batches of failures whose result files are still to write
    concurrency: int = 0  # requests allowed in flight now (fewer while the service strains)
    concurrency_ceiling: int = 0  # the user's setting, never exceeded
    updated: int = 0  # existing customers updated (duplicate strategy "update")
    skipped_existing: int = 0  # existing customers left as they are ("skip")
    # paused by the import itself: why (a full disk, the import history held by another
    # program); empty when the user paused it or it is not paused
    pause_reason: str = ""
    requests_in_flight: int = 0  # requests sent and not answered yet

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.updated + self.skipped_existing

    @property
    def fraction(self) -> float:
        """0..1, by customers when the total is known, else by bytes read."""
        if self.state == ImportState.FINISHED:
            return 1.0
        if self.expected_total:
            return min(1.0, (self.done + self.skipped) / self.expected_total)
        if self.bytes_total:
            share_read = self.bytes_done / self.bytes_total
            share_done = self.done / self.read if self.read else 0.0
            return min(1.0, share_read * share_done)
        return 0.0


@dataclass(slots=True)
class ImportSummary:
    """The outcome of one import run; `to_json()` is what `--json` prints.

    Its customer counts are `counts` (a resumed job's: the whole job's, once it ended).
    """

    counts: ImportCounts = field(default_factory=ImportCounts)
    retry_dir: Path | None = None
    retry_files: list[Path] = field(default_factory=list)
    retry_customers: int = 0  # customers in the retry files, ready to import again
    failed_file: Path | None = None
    output_dir: Path | None = None
    duration_s: float = 0.0
    cancelled: bool = False
    fatal_error: str | None = None
    problems: list[str] = field(default_factory=list)  # files or lines that could not be read
    files: list[str] = field(default_factory=list)
    single_failures_dir: Path | None = None
    write_errors: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # files this app wrote itself
    notes: list[str] = field(default_factory=list)  # worth telling the user; not errors
    job: int | None = None  # the job's id in the results folder's import history
    resumed: bool = False
    refused: str | None = None  # why the job could not start (nothing was sent)
    open_failures: int | None = None  # in the results folder, after this import
    on_existing: str = "create"  # the duplicate strategy it ran with
    error_report: Path | None = None  # the CSV of refused rows, one line per reason
    dry_run: bool = False  # read and checked only, nothing sent
    # why the import could not start, or stopped on its own: bad usage, a results folder
    # that cannot be written or is full, an import history another program holds
    error: str | None = None
    # False when some result files could not be written (the journal still has every
    # outcome: a resume, or the History tab's retry, writes them)
    result_files_complete: bool = True

    @property
    def total(self) -> int:
        """Entries read."""
        return self.counts.read

    @property
    def succeeded(self) -> int:
        return self.counts.succeeded

    @property
    def failed(self) -> int:
        return self.counts.failed

    @property
    def failed_by_result(self) -> Counter[str]:
        return self.counts.failed_by_result

    @property
    def failed_by_file(self) -> Counter[str]:
        return self.counts.failed_by_file

    @property
    def skipped_already_imported(self) -> int:
        return self.counts.skipped

    @property
    def resolved(self) -> int:
        return self.counts.resolved

    @property
    def created_before_interruption(self) -> int:
        return self.counts.created_before_interruption

    @property
    def updated(self) -> int:
        """Customers that existed and were updated instead."""
        return self.counts.updated

    @property
    def skipped_existing(self) -> int:
        """Customers that existed and were left alone."""
        return self.counts.skipped_existing

    @property
    def invalid(self) -> int:
        return self.counts.invalid

    @property
    def exit_code(self) -> int:
        """3 stopped by auth/fatal API error; 2 a file or folder could not be read or
        written; 1 customers failed or the import was cancelled (a dry run: rows refused);
        0 every customer imported."""
        if self.fatal_error:
            return 3
        if self.problems or self.refused or self.error:
            return 2
        if self.dry_run:
            return 1 if self.invalid else 0
        if self.failed or self.cancelled:
            return 1
        return 0

    def to_json(self) -> dict[str, Any]:
        def text(path: Path | None) -> str | None:
            return None if path is None else str(path)

        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_by_result": {str(k): v for k, v in sorted(self.failed_by_result.items())},
            "retry_dir": text(self.retry_dir),
            "retry_files": [str(p) for p in self.retry_files],
            "retry_customers": self.retry_customers,
            "failed_file": text(self.failed_file),
            "single_failures_dir": text(self.single_failures_dir),
            "output_dir": text(self.output_dir),
            "duration_s": round(self.duration_s, 3),
            "customers_per_s": round(self.total / self.duration_s, 1) if self.duration_s else 0,
            "cancelled": self.cancelled,
            "fatal_error": self.fatal_error,
            "problems": self.problems,
            "write_errors": self.write_errors,
            "files": self.files,
            "skipped_files": self.skipped_files,
            "notes": self.notes,
            "job": self.job,
            "resumed": self.resumed,
            "refused": self.refused,
            "skipped_already_imported": self.skipped_already_imported,
            "resolved": self.resolved,
            "created_before_interruption": self.created_before_interruption,
            "open_failures": self.open_failures,
            "valid": max(0, self.total - self.invalid),
            "invalid": self.invalid,
            "error_report": text(self.error_report),
            "on_existing": self.on_existing,
            "skipped": self.skipped_existing,
            "updated": self.updated,
            "dry_run": self.dry_run,
            "error": self.error or self.refused,
            "result_files_complete": self.result_files_complete,
        }


class ImportListener:
    """Receives an import's events, always on the event loop's thread. Override what you need.

    The GUI bridges these to Qt signals (and keeps its failure list from the failures
    reported); the command line prints them.
    """

    def progress(self, progress: ImportProgress) -> None:
        """A few times a second while the import runs, and once at the end."""

    def problem(self, message: str) -> None:
        """A file or line could not be read (the import goes on with the rest)."""

    def note(self, message: str) -> None:
        """Something to know now, while the import goes on (little free space, the import
        history in use by another program and waited for)."""

    def paused(self, reason: str) -> None:
        """The import paused itself: it cannot record what it would send (a result file or
        the import history cannot be written: a full disk, a folder that became read-only,
        the history held by another program). `resume()` once that is fixed, or `cancel()`."""

    def retry_file_written(self, path: Path) -> None:
        """A retry batch file was written."""

    def failures_found(self, records: Collection[FailureRecord]) -> None:
        """Customers failed (refused before sending, or by the service, or not sent), each
        record naming its job; as batches finish. (From an import in a helper process the
        records are unpacked only when iterated: `len()` costs nothing.)"""

    def failures_resolved(self, keys: list[str], job_id: int, when: str) -> None:
        """Open failures of earlier jobs (their customer keys) were imported by job
        `job_id` at `when` (the journal's time text)."""

    def finished(self, summary: ImportSummary) -> None:
        """The import ended, whatever the reason; all result files are written."""
