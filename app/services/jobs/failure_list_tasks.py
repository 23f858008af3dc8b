"""The Failed Customers tab's work off the GUI thread: preparing a results folder's list,
exporting failures, reading a large selection.

A folder's list is its journal (see `FailureStore.attach`): preparing it only opens the
journal once, which brings its schema (the list's indexes) up to this version. A folder an
earlier version wrote (a failed_customers.json, no journal) has its list loaded into the
store. Exports and large selections are read from the list's database a slice at a time.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.models.failure_query import FailureRecords
from app.models.failure_store import FAILED_CUSTOMERS_FILE, FailureStore
from app.models.records import FailureRecord, FailureRow
from app.services.jobs.journal import Journal, JournalError, journal_path
from app.services.results.failure_export import export_failures
from app.services.results.failure_list_file import load_failure_list
from app.util.background import Pool, run_task, thread_pool

#: What goes wrong that a user is told of (anything else is a bug, raised on the GUI thread)
_TOLD = (OSError, ValueError, JournalError, sqlite3.Error)


@dataclass(frozen=True, slots=True)
class FolderList:
    """Where a results folder's failure list is: its journal, or (an earlier version's
    folder) `loaded` failures put into the store; neither when the folder holds none."""

    journal: Path | None = None
    loaded: int | None = None


def legacy_failure_rows(output_dir: Path) -> list[FailureRow] | None:
    """The failures of an earlier version's `failed_customers.json` (one row per customer,
    the latest, attempts counted); None when the folder has none."""
    failed_file = Path(output_dir) / FAILED_CUSTOMERS_FILE
    if not failed_file.exists():
        return None
    latest: dict[str, FailureRecord] = {}
    for record in load_failure_list(failed_file):
        earlier = latest.get(record.customer_key)
        if earlier is not None:
            record.attempts = earlier.attempts + 1
        latest[record.customer_key] = record
    return [record.to_row() for record in latest.values()]


def prepare_folder_list(output_dir: Path, store: FailureStore) -> FolderList:
    """Make the folder's list ready to read (on a worker thread): its journal, brought up to
    this version's schema, or its earlier version's list, put into `store`."""
    folder = Path(output_dir)
    if journal_path(folder).exists():
        Journal.open(folder, create=False).close()
        return FolderList(journal=journal_path(folder))
    rows = legacy_failure_rows(folder)
    if rows is None:
        return FolderList()
    return FolderList(loaded=store.replace_all(rows))


def export_listed(database: Path, rowids: Sequence[int], path: Path, fmt: str,
                  delimiter: str | None = None) -> tuple[Path, int]:
    """Write the failures of `rowids` (in that order) from the list's database to `path`
    (a CSV separated by `delimiter`; None: the system's list separator)."""
    records = FailureRecords(database, rowids)
    return export_failures(records, path, fmt, delimiter=delimiter), len(records)


def read_listed(database: Path, rowids: Sequence[int]) -> list[FailureRecord]:
    """The failures of `rowids`, complete, in that order (a large selection)."""
    return list(FailureRecords(database, rowids))


class FailureListTasks(QObject):
    """Runs the failure list's folder preparation, exports and large reads off the GUI thread
    (`Pool.JOURNAL` for reads, in the order asked; `Pool.EXPORTS` for files the user
    chose). Answers come as signals, none once this object is deleted.

    Signals:
        prepared(FolderList | None, error, output_dir): a folder's list is ready (None
            and a message when it could not be read).
        exported(path, count, error): a file written with `count` failures, or the error.
        recordsRead(records, error, request): the failures `read` was asked for.
    """

    prepared = Signal(object, str, object)
    exported = Signal(str, int, str)
    recordsRead = Signal(object, str, object)

    def prepare(self, output_dir: Path, store: FailureStore) -> None:
        folder = Path(output_dir)
        run_task(Pool.JOURNAL, lambda: prepare_folder_list(folder, store),
                 on_done=lambda found: self.prepared.emit(found, "", folder),
                 on_error=self._told(lambda error: self.prepared.emit(None, error, folder)),
                 owner=self)

    def export(self, database: Path, rowids: array[int], path: Path, fmt: str,
               delimiter: str | None = None) -> None:
        run_task(Pool.EXPORTS, lambda: export_listed(database, rowids, path, fmt, delimiter),
                 on_done=lambda done: self.exported.emit(str(done[0]), done[1], ""),
                 on_error=self._told(lambda error: self.exported.emit(str(path), 0, error)),
                 owner=self)

    def read(self, database: Path, rowids: Sequence[int], request: Any = None) -> None:
        run_task(Pool.JOURNAL, lambda: read_listed(database, rowids),
                 on_done=lambda records: self.recordsRead.emit(records, "", request),
                 on_error=self._told(lambda error: self.recordsRead.emit([], error, request)),
                 owner=self)

    @staticmethod
    def _told(tell: Callable[[str], None]) -> Callable[[BaseException], None]:
        def handle(error: BaseException) -> None:
            if not isinstance(error, _TOLD):
                raise error
            tell(str(error))

        return handle

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Wait for the pools of reads and exports (shared: other owners' work too)."""
        reads_done = thread_pool(Pool.JOURNAL).waitForDone(timeout_ms)
        return thread_pool(Pool.EXPORTS).waitForDone(timeout_ms) and reads_done
