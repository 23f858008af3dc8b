"""The import journal: every import a job, in a SQLite database beside its result files.

One database per results folder (`import_history.sqlite`), shared by every import that
writes there (two windows, a window and a scheduled command line: SQLite serialises them).
It holds, per job, its files (path, size, SHA-256), its settings (never a secret), its
state, counts, start and end, and a journal of its batches (which file, which records,
and whether each is queued, done, failed or not sent); and, per customer, the failures
that are still open and those a later job resolved.

The schema is versioned (`PRAGMA user_version`) with migrations. A database written by a
newer version is refused (`JournalTooNew`); one that cannot be read is moved aside and a
new one started (`Journal.notes` says so). Nothing here ever deletes result files.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from app.models.failure_query import LIST_COLUMNS_DDL, LIST_INDEXES_DDL
from app.models.jobs import RESUMABLE, FileFingerprint, FileHistory, JobRecord, JobState
from app.models.record_ranges import RecordRanges
from app.services.results.network_folders import ShareCheck, network_share

__all__ = ["RESUMABLE", "FileFingerprint", "FileHistory", "JobRecord", "JobState", "Journal",
           "JournalBusy", "JournalError", "JournalTooNew"]

JOURNAL_FILE = "import_history.sqlite"
SCHEMA_VERSION = 3
#: How long one statement waits for another program's lock before SQLite says "busy".
BUSY_TIMEOUT_S = 30.0

# SQLite's primary result codes (the low byte of an extended code)
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_PROTOCOL = 10, 13, 14, 15


#: Batch states: queued (formed, perhaps sent), done (answered), failed (whole batch, after
#: the retries), not_sent (the import stopped first), superseded (queued or not sent when
#: the job stopped: its records are sent again, in new batches, when the job is resumed).
BATCH_QUEUED, BATCH_DONE, BATCH_FAILED, BATCH_NOT_SENT = "queued", "done", "failed", "not_sent"
BATCH_SUPERSEDED = "superseded"


class JournalError(Exception):
    """The journal cannot be used; the message says why, in words for a user."""


class JournalTooNew(JournalError):
    """The database was written by a newer version of the app."""


class JournalBusy(JournalError):
    """Another program holds the database (a lock): waiting may help, nothing else does."""


def sqlite_code(exc: BaseException) -> int | None:
    """SQLite's primary result code of an error (None when it has none)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: BaseException) -> bool:
    """Another connection holds the database: "database is locked", "database is busy"."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def is_transient(exc: BaseException) -> bool:
    """A write that may succeed later, once the lock, the disk or the folder allows:
    busy, full, read-only, no permission, an I/O error; not a mistake in the SQL."""
    if is_busy(exc):
        return True
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = sqlite_code(exc)
    if code is not None:
        return code in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL,
                        _SQLITE_CANTOPEN, _SQLITE_PROTOCOL)
    text = str(exc).lower()
    return any(word in text for word in ("disk is full", "readonly", "i/o error",
                                         "unable to open"))


_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL DEFAULT 'import',
        state TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT,
        settings TEXT NOT NULL DEFAULT '{}',
        owner TEXT,
        read INTEGER NOT NULL DEFAULT 0,
        succeeded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        duration_s REAL NOT NULL DEFAULT 0,
        retry_dir TEXT,
        error TEXT,
        hidden INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE job_files (
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        file_index INTEGER NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        mtime REAL NOT NULL DEFAULT 0,
        records INTEGER,
        PRIMARY KEY (job_id, file_index)
    );
    CREATE INDEX job_files_by_sha ON job_files(sha256);
    CREATE TABLE batches (
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        number INTEGER NOT NULL,
        file_index INTEGER NOT NULL,
        records TEXT NOT NULL,
        customers INTEGER NOT NULL,
        state TEXT NOT NULL,
        succeeded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, number)
    );
    CREATE TABLE failures (
        key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        username TEXT NOT NULL,
        result TEXT NOT NULL,
        error TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        batch_info TEXT NOT NULL,
        source_file TEXT NOT NULL,
        record_number INTEGER NOT NULL,
        batch_number INTEGER NOT NULL,
        http_status INTEGER,
        kind TEXT NOT NULL,
        retriable INTEGER NOT NULL,
        whole_batch INTEGER NOT NULL,
        original BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        first_job INTEGER NOT NULL,
        last_job INTEGER NOT NULL,
        origin_sha TEXT,
        origin_record INTEGER,
        resolved_job INTEGER,
        resolved_at TEXT
    );
    CREATE INDEX failures_by_state ON failures(state, timestamp);
    CREATE INDEX failures_by_origin ON failures(origin_sha);
    """,
    # duplicate strategies and spreadsheet sources: what a job updated or skipped as
    # existing, and where its error report is
    2: """
    ALTER TABLE jobs ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN skipped_existing INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN error_report TEXT;
    """,
    # the Failed Customers list reads the failures in SQL: sort keys (generated columns,
    # no room taken) and an index per sort column, so a million of them sort in an index
    # scan (see app.models.failure_query)
    3: ";\n".join((*LIST_COLUMNS_DDL, *LIST_INDEXES_DDL)),
}


