"""Runs an ImportEngine on the Qt event loop (qasync) and reports through Qt signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.models.failure_store import FailureStore
from app.services.connection.auth import TokenProvider
from app.services.jobs.job_plan import Repeat
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import (
    ImportListener,
    ImportProgress,
    ImportSettings,
    ImportSummary,
)


class _SignalListener(ImportListener):
    def __init__(self, runner: ImportRunner) -> None:
        self.runner = runner

    def progress(self, progress: ImportProgress) -> None:
        self.runner.progressChanged.emit(progress)

    def problem(self, message: str) -> None:
        self.runner.problemFound.emit(message)

    def note(self, message: str) -> None:
        self.runner.noteTold.emit(message)

    def paused(self, reason: str) -> None:
        self.runner.pausedItself.emit(reason)

    def retry_file_written(self, path: Path) -> None:
        self.runner.retryFileWritten.emit(str(path))

    def finished(self, summary: ImportSummary) -> None:
        pass  # emitted by the runner once the task is really done


class _LogBridge(logging.Handler):
    """Forwards the importer's log records to a signal (safe from any thread)."""

    def __init__(self, runner: ImportRunner) -> None:
        super().__init__(level=logging.INFO)
        self.runner = runner

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the runner was deleted during shutdown
            self.runner.logMessage.emit(record.levelno, record.getMessage())


class ImportRunner(QObject):
    """Starts, pauses, resumes and cancels imports; one at a time.

    Signals: started(), progressChanged(ImportProgress), problemFound(str),
    noteTold(str) (worth knowing now; the import goes on), pausedItself(str reason) (a full
    disk, a folder that refuses, the import history held by another program: `resume()`
    once fixed, `move_results()`, or `cancel()`), retryFileWritten(str),
    logMessage(int level, str), finished(ImportSummary), crashed(str) when the import
    ended with an unexpected error.
    """

    started = Signal()
    progressChanged = Signal(object)
    problemFound = Signal(str)
    noteTold = Signal(str)
    pausedItself = Signal(str)
    retryFileWritten = Signal(str)
    logMessage = Signal(int, str)
    finished = Signal(object)
    crashed = Signal(str)

    def __init__(self, store: FailureStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.engine: ImportEngine | None = None
        self._task: asyncio.Task[ImportSummary] | None = None
        self._log_bridge = _LogBridge(self)
        self.last_summary: ImportSummary | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def paused(self) -> bool:
        return self.engine is not None and self.engine.state == "paused"

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
        self.engine = ImportEngine(paths, settings, auth, store=self.store,
                                   listener=_SignalListener(self),
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
