"""Finds and counts customer files on worker threads, for the Files tab.

Folders are searched on one thread (in the order they were given), then each file is
counted on a small pool, a big one in a helper process (`inspect_file_in_helper`: counting
it in a thread would hold Python's lock for seconds and the window would stutter); counts
reach the GUI thread in batches, so a thousand files never freeze the window. The tab
decides what to show; this service only finds and counts.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.models.file_inspection import FileInspection
from app.services.sources.customer_reader import ReadProblem
from app.services.sources.file_inspector import inspect_file, inspect_file_in_helper
from app.services.sources.file_search import SkippedFile, find_customer_files
from app.util.background import (
    THREADS,
    Cancelled,
    CancelToken,
    Pool,
    TaskHandle,
    run_task,
    thread_pool,
)
from app.util.paths import path_key

# The machine running this has two cores. Two threads overlap the disk waits of many small
# files (each counted in ~0.1 s at most, under Python's lock).
INSPECT_THREADS = THREADS[Pool.FILE_CHECKS]  # 2
# Files at least this big (about 10,000 customers, 0.1 s and up) are counted in a helper
# process, one at a time: starting it costs ~0.2 s, and the two cores are shared with the
# window and the other counts.
LARGE_FILE_BYTES = 4 * 1024 * 1024
# Tasks handed to the pool at once; the rest wait in our own queue, so forgetting files
# drops them cheaply instead of cancelling thousands of queued tasks.
_IN_FLIGHT_LIMIT = INSPECT_THREADS * 2
# Finished inspections are handed over in one go this often: 1,000 small files then cost
# ~10-30 view updates instead of 1,000.
APPLY_INTERVAL_MS = 100


@dataclass(frozen=True, slots=True)
class _Job:
    """One file to count, and the generation it was asked for."""

    path: Path
    generation: int
    large: bool


@dataclass(slots=True)
class _Found:
    """What a search found."""

    files: list[Path] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # by path_key
    links: list[str] = field(default_factory=list)  # links to folders not followed


def search_files(paths: list[Path]) -> _Found:
    """Expand files and folders (recursively) into customer files, and stat them."""
    found = _Found()
    try:
        search = find_customer_files(paths)
        found.files, found.problems, found.skipped = search.files, search.problems, \
            search.skipped
        found.links = search.link_notes()
        for path in found.files:
            # an unreadable file's size stays unknown: its inspection says why
            with contextlib.suppress(OSError):
                found.sizes[path_key(path)] = os.path.getsize(path)
    except Exception as exc:  # e.g. a folder that cannot be listed
        found = _Found(problems=[ReadProblem(str(paths[0]) if paths else "",
                                             f"the folder could not be searched ({exc})",
                                             fatal_for_file=True)])
    return found


def count_file(path: Path, token: CancelToken, *, in_helper: bool = False
               ) -> FileInspection | None:
    """Count the customers in one file (`in_helper`: in a helper process); None once
    `token` is cancelled."""
    if token.cancelled:
        return None
    try:
        if in_helper:
            return inspect_file_in_helper(path, token=token)
        return inspect_file(path, token=token)
    except Cancelled:
        return None
    except Exception as exc:  # never lose the result: the row would count forever
        return FileInspection(path, problem=f"the file could not be read "
                              f"({type(exc).__name__}: {exc})")


class FileChecker(QObject):
    """Searches folders and counts files off the GUI thread.

    `search(paths)` looks for customer files; `inspect(paths, sizes)` counts the ones the
    caller chose. `forget` drops queued counts, `cancel_all` everything under way.

    Signals:
        filesFound(files, sizes, problems, skipped): a search is done (list[Path],
            dict path_key -> bytes, list[ReadProblem], list[SkippedFile]).
        linksSkipped(list[str]): links to other folders the search did not follow (a
            note each; Windows' "My Music" in Documents), just before filesFound.
        inspected(list[FileInspection]): counts that came back, in batches.
        progressChanged(): the files counted so far, or searching, changed.
        finished(): everything asked for since the checker was last idle is done.
    """

    filesFound = Signal(object, object, object, object)
    linksSkipped = Signal(object)
    inspected = Signal(object)
    progressChanged = Signal()
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Searches run on Pool.FOLDER_SEARCHES (one thread: in the order asked, so files
        # appear in the order they were dropped), counts on Pool.FILE_CHECKS. Answers that
        # come after the checker is gone find nobody (run_task's owner).
        self._generation = 0
        self._token = CancelToken()  # this generation's: cancel_all stops its counts
        self._searches: list[TaskHandle[_Found]] = []
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
        paths = list(paths)
        handle = run_task(Pool.FOLDER_SEARCHES, lambda: search_files(paths),
                          on_done=lambda found: self._on_searched(handle, found), owner=self)
        self._searches.append(handle)
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
        self._token.cancel()  # running counts stop at their next check
        self._token = CancelToken()
        for search in self._searches:
            search.cancel()  # never answers; one still waiting never runs
        self._searches.clear()
        self._queue.clear()
        self._queue_large.clear()
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
        thread_pool(Pool.FOLDER_SEARCHES).waitForDone(wait_ms)
        thread_pool(Pool.FILE_CHECKS).waitForDone(wait_ms)

    # -- state ------------------------------------------------------------------------------

    def is_busy(self) -> bool:
        """True while folders are being searched or files counted."""
        return bool(self._searches or self._outstanding or self._results)

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

    def _on_searched(self, search: TaskHandle[_Found], found: _Found) -> None:
        self._searches.remove(search)
        # the caller asks to inspect
        if found.links:
            self.linksSkipped.emit(found.links)
        self.filesFound.emit(found.files, found.sizes, found.problems, found.skipped)
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
            # Not cancelled with the generation's token: a count that stopped still
            # answers (None), so that the in-flight bookkeeping stays right.
            run_task(Pool.FILE_CHECKS,
                     partial(count_file, job.path, self._token, in_helper=job.large),
                     on_done=partial(self._on_inspected, job), owner=self)

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
        if current and not self._outstanding and not self._searches:
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
