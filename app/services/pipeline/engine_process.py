"""An import run in a helper process: the window's process only hears about it.

A big import makes millions of short-lived Python objects (customers read, requests,
answers, failure records). Run on the window's thread, their allocations set off the
collector's full passes over the window's whole heap (tens of milliseconds each, growing
with the failure list), and the engine's own work between two paints is felt as jank.
In a process of its own, the import's objects never reach the window's heap: the window
gets a few messages a second (progress, failures, notes, the log), each a few hundred
bytes to a few kilobytes.

The child runs the same `ImportEngine` on a plain asyncio loop. Its listener events and
log lines are gathered and sent every `FLUSH_S` as one message `(applied, events)`, where
`applied` is the number of the last command it has carried out: the parent trusts the
paused state a progress report carries only once the child has caught up with every
command sent (a report made before a Pause arrived would otherwise undo it on screen).
The parent's commands (`Command`) go the other way on a second pipe.

Nothing here touches Qt: `qt_import_runner` holds the parent's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import pickle
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.models.records import FailureRecord
from app.services.connection.auth import TokenProvider
from app.services.jobs.job_plan import Repeat
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import (
    ImportListener,
    ImportProgress,
    ImportSettings,
    ImportState,
    ImportSummary,
)
from app.util.helper_processes import begin_helper_process

FLUSH_S = 0.05  # how often the child sends what happened: 20 small messages a second
ENGINE_PROCESS_MIN_CUSTOMERS = 20_000  # counted customers from which an import gets one


class Command(StrEnum):
    """What the parent tells a running import."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"  # with the reason
    MOVE_RESULTS = "move_results"  # with the folder


class EngineEvent(StrEnum):
    """What the child reports; the `ImportListener` calls, the log, and the end."""

    PROGRESS = "progress"
    PROBLEM = "problem"
    NOTE = "note"
    PAUSED = "paused"
    RETRY_FILE_WRITTEN = "retry_file_written"
    FAILURES_FOUND = "failures_found"
    FAILURES_RESOLVED = "failures_resolved"
    LOG = "log"  # level, message
    FINISHED = "finished"  # the summary: the last event
    CRASHED = "crashed"  # why: the last event


Event = tuple[EngineEvent, tuple[Any, ...]]
Message = tuple[int, list[Event]]  # (commands carried out, events in order)


@dataclass(slots=True)
class EngineRequest:
    """Everything an import in a helper process starts from (picklable)."""

    paths: list[Path]
    settings: ImportSettings
    auth: TokenProvider  # pickled without its lock and callbacks (see TokenProvider)
    expected_total: int | None = None
    resume_job: int | None = None
    repeat: Repeat = Repeat.REST


class PackedFailures(Collection[FailureRecord]):
    """Failure records as they cross from the import's process: one bytes object, unpacked
    only when iterated. The window's failure list is the import's journal, so it only
    counts them (`len`); hundreds of records unpacked at once on the GUI thread would live
    through a collection or two and end among the collector's long-lived objects."""

    __slots__ = ("_count", "_data")

    def __init__(self, records: Collection[FailureRecord]) -> None:
        self._count = len(records)
        self._data = pickle.dumps(list(records), protocol=pickle.HIGHEST_PROTOCOL)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[FailureRecord]:
        records: list[FailureRecord] = pickle.loads(self._data)
        return iter(records)

    def __contains__(self, item: object) -> bool:
        return any(record == item for record in self)


def deliver(event: EngineEvent, args: tuple[Any, ...], listener: ImportListener,
            log: Callable[[int, str], None]) -> None:
    """Hand one of the child's events (not FINISHED or CRASHED) to `listener` or `log`."""
    match event:
        case EngineEvent.PROGRESS:
            listener.progress(*args)
        case EngineEvent.PROBLEM:
            listener.problem(*args)
        case EngineEvent.NOTE:
            listener.note(*args)
        case EngineEvent.PAUSED:
            listener.paused(*args)
        case EngineEvent.RETRY_FILE_WRITTEN:
            listener.retry_file_written(*args)
        case EngineEvent.FAILURES_FOUND:
            listener.failures_found(*args)
        case EngineEvent.FAILURES_RESOLVED:
            listener.failures_resolved(*args)
        case EngineEvent.LOG:
            log(*args)
        case _:
            raise ValueError(f"not a listener event: {event}")


