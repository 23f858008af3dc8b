"""Every result file of one import, written away from the event loop.

`ImportResultFiles` is the plain synchronous writer of one import's retry folder,
single-failure files, kept API answers and `failed_customers.json`. `ResultFileWriter` runs
it on a background thread (small imports) or in a separate process (large ones): writing
one file per failed customer is a lot of Python work, and in a thread it competes with the
window for Python's global lock, so 100,000 failures would make the window stutter.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from app.models.failure_store import FAILED_CUSTOMERS_FILE
from app.models.records import ROW_BATCH, ROW_KEY, FailureRecord, FailureRow
from app.services.jobs.journal import Journal, JournalError
from app.services.results.failure_list_file import load_failure_list, write_failure_list
from app.services.results.output_folder import FolderBusy, merging_results
from app.services.results.result_writers import (
    ApiResponseWriter,
    RetryFolderWriter,
    SingleFailureWriter,
)
from app.util.helper_processes import begin_helper_process

_CAUSES_SHOWN = 3  # causes of unwritten files named in a message
_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(slots=True)
class ResultFilesReport:
    """What `ImportResultFiles.finish` wrote."""

    retry_files: list[Path] = field(default_factory=list)  # written by finish itself
    retry_dir: Path | None = None
    retry_customers: int = 0
    single_failures_dir: Path | None = None
    failed_file: Path | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth telling, not errors


class ImportResultFiles:
    """Writes the result files of one import as its failures come in. One caller at a time.

    `journal_dir` holds the import history when the results go elsewhere (another folder
    chosen mid-import).
    """

    def __init__(self, output_dir: Path, started_at: datetime, *,
                 write_single_failures: bool = True,
                 retry_folder: Path | None = None,
                 journal_dir: Path | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.journal_dir = Path(journal_dir) if journal_dir is not None else self.output_dir
        self.write_single_failures = write_single_failures
        self._retry = RetryFolderWriter(self.output_dir, started_at, retry_folder)
        self._single = SingleFailureWriter(self.output_dir)
        self._responses = ApiResponseWriter(self.output_dir)
        self._failures: list[FailureRow] = []  # rows: nothing for the collector to walk

    def add_failures(self, batch_number: int,
                     failures: Sequence[FailureRecord | FailureRow]) -> list[Path]:
        """File the failures of one original batch (0: refused before sending).

        The engine passes rows (see `FailureRecord.to_row`): they wait in its queue to the
        writer, and tuples of plain values cost the garbage collector nothing there.
        Returns the retry files this wrote. The retry file first: it holds the whole batch,
        and a single-failure file that cannot be written is counted, not raised (see
        `SingleFailureWriter.add`), so the rest of the group is written all the same.
        """
        rows = [f.to_row() if isinstance(f, FailureRecord) else f for f in failures]
        self._failures.extend(rows)
        records = [FailureRecord.from_row(row) for row in rows]
        written = self._retry.add_batch(batch_number, records)
        if self.write_single_failures:
            for record in records:
                self._single.add(record)
        return written

    def add_failure_batches(self, groups: Sequence[tuple[int, Sequence[FailureRow]]]
                            ) -> list[Path]:
        """`add_failures` for several batches: (batch number, rows) each."""
        written: list[Path] = []
        for batch_number, rows in groups:
            written.extend(self.add_failures(batch_number, rows))
        return written

    def note_uncertain(self, ids: set[str]) -> None:
        """Customers sent in a request whose outcome is unknown (listed in the summary)."""
        self._retry.note_uncertain(ids)

    def add_response(self, *, batch_label: str, batch_number: int, status: int | None,
                     headers: dict[str, str], body: bytes, customer_ids: list[str],
                     note: str) -> Path | None:
        """Keep a failing batch's answer, redacted (see `ApiResponseWriter.add`)."""
        return self._responses.add(batch_label=batch_label, batch_number=batch_number,
                                   status=status, headers=headers, body=body,
                                   customer_ids=customer_ids, note=note)

    def retry_folder(self) -> Path | None:
        """The retry folder made so far (None while nothing needed one)."""
        return self._retry.folder

    def finish(self, totals: dict[str, Any], source_files: list[str], *,
               job_id: int | None = None, lists_changed: bool = True,
               whole_job: bool = False) -> ResultFilesReport:
        """Write what is still pending, the summaries and `failed_customers.json`.

        With `job_id`, the lists every import of the folder shares (failed_customers.json,
        the single-failure summaries) are made again from the journal's open failures, and
        the files of customers this job resolved move to `failed_customers/resolved/`.
        `lists_changed` False: this import neither failed nor resolved anyone.
        `whole_job` (a resumed job): the job's open failures of its earlier runs join this
        run's retry files, and their missing single-failure files are written.
        """
        report = ResultFilesReport()
        try:
            if whole_job and job_id is not None:
                report.retry_files.extend(self._add_earlier_failures(job_id, report))
            report.retry_files.extend(self._retry.finish(totals, source_files))
            if self._failures or (job_id is not None and lists_changed):
                self._write_shared_lists(report, job_id)
        except OSError as exc:  # the cause, not the file's name: it may name a customer
            report.errors.append(f"could not write result files in {self.output_dir}: "
                                 f"{exc.strerror or exc}")
        except sqlite3.Error as exc:  # the history's earlier failures: this run's still go
            report.errors.append(f"the import history could not be read ({exc}); the "
                                 "result files hold this run's failures only")
        self._report_single_failure_problems(report)
        report.retry_dir = self._retry.folder
        report.retry_customers = self._retry.customers_written
        return report

    def _report_single_failure_problems(self, report: ResultFilesReport) -> None:
        """Single-failure files not written, or not moved aside: how many and why (the
        causes only; a file's name holds the customer's id and name)."""
        unwritten = self._single.unwritten
        if unwritten:
            count = unwritten.total()
            report.errors.append(
                f"{count:,} single-failure file{'s' if count != 1 else ''} could not be "
                f"written in {self._single.root} ({_causes(unwritten)}); those customers "
                "are in failed_customers.json, and the retry files hold the ones that can "
                "be sent again as they are")
        unmoved = self._single.unmoved
        if unmoved:
            count = unmoved.total()
            report.notes.append(
                f"{count:,} single-failure file{'s' if count != 1 else ''} of customers "
                "this import brought in could not be moved to failed_customers/resolved "
                f"({_causes(unmoved)}); they were left where they are")

    def _add_earlier_failures(self, job_id: int, report: ResultFilesReport) -> list[Path]:
        """A resumed job's failures of earlier runs, still open: into this run's retry
        files, and their single-failure files where they are missing (an earlier run
        stopped on a full disk, say). Returns the retry files written."""
        try:
            journal = Journal.open(self.journal_dir, create=False)
        except JournalError as exc:
            report.errors.append(f"{exc}; the retry files hold this run's failures only")
            return []
        this_run = {row[ROW_KEY] for row in self._failures}
        groups: dict[int, list[FailureRow]] = {}
        try:
            for row in journal.failure_rows(state="open", job=job_id):
                if row[ROW_KEY] not in this_run:
                    groups.setdefault(row[ROW_BATCH], []).append(row)
        finally:
            journal.close()
        written: list[Path] = []
        for batch_number, rows in sorted(groups.items()):
            self._failures.extend(rows)
            failures = [FailureRecord.from_row(row) for row in rows]
            written.extend(self._retry.add_batch(batch_number, failures))
            if self.write_single_failures:
                for failure in failures:
                    path = self._single.path_for(
                        failure.result, failure.customer_id, failure.username,
                        failure.kind.value, failure.source_file, failure.record_number)
                    if not path.exists():
                        self._single.add(failure)
        return written

    def _write_shared_lists(self, report: ResultFilesReport, job_id: int | None) -> None:
        """The lists every import of the folder shares, under the folder's lock.

        Another import saving at the same moment waits rather than writing over this one.
        Should the lock never come free, this import's failures are saved in a file of
        their own instead: never lost.
        """
        failed_file = self.output_dir / FAILED_CUSTOMERS_FILE
        try:
            with merging_results(self.output_dir, on_wait=report.notes.append):
                if job_id is not None and self._from_journal(failed_file, job_id, report):
                    pass
                else:
                    self._merge_without_journal(failed_file)
        except FolderBusy as exc:
            stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
            failed_file = failed_file.with_name(f"failed_customers_{stamp}.json")
            write_failure_list(failed_file, self._failures)
            report.errors.append(f"{exc}: this import's failures were saved apart in "
                                 f"{failed_file} instead of being added to "
                                 "failed_customers.json")
        report.failed_file = failed_file
        if self._single.files_written or self._single.root.exists():
            report.single_failures_dir = self._single.root

    def _from_journal(self, failed_file: Path, job_id: int,
                      report: ResultFilesReport) -> bool:
        try:
            journal = Journal.open(self.journal_dir, create=False)
        except JournalError as exc:
            report.errors.append(f"{exc}; failed_customers.json holds this import's failures "
                                 "merged by customer instead")
            return False
        try:
            write_failure_list(failed_file, journal.failure_rows(state="open"))
            if self.write_single_failures:
                moved = self._single.finish(journal.failure_rows(state="open"),
                                            journal.failure_rows(state="resolved",
                                                                 resolved_by=job_id))
                if moved:
                    report.notes.append(f"{moved:,} single-failure files of customers this "
                                        "import brought in were moved to "
                                        "failed_customers/resolved")
        finally:
            journal.close()
        return True

    def _merge_without_journal(self, failed_file: Path) -> None:
        """No journal to ask: this import's failures merged into the list, by customer."""
        merged = {record.customer_key: record for record in load_failure_list(failed_file)}
        for row in self._failures:
            record = FailureRecord.from_row(row)
            earlier = merged.get(record.customer_key)
            if earlier is not None:
                record.attempts = earlier.attempts + 1
            merged[record.customer_key] = record
        write_failure_list(failed_file, (r.to_row() for r in merged.values()))
        if self.write_single_failures:
            self._single.finish((r.to_row() for r in merged.values()), ())


