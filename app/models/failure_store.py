"""The failure list's source: a results folder's journal, or a small database of its own."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models.failure_query import (
    FAILURE_COLUMNS,
    LIST_COLUMNS_DDL,
    LIST_INDEXES_DDL,
    open_list_connection,
    read_records,
)
from app.models.records import ROW_RESOLVED_JOB, FailureRecord, FailureRow

FAILED_CUSTOMERS_FILE = Path("failed_customers") / "failed_customers.json"

FailureListener = Callable[[int], None]

# The journal's failures table, with an id that is never used again (rows are deleted when
# the list is cleared or replaced, and a table may still be asking for old ones).
_TABLE_DDL = """
CREATE TABLE failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    username TEXT NOT NULL,
    result TEXT NOT NULL,
    error TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    batch_info TEXT NOT NULL,
    original BLOB NOT NULL,
    source_file TEXT NOT NULL,
    record_number INTEGER NOT NULL,
    batch_number INTEGER NOT NULL,
    http_status INTEGER,
    kind TEXT NOT NULL,
    retriable INTEGER NOT NULL,
    whole_batch INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    last_job INTEGER NOT NULL,
    resolved_job INTEGER,
    resolved_at TEXT
)"""
_COLUMNS = ", ".join(FAILURE_COLUMNS)
# a customer failing again replaces their row, attempts counted, and reopens it
_UPSERT = (
    f"INSERT INTO failures ({_COLUMNS}, state) VALUES ({', '.join('?' * len(FAILURE_COLUMNS))}, ?)"
    " ON CONFLICT(key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in FAILURE_COLUMNS
                if c not in ("key", "attempts"))
    + ", attempts = failures.attempts + excluded.attempts, state = excluded.state")
_RESOLVE = ("UPDATE failures SET state = 'resolved', resolved_job = ?, resolved_at = ? "
            "WHERE key = ? AND state = 'open'")


@dataclass(frozen=True, slots=True)
class FailureSource:
    """Where the list is read: a SQLite database with a `failures` table.

    `path` is None while there is nothing to list (a store not yet given a failure);
    `generation` changes whenever the list is another one (rowids of an earlier generation
    mean nothing); `journal` says whether it is a results folder's journal.
    """

    path: Path | None
    generation: int
    journal: bool



def _write_all(db: sqlite3.Connection, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run `statement` for every row in one transaction: all of them or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(statement, rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise

class FailureStore:
    """The failures the window lists: one per customer, open or resolved.

    What the import feeds it (`upsert`, `resolve`) goes where the list is read from:

    * attached to a results folder's journal (`attach`), the journal is the list. The
      running import's journal writer records the same failures there within moments, so
      the store only tells its listeners that the list changed;
    * otherwise it keeps them in a database of its own (a private temporary file, made
      when the first failure arrives): a list loaded from an earlier version's
      failed_customers.json (`replace_all`), one cleared during an import (`clear`), or
      one no journal backs.

    No failure is kept as a Python object: a table reads pages of rows when it shows them.
    Changes may come from any thread; listeners are called after each one from the
    changing thread, with how many failures it concerned (0: the list is another one; see
    `source`). A GUI bridges that to its own thread.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # for writes to the store's own database
        self._listeners: list[FailureListener] = []
        # replaced whole (one assignment) under the lock, read without it: a GUI thread
        # asking where the list is never waits for another thread's write
        self._source = FailureSource(None, 0, False)
        self._db: sqlite3.Connection | None = None
        self._path: Path | None = None
        self._indexed = False
        self._cleanup: weakref.finalize | None = None

    # -- where the list is ------------------------------------------------------------------

    @property
    def source(self) -> FailureSource:
        return self._source

    @property
    def generation(self) -> int:
        return self._source.generation

    @property
    def journal(self) -> Path | None:
        """The journal the list is read from (None: the store's own database)."""
        source = self._source
        return source.path if source.journal else None

    def attach(self, journal: Path) -> None:
        """Read the list from this journal (an import writing there keeps it current)."""
        journal = Path(journal)
        with self._lock:
            if self._source.journal and self._source.path == journal:
                return
            self._source = FailureSource(journal, self._source.generation + 1, True)
        self._notify(0)

    def replace_all(self, rows: Iterable[FailureRow]) -> int:
        """Hold exactly `rows` in the store's own database (no journal); returns how many."""
        with self._lock:
            db = self._database()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM failures")
                db.executemany(_UPSERT, ((*row, _state_of(row)) for row in rows))
                (count,) = db.execute("SELECT count(*) FROM failures").fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._source = FailureSource(self._path, self._source.generation + 1, False)
        self._notify(0)
        return int(count)

    def clear(self) -> None:
        """An empty list of the store's own (files and the journal are left alone): what
        an import feeds from now on is listed, until the list is attached again."""
        self.replace_all(())

    def ensure_indexed(self) -> None:
        """Give the store's own database the list's sort indexes (once; they cost every
        write something, so a store nobody lists never has them)."""
        with self._lock:
            if self._indexed or self._db is None:
                return
            for statement in LIST_INDEXES_DDL:
                self._db.execute(statement)
            self._indexed = True

    def close(self) -> None:
        """Let go of the store's own database (and delete it)."""
        with self._lock:
            if self._cleanup is not None:
                self._cleanup()
            self._db = self._path = self._cleanup = None
            self._indexed = False
            if not self._source.journal:
                self._source = FailureSource(None, self._source.generation + 1, False)

    # -- listeners --------------------------------------------------------------------------

    def add_listener(self, listener: FailureListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: FailureListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, count: int) -> None:
        for listener in list(self._listeners):
            listener(count)

    # -- what an import feeds ---------------------------------------------------------------

    def upsert(self, records: Collection[FailureRecord]) -> int:
        """Customers failed; one already listed is replaced (its attempts counted, open
        again). Returns how many failures were given. Attached to a journal, the records
        are only counted (the import's journal writer records them there)."""
        count = len(records)
        if not count:
            return 0
        with self._lock:
            if not self._source.journal:
                rows = (record.to_row() for record in records)
                _write_all(self._database(), _UPSERT, ((*row, _state_of(row)) for row in rows))
        self._notify(count)
        return count

    def resolve(self, keys: Iterable[str], job: int, when: str) -> int:
        """A later job (`job`, at `when`) imported these customers: their open failures are
        resolved. Returns how many customers were given."""
        keys = list(keys)
        if not keys:
            return 0
        with self._lock:
            if not self._source.journal and self._db is not None:
                _write_all(self._db, _RESOLVE, [(job, when, key) for key in keys])
        self._notify(len(keys))
        return len(keys)

    # -- reading (tests, exports of everything) ---------------------------------------------

    def __len__(self) -> int:
        return self._count("")

    @property
    def open_count(self) -> int:
        """Customers whose failure is still open."""
        return self._count(" WHERE state = 'open'")

    def records(self, *, open_only: bool = True) -> list[FailureRecord]:
        """The failures as records, in the order they first happened (made now: meant for
        small lists and tests; a table reads pages, an export slices)."""
        path = self.source.path
        if path is None or not path.exists():
            return []
        connection = open_list_connection(path)
        try:
            where = " WHERE state = 'open'" if open_only else ""
            rowids = [r for (r,) in connection.execute(
                f"SELECT rowid FROM failures{where} ORDER BY rowid")]
            return [r for r in read_records(connection, rowids) if r is not None]
        finally:
            connection.close()

    def _count(self, where: str) -> int:
        path = self.source.path
        if path is None or not path.exists():
            return 0
        connection = open_list_connection(path)
        try:
            return int(connection.execute(f"SELECT count(*) FROM failures{where}").fetchone()[0])
        finally:
            connection.close()

    def _database(self) -> sqlite3.Connection:
        """The store's own database, made when first needed (under the lock)."""
        if self._db is None:
            folder = Path(tempfile.mkdtemp(prefix="failure-list-"))  # private to the user
            path = folder / "failures.sqlite"
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                # readers (the table, its worker) never wait for writes, nor writes for them;
                # a temporary list needs no flush to disk
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = OFF")
                db.execute(_TABLE_DDL)
                for statement in LIST_COLUMNS_DDL:
                    db.execute(statement)
            except BaseException:
                db.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._db, self._path = db, path
            self._cleanup = weakref.finalize(self, _remove, db, folder)
            if not self._source.journal:  # the same list (empty until now), with a database
                self._source = FailureSource(path, self._source.generation, False)
        return self._db


def _state_of(row: FailureRow) -> str:
    return "open" if row[ROW_RESOLVED_JOB] is None else "resolved"


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.close()
    shutil.rmtree(folder, ignore_errors=True)
