"""Finds and counts customer files on worker threads, for the Files tab.

Folders are searched on one thread (in the order they were given), then each file is
counted on a small pool; counts reach the GUI thread in batches, so a thousand files never
freeze the window. The tab decides what to show; this service only finds and counts.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QTimer, Signal, Slot

from app.models.file_inspection import FileInspection
from app.services.sources.customer_reader import ReadProblem
from app.services.sources.file_inspector import InspectionCancelled, inspect_file
from app.services.sources.file_search import SkippedFile, find_customer_files
from app.services.worker_pacing import GilPacer
from app.util.paths import path_key
from app.util.worker_pools import FILE_CHECK_THREADS, file_checks, folder_searches

# The machine running this has two cores. Two threads overlap the disk waits of many small
# files; counting is CPU work under the GIL, so two big files at once would only fight the
# GUI thread for it (measured: GUI pauses of up to a second instead of <100 ms).
INSPECT_THREADS = FILE_CHECK_THREADS  # 2: the size of the shared file_checks() pool
# Files at least this big are counted one at a time (about 10,000 customers, ~0.3 s).
LARGE_FILE_BYTES = 4 * 1024 * 1024
# Tasks handed to the pool at once; the rest wait in our own queue, so forgetting files
# drops them cheaply instead of cancelling thousands of queued runnables.
_IN_FLIGHT_LIMIT = INSPECT_THREADS * 2
# Finished inspections are handed over in one go this often: 1,000 small files then cost
# ~10-30 view updates instead of 1,000.
APPLY_INTERVAL_MS = 100


class _CancelToken:
    """Shared with worker threads; set when their results are no longer wanted."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


@dataclass(frozen=True, slots=True)
class _Job:
    """One file to count, and the generation it was asked for."""

    path: Path
    generation: int
    large: bool


class _WorkerSignals(QObject):
    """Carries worker results to the GUI thread (queued: it lives in the GUI thread)."""

    # generation, files found, ReadProblems, skipped files, sizes by path_key
    searched = Signal(int, object, object, object, object)
    # _Job, FileInspection or None when cancelled
    inspected = Signal(object, object)


class _SearchTask(QRunnable):
    """Expands files and folders (recursively) into customer files, and stats them."""

    def __init__(self, paths: list[Path], generation: int, signals: _WorkerSignals) -> None:
        super().__init__()
        self._paths = paths
        self._generation = generation
        self._signals = signals  # a Python reference keeps the QObject alive meanwhile

    def run(self) -> None:
        sizes: dict[str, int] = {}
        skipped: list[SkippedFile] = []
        try:
            search = find_customer_files(self._paths)
            files, problems, skipped = search.files, search.problems, search.skipped
            for path in files:
                # an unreadable file's size stays unknown: its inspection says why
                with contextlib.suppress(OSError):
                    sizes[path_key(path)] = os.path.getsize(path)
        except Exception as exc:  # e.g. a folder that cannot be listed
            files = []
            problems = [ReadProblem(str(self._paths[0]) if self._paths else "",
                                    f"the folder could not be searched ({exc})",
                                    fatal_for_file=True)]
        with contextlib.suppress(RuntimeError):  # the checker is gone: nobody to tell
            self._signals.searched.emit(self._generation, files, problems, skipped, sizes)


class _InspectTask(QRunnable):
    """Counts the customers in one file on a pool thread."""

    def __init__(self, job: _Job, token: _CancelToken, signals: _WorkerSignals) -> None:
        super().__init__()
        self._job = job
        self._token = token
        self._signals = signals
        self._pace = GilPacer()

    def _cancelled(self) -> bool:
        """Polled by inspect_file every ~1 ms: stop when cancelled, and let the window
        have Python's lock now and then (see worker_pacing)."""
        self._pace()
        return self._token.cancelled

    def run(self) -> None:
        result: FileInspection | None
        path = self._job.path
        if self._token.cancelled:
            result = None
        else:
            try:
                self._pace = GilPacer()
                result = inspect_file(path, cancelled=self._cancelled)
            except InspectionCancelled:
                result = None
            except Exception as exc:  # never lose the result: the row would count forever
                result = FileInspection(path, problem=f"the file could not be read "
                                        f"({type(exc).__name__}: {exc})")
        with contextlib.suppress(RuntimeError):  # the checker is gone: nobody to tell
            self._signals.inspected.emit(self._job, result)


