"""Runs an import for the window and reports through Qt signals: a big one in a helper
process (`engine_process`), a small one on the Qt event loop (qasync), where starting a
process would cost more than it saves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal

from app.models.records import FailureRecord
from app.services.connection.auth import TokenProvider
from app.services.jobs.job_plan import Repeat
from app.services.pipeline.engine_process import (
    ENGINE_PROCESS_MIN_CUSTOMERS,
    Command,
    EngineEvent,
    EngineProcess,
    EngineRequest,
    deliver,
    unpack,
)
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import (
    ImportListener,
    ImportProgress,
    ImportSettings,
    ImportState,
    ImportSummary,
)
from app.services.results.disk_space import folder_write_problem
from app.services.sources.batch_source import is_large_import
from app.util.background import Pool, run_task, to_main


class _SignalListener(ImportListener):
    """The engine's events as the runner's signals. It holds the runner weakly: the runner
    holds the engine, which holds this; a cycle would leave the runner to the cycle
    collector, which may run on any thread."""

    def __init__(self, runner: ImportRunner) -> None:
        self._runner = weakref.ref(runner)

    def _signals(self) -> ImportRunner | None:
        return self._runner()

    def progress(self, progress: ImportProgress) -> None:
        if runner := self._signals():
            runner.progressChanged.emit(progress)

    def problem(self, message: str) -> None:
        if runner := self._signals():
            runner.problemFound.emit(message)

    def note(self, message: str) -> None:
        if runner := self._signals():
            runner.noteTold.emit(message)

    def paused(self, reason: str) -> None:
        if runner := self._signals():
            runner.pausedItself.emit(reason)

    def retry_file_written(self, path: Path) -> None:
        if runner := self._signals():
            runner.retryFileWritten.emit(str(path))

    def failures_found(self, records: Collection[FailureRecord]) -> None:
        if runner := self._signals():
            runner.failuresFound.emit(records)

    def failures_resolved(self, keys: list[str], job_id: int, when: str) -> None:
        if runner := self._signals():
            runner.failuresResolved.emit(keys, job_id, when)

    def finished(self, summary: ImportSummary) -> None:
        pass  # emitted by the runner once the task is really done


class _LogBridge(logging.Handler):
    """Forwards the importer's log records to a signal (safe from any thread); holds the
    runner weakly, as `_SignalListener` does."""

    def __init__(self, runner: ImportRunner) -> None:
        super().__init__(level=logging.INFO)
        self._runner = weakref.ref(runner)

    def emit(self, record: logging.LogRecord) -> None:
        runner = self._runner()
        if runner is None:
            return
        with contextlib.suppress(RuntimeError):  # the runner was deleted during shutdown
            runner.logMessage.emit(record.levelno, record.getMessage())


class _RunningImport(Protocol):
    """What the runner asks of an import under way, wherever it runs."""

    @property
    def paused(self) -> bool: ...

    @property
    def pause_reason(self) -> str: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def cancel(self, reason: str) -> None: ...

    def move_results(self, folder: Path) -> str | None: ...


class _ImportHere:
    """An import on this process's event loop."""

    def __init__(self, engine: ImportEngine) -> None:
        self.engine = engine

    @property
    def paused(self) -> bool:
        return self.engine.state == ImportState.PAUSED

    @property
    def pause_reason(self) -> str:
        return self.engine.progress().pause_reason if self.paused else ""

    def pause(self) -> None:
        self.engine.pause()

    def resume(self) -> None:
        self.engine.resume()

    def cancel(self, reason: str) -> None:
        self.engine.cancel(reason)

    def move_results(self, folder: Path) -> str | None:
        return self.engine.move_results(folder)


