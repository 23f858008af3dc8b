"""Runs an ImportEngine on the Qt event loop (qasync) and reports through Qt signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

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

    def failures_found(self, records: list[FailureRecord]) -> None:
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


class ImportRunner(QObject):
    """Starts, pauses, resumes and cancels imports; one at a time.

    Signals: started(), progressChanged(ImportProgress), problemFound(str),
    noteTold(str) (worth knowing now; the import goes on), pausedItself(str reason) (a full
    disk, a folder that refuses, the import history held by another program: `resume()`
    once fixed, `move_results()`, or `cancel()`), retryFileWritten(str),
    failuresFound(list[FailureRecord]), failuresResolved(list[str] keys, int job, str when)
    (see `ImportListener`; emitted on the loop's thread, which is the GUI thread),
    logMessage(int level, str), finished(ImportSummary), crashed(str) when the import
    ended with an unexpected error.
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
        self.engine: ImportEngine | None = None
        self._task: asyncio.Task[ImportSummary] | None = None
        self._log_bridge = _LogBridge(self)
        self.last_summary: ImportSummary | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def paused(self) -> bool:
        return self.engine is not None and self.engine.state == ImportState.PAUSED

    @property
    def pause_reason(self) -> str:
        """Why the import paused itself (a full disk, a busy history); "" otherwise."""
        if not self.paused or self.engine is None:
            return ""
        return self.engine.progress().pause_reason

    def start(self, paths: Sequence[Path], settings: ImportSettings, auth: TokenProvider,
              expected_total: int | None = None, *, resume_job: int | None = None,
              repeat: Repeat = Repeat.REST) -> asyncio.Task[ImportSummary]:
        """Begin an import (or resume a job) on the running (qasync) loop; returns its task."""
        if self.running:
            raise RuntimeError("an import is already running")
        self.engine = ImportEngine(paths, settings, auth, listener=_SignalListener(self),
                                   expected_total=expected_total, resume_job=resume_job,
                                   repeat=repeat)
        logger = logging.getLogger("bulk_import")
        logger.setLevel(logging.INFO)
        if self._log_bridge not in logger.handlers:
            logger.addHandler(self._log_bridge)
        # hold the task: an unreferenced task may be garbage-collected mid-import
        self._task = asyncio.ensure_future(self.engine.run())
        self._task.add_done_callback(self._on_done)
        self.started.emit()
        return self._task

    def _on_done(self, task: asyncio.Task[ImportSummary]) -> None:
        logging.getLogger("bulk_import").removeHandler(self._log_bridge)
        if task.cancelled():
            self.crashed.emit("the import task was cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self.crashed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.last_summary = task.result()
        self.finished.emit(self.last_summary)

    def pause(self) -> None:
        if self.engine is not None:
            self.engine.pause()

    def resume(self) -> None:
        if self.engine is not None:
            self.engine.resume()

    def move_results(self, folder: Path) -> str | None:
        """The running import writes its result files into `folder` from now on (see
        `ImportEngine.move_results`); why it cannot, or None."""
        if self.engine is None or not self.running:
            return "no import is running"
        return self.engine.move_results(folder)

    def cancel(self, reason: str = "the import was cancelled") -> None:
        if self.engine is not None and self.running:
            self.engine.cancel(reason)

    async def wait(self) -> ImportSummary | None:
        """Wait for the running import (used on shutdown)."""
        if self._task is None:
            return None
        try:
            return await asyncio.shield(self._task)
        except Exception:
            return None
