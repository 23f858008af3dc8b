"""Writes an import's journal on a thread of its own, in short grouped transactions.

The event loop only queues writes (a function call each); the thread applies whatever has
queued up in one transaction, commits, and goes on. So a commit follows a batch's outcome
within a few milliseconds under load too, and a killed app loses at most what was queued
in that moment. `checkpoint()` answers once everything queued before it is committed:
the import waits on it before sending batches, so that a batch is never sent before the
journal knows it may have been.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from app.services.jobs.journal import connect

log = logging.getLogger("bulk_import")

Write = Callable[[sqlite3.Connection], None]
_STOP = object()


class JournalWriter:
    """One import's writes to the journal at `path`; `error` is set if writing failed.

    After an error the journal is left as it was and further writes are dropped (the
    import goes on; only resuming it after a crash is no longer possible).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.error: str | None = None
        self.commits = 0
        self._queue: queue.SimpleQueue[Write | Future[None] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def write(self, operation: Write) -> None:
        """Apply `operation(connection)` in the next transaction."""
        self._queue.put(operation)

    def checkpoint(self) -> Future[None]:
        """A future that completes once everything written before is committed."""
        done: Future[None] = Future()
        self._queue.put(done)
        return done

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            connection = connect(self.path)
        except sqlite3.Error as exc:
            self._fail(exc)
            connection = None
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while True:  # whatever queued up meanwhile goes into the same transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [i for i in items if callable(i)]
            waiting = [i for i in items if isinstance(i, Future)]
            stopping = any(i is _STOP for i in items)
            if writes and connection is not None and self.error is None:
                self._apply(connection, writes)
            for future in waiting:
                if not future.done():
                    future.set_result(None)
        if connection is not None:
            connection.close()

    def _apply(self, connection: sqlite3.Connection, writes: list[Write]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                for write in writes:
                    write(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            self._fail(exc)

    def _fail(self, exc: sqlite3.Error) -> None:
        self.error = (f"the import history could not be written ({exc}); the import goes "
                      "on, but could not be resumed after a crash")
        log.error("%s", self.error)