class EngineProcess:
    """The parent's end of an import in a helper process.

    `start()` it; `send(command, *args)` from the GUI thread; `read(on_message)` blocks on
    a worker thread, calling `on_message(message)` for each message, until the child ends
    (its pipe closes with it, however it ends) and returns its exit code.
    """

    def __init__(self, request: EngineRequest) -> None:
        self._request: EngineRequest | None = request
        self._context = multiprocessing.get_context("spawn")  # safe beside Qt's threads
        self._events, events_sending = self._context.Pipe(duplex=False)
        control_receiving, self._control = self._context.Pipe(duplex=False)
        self._child_ends: list[multiprocessing.connection.Connection] = [
            events_sending, control_receiving]
        self._process = self._context.Process(
            # not a daemon: a daemon may not start the reader and writer processes of its
            # own; it still ends with this process (exit_when_parent_dies)
            target=serve_import, name="customer-import", daemon=False,
            args=(request, events_sending, control_receiving))
        self.sent = 0  # commands sent so far

    @property
    def process(self) -> Any:
        """The import's process (for tests and diagnostics)."""
        return self._process

    def start(self) -> None:
        self._process.start()
        for end in self._child_ends:
            end.close()  # the child holds the only other ends: its death closes the pipe
        self._child_ends.clear()
        self._request = None  # the secrets it holds went to the child; none stay here

    def send(self, command: Command, *args: Any) -> int:
        """Tell the child `command`; returns its number (see `Message`). A child that has
        ended meanwhile is not told."""
        self.sent += 1
        with contextlib.suppress(OSError, ValueError):  # gone: `read` tells how it ended
            self._control.send((self.sent, command, args))
        return self.sent

    def read(self, on_message: Callable[[bytes], None]) -> int | None:
        """On a worker thread: every message, in order, until the child has ended. A
        message stays bytes (`unpack` it where it is used): objects made on this thread
        and used on another live long enough for the collector to move them among the
        long-lived ones, whose number sets off its full passes."""
        while True:
            try:
                data = self._events.recv_bytes()
            except (EOFError, OSError):
                break
            on_message(data)
        self._events.close()
        self._control.close()
        self._process.join(timeout=10)
        return self._process.exitcode


def unpack(data: bytes) -> Message:
    """A message as `EngineProcess.read` delivered it."""
    message: Message = pickle.loads(data)
    return message


# -- the child --------------------------------------------------------------------------


class _Outbox:
    """The child's events, sent every FLUSH_S as one message (the latest progress only).
    Log lines may come from any thread, hence the lock."""

    def __init__(self, pipe: multiprocessing.connection.Connection) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._progress_at: int | None = None  # index of the progress event in _events
        self.applied = 0

    def put(self, event: EngineEvent, *args: Any) -> None:
        with self._lock:
            if event == EngineEvent.PROGRESS and self._progress_at is not None:
                self._events[self._progress_at] = (event, args)  # older news replaced
                return
            if event == EngineEvent.PROGRESS:
                self._progress_at = len(self._events)
            self._events.append((event, args))

    def flush(self) -> None:
        with self._lock:
            events, self._events, self._progress_at = self._events, [], None
            if not events:
                return
            message: Message = (self.applied, events)
            self._pipe.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


