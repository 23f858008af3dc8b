"""Loading the failure list of a results folder, and exporting failures, on worker threads.

For the Failed Customers tab: reading 100,000 failures from the journal or writing them to
a CSV takes a while, and the window must stay responsive meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal

from app.models.failure_store import FAILED_CUSTOMERS_FILE, FailureStore
from app.models.records import FailureRecord, FailureRow
from app.services.jobs.journal import Journal, JournalError, journal_path
from app.services.results.failure_export import export_failures
from app.services.results.failure_list_file import load_failure_list
from app.services.worker_pacing import GilPacer
from app.util.worker_pools import file_exports, journal_reads


def journal_failure_rows(output_dir: Path, *, include_resolved: bool = False,
                         job: int | None = None) -> Iterator[FailureRow]:
    """The failures in the folder's journal, read as they are asked for."""
    journal = Journal.open(output_dir, create=False)
    journal.pace = GilPacer()  # read on a worker of the window: let it paint meanwhile
    try:
        yield from journal.failure_rows(state=None if include_resolved else "open", job=job)
    finally:
        journal.close()


def load_failure_rows(output_dir: Path, *, include_resolved: bool = False,
                      job: int | None = None) -> list[FailureRow] | None:
    """The failures of a results folder as rows: the open ones (and the resolved ones).

    From the folder's journal; from a `failed_customers.json` of an earlier version when
    there is no journal yet (one row per customer, the latest); None when the folder holds
    neither (nothing to load).
    """
    output_dir = Path(output_dir)
    if journal_path(output_dir).exists():
        journal = Journal.open(output_dir, create=False)
        journal.pace = GilPacer()
        try:
            return list(journal.failure_rows(state=None if include_resolved else "open",
                                             job=job))
        finally:
            journal.close()
    failed_file = output_dir / FAILED_CUSTOMERS_FILE
    if not failed_file.exists():
        return None
    latest: dict[str, FailureRecord] = {}
    for record in load_failure_list(failed_file):
        earlier = latest.get(record.customer_key)
        if earlier is not None:
            record.attempts = earlier.attempts + 1
        latest[record.customer_key] = record
    return [record.to_row() for record in latest.values()]


class _Bridge(QObject):
    """Carries a worker's result back to the GUI thread (a queued signal)."""

    done = Signal(str, object, object)  # task name, result, error (or None)


class FailureListTasks(QObject):
    """Runs loads and exports of failures off the GUI thread.

    Signals:
        loaded(count, error, request): `count` the failures the store holds now (None:
            nothing to load, the store is as it was), `error` a message or "", `request`
            what `load` was given.
        exported(path, count, error): a file written with `count` failures, or the error.
    """

    loaded = Signal(object, str, object)
    exported = Signal(str, int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # shared pools that outlive us: a worker done after we are gone finds nobody to
        # tell (the RuntimeError of the deleted bridge); an export never waits for a load
        self._load_pool = journal_reads()
        self._export_pool = file_exports()
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

    def load(self, output_dir: Path, store: FailureStore, *, include_resolved: bool = False,
             job: int | None = None) -> None:
        """Load the folder's failures into `store` (on a worker: comparing 100,000 rows
        with those shown takes a moment); `loaded` tells how many it holds."""
        request = {"output_dir": Path(output_dir), "include_resolved": include_resolved,
                   "job": job}

        def work() -> tuple[int | None, dict[str, Any]]:
            folder = Path(output_dir)
            if journal_path(folder).exists():
                return store.reload(lambda: journal_failure_rows(
                    folder, include_resolved=include_resolved, job=job)), request
            rows = load_failure_rows(folder, include_resolved=include_resolved, job=job)
            return (None if rows is None else store.replace_all(rows)), request

        self._run("load", work, context=(None, request), pool=self._load_pool)

    def export(self, records: list[FailureRecord], path: Path, fmt: str) -> None:
        self._run("export", lambda: (export_failures(records, path, fmt), len(records)),
                  context=(path, len(records)), pool=self._export_pool)

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the pools of loads and exports (shared: other owners' work too)."""
        loads_done = self._load_pool.waitForDone(timeout_ms)
        return self._export_pool.waitForDone(timeout_ms) and loads_done

    def _run(self, name: str, work: Callable[[], Any], context: Any,
             pool: QThreadPool) -> None:
        bridge = self._bridge

        def run() -> None:
            try:
                result, error = work(), None
            except (OSError, ValueError, JournalError) as exc:  # told to the user
                # without its traceback: that holds this frame, which holds the error
                result, error = context, exc.with_traceback(None)
            # RuntimeError: the window was closed meanwhile, nobody to tell
            with contextlib.suppress(RuntimeError):
                bridge.done.emit(name, result, error)

        pool.start(run)

    def _on_done(self, name: str, result: Any, error: BaseException | None) -> None:
        message = "" if error is None else str(error)
        if name == "load":
            count, request = result
            self.loaded.emit(count, message, request)
        elif name == "export":
            path, count = result
            self.exported.emit(str(path), int(count), message)