def _causes(counts: Counter[str]) -> str:
    """`cause: n` for the most common causes, `; `-separated."""
    shown = counts.most_common(_CAUSES_SHOWN)
    text = "; ".join(f"{cause}: {count:,}" for cause, count in shown)
    if len(counts) > len(shown):
        text += "; other causes"
    return text


def lower_process_priority() -> None:
    """Let interactive processes (the window) win the CPU over this one's background work."""
    try:
        if sys.platform == "win32":
            import ctypes

            below_normal_priority_class = 0x4000
            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel32.SetPriorityClass(kernel32.GetCurrentProcess(),
                                      below_normal_priority_class)
        else:
            os.nice(5)
    except (OSError, AttributeError):
        pass  # not allowed or not supported: same priority is merely less smooth


# The writer process holds exactly one ImportResultFiles; each job is one of its methods.
_process_files: ImportResultFiles | None = None


def _start_writer_process(output_dir: Path, started_at: datetime,
                          write_single_failures: bool, retry_folder: Path | None,
                          journal_dir: Path | None = None) -> None:
    global _process_files
    begin_helper_process()
    lower_process_priority()
    _process_files = ImportResultFiles(output_dir, started_at,
                                       write_single_failures=write_single_failures,
                                       retry_folder=retry_folder, journal_dir=journal_dir)