class _OutboxListener(ImportListener):
    """The engine's events, into the outbox."""

    def __init__(self, outbox: _Outbox) -> None:
        self._outbox = outbox

    def progress(self, progress: ImportProgress) -> None:
        self._outbox.put(EngineEvent.PROGRESS, progress)

    def problem(self, message: str) -> None:
        self._outbox.put(EngineEvent.PROBLEM, message)

    def note(self, message: str) -> None:
        self._outbox.put(EngineEvent.NOTE, message)

    def paused(self, reason: str) -> None:
        self._outbox.put(EngineEvent.PAUSED, reason)

    def retry_file_written(self, path: Path) -> None:
        self._outbox.put(EngineEvent.RETRY_FILE_WRITTEN, path)

    def failures_found(self, records: Collection[FailureRecord]) -> None:
        self._outbox.put(EngineEvent.FAILURES_FOUND, PackedFailures(records))

    def failures_resolved(self, keys: list[str], job_id: int, when: str) -> None:
        self._outbox.put(EngineEvent.FAILURES_RESOLVED, keys, job_id, when)


class _OutboxLog(logging.Handler):
    """The import's log lines (level INFO and up), into the outbox."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__(level=logging.INFO)
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        self._outbox.put(EngineEvent.LOG, record.levelno, record.getMessage())


def serve_import(request: EngineRequest, events: multiprocessing.connection.Connection,
                 control: multiprocessing.connection.Connection) -> None:
    """The helper process: run the import, report, end."""
    begin_helper_process()
    outbox = _Outbox(events)
    logger = logging.getLogger("bulk_import")
    logger.setLevel(logging.INFO)
    logger.addHandler(_OutboxLog(outbox))
    try:
        summary = asyncio.run(_run(request, outbox, control))
    except BaseException as exc:  # whatever it is, the window hears of it
        outbox.put(EngineEvent.CRASHED, f"{type(exc).__name__}: {exc}")
    else:
        outbox.put(EngineEvent.FINISHED, summary)
    try:
        outbox.flush()
    finally:
        events.close()


async def _run(request: EngineRequest, outbox: _Outbox,
               control: multiprocessing.connection.Connection) -> ImportSummary:
    engine = ImportEngine(request.paths, request.settings, request.auth,
                          listener=_OutboxListener(outbox),
                          expected_total=request.expected_total,
                          resume_job=request.resume_job, repeat=request.repeat)
    loop = asyncio.get_running_loop()
    threading.Thread(target=_take_commands, args=(control, loop, engine, outbox),
                     name="import-commands", daemon=True).start()
    sending = asyncio.create_task(_send_regularly(outbox))
    try:
        return await engine.run()
    finally:
        sending.cancel()


async def _send_regularly(outbox: _Outbox) -> None:
    while True:
        await asyncio.sleep(FLUSH_S)
        outbox.flush()


def _take_commands(control: multiprocessing.connection.Connection,
                   loop: asyncio.AbstractEventLoop, engine: ImportEngine,
                   outbox: _Outbox) -> None:
    """A thread waiting for the parent's commands; each is carried out on the loop."""
    while True:
        try:
            number, command, args = control.recv()
        except (EOFError, OSError):
            return  # the parent closed its end: the import is over
        try:
            loop.call_soon_threadsafe(_carry_out, engine, outbox, number, command, args)
        except RuntimeError:
            return  # the loop has closed: the import is over


def _carry_out(engine: ImportEngine, outbox: _Outbox, number: int, command: Command,
               args: tuple[Any, ...]) -> None:
    match command:
        case Command.PAUSE:
            engine.pause()
        case Command.RESUME:
            engine.resume()
        case Command.CANCEL:
            engine.cancel(*args)
        case Command.MOVE_RESULTS:
            problem = engine.move_results(*args)
            if problem is not None:  # the parent found it possible a moment ago
                # still paused: the pause panel shows why again; else it is news only
                paused = engine.state == ImportState.PAUSED
                outbox.put(EngineEvent.PAUSED if paused else EngineEvent.NOTE, problem)
    outbox.applied = number
    engine.listener.progress(engine.progress())  # the state the command left