class _ImportElsewhere:
    """An import in a helper process. Its paused state is known here at once for what
    the window asked, and from the child's reports once it has carried out every command
    (see `engine_process.Message`)."""

    def __init__(self, process: EngineProcess) -> None:
        self.process = process
        self.paused = False
        self.pause_reason = ""

    def pause(self) -> None:
        self.paused = True
        self.process.send(Command.PAUSE)

    def resume(self) -> None:
        self.paused, self.pause_reason = False, ""
        self.process.send(Command.RESUME)

    def cancel(self, reason: str) -> None:
        self.process.send(Command.CANCEL, reason)

    def move_results(self, folder: Path) -> str | None:
        problem = folder_write_problem(Path(folder))  # the child looks again, to be sure
        if problem is None:
            self.paused, self.pause_reason = False, ""
            self.process.send(Command.MOVE_RESULTS, Path(folder))
        return problem

    def paused_itself(self, reason: str) -> None:
        self.paused, self.pause_reason = True, reason

    def reported(self, applied: int, progress: ImportProgress) -> None:
        if applied >= self.process.sent:  # nothing asked since is still on its way
            self.paused = progress.state == ImportState.PAUSED
            self.pause_reason = progress.pause_reason


class ImportRunner(QObject):
    """Starts, pauses, resumes and cancels imports; one at a time.

    An import of at least ENGINE_PROCESS_MIN_CUSTOMERS counted customers, or of files big
    enough for a reader process, runs in a helper process (`use_process`: None decides so;
    True or False always or never), whose events arrive here as the same signals.

    Signals: started(), progressChanged(ImportProgress), problemFound(str),
    noteTold(str) (worth knowing now; the import goes on), pausedItself(str reason) (a full
    disk, a folder that refuses, the import history held by another program: `resume()`
    once fixed, `move_results()`, or `cancel()`), retryFileWritten(str),
    failuresFound(Collection[FailureRecord]), failuresResolved(list[str] keys, int job, str when)
    (see `ImportListener`; emitted on the GUI thread), logMessage(int level, str),
    finished(ImportSummary), crashed(str) when the import ended with an unexpected error
    (or its process ended without a word).
    """

    started = Signal()
    progressChanged = Signal(object)
    problemFound = Signal(str)
    noteTold = Signal(str)
    pausedItself = Signal(str)
    retryFileWritten = Signal(str)
    failuresFound = Signal(object)
    failuresResolved = Signal(object, int, str)
    logMessage = Signal(int, str)
    finished = Signal(object)
    crashed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.use_process: bool | None = None
        self._import: _ImportHere | _ImportElsewhere | None = None
        self._listener = _SignalListener(self)
        self._done: asyncio.Future[ImportSummary | None] | None = None
        self._engine_task: asyncio.Task[ImportSummary] | None = None
        self._log_bridge = _LogBridge(self)
        self.last_summary: ImportSummary | None = None

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    @property
    def in_process(self) -> bool:
        """Whether the import (running or last run) runs in a helper process."""
        return isinstance(self._import, _ImportElsewhere)

    @property
    def process(self) -> object | None:
        """The helper process of the import (for tests and diagnostics), None for one here."""
        return self._import.process.process if isinstance(self._import, _ImportElsewhere) \
            else None

    @property
    def paused(self) -> bool:
        return self.running and self._import is not None and self._import.paused

    @property
    def pause_reason(self) -> str:
        """Why the import paused itself (a full disk, a busy history); "" otherwise."""
        if not self.paused or self._import is None:
            return ""
        return self._import.pause_reason

    def start(self, paths: Sequence[Path], settings: ImportSettings, auth: TokenProvider,
              expected_total: int | None = None, *, resume_job: int | None = None,
              repeat: Repeat = Repeat.REST) -> asyncio.Future[ImportSummary | None]:
        """Begin an import (or resume a job); returns a future of its summary (None when
        it crashed). Call it with the (qasync) loop running."""
        if self.running:
            raise RuntimeError("an import is already running")
        self._done = asyncio.get_running_loop().create_future()
        if self._wants_process(paths, expected_total):
            self._start_elsewhere(EngineRequest(list(paths), settings, auth, expected_total,
                                                resume_job, repeat))
        else:
            self._start_here(ImportEngine(paths, settings, auth, listener=self._listener,
                                          expected_total=expected_total,
                                          resume_job=resume_job, repeat=repeat))
        self.started.emit()
        return self._done

    def _wants_process(self, paths: Sequence[Path], expected_total: int | None) -> bool:
        if self.use_process is not None:
            return self.use_process
        return (expected_total or 0) >= ENGINE_PROCESS_MIN_CUSTOMERS \
            or is_large_import([Path(p) for p in paths])

    def _start_here(self, engine: ImportEngine) -> None:
        self._import = _ImportHere(engine)
        logger = logging.getLogger("bulk_import")
        logger.setLevel(logging.INFO)
        if self._log_bridge not in logger.handlers:
            logger.addHandler(self._log_bridge)
        # hold the task: an unreferenced task may be garbage-collected mid-import
        task = asyncio.ensure_future(engine.run())
        task.add_done_callback(self._engine_done)
        self._engine_task = task

    def _engine_done(self, task: asyncio.Task[ImportSummary]) -> None:
        logging.getLogger("bulk_import").removeHandler(self._log_bridge)
        if task.cancelled():
            self._crashed("the import task was cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self._crashed(f"{type(exc).__name__}: {exc}")
            return
        self._finished(task.result())

    def _start_elsewhere(self, request: EngineRequest) -> None:
        process = EngineProcess(request)
        running = self._import = _ImportElsewhere(process)
        process.start()
        run_task(Pool.IMPORT_EVENTS,
                 lambda: process.read(lambda message: to_main(self._take, running, message,
                                                               owner=self)),
                 on_done=lambda exit_code: self._process_ended(running, exit_code),
                 on_error=lambda error: self._process_ended(running, None, error),
                 owner=self)

    def _take(self, running: _ImportElsewhere, data: bytes) -> None:
        """One message of the import's process, on the GUI thread."""
        applied, events = unpack(data)
        for event, args in events:
            if event == EngineEvent.FINISHED:
                self._finished(args[0])
            elif event == EngineEvent.CRASHED:
                self._crashed(args[0])
            else:
                if event == EngineEvent.PROGRESS:
                    running.reported(applied, args[0])
                elif event == EngineEvent.PAUSED:
                    running.paused_itself(args[0])
                deliver(event, args, self._listener, self.logMessage.emit)

    def _process_ended(self, running: _ImportElsewhere, exit_code: int | None,
                       error: BaseException | None = None) -> None:
        if running is not self._import or not self.running:
            return  # it said how it ended
        why = f"exit code {exit_code}" if error is None else f"{type(error).__name__}: {error}"
        self._crashed(f"the import's process ended unexpectedly ({why}); what it sent is "
                      "in the import history: resume the job from the History tab")

    def _finished(self, summary: ImportSummary) -> None:
        self.last_summary = summary
        if self._done is not None and not self._done.done():
            self._done.set_result(summary)
        self.finished.emit(summary)

    def _crashed(self, message: str) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        self.crashed.emit(message)

    def pause(self) -> None:
        if self._import is not None and self.running:
            self._import.pause()

    def resume(self) -> None:
        if self._import is not None and self.running:
            self._import.resume()

    def move_results(self, folder: Path) -> str | None:
        """The running import writes its result files into `folder` from now on (see
        `ImportEngine.move_results`); why it cannot, or None."""
        if self._import is None or not self.running:
            return "no import is running"
        return self._import.move_results(folder)

    def cancel(self, reason: str = "the import was cancelled") -> None:
        if self._import is not None and self.running:
            self._import.cancel(reason)

    async def wait(self) -> ImportSummary | None:
        """Wait for the running import (used on shutdown)."""
        if self._done is None:
            return None
        return await asyncio.shield(self._done)
