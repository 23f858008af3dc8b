"""Runs the validation pass over an import's files on a worker thread, for the review
before Start (app/views/review_dialog.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.services.sources.source_options import SourceOptions
from app.services.sources.validation_pass import ValidationResult, validate_files
from app.util.background import CancelToken, Pool, TaskHandle, run_task, thread_pool, to_main

# Progress reaches the GUI thread at most this often (the pass may report every row).
PROGRESS_INTERVAL_S = 0.1

#: `validate_files` or a stand-in: (files, options, *, report_path, token, progress).
Validate = Callable[..., Any]


class ReviewTasks(QObject):
    """Checks every row of the files to import before anything is sent, off the GUI thread.

    `start(files, options, report_path)` runs `validate_files` on `Pool.SPREADSHEETS`;
    `cancel()` stops it (no signal follows a cancelled run). One run at a time: starting
    again cancels the last. Closing never waits for a check under way: it stops at its next
    step, and its answer finds nobody.

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
        self._validate: Validate = validate if validate is not None else validate_files
        self._run: TaskHandle[ValidationResult | None] | None = None

    def start(self, files: list[Path], options: SourceOptions, *,
              report_path: Path | None) -> None:
        """Check `files` as the import will read them; the error report goes to
        `report_path` (None: none is written)."""
        self.cancel()
        token = CancelToken()
        validate = self._validate
        files = [Path(f) for f in files]
        last = [0.0]

        def progress(rows: int) -> None:  # on the worker
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                to_main(self._on_progress, token, int(rows), owner=self)

        self._run = run_task(
            Pool.SPREADSHEETS,
            lambda: validate(files, options, report_path=report_path, token=token,
                             progress=progress),
            on_done=self._on_done, on_error=self._on_error, owner=self, token=token)

    def cancel(self) -> None:
        """Stop the run under way; nothing is reported for it."""
        if self._run is not None:
            self._run.cancel()
            self._run = None

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the worker (closing, tests; the pool is shared: other owners' reads
        of spreadsheets are waited for too)."""
        return thread_pool(Pool.SPREADSHEETS).waitForDone(timeout_ms)

    def _on_progress(self, token: CancelToken, rows: int) -> None:
        if self._run is not None and self._run.token is token:
            self.progress.emit(rows)

    def _on_done(self, result: ValidationResult | None) -> None:
        self._run = None
        if result is None:
            self.failed.emit("the check before importing gave no result")
        else:
            self.finished.emit(result)

    def _on_error(self, error: BaseException) -> None:
        # told to the user, never a crash: the import itself checks every row again
        self._run = None
        self.failed.emit(str(error) or type(error).__name__)
