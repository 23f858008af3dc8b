"""Journals one running job: its batches, failures, resolved customers, counts and state.

The import engine tells it what happens, on the event loop; every write goes through a
`JournalWriter` thread, so the engine never waits on the disk, except for `queued`: a
batch is sent only once the journal knows it may be (see `JournalWriter.checkpoint`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

from app.models.record_ranges import RecordRanges
from app.models.records import ROW_KEY, Batch, FailureRecord, Result
from app.services.jobs import journal as ops
from app.services.jobs.job_plan import JobPlan, PlannedFile
from app.services.jobs.journal import JobState, now_text
from app.services.jobs.journal_writer import JOURNAL_WAIT_S, JournalTrouble, JournalWriter


class JobRecorder:
    """The journal side of one import run (new or resumed).

    `resolved` lists the customers whose open failure this run resolved. `on_trouble` hears
    when the journal is unavailable for a while, and once it is written again (see
    `JournalWriter`); nothing is dropped meanwhile.
    """

    def __init__(self, journal_path: Path, plan: JobPlan, *, wait_s: float = JOURNAL_WAIT_S,
                 on_trouble: Callable[[JournalTrouble | None], None] | None = None) -> None:
        self.job_id = plan.job_id
        self.plan = plan
        self._writer = JournalWriter(journal_path, wait_s=wait_s, on_trouble=on_trouble)
        self._open_keys = plan.open_keys
        self._reading: list[PlannedFile] = plan.files_to_read  # by the reader's file index
        self._by_path = {str(f.path): f for f in plan.files}
        self.resolved: list[str] = []

    @property
    def error(self) -> str | None:
        return self._writer.error

    def job_file(self, batch: Batch) -> PlannedFile:
        return self._reading[batch.file_index]

    def queued(self, batches: list[Batch]) -> Future[None]:
        """Batches about to be sent; the future completes once the journal holds them."""
        rows = [(b.number, self.job_file(b).index, RecordRanges.of(b.record_numbers).to_text(),
                 len(b)) for b in batches]
        job = self.job_id
        self._writer.write(lambda db: ops.queue_batches(db, job, rows))
        return self._writer.checkpoint()

    def finished(self, batch: Batch, succeeded: int, failures: list[FailureRecord]
                 ) -> list[str]:
        """A batch's outcome; returns the keys of customers whose open failure it resolves."""
        for failure in failures:
            failure.job = self.job_id
        if failures and all(f.whole_batch for f in failures) and len(failures) >= len(batch):
            state = (ops.BATCH_NOT_SENT if all(f.result == Result.NOT_SENT for f in failures)
                     else ops.BATCH_FAILED)
        else:
            state = ops.BATCH_DONE
        resolving: list[str] = []
        if self._open_keys:  # only customers that failed before can be resolved
            failed_ids = {f.customer_id for f in failures}
            kind = batch.kind.value
            open_keys = self._open_keys
            resolving = [key for key in (f"{kind}:id:{i}" for i in batch.ids
                                         if i and i not in failed_ids) if key in open_keys]
            open_keys.difference_update(resolving)
        self._open_keys.update(f.customer_key for f in failures)
        rows = self._failure_rows(failures)
        job, number, when = self.job_id, batch.number, now_text()
        failed = len(failures)

        def write(db: sqlite3.Connection) -> None:
            ops.finish_batch(db, job, number, state, succeeded, failed)
            if rows:
                ops.record_failures(db, job, rows)
            if resolving:
                ops.resolve_failures(db, job, resolving, when)

        self._writer.write(write)
        self.resolved.extend(resolving)
        return resolving

    def refused(self, failures: list[FailureRecord]) -> None:
        """Entries refused before sending (INVALID): failures, and handled for good."""
        for failure in failures:
            failure.job = self.job_id
        self._open_keys.update(f.customer_key for f in failures)
        rows = self._failure_rows(failures)
        by_file: dict[int, list[int]] = {}
        for failure in failures:
            planned = self._by_path.get(failure.source_file)
            if planned is not None:
                by_file.setdefault(planned.index, []).append(failure.record_number)
        handled = [(index, RecordRanges.of(numbers).to_text(), len(numbers))
                   for index, numbers in by_file.items()]
        job = self.job_id

        def write(db: sqlite3.Connection) -> None:
            ops.record_failures(db, job, rows)
            for index, ranges, count in handled:
                ops.add_invalid_records(db, job, index, ranges, count)

        self._writer.write(write)

    def files_read(self, files: Iterable[tuple[int, int]]) -> None:
        """Files read to their end: (the reader's file index, entries read)."""
        done = [(self._reading[i].index, records) for i, records in files]
        job = self.job_id
        if not done:
            return

        def write(db: sqlite3.Connection) -> None:
            for index, records in done:
                ops.file_read(db, job, index, records)

        self._writer.write(write)

    def counts(self, *, read: int, succeeded: int, failed: int, skipped: int) -> None:
        earlier = self.plan.earlier
        values = {"read": read + earlier.get("read", 0),
                  "succeeded": succeeded + earlier.get("succeeded", 0),
                  "failed": failed + earlier.get("failed", 0),
                  "skipped": skipped + earlier.get("skipped", 0)}
        job = self.job_id
        self._writer.write(lambda db: ops.update_counts(db, job, **values))

    def state(self, state: JobState) -> None:
        job = self.job_id
        self._writer.write(lambda db: ops.set_state(db, job, state))

    def close(self) -> None:
        """Commit everything written so far and stop the writing thread (blocks; while the
        journal is unavailable, up to the writer's `wait_s`)."""
        self._writer.close()

    def _failure_rows(self, failures: list[FailureRecord]) -> list[tuple[object, ...]]:
        rows = []
        for failure in failures:
            row = failure.to_row()
            planned = self._by_path.get(failure.source_file)
            origin_sha = planned.fingerprint.sha256 if planned is not None else None
            rows.append((*row[:ROW_KEY + 1], origin_sha, failure.record_number))
        return rows
