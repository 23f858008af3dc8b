"""Runs the validation pass over an import's files on a worker thread, for the review
before Start (app/views/review_dialog.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from app.services.sources.source_options import SourceOptions
from app.services.sources.validation_pass import validate_files
from app.util.worker_pools import spreadsheets

# Progress reaches the GUI thread at most this often (the pass may report every row).
PROGRESS_INTERVAL_S = 0.1

Validate = Callable[..., Any]


class _CancelToken:
    """Shared with the worker; set when its result is no longer wanted."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


class _Bridge(QObject):
    """Carries the worker's news to the GUI thread (queued: it lives in the GUI thread)."""

    progress = Signal(int, int)  # run, rows checked
    done = Signal(int, object, str)  # run, ValidationResult or None, error


class ReviewTasks(QObject):
    """Checks every row of the files to import before anything is sent, off the GUI thread.

    `start(files, options, report_path)` runs `validate_files`; `cancel()` stops it (no
    signal follows a cancelled run). One run at a time: starting again cancels the last.

    Signals:
        progress(int): rows checked so far.
        finished(object): the ValidationResult.
        failed(str): the pass could not run (the message says why).
    """

    progress = Signal(int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, *,
                 validate: Validate | None = None) -> None:
        super().__init__(parent)
        self._validate = validate
        # A shared pool that outlives us: closing the review never waits for a check still
        # under way: it runs on, and its answer finds nobody (run ids, and the RuntimeError
        # of a deleted bridge).
        self._pool = spreadsheets()
        self._bridge = _Bridge(self)
        self._bridge.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._bridge.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._run_id = 0
        self._token: _CancelToken | None = None

    def start(self, files: list[Path], options: SourceOptions, *,
              report_path: Path | None) -> None:
        """Check `files` as the import will read them; the error report goes to
        `report_path` (None: none is written)."""
        self.cancel()
        self._run_id += 1
        run_id, token, bridge = self._run_id, _CancelToken(), self._bridge
        self._token = token
        validate = self._validate
        files = [Path(f) for f in files]
        last = [0.0]

        def progress(rows: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                with contextlib.suppress(RuntimeError):
                    bridge.progress.emit(run_id, int(rows))

        def run() -> None:
            try:
                function = validate if validate is not None else validate_files
                result = function(files, options, report_path=report_path,
                                  cancelled=lambda: token.cancelled, progress=progress)
                error = ""
            except Exception as exc:  # told to the user, never a crash
                result, error = None, f"{type(exc).__name__}: {exc}" if not str(exc) \
                    else str(exc)
            with contextlib.suppress(RuntimeError):  # the window was closed meanwhile
                bridge.done.emit(run_id, result, error)

        self._pool.start(run)

    def cancel(self) -> None:
        """Stop the run under way; nothing is reported for it."""
        if self._token is not None:
            self._token.cancelled = True
            self._token = None

    def is_running(self) -> bool:
        return self._token is not None

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the worker (closing, tests; the pool is shared: other owners' reads
        of spreadsheets are waited for too)."""
        return self._pool.waitForDone(timeout_ms)

    def _on_progress(self, run_id: int, rows: int) -> None:
        if run_id == self._run_id and self._token is not None:
            self.progress.emit(rows)

    def _on_done(self, run_id: int, result: Any, error: str) -> None:
        if run_id != self._run_id or self._token is None:
            return  # cancelled, or replaced by a newer run
        self._token = None
        if error or result is None:
            self.failed.emit(error or "the check before importing gave no result")
        else:
            self.finished.emit(result)