def journal_path(output_dir: Path) -> Path:
    return Path(output_dir) / JOURNAL_FILE


def connect(path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection set up as every user of the journal needs it; a statement waits up to
    `busy_timeout_s` for another program's lock."""
    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None,
                                 check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    # per connection, unlike WAL mode: WAL with NORMAL sync loses nothing committed when the
    # process is killed; only a power cut can lose the last commits, never consistency.
    # FULL would wait for the disk at every commit.
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


class Journal:
    """The journal of one results folder. Open with `Journal.open(folder)`.

    Methods run SQL directly: call them from worker threads, never the event loop or the
    GUI thread when they may be long (the import writes through `JournalWriter`).
    `notes` lists what a user should hear about opening it (a corrupt file moved aside).
    """

    def __init__(self, path: Path, connection: sqlite3.Connection,
                 notes: list[str] | None = None) -> None:
        self.path = path
        self.connection = connection
        self.notes = notes or []

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, output_dir: Path, *, create: bool = True,
             busy_timeout_s: float = BUSY_TIMEOUT_S,
             share_check: ShareCheck | None = network_share) -> Journal:
        """Open (or create) the journal of `output_dir`, migrating it to this version.

        Raises JournalTooNew for a database of a newer version, JournalBusy when another
        program held it for `busy_timeout_s`, JournalError when it cannot be opened at all
        (for example a read-only folder). `share_check` tells whether the folder is on a
        network share, where the rollback journal replaces WAL (see network_folders).
        """
        path = journal_path(output_dir)
        notes: list[str] = []
        share = share_check(Path(output_dir)) if share_check is not None else None
        if not path.exists() and not create:
            raise JournalError(f"no import history in {output_dir}")
        for attempt in range(2):
            try:
                if create:
                    from app.util.atomic_files import make_private_folder

                    make_private_folder(Path(output_dir))
                connection = connect(path, busy_timeout_s)
                created = cls._prepare(connection, path, share, notes)
                journal = cls(path, connection, notes)
                if created:
                    journal._take_in_earlier_failure_list()
                return journal
            except JournalTooNew:
                raise
            except sqlite3.DatabaseError as exc:
                with contextlib.suppress(Exception):
                    connection.close()
                if is_busy(exc):
                    held = (f"is in use by another program, or {share}'s file locks do "
                            "not work" if share else "is in use by another program")
                    raise JournalBusy(f"the import history {path} {held} ({exc})") from None
                if attempt or not path.exists() or not _looks_damaged(exc):
                    where = (f" ({share}: SQLite needs the share's file locks to work)"
                             if share else "")
                    raise JournalError(f"the import history {path} cannot be opened{where} "
                                       f"({exc})") from None
                with contextlib.suppress(Exception):
                    connection.close()
                aside = _move_aside(path)
                notes.append(f"the import history {path.name} could not be read ({exc}); it "
                             f"was moved aside as {aside.name} and a new one started. Result "
                             "files are untouched.")
            except OSError as exc:
                raise JournalError(f"the import history {path} cannot be opened "
                                   f"({exc.strerror or exc})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _prepare(connection: sqlite3.Connection, path: Path, share: str | None,
                 notes: list[str]) -> bool:
        """Settings, version check and migrations; True when the database was new."""
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        mode = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        # WAL's index is shared memory, which computers do not share: on a network share
        # the rollback journal. A history once switched to it stays so, even when opened
        # locally (on the file server itself), so that the other computers keep working.
        wanted = "delete" if share else ("wal" if version == 0 or mode == "wal" else mode)
        if mode != wanted:
            try:
                mode = str(connection.execute(
                    f"PRAGMA journal_mode = {wanted.upper()}").fetchone()[0]).lower()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise  # leaving WAL needs the database to itself: another has it open
            if share and mode == "wal":
                notes.append(f"the import history {path.name} is on {share} and should use "
                             "SQLite's rollback journal there, but another import has it "
                             "open: it is switched once no other import uses it")
        if version > SCHEMA_VERSION:
            connection.close()
            raise JournalTooNew(
                f"the import history in this results folder ({path.name}) was written by a "
                f"newer version of Bulk Customer Import (history version {version}; this "
                f"version reads up to {SCHEMA_VERSION}). Update the app, or choose another "
                "results folder.")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # readable?
        for target in range(version + 1, SCHEMA_VERSION + 1):
            connection.execute("BEGIN IMMEDIATE")
            try:
                current = connection.execute("PRAGMA user_version").fetchone()[0]
                if current < target:  # another process may have migrated meanwhile
                    for statement in _statements(_MIGRATIONS[target]):
                        connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {target}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        return version == 0

    def _take_in_earlier_failure_list(self) -> None:
        """A folder an earlier version wrote into: its failed_customers.json becomes the
        journal's open failures (one per customer), so that none of them is forgotten."""
        from app.models.failure_store import FAILED_CUSTOMERS_FILE
        from app.services.results.failure_list_file import load_failure_list

        failed_file = self.path.parent / FAILED_CUSTOMERS_FILE
        if not failed_file.exists():
            return
        try:
            records = load_failure_list(failed_file)
        except (OSError, ValueError) as exc:
            aside = failed_file.with_suffix(".unreadable.json")
            with contextlib.suppress(OSError):
                os.replace(failed_file, aside)
            self.notes.append(f"{failed_file.name} could not be read ({exc}); it was kept as "
                              f"{aside.name}")
            return
        latest: dict[str, Any] = {}
        for record in records:
            earlier = latest.get(record.customer_key)
            if earlier is not None:
                record.attempts = earlier.attempts + 1
            latest[record.customer_key] = record
        rows = []
        for record in latest.values():
            row = record.to_row()
            rows.append((*row[:15], record.attempts, record.source_file, record.record_number))
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO failures (customer_id, username, result, error, "
                "timestamp, batch_info, original, source_file, record_number, batch_number, "
                "http_status, kind, retriable, whole_batch, key, attempts, first_job, last_job,"
                " state, origin_sha, origin_record) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,0,'open',NULL,?)",
                [(*r[:16], r[17]) for r in rows])
        if rows:
            self.notes.append(f"{len(rows):,} failed customers of earlier imports were taken "
                              f"over from {failed_file.name} into the import history")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): short, grouped writes."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, *, kind: str, settings: dict[str, Any],
                   files: Sequence[FileFingerprint], owner: str | None) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (kind, state, started, settings, owner) VALUES (?,?,?,?,?)",
                (kind, JobState.RUNNING.value, now_text(), json.dumps(settings), owner))
            job_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO job_files (job_id, file_index, path, size, sha256, mtime) "
                "VALUES (?,?,?,?,?,?)",
                [(job_id, i, f.path, f.size, f.sha256, f.mtime) for i, f in enumerate(files)])
        return job_id

    def take_over(self, job_id: int, owner: str) -> int:
        """A resumed job: this process runs it now. Returns the number its next batch gets.

        What was queued or not sent when it stopped is sent again in new batches, so those
        batches no longer count (but what was queued stays "maybe sent").
        """
        with self.transaction() as db:
            db.execute("UPDATE jobs SET state = ?, owner = ?, finished = NULL, error = NULL "
                       "WHERE id = ?", (JobState.RUNNING.value, owner, job_id))
            db.execute("UPDATE batches SET state = ? WHERE job_id = ? AND state IN (?, ?)",
                       (BATCH_SUPERSEDED, job_id, BATCH_QUEUED, BATCH_NOT_SENT))
            last = db.execute("SELECT max(number) FROM batches WHERE job_id = ?",
                              (job_id,)).fetchone()[0]
        return max(1, (last or 0) + 1)

    def job(self, job_id: int, is_alive: Callable[[str], bool] | None = None) -> JobRecord:
        jobs = self.jobs(is_alive, only=job_id)
        if not jobs:
            raise JournalError(f"there is no job #{job_id} in {self.path.parent}")
        return jobs[0]

    def jobs(self, is_alive: Callable[[str], bool] | None = None, *,
             only: int | None = None) -> list[JobRecord]:
        """Jobs, newest first, with their files and open failures.

        `is_alive(owner)` tells whether the process that owns a running job still lives;
        a running job without one is reported as interrupted.
        """
        where = "WHERE hidden = 0" + (" AND id = ?" if only is not None else "")
        args: tuple[Any, ...] = (only,) if only is not None else ()
        rows = self.connection.execute(
            "SELECT id, kind, state, started, finished, settings, read, succeeded, failed, "
            "skipped, duration_s, retry_dir, error, owner, updated, skipped_existing, "
            "error_report FROM jobs "
            f"{where} ORDER BY id DESC", args).fetchall()
        if not rows:
            return []
        open_by_job = dict(self.connection.execute(
            "SELECT last_job, count(*) FROM failures WHERE state = 'open' GROUP BY last_job"
        ).fetchall())
        files: dict[int, list[FileFingerprint]] = {}
        file_rows = self.connection.execute(
            "SELECT job_id, path, size, sha256, mtime FROM job_files"
            + (" WHERE job_id = ?" if only is not None else "") + " ORDER BY job_id, file_index",
            args).fetchall()
        for job_id, path, size, sha, mtime in file_rows:
            files.setdefault(job_id, []).append(FileFingerprint(path, size, sha, mtime))
        result = []
        recorded: dict[int, tuple[int, int]] | None = None
        for (job_id, kind, state, started, finished, settings, read, succeeded, failed,
             skipped, duration, retry_dir, error, owner, updated, skipped_existing,
             error_report) in rows:
            job_state = JobState(state)
            if job_state in (JobState.RUNNING, JobState.PAUSED) and is_alive is not None \
                    and not (owner and is_alive(owner)):
                job_state = JobState.INTERRUPTED
            if job_state in (JobState.RUNNING, JobState.PAUSED, JobState.INTERRUPTED):
                # its counters are written once a second; its batches with each commit:
                # an interrupted job imported what its finished batches say
                if recorded is None:
                    recorded = {job: (ok, bad) for job, ok, bad in self.connection.execute(
                        "SELECT job_id, sum(succeeded), sum(failed) FROM batches "
                        "GROUP BY job_id")}
                in_batches = recorded.get(job_id, (0, 0))
                succeeded, failed = max(succeeded, in_batches[0]), max(failed, in_batches[1])
            result.append(JobRecord(
                job_id, kind, job_state, started, finished, _json(settings), read,
                succeeded, failed, skipped, open_by_job.get(job_id, 0), duration,
                files.get(job_id, []), retry_dir, error, owner, updated, skipped_existing,
                error_report))
        return result

    def finish_job(self, job_id: int, state: JobState, *, duration_s: float,
                   retry_dir: str | None, error: str | None = None,
                   counts: tuple[int, int, int, int] | None = None,
                   error_report: str | None = None, updated: int = 0,
                   skipped_existing: int = 0) -> None:
        """The job ends (for now: a cancelled one may be resumed); `counts` are the whole
        job's (read, succeeded, failed, skipped); `updated` and `skipped_existing` are this
        run's (added to those of earlier runs of the job)."""
        with self.transaction() as db:
            db.execute("UPDATE jobs SET state = ?, finished = ?, duration_s = duration_s + ?, "
                       "retry_dir = coalesce(?, retry_dir), error = ?, owner = NULL, "
                       "error_report = coalesce(?, error_report), updated = updated + ?, "
                       "skipped_existing = skipped_existing + ? WHERE id = ?",
                       (state.value, now_text(), duration_s, retry_dir, error, error_report,
                        updated, skipped_existing, job_id))
            if counts is not None:
                update_counts(db, job_id, read=counts[0], succeeded=counts[1],
                              failed=counts[2], skipped=counts[3])

    def batch_totals(self, job_id: int) -> tuple[int, int, int]:
        """(customers handled, imported, failed) over the job's batches, all runs of it."""
        row = self.connection.execute(
            "SELECT coalesce(sum(customers), 0), coalesce(sum(succeeded), 0), "
            "coalesce(sum(failed), 0) FROM batches WHERE job_id = ? AND state NOT IN (?, ?)",
            (job_id, BATCH_QUEUED, BATCH_SUPERSEDED)).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def open_failure_count(self) -> int:
        return int(self.connection.execute(
            "SELECT count(*) FROM failures WHERE state = 'open'").fetchone()[0])

    def hide_job(self, job_id: int) -> None:
        """Delete a job from the history (its result files and failures stay)."""
        with self.transaction() as db:
            db.execute("UPDATE jobs SET hidden = 1 WHERE id = ?", (job_id,))

    # -- what earlier jobs did ---------------------------------------------------------------

    def file_history(self, sha256s: Sequence[str]) -> dict[str, FileHistory]:
        """For each file content (SHA-256) an earlier job read: what of it is imported."""
        result: dict[str, FileHistory] = {}
        for sha in dict.fromkeys(sha256s):
            reads = self.connection.execute(
                "SELECT f.job_id, f.file_index, f.records, j.started FROM job_files f "
                "JOIN jobs j ON j.id = f.job_id WHERE f.sha256 = ? ORDER BY f.job_id",
                (sha,)).fetchall()
            if not reads:
                continue
            done = RecordRanges()
            records = 0
            last_job, last_when = 0, ""
            for job_id, file_index, counted, started in reads:
                # folded in one batch at a time: thousands of batches parsed into a list
                # would live long enough to reach the collector's oldest generation
                found = False
                for (text,) in self.connection.execute(
                        "SELECT records FROM batches WHERE job_id = ? AND file_index = ? "
                        "AND state = ?", (job_id, file_index, BATCH_DONE)):
                    done = done | RecordRanges.parse(text)
                    found = True
                if counted:
                    records = max(records, counted)
                if found:
                    last_job, last_when = job_id, started
            resolved, still_open = self._failure_records_of(sha)
            imported = (done | resolved) - still_open
            result[sha] = FileHistory(sha, records, imported, len(still_open), last_job,
                                      last_when)
        return result

    def _failure_records_of(self, sha: str) -> tuple[RecordRanges, RecordRanges]:
        resolved: list[int] = []
        still_open: list[int] = []
        for state, record in self.connection.execute(
                "SELECT state, origin_record FROM failures WHERE origin_sha = ?", (sha,)):
            (still_open if state == "open" else resolved).append(record)
        return RecordRanges.of(resolved), RecordRanges.of(still_open)

    def handled_records(self, job_id: int) -> dict[int, tuple[RecordRanges, RecordRanges]]:
        """Per file of a job: (records handled for good, records maybe sent at a crash).

        Handled: answered, failed as a whole, or refused before sending. Maybe sent: in a
        batch that was queued when the job stopped; sent again, and a CONFLICT for them
        then means the earlier attempt created them.
        """
        handled: dict[int, list[RecordRanges]] = {}
        maybe: dict[int, list[RecordRanges]] = {}
        for file_index, text, state in self.connection.execute(
                "SELECT file_index, records, state FROM batches WHERE job_id = ?", (job_id,)):
            ranges = RecordRanges.parse(text)
            if state in (BATCH_DONE, BATCH_FAILED):
                handled.setdefault(file_index, []).append(ranges)
            elif state in (BATCH_QUEUED, BATCH_SUPERSEDED):
                maybe.setdefault(file_index, []).append(ranges)
        files = {index for (index,) in self.connection.execute(
            "SELECT file_index FROM job_files WHERE job_id = ?", (job_id,))}
        result = {}
        for index in files:
            done = RecordRanges([r for part in handled.get(index, []) for r in part.ranges()])
            queued = RecordRanges([r for part in maybe.get(index, []) for r in part.ranges()])
            result[index] = (done, queued - done)
        return result

    def open_failure_keys(self) -> set[str]:
        return {key for (key,) in self.connection.execute(
            "SELECT key FROM failures WHERE state = 'open'")}

    def failure_rows(self, *, state: str | None = "open", job: int | None = None,
                     resolved_by: int | None = None, batch_size: int = 2000
                     ) -> Iterator[tuple[Any, ...]]:
        """Failures as rows (see `FAILURE_COLUMNS`), oldest first, read in slices.

        `state`: "open", "resolved" or None for both; `job`: whose latest attempt was in
        that job; `resolved_by`: resolved by that job.
        """
        clauses: list[str] = []
        args: list[Any] = []
        if state is not None:
            clauses.append("state = ?")
            args.append(state)
        if job is not None:
            clauses.append("last_job = ?")
            args.append(job)
        if resolved_by is not None:
            clauses.append("resolved_job = ?")
            args.append(resolved_by)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        cursor = self.connection.execute(
            f"SELECT {', '.join(FAILURE_COLUMNS)} FROM failures {where} "
            "ORDER BY timestamp, key", args)
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield from rows