def _call_in_writer_process(method: Callable[..., _R], args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> _R:
    """`method` (of ImportResultFiles: pickled by its name) on the process's writer."""
    assert _process_files is not None, "the writer process was not started"
    return method(_process_files, *args, **kwargs)


class ResultFileWriter:
    """Runs an `ImportResultFiles` on one background thread or in one separate process.

    Each method submits the `ImportResultFiles` method of the same name and returns a
    concurrent Future with its result; jobs run one at a time in the order submitted. In a
    process, a crash makes pending and later jobs fail with
    `concurrent.futures.process.BrokenProcessPool` (and the methods raise it at once when
    the process is known dead); the caller decides how to recover.
    """

    def __init__(self, output_dir: Path, started_at: datetime, *,
                 write_single_failures: bool = True, use_process: bool = False,
                 retry_folder: Path | None = None, journal_dir: Path | None = None) -> None:
        self.in_process = use_process
        self.output_dir = Path(output_dir)
        self._files: ImportResultFiles | None = None
        self._executor: Executor
        if use_process:
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_writer_process,
                initargs=(Path(output_dir), started_at, write_single_failures, retry_folder,
                          journal_dir))
        else:
            self._files = ImportResultFiles(output_dir, started_at,
                                            write_single_failures=write_single_failures,
                                            retry_folder=retry_folder, journal_dir=journal_dir)
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="result-writer")

    def add_failure_batches(self, groups: Sequence[tuple[int, Sequence[FailureRow]]]
                            ) -> Future[list[Path]]:
        """`ImportResultFiles.add_failure_batches`: the retry files written."""
        return self._submit(ImportResultFiles.add_failure_batches, groups)

    def note_uncertain(self, ids: set[str]) -> Future[None]:
        """`ImportResultFiles.note_uncertain`."""
        return self._submit(ImportResultFiles.note_uncertain, ids)

    def add_response(self, *, batch_label: str, batch_number: int, status: int | None,
                     headers: dict[str, str], body: bytes, customer_ids: list[str],
                     note: str) -> Future[Path | None]:
        """`ImportResultFiles.add_response`: the file written, if any."""
        return self._submit(ImportResultFiles.add_response, batch_label=batch_label,
                            batch_number=batch_number, status=status, headers=headers,
                            body=body, customer_ids=customer_ids, note=note)

    def retry_folder(self) -> Future[Path | None]:
        """`ImportResultFiles.retry_folder`."""
        return self._submit(ImportResultFiles.retry_folder)

    def finish(self, totals: dict[str, Any], source_files: list[str], *,
               job_id: int | None = None, lists_changed: bool = True,
               whole_job: bool = False) -> Future[ResultFilesReport]:
        """`ImportResultFiles.finish`: what it wrote."""
        return self._submit(ImportResultFiles.finish, totals, source_files, job_id=job_id,
                            lists_changed=lists_changed, whole_job=whole_job)

    def _submit(self, method: Callable[Concatenate[ImportResultFiles, _P], _R],
                *args: _P.args, **kwargs: _P.kwargs) -> Future[_R]:
        """`method` of the ImportResultFiles on the writer's thread or in its process."""
        if self._files is not None:
            return self._executor.submit(method, self._files, *args, **kwargs)
        return self._executor.submit(_call_in_writer_process, method, args, kwargs)

    def process_id(self) -> Future[int]:
        """The id of the process that writes (this one's for a thread)."""
        return self._executor.submit(os.getpid)

    def shutdown(self) -> None:
        """Let the thread or process end once the jobs already submitted are done."""
        self._executor.shutdown(wait=False)

    def stop(self) -> None:
        """Drop the jobs not started yet, wait for the one under way, end (blocks)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
