"""Writes an import's journal on a thread of its own, in short grouped transactions.

The event loop only appends writes to a queue (a function call each, which wakes no
thread); the writing thread wakes every `GROUP_S`, applies whatever has queued up in one
transaction and commits. So a killed app loses at most the last moment's outcomes, and
the import does not pay for a thread switch per batch. `checkpoint()` wakes the thread at
once and answers when everything queued before it is committed: the import waits on it
before sending batches, so that a batch is never sent before the journal knows it may
have been.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from app.services.jobs.journal import connect

log = logging.getLogger("bulk_import")

Write = Callable[[sqlite3.Connection], None]
_STOP = object()
GROUP_S = 0.02  # longest an outcome waits for its commit (kill -9 loses at most this much)


class JournalWriter:
    """One import's writes to the journal at `path`; `error` is set if writing failed.

    After an error the journal is left as it was and further writes are dropped (the
    import goes on; only resuming it after a crash is no longer possible).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.error: str | None = None
        self.commits = 0
        # deque.append and popleft are atomic: the event loop appends, the thread takes
        self._pending: deque[Write | Future[None]] = deque()
        self._wake: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def write(self, operation: Write) -> None:
        """Apply `operation(connection)` in the next transaction."""
        self._pending.append(operation)

    def checkpoint(self) -> Future[None]:
        """A future that completes once everything written before is committed."""
        done: Future[None] = Future()
        self._pending.append(done)
        self._wake.put(done)
        return done

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then end the thread."""
        self._wake.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            connection: sqlite3.Connection | None = connect(self.path)
        except sqlite3.Error as exc:
            self._fail(exc)
            connection = None
        stopping = False
        while not stopping:
            try:
                stopping = self._wake.get(timeout=GROUP_S) is _STOP
                while not stopping:  # several checkpoints at once: one transaction
                    stopping = self._wake.get_nowait() is _STOP
            except queue.Empty:
                pass
            items = []
            while True:
                try:
                    items.append(self._pending.popleft())
                except IndexError:
                    break
            writes = [i for i in items if not isinstance(i, Future)]
            if writes and connection is not None and self.error is None:
                self._apply(connection, writes)
            for item in items:
                if isinstance(item, Future) and not item.done():
                    item.set_result(None)  # also after an error: the import goes on
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
        except Exception as exc:  # a failed journal must not end the import
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.error = (f"the import history could not be written ({exc}); the import goes "
                      "on, but could not be resumed after a crash")
        log.error("%s", self.error)