#: Failure columns in the order of a failure row (see app.models.records ROW_ positions).
FAILURE_COLUMNS = (
    "customer_id", "username", "result", "error", "timestamp", "batch_info", "original",
    "source_file", "record_number", "batch_number", "http_status", "kind", "retriable",
    "whole_batch", "key", "attempts", "last_job", "resolved_job", "resolved_at")


# -- the writes an import makes (run by JournalWriter, inside its transactions) ----------------

def queue_batches(db: sqlite3.Connection, job_id: int,
                  batches: Sequence[tuple[int, int, str, int]]) -> None:
    """Batches formed and about to be sent: (number, file index, record ranges, customers)."""
    db.executemany(
        "INSERT OR REPLACE INTO batches (job_id, number, file_index, records, customers, state)"
        " VALUES (?,?,?,?,?,?)",
        [(job_id, number, index, ranges, customers, BATCH_QUEUED)
         for number, index, ranges, customers in batches])


def finish_batch(db: sqlite3.Connection, job_id: int, number: int, state: str,
                 succeeded: int, failed: int) -> None:
    db.execute("UPDATE batches SET state = ?, succeeded = ?, failed = ? "
               "WHERE job_id = ? AND number = ?", (state, succeeded, failed, job_id, number))


def add_invalid_records(db: sqlite3.Connection, job_id: int, file_index: int,
                        ranges: str, customers: int) -> None:
    """Entries refused before sending: handled for good (a batch numbered below zero)."""
    number = -1 - db.execute("SELECT count(*) FROM batches WHERE job_id = ? AND number < 0",
                             (job_id,)).fetchone()[0]
    db.execute("INSERT INTO batches (job_id, number, file_index, records, customers, state, "
               "failed) VALUES (?,?,?,?,?,?,?)", (job_id, number, file_index, ranges, customers,
                                                  BATCH_FAILED, customers))


