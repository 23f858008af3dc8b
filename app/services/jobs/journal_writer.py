"""Writes an import's journal on a thread of its own, in short grouped transactions.

The event loop only appends writes to a queue (a function call each, which wakes no
thread); the writing thread wakes every `GROUP_S`, applies whatever has queued up in one
transaction and commits. So a killed app loses at most the last moment's outcomes, and
the import does not pay for a thread switch per batch. `checkpoint()` wakes the thread at
once and answers when everything queued before it is committed: the import waits on it
before sending batches, so that a batch is never sent before the journal knows it may
have been.

A write is never dropped because the journal is unavailable for a while: another program
holding it (a lock), a full disk, a folder that became read-only. The writes stay queued
and are tried again, ever less often, until they commit; checkpoints answer only then, so
the import sends nothing the journal could not record. `on_trouble` hears of it.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from app.services.jobs.journal import connect, is_busy, is_transient

log = logging.getLogger("bulk_import")

Write = Callable[[sqlite3.Connection], None]
_STOP = object()
GROUP_S = 0.02  # longest an outcome waits for its commit (kill -9 loses at most this much)
#: How long the journal may stay unavailable before the import pauses its sending.
JOURNAL_WAIT_S = 60.0
#: One attempt waits this long for another program's lock: short, so the user hears soon.
ATTEMPT_BUSY_S = 1.0
_RETRY_S = (0.05, 0.1, 0.25, 0.5, 1.0)  # pauses between attempts while unavailable


class JournalUnavailable(Exception):
    """The writes before a checkpoint were never committed (the writer had to close)."""


@dataclass(frozen=True, slots=True)
class JournalTrouble:
    """Why the journal's writes are waiting."""

    message: str  # for the user, naming the file and the cause
    disk: bool  # the disk or the folder refuses (full, read-only), not another program
    stalled: bool  # unavailable for longer than the writer's `wait_s`


class JournalWriter:
    """One import's writes to the journal at `path`.

    `on_trouble(JournalTrouble | None)` is called on the writing thread when the journal
    becomes unavailable, when that has lasted `wait_s`, and with None once writes commit
    again. `error` is set when writes were lost: a write that failed for a reason other
    than the journal's availability (a bug; later writes are then dropped and the import
    goes on), or writes still uncommitted when `close`'s time ran out.
    """

    def __init__(self, path: Path, *, wait_s: float = JOURNAL_WAIT_S,
                 on_trouble: Callable[[JournalTrouble | None], None] | None = None) -> None:
        self.path = Path(path)
        self.wait_s = wait_s
        self.on_trouble = on_trouble
        self.error: str | None = None
        self.commits = 0
        # deque.append and popleft are atomic: the event loop appends, the thread takes
        self._pending: deque[Write | Future[None]] = deque()
        self._wake: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._give_up_at = float("inf")
        self._trouble_since: float | None = None
        self._told: tuple[str, bool] | None = None
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def write(self, operation: Write) -> None:
        """Apply `operation(connection)` in the next transaction."""
        self._pending.append(operation)

    def checkpoint(self) -> Future[None]:
        """A future that completes once everything written before is committed (or fails
        with JournalUnavailable if it never was)."""
        done: Future[None] = Future()
        self._pending.append(done)
        self._wake.put(done)
        return done

    def close(self, timeout: float | None = None) -> None:
        """Commit what is queued, trying for up to `timeout` (default `wait_s`) while the
        journal is unavailable, then end the thread."""
        wait = self.wait_s if timeout is None else timeout
        self._give_up_at = time.monotonic() + wait
        self._wake.put(_STOP)
        self._thread.join(wait + ATTEMPT_BUSY_S + 5.0)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        held: list[Write] = []  # taken from the queue, not committed yet
        marks: list[Future[None]] = []
        stopping = False
        failures = 0
        while True:
            wait = _RETRY_S[min(failures, len(_RETRY_S)) - 1] if failures else GROUP_S
            try:
                stopping = self._wake.get(timeout=wait) is _STOP or stopping
                while not stopping:  # several checkpoints at once: one transaction
                    stopping = self._wake.get_nowait() is _STOP
            except queue.Empty:
                pass
            while True:
                try:
                    item = self._pending.popleft()
                except IndexError:
                    break
                if isinstance(item, Future):
                    marks.append(item)
                else:
                    held.append(item)
            if held and self.error is None:
                connection, exc = self._commit(connection, held)
                if exc is None:
                    held.clear()
                    failures = 0
                    self._recovered()
                elif is_transient(exc):
                    failures += 1
                    self._trouble(exc)
                else:  # a mistake, not the journal's state: trying again cannot help
                    self._fail(exc)
            if self.error is not None:
                held.clear()  # after an error the journal is left as it was
            if not held:
                for mark in marks:
                    if not mark.done():
                        mark.set_result(None)
                marks.clear()
            if stopping and (not held or time.monotonic() >= self._give_up_at):
                break
        if held:
            self._give_up(len(held), marks)
        if connection is not None:
            connection.close()

    def _commit(self, connection: sqlite3.Connection | None, writes: list[Write]
                ) -> tuple[sqlite3.Connection | None, Exception | None]:
        """All `writes` in one transaction; (the connection to use next, the error)."""
        try:
            if connection is None:
                connection = connect(self.path, ATTEMPT_BUSY_S)
            connection.execute("BEGIN IMMEDIATE")
            try:
                for write in writes:
                    write(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    try:
                        connection.execute("ROLLBACK")
                    except sqlite3.Error:  # the connection is in doubt: a new one next
                        connection.close()
                        connection = None
                raise
        except Exception as exc:
            if connection is not None and not is_busy(exc) and is_transient(exc):
                connection.close()  # a disk or file problem: open afresh next time
                connection = None
            return connection, exc
        self.commits += 1
        return connection, None

    def _trouble(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = now
        busy = is_busy(exc)
        stalled = now - self._trouble_since >= self.wait_s
        if busy and stalled:
            message = (f"the import history {self.path} has been in use by another program "
                       f"for over {self.wait_s:g} s")
        elif busy:
            message = (f"the import history {self.path} is in use by another program; "
                       "waiting for it (the outcomes are kept and written once it is free)")
        else:
            message = f"the import history {self.path} cannot be written ({exc})"
        if self._told != (message, stalled):
            self._told = (message, stalled)
            log.warning("%s", message)
            self._tell(JournalTrouble(message, disk=not busy, stalled=stalled))

    def _recovered(self) -> None:
        if self._trouble_since is None:
            return
        self._trouble_since = None
        self._told = None
        log.warning("The import history %s is written again", self.path)
        self._tell(None)

    def _tell(self, trouble: JournalTrouble | None) -> None:
        if self.on_trouble is not None:
            try:
                self.on_trouble(trouble)
            except Exception:  # a listener's mistake must not stop the journal
                log.exception("Reporting the import history's state failed")

    def _give_up(self, writes: int, marks: list[Future[None]]) -> None:
        reason = self._told[0] if self._told else "it stayed unavailable"
        self.error = (f"{writes:,} writes to the import history could not be made ({reason}):"
                      " the job is shown as interrupted and can be resumed")
        log.error("%s", self.error)
        for mark in marks:
            if not mark.done():
                mark.set_exception(JournalUnavailable(self.error))

    def _fail(self, exc: Exception) -> None:
        self.error = (f"the import history could not be written ({exc}); the import goes "
                      "on, but could not be resumed after a crash")
        log.error("%s", self.error)