class FileChecker(QObject):
    """Searches folders and counts files off the GUI thread.

    `search(paths)` looks for customer files; `inspect(paths, sizes)` counts the ones the
    caller chose. `forget` drops queued counts, `cancel_all` everything under way.

    Signals:
        filesFound(files, sizes, problems, skipped): a search is done (list[Path],
            dict path_key -> bytes, list[ReadProblem], list[SkippedFile]).
        inspected(list[FileInspection]): counts that came back, in batches.
        progressChanged(): the files counted so far, or searching, changed.
        finished(): everything asked for since the checker was last idle is done.
    """

    filesFound = Signal(object, object, object, object)
    inspected = Signal(object)
    progressChanged = Signal()
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # A child of the checker, so it is destroyed with it on the GUI thread, never by
        # the last task to let go of it on a pool thread; a task that finishes after the
        # checker is gone finds it deleted (RuntimeError) and tells nobody.
        self._signals = _WorkerSignals(self)
        self._signals.searched.connect(self._on_searched)
        self._signals.inspected.connect(self._on_inspected)
        self._inspect_pool = file_checks()
        # One thread for searches: they run in the order asked, so files appear in the
        # order they were dropped.
        self._search_pool = folder_searches()
        self._generation = 0
        self._token = _CancelToken()
        self._searches_pending = 0
        # waiting to be handed to the pool; big files separately, as they go one at a time
        self._queue: deque[Path] = deque()
        self._queue_large: deque[Path] = deque()
        self._running = 0  # tasks in the pool, of any generation
        self._running_large = 0
        self._outstanding = 0  # this generation: queued + running, results not back
        self._results: list[FileInspection] = []  # back, not yet handed over
        self._session_active = False
        self._session_total = 0
        self._session_done = 0
        self._timer = QTimer(self)
        self._timer.setInterval(APPLY_INTERVAL_MS)
        self._timer.timeout.connect(self._hand_over)

    # -- asking -----------------------------------------------------------------------------

    def search(self, paths: list[Path]) -> None:
        """Look for customer files in `paths`; answers with `filesFound`."""
        self._begin_session()
        self._searches_pending += 1
        self._search_pool.start(_SearchTask(list(paths), self._generation, self._signals))
        self.progressChanged.emit()

    def inspect(self, paths: list[Path], sizes: dict[str, int]) -> None:
        """Count the customers in `paths` (big ones, by `sizes`, one at a time)."""
        self._begin_session()
        for path in paths:
            large = sizes.get(path_key(path), 0) >= LARGE_FILE_BYTES
            (self._queue_large if large else self._queue).append(path)
        self._outstanding += len(paths)
        self._session_total += len(paths)
        self._feed()
        self.progressChanged.emit()

    def forget(self, keys: set[str]) -> None:
        """Files no longer wanted (by path_key) are not counted if still waiting."""
        if not keys:
            return
        dropped = 0
        for name in ("_queue", "_queue_large"):
            queue: deque[Path] = getattr(self, name)
            kept = deque(p for p in queue if path_key(p) not in keys)
            dropped += len(queue) - len(kept)
            setattr(self, name, kept)
        self._outstanding -= dropped
        self._session_total -= dropped
        self.progressChanged.emit()

    def cancel_all(self) -> None:
        """Drop every search and count under way; their results are ignored.

        A session under way ends on the next timer tick (not here), so that a clear
        followed at once by a search is one session with one `finished`.
        """
        self._generation += 1
        self._token.cancelled = True  # running inspections stop at their next check
        self._token = _CancelToken()
        self._queue.clear()
        self._queue_large.clear()
        self._searches_pending = 0
        self._outstanding = 0
        self._results.clear()
        self._session_total = 0
        self._session_done = 0
        self.progressChanged.emit()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop and wait for the worker threads (when the window closes; the pools are
        shared, so other owners' searches and counts are waited for too)."""
        self.cancel_all()
        self._timer.stop()
        self._search_pool.waitForDone(wait_ms)
        self._inspect_pool.waitForDone(wait_ms)

    # -- state ------------------------------------------------------------------------------

    def is_busy(self) -> bool:
        """True while folders are being searched or files counted."""
        return bool(self._searches_pending or self._outstanding or self._results)

    def progress(self) -> tuple[int, int]:
        """(files counted, files to count) of this session; (0, 0) while only searching."""
        return min(self._session_done, self._session_total), self._session_total

    # -- machinery --------------------------------------------------------------------------

    def _begin_session(self) -> None:
        if not self._session_active:
            self._session_active = True
            self._session_total = 0
            self._session_done = 0
        if not self._timer.isActive():
            self._timer.start()

    @Slot(int, object, object, object, object)
    def _on_searched(self, generation: int, files: list[Path], problems: list[ReadProblem],
                     skipped: list[SkippedFile], sizes: dict[str, int]) -> None:
        if generation != self._generation:
            return  # cancelled meanwhile
        self._searches_pending -= 1
        self.filesFound.emit(files, sizes, problems, skipped)  # the caller asks to inspect
        self.progressChanged.emit()
        self._maybe_finish()

    def _feed(self) -> None:
        while self._running < _IN_FLIGHT_LIMIT:
            if self._queue_large and not self._running_large:
                job = _Job(self._queue_large.popleft(), self._generation, large=True)
                self._running_large += 1
            elif self._queue:
                job = _Job(self._queue.popleft(), self._generation, large=False)
            else:
                break
            self._running += 1
            self._inspect_pool.start(_InspectTask(job, self._token, self._signals))

    @Slot(object, object)
    def _on_inspected(self, job: _Job, result: FileInspection | None) -> None:
        # bookkeeping only: results are handed over in batches by the timer
        self._running -= 1
        self._running_large -= job.large
        current = job.generation == self._generation
        if current:
            self._outstanding -= 1
            self._session_done += 1
            if result is not None:
                self._results.append(result)
        self._feed()
        if current and not self._outstanding and not self._searches_pending:
            self._hand_over()  # the last one: show it now, not at the next tick

    @Slot()
    def _hand_over(self) -> None:
        if self._results:
            results, self._results = self._results, []
            self.inspected.emit(results)
        self.progressChanged.emit()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if not self._session_active or self.is_busy():
            return
        self._session_active = False
        self._timer.stop()
        self.progressChanged.emit()
        self.finished.emit()