def record_failures(db: sqlite3.Connection, job_id: int,
                    rows: Sequence[tuple[Any, ...]]) -> None:
    """Failures as (failure row..., origin sha, origin record): one open row per customer.

    A customer failing again replaces the row (attempts + 1); the origin, the file where
    the customer was first found failing, is kept while the failure stays open.
    """
    db.executemany(
        "INSERT INTO failures (customer_id, username, result, error, timestamp, batch_info, "
        "original, source_file, record_number, batch_number, http_status, kind, retriable, "
        "whole_batch, key, attempts, first_job, last_job, state, origin_sha, origin_record) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?,'open',?,?) "
        "ON CONFLICT(key) DO UPDATE SET customer_id = excluded.customer_id, "
        "username = excluded.username, result = excluded.result, error = excluded.error, "
        "timestamp = excluded.timestamp, batch_info = excluded.batch_info, "
        "original = excluded.original, source_file = excluded.source_file, "
        "record_number = excluded.record_number, batch_number = excluded.batch_number, "
        "http_status = excluded.http_status, kind = excluded.kind, "
        "retriable = excluded.retriable, whole_batch = excluded.whole_batch, "
        "attempts = failures.attempts + 1, last_job = excluded.last_job, "
        "origin_sha = CASE WHEN failures.state = 'open' THEN failures.origin_sha "
        "ELSE excluded.origin_sha END, "
        "origin_record = CASE WHEN failures.state = 'open' THEN failures.origin_record "
        "ELSE excluded.origin_record END, "
        "state = 'open', resolved_job = NULL, resolved_at = NULL",
        [(*row[:14], row[14], job_id, job_id, origin_sha, origin_record)
         for *row, origin_sha, origin_record in rows])


