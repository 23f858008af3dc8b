"""The Failed Customers table: the failure list read from SQLite, a page at a time.

Built for a million failures, and for 100,000 arriving during an import while the table is
on screen:

* the model holds one number per listed failure, its rowid, in an `array` (no Python
  object per failure, so the garbage collector has nothing to walk), plus a few pages of
  the rows on screen;
* which failures are listed, and in which order, is an SQL query over the indexes of
  `app.models.failure_query`, run on the journal's worker thread (`Pool.JOURNAL`); the
  GUI thread only takes in the result (a model reset, a layout change that keeps the
  selection, or rows appended);
* during an import the store's listener only sets a `threading.Event`; a timer on the GUI
  thread then asks for the rows added since the last query (one insert) and for the rows
  on screen again (a `dataChanged` for those that changed: failed again, resolved).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush

from app.models.failure_query import (
    COL_BATCH,
    COL_ERROR,
    COL_ID,
    COL_RESULT,
    COL_TIMESTAMP,
    COL_USERNAME,
    COLUMNS,
    D_RESOLVED_JOB,
    DisplayRow,
    FailureCounts,
    FailureQuery,
    display_timestamp,
    display_value,
    error_type,
    full_value,
    last_rowid,
    mark_of,
    open_list_connection,
    order_sql,
    positions_of,
    read_counts,
    read_display_rows,
    read_error_types,
    read_mark,
    read_order,
    read_records,
    short_error,
    text_sort_key,
)
from app.models.failure_store import FailureSource, FailureStore
from app.models.records import FailureRecord
from app.models.status_colours import status_colours
from app.util.background import Pool, run_task

__all__ = ["COLUMNS", "COLUMN_TOOLTIPS", "COL_BATCH", "COL_ERROR", "COL_ID", "COL_RESULT",
           "COL_TIMESTAMP", "COL_USERNAME", "FailureTableModel", "display_timestamp",
           "error_type", "short_error", "text_sort_key"]

ModelIndex = QModelIndex | QPersistentModelIndex

COLUMN_TOOLTIPS: tuple[str, ...] = (
    "The unique identifier of the failed customer",
    "The customer's username / name",
    "The error message (shortened here; hover or double-click for the whole text)",
    "When the failure was detected",
    "How the failure was detected, and in which batch",
    "The result word: the API's own (e.g. CONFLICT, FAILED) or the importer's",
)

PAGE_ROWS = 128  # rows read at once for the screen
CACHED_PAGES = 16  # pages kept (about 2,000 rows): a screen, and where it was before
FIRST_PAGES = 2  # read with each new order, on the worker thread: the first screen
DEFAULT_LIVE_INTERVAL_MS = 250
WATCHED_PAGES = 2  # pages read again while live: what a screen shows
RETRY_UNREADABLE_MS = 250  # the database was locked for a page: ask again this much later

_ITEM_FLAGS = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
               | Qt.ItemFlag.ItemNeverHasChildren)
# the layout signals' full signature, so the hint reaches views attached directly
_LAYOUT_SIGNATURE = ("QList<QPersistentModelIndex>", "QAbstractItemModel::LayoutChangeHint")
_SORT_HINT = QAbstractItemModel.LayoutChangeHint.VerticalSortHint
_NO_HINT = QAbstractItemModel.LayoutChangeHint.NoLayoutChangeHint

_FULL, _NEW_ROWS, _PENDING, _SUMMARY = "full", "new rows", "pending", "summary"
_ALL_SELECTED = "all"  # the whole list was selected


class _Running:
    """The query on the worker thread: which, and its connection (to interrupt it)."""

    def __init__(self, kind: str, serial: int, recount: bool = False) -> None:
        self.kind = kind
        self.serial = serial
        self.recount = recount  # a list's query that counts too
        self.superseded = False
        self.connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def use(self, connection: sqlite3.Connection | None) -> None:
        with self._lock:
            self.connection = connection

    def interrupt(self) -> None:
        """Stop the query now (from the GUI thread): its answer is not wanted."""
        self.superseded = True
        with self._lock, contextlib.suppress(sqlite3.Error):
            if self.connection is not None:
                self.connection.interrupt()


@dataclass(slots=True)
class _Answer:
    """What a query on the worker thread found."""

    source: FailureSource
    query: FailureQuery
    order: array[int] = field(default_factory=lambda: array("q"))
    top: int = 0  # the greatest rowid when it was read: later rows come after it
    counts: FailureCounts | None = None
    rows: dict[int, DisplayRow] = field(default_factory=dict)  # the first screen
    marks: list[tuple[int, str]] = field(default_factory=list)  # (page, read_mark)
    selected: array[int] | str | None = None  # where the selection went (see _ALL_SELECTED)
    selection_serial: int = -1
    pending: int = 0
    error_types: list[tuple[str, int]] = field(default_factory=list)


def _read(store: FailureStore, source: FailureSource, running: _Running,
          read: Callable[[sqlite3.Connection], None]) -> None:
    """Run `read` on a connection to the list, in one read transaction (one snapshot)."""
    if source.path is None or not source.path.exists():
        return  # nothing listed yet (a journal an import is about to make)
    if not source.journal:
        store.ensure_indexed()
    connection = open_list_connection(source.path)
    running.use(connection)
    try:
        connection.execute("BEGIN")
        read(connection)
        connection.execute("COMMIT")
    finally:
        running.use(None)
        connection.close()


class FailureTableModel(QAbstractTableModel):
    """Table of the failures a `FailureStore` lists, for the Failed Customers tab.

    `set_search_text`, `set_result_filter`, `set_show_resolved`, `set_job_filter` and
    `sort` change the query; `reload` runs it again. Its answer comes a moment later (see
    `loaded`) as a model reset when the store lists another source, otherwise as a layout
    change: the selection (see `set_selection_model`) and other persistent indexes follow
    their failures. While live updates are on (`set_live_updates`), failures added to the
    list are appended at the end (in the sort order among themselves, until the next
    reload) and the rows on screen are read again, several times a second. Resolved
    failures (listed with "Show resolved", or resolved during an import) are greyed.

    Signals: `loaded(int serial)` once the answer to `reload()` number `serial` (or a
    later one) is shown; `rowsArrived(int)` after live updates appended rows;
    `countsChanged()` (open, resolved, per result, new rows waiting); `summaryChanged()`
    (kinds of error); `storeChanged()` when the store told of changes (on the GUI thread,
    at most once per timer tick); `queryFailed(str)` when the list could not be read;
    plus the standard model signals.
    """

    RecordRole = Qt.ItemDataRole.UserRole + 1  # a FailureRecord, read for the asking
    ResolvedRole = Qt.ItemDataRole.UserRole + 2  # whether the row's failure is resolved
    RowIdRole = Qt.ItemDataRole.UserRole + 3  # the failure's rowid in the list's database

    loaded = Signal(int)
    rowsArrived = Signal(int)
    countsChanged = Signal()
    summaryChanged = Signal()
    storeChanged = Signal()
    queryFailed = Signal(str)

    def __init__(self, store: FailureStore, parent: QObject | None = None, *,
                 live_interval_ms: int = DEFAULT_LIVE_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._store = store
        self._source = FailureSource(None, -1, False)  # what the rows are from
        self._query = FailureQuery()
        self._order: array[int] = array("q")  # display row -> rowid
        self._exact = True  # the order is a query's answer (no rows appended since)
        # the counts a reload for reopened failures was last asked for: never twice for
        # the same, should counts and list ever disagree for good
        self._reread_for: FailureCounts | None = None
        self._watermark = 0  # rows with a greater rowid came after the last query
        self._counts = FailureCounts()
        self._error_types: list[tuple[str, int]] = []
        self._pending = 0
        self._pages: OrderedDict[int, list[DisplayRow | None]] = OrderedDict()
        self._reader: sqlite3.Connection | None = None  # GUI thread's, for the pages
        self._reader_path: Any = None
        self._running: _Running | None = None
        # what runs on the worker thread for this model, so that its end can stop it
        self._runs: list[_Running] = []
        runs = self._runs
        self._wanted: set[str] = set()
        self._recount = True  # the next list's query counts too
        self._requested = 0  # serial of the latest reload()
        self._shown = 0  # serial of the answer shown
        self._selection: QItemSelectionModel | None = None
        self._selection_serial = 0
        # The store calls listeners from whichever thread changed it. Only this Event is
        # touched there (thread-safe, and it does not keep the model alive).
        self._changed = threading.Event()
        changed = self._changed

        def on_store_changed(_count: int) -> None:
            changed.set()

        self._listener = on_store_changed
        store.add_listener(on_store_changed)
        # the store outlives models: stop being called once this one is gone, and stop
        # the query that runs for it (a closing window does not wait for it)
        def on_destroyed(*_args: object) -> None:
            store.remove_listener(on_store_changed)
            for run in runs:
                run.interrupt()

        self.destroyed.connect(on_destroyed)
        self._timer = QTimer(self)
        self._timer.setInterval(live_interval_ms)
        self._timer.timeout.connect(self._tick)
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.setInterval(RETRY_UNREADABLE_MS)
        self._retry_timer.timeout.connect(self._read_screen_again)
        self.reload()

    # -- the store -------------------------------------------------------------------------

    @property
    def store(self) -> FailureStore:
        return self._store

    def source(self) -> FailureSource:
        """Where the rows shown are read from."""
        return self._source

    def detach(self) -> None:
        """Stop listening to the store and reading (call before dropping the model)."""
        self._timer.stop()
        self._retry_timer.stop()
        self._store.remove_listener(self._listener)
        if self._running is not None:
            self._running.interrupt()
        self._close_reader()

    def set_live_updates(self, enabled: bool) -> None:
        """Take in what the store gains several times a second while enabled."""
        if enabled and not self._timer.isActive():
            self._timer.start()
            self._changed.set()  # catch up on the next tick with what arrived meanwhile
        elif not enabled:
            self._timer.stop()

    def live_updates(self) -> bool:
        return self._timer.isActive()

    def pull_new_records(self) -> None:
        """Take in what the store gained since the last query, now (not waiting for the
        timer); `rowsArrived` or `countsChanged` tell when it is done."""
        self._changed.clear()
        self._request(_NEW_ROWS)

    def check_pending(self) -> None:
        """Count the failures added since the last query (see `pending_count`)."""
        self._request(_PENDING)

    def pending_count(self) -> int:
        """Failures added to the list since the rows shown were read (see `check_pending`)."""
        return self._pending

    def _tick(self) -> None:
        if self._store.source.generation != self._source.generation:
            self._request(_FULL)
        elif self._changed.is_set():
            self._changed.clear()
            self.storeChanged.emit()
            self._request(_NEW_ROWS)

    # -- the query -------------------------------------------------------------------------

    def query(self) -> FailureQuery:
        return self._query

    def reload(self) -> int:
        """Run the query again (the store's source as it is now); returns the serial that
        `loaded` reports once the answer is shown."""
        return self._reload(recount=True)

    def _reload(self, *, recount: bool) -> int:
        self._recount = self._recount or recount
        self._requested += 1
        running = self._running
        if running is not None and running.kind in (_FULL, _SUMMARY):
            # a list's answer would be out of date; the kinds of error (a whole scan of a
            # big list) are counted again afterwards: what the user asked for comes first
            running.interrupt()
        self._request(_FULL)
        return self._requested

    def is_busy(self) -> bool:
        """Whether the answer to the latest `reload()` is still to come."""
        return self._shown < self._requested

    def is_idle(self) -> bool:
        """Whether no query runs and none waits to."""
        return self._running is None and not self._wanted

    def _set_query(self, query: FailureQuery) -> None:
        if query != self._query:
            # another order of the same failures needs no counting again
            recount = not query.same_rows(self._query)
            self._query = query
            self._reload(recount=recount)

    def set_search_text(self, text: str) -> None:
        """List only failures whose customer id, username, error, result or source file
        name contain `text` (case-insensitive); "" lists all."""
        self._set_query(replace(self._query, search=text.strip().casefold()))

    def search_text(self) -> str:
        return self._query.search

    def set_result_filter(self, result: str | None) -> None:
        """List only failures with this result word; None (or "") lists all."""
        self._set_query(replace(self._query, result=result or None))

    def set_show_resolved(self, show: bool) -> None:
        """List the failures a later import resolved too (greyed), or only open ones."""
        self._set_query(replace(self._query, show_resolved=show))

    def shows_resolved(self) -> bool:
        return self._query.show_resolved

    def set_job_filter(self, job: int | None) -> None:
        """List the customers whose latest attempt was in `job` (None: every job)."""
        self._set_query(replace(self._query, job=job))

    def job_filter(self) -> int | None:
        return self._query.job

    def is_filtered(self) -> bool:
        """Whether the user narrowed the list (search text or result)."""
        return bool(self._query.search) or self._query.result is not None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by `column` (-1: the order the failures first happened in). Turning the
        current order round is done at once; another column is a query."""
        query = replace(self._query, sort_column=column if 0 <= column < len(COLUMNS) else -1,
                        descending=order == Qt.SortOrder.DescendingOrder)
        if query == self._query:
            return
        if self._exact and not self.is_busy() and query.ascending() == self._query.ascending():
            self._query = query
            self._reverse()
            return
        self._set_query(query)

    # -- running queries on the worker thread ---------------------------------------------

    def _request(self, kind: str) -> None:
        self._wanted.add(kind)
        self._start_next()

    def _start_next(self) -> None:
        if self._running is not None:
            return
        source = self._store.source
        if source.generation != self._source.generation:
            self._wanted.add(_FULL)  # the store lists another source: nothing else counts
        for kind in (_FULL, _NEW_ROWS, _PENDING, _SUMMARY):
            if kind in self._wanted:
                break
        else:
            return
        self._wanted.discard(kind)
        if kind == _NEW_ROWS:
            self._wanted.discard(_PENDING)  # answered by this one too
        recount = False
        if kind == _FULL:
            recount = self._recount or source.generation != self._source.generation
            self._recount = False
        running = self._running = _Running(kind, self._requested, recount)
        self._runs[:] = [running]
        store, query = self._store, self._query
        if kind == _FULL:
            selected, selection_serial = self._selection_for_worker()
            work = _full(store, source, query, running, selected, selection_serial, recount)
        elif kind == _NEW_ROWS:
            work = _new_rows(store, source, query, running, self._watermark,
                             self._watched_pages())
        elif kind == _PENDING:
            work = _pending(store, source, query, running, self._watermark)
        else:
            work = _summary(store, source, query, running)
        run_task(Pool.JOURNAL, work, on_done=lambda answer: self._answered(running, answer),
                 on_error=lambda error: self._failed(running, error), owner=self)

    def _failed(self, running: _Running, error: BaseException) -> None:
        self._running = None
        if running.superseded:
            self._wanted.add(running.kind)  # asked again, after what superseded it
            self._recount = self._recount or running.recount
        else:
            if not isinstance(error, sqlite3.Error | OSError):
                raise error
            if running.kind == _FULL:
                self._shown = max(self._shown, running.serial)  # answered, with nothing new
                self.loaded.emit(self._shown)
            self.queryFailed.emit(str(error))
        self._start_next()

    def _answered(self, running: _Running, answer: _Answer) -> None:
        self._running = None
        current = self._store.source.generation
        if running.superseded or answer.source.generation != current:
            self._wanted.add(_FULL if answer.source.generation != current else running.kind)
            self._recount = self._recount or running.recount
        elif running.kind == _FULL:
            if answer.query == self._query:
                self._show(answer, running.serial)
            else:
                self._wanted.add(_FULL)  # changed meanwhile
                self._recount = self._recount or running.recount
        elif answer.source.generation == self._source.generation \
                and answer.query.same_rows(self._query):
            if running.kind == _NEW_ROWS:
                self._take_new_rows(answer)
            elif running.kind == _PENDING:
                self._set_counts(answer.counts, answer.pending)
            else:
                self._error_types = answer.error_types
                self.summaryChanged.emit()
        self._start_next()

    def request_summary(self) -> None:
        """Count the kinds of error again (see `error_type_summary`)."""
        self._request(_SUMMARY)

    # -- taking answers in -----------------------------------------------------------------

    def _show(self, answer: _Answer, serial: int) -> None:
        if answer.source.generation != self._source.generation or not self._order:
            self.beginResetModel()
            if answer.source.path != self._reader_path:
                self._close_reader()
            self._source = answer.source
            self._order = answer.order
            self._pages.clear()
            self._seed_pages(answer.rows)
            self.endResetModel()
        else:
            self._reorder(answer)
        self._exact = True
        self._watermark = answer.top
        if answer.counts is not None:
            self._set_counts(answer.counts, 0)
        self._shown = max(self._shown, serial)
        self.loaded.emit(self._shown)

    def _reorder(self, answer: _Answer) -> None:
        """The new order, as one layout change: persistent indexes (the current row, ...)
        and the selection follow their failures; rows no longer listed are dropped."""
        old, new = self._order, answer.order
        if new == old:
            # the same rows in the same order (a list followed live): no layout to redo,
            # only the pages whose rows changed are read and painted again
            self._refresh_pages(answer.rows)
            return
        selected = answer.selected
        if answer.selection_serial != self._selection_serial:
            # the selection changed while the query ran: place it now
            selected = self._selected_after(new)
        old_rows_of = old
        self._apply_order(new, selected, lambda rows: _moved(old_rows_of, new, rows),
                          same_rows=len(old) == len(new))
        self._seed_pages(answer.rows)

    def _reverse(self) -> None:
        """The current order turned round (a click on the sorted column's header)."""
        old = self._order
        new = array("q", old)
        new.reverse()
        last = len(old) - 1
        selected = self._selected_rows()
        after: array[int] | str | None = selected
        if isinstance(selected, array):
            after = array("q", (last - row for row in reversed(selected)))
        self._apply_order(new, after, lambda rows: [last - row for row in rows],
                          same_rows=True)
        self._shown = self._requested
        self.loaded.emit(self._shown)

    def _apply_order(self, order: array[int], selected: array[int] | str | None,
                     new_rows: Callable[[list[int]], list[int]], *, same_rows: bool) -> None:
        selection = self._live_selection()
        if selection is not None and selected is not None:
            # Qt would keep a selection by saving a persistent index per selected row and
            # asking this model about each: the rows are selected again afterwards instead
            selection.clearSelection()
        hint = _SORT_HINT if same_rows else _NO_HINT
        self.layoutAboutToBeChanged[_LAYOUT_SIGNATURE].emit([], hint)  # type: ignore[index]
        persistent = self.persistentIndexList()
        old_rows = [index.row() for index in persistent]
        moved = new_rows(old_rows) if persistent else []
        self._order = order
        self._pages.clear()
        if persistent:
            self.changePersistentIndexList(
                persistent, [self.index(row, index.column()) if row >= 0 else QModelIndex()
                             for index, row in zip(persistent, moved, strict=True)])
        self.layoutChanged[_LAYOUT_SIGNATURE].emit([], hint)  # type: ignore[index]
        if selection is not None and selected is not None:
            self._select(selection, selected)

    def _take_new_rows(self, answer: _Answer) -> None:
        if answer.source.path != self._source.path:
            # the same list, now with a database (a store makes its own at its first failure)
            self._source = answer.source
            self._close_reader()
        self._refresh_screen(answer.marks)
        new = answer.order
        if new:
            first = len(self._order)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._pages.pop(first // PAGE_ROWS, None)  # the last page grows
            self._order.extend(new)
            self._exact = False
            self.endInsertRows()
        self._watermark = max(self._watermark, answer.top)
        self._set_counts(answer.counts, 0)
        if new:
            self.rowsArrived.emit(len(new))
        if self._misses_reopened(answer.counts) and answer.counts != self._reread_for:
            self._reread_for = answer.counts
            self.reload()

    def _misses_reopened(self, counts: FailureCounts | None) -> bool:
        """Whether the list lacks failures its counts hold. New rows are taken by rowid,
        and a customer who fails again keeps theirs: a failure reopened (resolved before)
        or an earlier job's customer failing in the job shown is only found by reading the
        list again. Searches and result filters hide rows the counts hold: not known."""
        if counts is None or self._query.search or self._query.result is not None:
            return False
        listed = counts.open + (counts.resolved if self._query.show_resolved else 0)
        return len(self._order) < listed

    def _set_counts(self, counts: FailureCounts | None, pending: int) -> None:
        if counts is None:
            counts = FailureCounts()
        if (counts, pending) != (self._counts, self._pending):
            self._counts, self._pending = counts, pending
            self.countsChanged.emit()

    # -- the selection ---------------------------------------------------------------------

    def set_selection_model(self, selection: QItemSelectionModel) -> None:
        """Keep this selection (of a view showing this model) across new orders."""
        self._selection = selection
        selection.selectionChanged.connect(self._selection_changed)

    def _selection_changed(self, *_args: object) -> None:
        self._selection_serial += 1

    def _live_selection(self) -> QItemSelectionModel | None:
        selection = self._selection
        if selection is None or not shiboken6.isValid(selection) \
                or not selection.hasSelection():
            return None
        return selection

    def _selected_rows(self) -> array[int] | str | None:
        """The selected rows (sorted), _ALL_SELECTED, or None without a selection."""
        selection = self._live_selection()
        if selection is None:
            return None
        chosen = selection.selection()
        ranges = sorted((chosen.at(i).top(), chosen.at(i).bottom())
                        for i in range(chosen.size()))
        count = len(self._order)
        if ranges and ranges[0][0] <= 0 and self._covers_all(ranges, count):
            return _ALL_SELECTED
        rows: array[int] = array("q")
        end = -1
        for top, bottom in ranges:
            top = max(top, end + 1)
            if bottom >= top:
                rows.extend(range(top, min(bottom, count - 1) + 1))
                end = bottom
        return rows

    @staticmethod
    def _covers_all(ranges: list[tuple[int, int]], count: int) -> bool:
        end = -1
        for top, bottom in ranges:
            if top > end + 1:
                return False
            end = max(end, bottom)
        return end >= count - 1

    def _selection_for_worker(self) -> tuple[array[int] | str | None, int]:
        """The selected rowids (or _ALL_SELECTED), for the worker to place in the new
        order, with the selection's serial."""
        rows = self._selected_rows()
        if not isinstance(rows, array):
            return rows, self._selection_serial
        order = self._order
        return array("q", (order[row] for row in rows)), self._selection_serial

    def _selected_after(self, new: array[int]) -> array[int] | str | None:
        rowids, _serial = self._selection_for_worker()
        if not isinstance(rowids, array):
            return rowids
        return _rows_in(new, rowids)

    def _select(self, selection: QItemSelectionModel, rows: array[int] | str) -> None:
        last_column = len(COLUMNS) - 1
        chosen = QItemSelection()
        if rows is _ALL_SELECTED:
            if self._order:
                chosen.select(self.index(0, 0), self.index(len(self._order) - 1, last_column))
        else:
            start = previous = -2
            for row in [*rows, -2]:  # -2 closes the last run
                if row == previous + 1:
                    previous = row
                    continue
                if start >= 0:
                    chosen.select(self.index(start, 0), self.index(previous, last_column))
                start = previous = row
        if not chosen.isEmpty():
            selection.select(chosen, QItemSelectionModel.SelectionFlag.Select)

    # -- rows on screen --------------------------------------------------------------------

    def _reader_connection(self) -> sqlite3.Connection | None:
        path = self._source.path
        if path is None:
            return None
        if self._reader is None or self._reader_path != path:
            self._close_reader()
            # short waits only: on the GUI thread a locked page is asked for again later
            self._reader = open_list_connection(path, busy_timeout_s=0.05)
            self._reader_path = path
        return self._reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error):
                self._reader.close()
        self._reader = self._reader_path = None

    def _page(self, number: int) -> list[DisplayRow | None]:
        page = self._pages.get(number)
        if page is not None:
            self._pages.move_to_end(number)
            return page
        rowids = self._order[number * PAGE_ROWS:(number + 1) * PAGE_ROWS]
        try:
            reader = self._reader_connection()
            found = read_display_rows(reader, rowids) if reader is not None else {}
        except sqlite3.Error:
            # locked by a writer (a network share's rollback journal): blank for a moment
            self._retry_timer.start()
            return [None] * len(rowids)
        page = [found.get(rowid) for rowid in rowids]
        self._pages[number] = page
        while len(self._pages) > CACHED_PAGES:
            self._pages.popitem(last=False)
        return page

    def _row(self, row: int) -> DisplayRow | None:
        number, at = divmod(row, PAGE_ROWS)
        page = self._page(number)
        if at >= len(page):  # read when the list was shorter
            self._pages.pop(number, None)
            page = self._page(number)
        return page[at] if at < len(page) else None

    def _seed_pages(self, rows: dict[int, DisplayRow]) -> None:
        """Pages of the first screen, read with the order on the worker thread."""
        if not rows:
            return
        order = self._order
        for number in range(FIRST_PAGES):
            rowids = order[number * PAGE_ROWS:(number + 1) * PAGE_ROWS]
            if not rowids or any(rowid not in rows for rowid in rowids):
                break
            self._pages[number] = [rows[rowid] for rowid in rowids]

    def _watched_pages(self) -> list[tuple[int, array[int]]]:
        """The pages last read (what views show), to check while live; the others are
        forgotten (read again if shown again)."""
        while len(self._pages) > WATCHED_PAGES:
            self._pages.popitem(last=False)
        order = self._order
        return [(number, order[number * PAGE_ROWS:number * PAGE_ROWS + len(page)])
                for number, page in self._pages.items()]

    def _refresh_screen(self, marks: list[tuple[int, str]]) -> None:
        """Pages checked again while live: views are told of those that changed."""
        order = self._order
        for number, mark in marks:
            page = self._pages.get(number)
            if page is None:
                continue
            base = number * PAGE_ROWS
            rowids = order[base:base + len(page)]
            if mark_of(zip(rowids, page, strict=True)) == mark:
                continue
            del self._pages[number]
            self.dataChanged.emit(self.index(base, 0),
                                  self.index(base + len(page) - 1, len(COLUMNS) - 1))

    def _refresh_pages(self, rows: dict[int, DisplayRow]) -> None:
        """Cached pages compared with rows read again (the first screen's): views are told
        of those that changed; pages not read again are forgotten (read when shown)."""
        order = self._order
        for number, page in list(self._pages.items()):
            base = number * PAGE_ROWS
            fresh = [rows.get(rowid) for rowid in order[base:base + len(page)]]
            if None not in fresh:
                if fresh == page:
                    continue
                self._pages[number] = fresh
            else:
                del self._pages[number]
            self.dataChanged.emit(self.index(base, 0),
                                  self.index(base + len(page) - 1, len(COLUMNS) - 1))

    def _read_screen_again(self) -> None:
        self._pages.clear()
        if self._order:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._order) - 1, len(COLUMNS) - 1))

    # -- Qt model interface ----------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        position = index.row()
        if not 0 <= position < len(self._order):
            return None
        if role == self.RowIdRole:
            return self._order[position]
        if role == self.RecordRole:
            return self.record(position)
        row = self._row(position)
        if row is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return display_value(row, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return full_value(row, index.column()) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            # dimmed for the palette in use: readable, but clearly not an open failure
            resolved = row[D_RESOLVED_JOB] is not None
            return QBrush(status_colours().dimmed) if resolved else None
        if role == self.ResolvedRole:
            return row[D_RESOLVED_JOB] is not None
        return None

    def cell(self, row: int, column: int) -> tuple[str, bool]:
        """What a cell shows and whether its failure is resolved, in one call: the
        table's delegate paints from this (see `TextOnlyDelegate`)."""
        if not 0 <= row < len(self._order):
            return "", False
        shown = self._row(row)
        if shown is None:
            return "", False
        return display_value(shown, column), shown[D_RESOLVED_JOB] is not None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMN_TOOLTIPS[section]
        elif (orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole
              and 0 <= section < len(self._order)):
            return str(section + 1)
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        # a constant: selection models may ask for every selected cell
        return _ITEM_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    # -- access for views, exports and summaries -------------------------------------------

    def rowid(self, row: int) -> int:
        return self._order[row]

    def order(self) -> array[int]:
        """The rowids of the rows, in display order (a copy: for an export)."""
        return array("q", self._order)

    def record(self, row: int) -> FailureRecord | None:
        """The failure shown at `row`, complete (read now)."""
        records = self.records_at([row])
        return records[0] if records else None

    def records_at(self, rows: Sequence[int]) -> list[FailureRecord]:
        """The failures shown at `rows`, complete, read now on this thread: meant for a
        few (details, copying a selection); more go through a worker (see `order`)."""
        order = self._order
        rowids = [order[row] for row in rows if 0 <= row < len(order)]
        found: list[FailureRecord] = []
        try:
            reader = self._reader_connection()
            if reader is None:
                return []
            for start in range(0, len(rowids), 500):
                found += [r for r in read_records(reader, rowids[start:start + 500])
                          if r is not None]
        except sqlite3.Error as error:
            self.queryFailed.emit(str(error))
            return []
        return found

    def records(self) -> list[FailureRecord]:
        """Every row, in display order, complete (read now: for small lists and tests)."""
        return self.records_at(range(len(self._order)))

    def open_count(self) -> int:
        """Open failures in the list's scope (the job shown, or all), whatever the filter."""
        return self._counts.open

    def resolved_count(self) -> int:
        """Resolved failures in the list's scope."""
        return self._counts.resolved

    def result_counts(self) -> Counter[str]:
        """How many open failures have each result word (e.g. {"CONFLICT": 12})."""
        return Counter(self._counts.by_result)

    def error_type_summary(self, top: int = 5) -> list[tuple[str, int]]:
        """The `top` most frequent kinds of open error, each as a real example with its
        count (as of the last `request_summary`)."""
        return self._error_types[:top]


# -- the queries (run on the worker thread) --------------------------------------------------


def _moved(old: array[int], new: array[int], rows: list[int]) -> list[int]:
    """Where the failures at `rows` of `old` are in `new` (-1: gone)."""
    rowids = [old[row] if 0 <= row < len(old) else None for row in rows]
    found = positions_of(new, [rowid for rowid in rowids if rowid is not None])
    return [found.get(rowid, -1) if rowid is not None else -1 for rowid in rowids]


def _rows_in(order: array[int], rowids: Sequence[int]) -> array[int]:
    """The rows of `order` holding these rowids, sorted."""
    wanted = set(rowids)
    return array("q", (row for row, rowid in enumerate(order) if rowid in wanted))


def _full(store: FailureStore, source: FailureSource, query: FailureQuery,
          running: _Running, selected: array[int] | str | None, selection_serial: int,
          recount: bool) -> Callable[[], _Answer]:
    def work() -> _Answer:
        answer = _Answer(source, query, selection_serial=selection_serial,
                         counts=FailureCounts() if recount else None)

        def read(connection: sqlite3.Connection) -> None:
            answer.order = read_order(connection, query)
            answer.top = last_rowid(connection)
            if recount:
                answer.counts = read_counts(connection, query.job)
            answer.rows = read_display_rows(connection,
                                            answer.order[:PAGE_ROWS * FIRST_PAGES])

        _read(store, source, running, read)
        # where the selection goes: worked out here, not on the GUI thread
        answer.selected = (_rows_in(answer.order, selected) if isinstance(selected, array)
                           else selected)
        return answer

    return work


def _new_rows(store: FailureStore, source: FailureSource, query: FailureQuery,
              running: _Running, after: int, watched: list[tuple[int, array[int]]]
              ) -> Callable[[], _Answer]:
    def work() -> _Answer:
        answer = _Answer(source, query, top=after)

        def read(connection: sqlite3.Connection) -> None:
            answer.order = read_order(connection, query, after=after)
            answer.top = last_rowid(connection)
            answer.counts = read_counts(connection, query.job)
            answer.marks = [(number, read_mark(connection, rowids))
                            for number, rowids in watched]

        _read(store, source, running, read)
        return answer

    return work


def _pending(store: FailureStore, source: FailureSource, query: FailureQuery,
             running: _Running, after: int) -> Callable[[], _Answer]:
    def work() -> _Answer:
        answer = _Answer(source, query)

        def read(connection: sqlite3.Connection) -> None:
            # the new failures this list would show after Refresh (its filters count)
            sql, args = order_sql(query.ascending(), after=after)
            (answer.pending,) = connection.execute(
                f"SELECT count(*) FROM ({sql})", args).fetchone()
            answer.counts = read_counts(connection, query.job)

        _read(store, source, running, read)
        return answer

    return work


def _summary(store: FailureStore, source: FailureSource, query: FailureQuery,
             running: _Running) -> Callable[[], _Answer]:
    def work() -> _Answer:
        answer = _Answer(source, query)

        def read(connection: sqlite3.Connection) -> None:
            answer.error_types = read_error_types(connection, query.job)

        _read(store, source, running, read)
        return answer

    return work