def resolve_failures(db: sqlite3.Connection, job_id: int, keys: Sequence[str],
                     when: str) -> None:
    db.executemany("UPDATE failures SET state = 'resolved', resolved_job = ?, resolved_at = ? "
                   "WHERE key = ? AND state = 'open'", [(job_id, when, k) for k in keys])


def update_counts(db: sqlite3.Connection, job_id: int, *, read: int, succeeded: int,
                  failed: int, skipped: int) -> None:
    db.execute("UPDATE jobs SET read = ?, succeeded = ?, failed = ?, skipped = ? WHERE id = ?",
               (read, succeeded, failed, skipped, job_id))


def set_state(db: sqlite3.Connection, job_id: int, state: JobState) -> None:
    db.execute("UPDATE jobs SET state = ? WHERE id = ?", (state.value, job_id))


def file_read(db: sqlite3.Connection, job_id: int, file_index: int, records: int) -> None:
    db.execute("UPDATE job_files SET records = ? WHERE job_id = ? AND file_index = ?",
               (records, job_id, file_index))


def now_text() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _looks_damaged(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("not a database", "malformed", "corrupt",
                                         "file is encrypted"))


def _move_aside(path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    aside = path.with_name(f"{path.stem}.unreadable-{stamp}{path.suffix}")
    counter = 2
    while aside.exists():
        aside = path.with_name(f"{path.stem}.unreadable-{stamp}_{counter}{path.suffix}")
        counter += 1
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            with contextlib.suppress(OSError):
                os.replace(extra, aside.with_name(aside.name + suffix))
    return aside
