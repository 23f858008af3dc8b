"""Qt models for the Failed Customers tab: a table over the FailureStore and its filter proxy.

Built for 100,000+ rows arriving during an import:

* the store's listener (called from worker threads) only sets a `threading.Event`; a
  QTimer on the GUI thread pulls whatever is new in ONE `beginInsertRows`/`endInsertRows`;
* sorting is done here, in Python, on precomputed keys (one `list.sort`), instead of letting
  QSortFilterProxyModel compare rows by calling back into Python per comparison;
* summaries (counts by result and by error type) are computed incrementally, each record is
  looked at once, and only when somebody asks for them (the tab asks on a throttle).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)

from app.models.failure_store import FailureStore
from app.models.records import FailureRecord

ModelIndex = QModelIndex | QPersistentModelIndex

COLUMNS: tuple[str, ...] = ("Customer ID", "Username", "Error", "Timestamp", "Batch Info",
                            "Result")
COLUMN_TOOLTIPS: tuple[str, ...] = (
    "The unique identifier of the failed customer",
    "The customer's username / name",
    "The error message (shortened here; hover or double-click for the whole text)",
    "When the failure was detected",
    "How the failure was detected, and in which batch",
    "The result word: the API's own (e.g. CONFLICT, FAILED) or the importer's",
)
COL_ID, COL_USERNAME, COL_ERROR, COL_TIMESTAMP, COL_BATCH, COL_RESULT = range(len(COLUMNS))

ERROR_DISPLAY_CHARS = 80
DEFAULT_PULL_INTERVAL_MS = 150

# Swedish alphabetical order for the name/text columns without a per-comparison collator:
# Å Ä Ö come after Z (Norwegian Æ Ø share the Ä Ö slots), other accents sort as their base
# letter (é as e, ü as y as in Swedish dictionaries). Applied after casefold().
_SORT_TRANSLATION = str.maketrans({
    "å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}",
    "é": "e", "è": "e", "ê": "e", "ë": "e", "á": "a", "à": "a", "â": "a",
    "í": "i", "ì": "i", "î": "i", "ï": "i", "ó": "o", "ò": "o", "ô": "o",
    "ú": "u", "ù": "u", "û": "u", "ü": "y", "ç": "c", "ñ": "n",
})
_DIGITS = re.compile(r"\d+")
_ERROR_TYPE_CACHE_LIMIT = 50_000


def text_sort_key(text: str) -> str:
    """Case-insensitive key that puts Å Ä Ö after Z and accented letters by their base."""
    return text.casefold().translate(_SORT_TRANSLATION)


def _id_key(record: FailureRecord) -> tuple[int, int, str]:
    # numeric ids in numeric order (shorter first), anything else after them as text
    value = record.customer_id
    if value.isdigit():
        return (0, len(value), value)
    return (1, 0, text_sort_key(value))


def _batch_key(record: FailureRecord) -> tuple[int, str]:
    return (record.batch_number, text_sort_key(record.batch_info))


_SORT_KEYS: dict[int, Callable[[FailureRecord], Any]] = {
    COL_ID: _id_key,
    COL_USERNAME: lambda r: text_sort_key(r.username),
    COL_ERROR: lambda r: text_sort_key(r.error),
    COL_TIMESTAMP: lambda r: r.timestamp,  # ISO 8601 text sorts chronologically
    COL_BATCH: _batch_key,
    COL_RESULT: lambda r: r.result,
}


def short_error(error: str, limit: int = ERROR_DISPLAY_CHARS) -> str:
    """First line of `error`, cut to `limit` characters with "…" when anything was left out."""
    first, newline, _ = error.strip().partition("\n")
    first = first.rstrip()
    if len(first) > limit:
        return first[:limit - 1].rstrip() + "…"
    return first + "…" if newline else first


def display_timestamp(timestamp: str) -> str:
    """`YYYY-MM-DD HH:MM:SS` for an ISO timestamp; anything else is shown as it is."""
    if len(timestamp) >= 19 and timestamp[10] in "T " and timestamp[4] == "-":
        return timestamp[:10] + " " + timestamp[11:19]
    return timestamp


def error_type(error: str) -> str:
    """The error with ids and numbers replaced by "#", so similar errors group together."""
    first = error.strip().partition("\n")[0]
    return _DIGITS.sub("#", first)[:160] or "(no error text)"


def _file_name(path: str) -> str:
    # cheaper than Path(path).name, which matters when filtering 100,000 rows
    return path.replace("\\", "/").rpartition("/")[2]


def display_value(record: FailureRecord, column: int) -> str:
    """What the table shows in `column` for `record`."""
    if column == COL_ID:
        return record.customer_id
    if column == COL_USERNAME:
        return record.username
    if column == COL_ERROR:
        return short_error(record.error)
    if column == COL_TIMESTAMP:
        return display_timestamp(record.timestamp)
    if column == COL_BATCH:
        return record.batch_info
    if column == COL_RESULT:
        return record.result
    return ""


def full_value(record: FailureRecord, column: int) -> str:
    """The complete value of `column` (tooltips and copying)."""
    if column == COL_ERROR:
        return record.error
    if column == COL_TIMESTAMP:
        return record.timestamp
    return display_value(record, column)


class FailureTableModel(QAbstractTableModel):
    """Table of FailureRecords read from a FailureStore, for the Failed Customers tab.

    Rows are pulled from the store in coalesced chunks (one insert per chunk) by a timer that
    runs only while live updates are on, or on demand with `pull_new_records()`. Sorting is
    done here on precomputed keys (`sort()`); rows arriving while sorted are appended at the
    end until `pull_new_records(resort=True)`. A cleared store (new `generation`) resets it.

    Signals: `recordsPulled(int)` after new rows were added (how many), plus the standard
    model signals (`rowsInserted`, `modelReset`, `layoutChanged`).
    """

    RecordRole = Qt.ItemDataRole.UserRole + 1

    recordsPulled = Signal(int)

    def __init__(self, store: FailureStore, parent: QObject | None = None, *,
                 pull_interval_ms: int = DEFAULT_PULL_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._store = store
        self._generation = store.generation
        self._arrival: list[FailureRecord] = []  # store order (mirror of the store's prefix)
        self._rows: list[FailureRecord] = []  # display order
        self._sort_column = -1  # -1: store (arrival) order
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._summary_upto = 0  # how many of _arrival the summary counters include
        self._result_counts: Counter[str] = Counter()
        self._error_type_counts: Counter[str] = Counter()
        self._error_type_cache: dict[str, str] = {}
        # The store calls listeners from whichever thread appended. Only this Event is
        # touched there (thread-safe, and it does not keep the model alive).
        self._pending = threading.Event()
        pending = self._pending

        def on_store_changed(_size: int) -> None:
            pending.set()

        self._listener = on_store_changed
        store.add_listener(on_store_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(pull_interval_ms)
        self._timer.timeout.connect(self._on_timer)
        self.pull_new_records()

    # -- store access ----------------------------------------------------------------------

    @property
    def store(self) -> FailureStore:
        return self._store

    def detach(self) -> None:
        """Stop listening to the store (call before dropping the model for good)."""
        self._timer.stop()
        self._store.remove_listener(self._listener)

    def set_live_updates(self, enabled: bool) -> None:
        """Pull new records every ~150 ms while enabled; nothing happens on its own otherwise."""
        if enabled and not self._timer.isActive():
            self._timer.start()
            self._pending.set()  # catch up on the next tick with what arrived meanwhile
        elif not enabled:
            self._timer.stop()

    def live_updates(self) -> bool:
        return self._timer.isActive()

    def pending_count(self) -> int:
        """How many records the store holds that this model has not taken in yet."""
        if self._store.generation != self._generation:
            return len(self._store)
        return max(0, len(self._store) - len(self._arrival))

    def _on_timer(self) -> None:
        if self._pending.is_set() or self._store.generation != self._generation:
            self.pull_new_records()

    def pull_new_records(self, resort: bool = False) -> int:
        """Take in what the store gained since the last pull, as one row insert.

        Resets the model instead when the store was cleared. With `resort`, the current sort
        is applied again afterwards (new rows otherwise wait at the end). Returns how many
        rows were added.
        """
        self._pending.clear()  # before reading, so an append racing with us re-arms it
        if self._store.generation != self._generation:
            added = self._reset_from_store()
        else:
            generation = self._generation
            new = self._store.records_from(len(self._arrival))
            if self._store.generation != generation:
                # cleared while we read: those indices mean nothing any more
                added = self._reset_from_store()
            elif new:
                first = len(self._rows)
                self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
                self._arrival.extend(new)
                self._rows.extend(new)
                self.endInsertRows()
                added = len(new)
            else:
                added = 0
        if resort and self._sort_column >= 0:
            self.sort(self._sort_column, self._sort_order)
        if added:
            self.recordsPulled.emit(added)
        return added

    def _reset_from_store(self) -> int:
        self.beginResetModel()
        while True:
            generation = self._store.generation
            records = self._store.snapshot()
            if self._store.generation == generation:
                break
        self._generation = generation
        self._arrival = records
        self._rows = self._sorted_rows(list(records), self._sort_column, self._sort_order)
        self._summary_upto = 0
        self._result_counts.clear()
        self._error_type_counts.clear()
        self.endResetModel()
        return len(records)

    # -- Qt model interface ----------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = index.row()
        if row >= len(self._rows):
            return None
        record = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return display_value(record, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return full_value(record, index.column()) or None
        if role == self.RecordRole:
            return record
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMN_TOOLTIPS[section]
        elif (orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole
              and 0 <= section < len(self._rows)):
            return str(section + 1)
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)

    # -- sorting ---------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort all rows by `column` (-1: the order they arrived in) with one Python sort."""
        self._sort_column = column if 0 <= column < len(COLUMNS) else -1
        self._sort_order = order
        count = len(self._rows)
        if count < 2:
            return
        reverse = order == Qt.SortOrder.DescendingOrder and self._sort_column >= 0
        keys = self._keys(self._rows, self._sort_column)
        # sorting positions (not records) gives the permutation for the persistent indexes;
        # Python's sort is stable, also with reverse=True
        positions = sorted(range(count), key=keys.__getitem__, reverse=reverse)
        if all(old == new for new, old in enumerate(positions)):
            return  # already in this order: no layout change for the views to process
        self.layoutAboutToBeChanged.emit()
        rows = self._rows
        self._rows = [rows[old] for old in positions]
        persistent = self.persistentIndexList()
        if persistent:
            new_row = [0] * count
            for new, old in enumerate(positions):
                new_row[old] = new
            self.changePersistentIndexList(
                persistent,
                [self.index(new_row[i.row()], i.column()) if i.isValid() else QModelIndex()
                 for i in persistent])
        self.layoutChanged.emit()

    def sort_column(self) -> int:
        return self._sort_column

    def sort_order(self) -> Qt.SortOrder:
        return self._sort_order

    def _keys(self, rows: Sequence[FailureRecord], column: int) -> list[Any]:
        if column < 0:
            arrival = {id(r): n for n, r in enumerate(self._arrival)}
            return [arrival[id(r)] for r in rows]
        return list(map(_SORT_KEYS[column], rows))

    def _sorted_rows(self, rows: list[FailureRecord], column: int, order: Qt.SortOrder
                     ) -> list[FailureRecord]:
        if column < 0:
            return rows
        key = _SORT_KEYS[column]
        rows.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)
        return rows

    # -- access for views, export and summaries --------------------------------------------

    def record(self, row: int) -> FailureRecord:
        return self._rows[row]

    def records(self) -> list[FailureRecord]:
        """All rows in display order (a new list; the records themselves are shared)."""
        return list(self._rows)

    def rows_view(self) -> Sequence[FailureRecord]:
        """The live row list in display order, read-only by convention (for the proxy)."""
        return self._rows

    def _update_summary(self) -> None:
        # incremental: each record is counted once; error texts repeat a lot, so their
        # normalised form is cached by text
        new = self._arrival[self._summary_upto:]
        if not new:
            return
        self._summary_upto = len(self._arrival)
        self._result_counts.update(r.result for r in new)
        cache = self._error_type_cache
        if len(cache) > _ERROR_TYPE_CACHE_LIMIT:
            cache.clear()
        types = self._error_type_counts
        for record in new:
            kind = cache.get(record.error)
            if kind is None:
                kind = cache[record.error] = error_type(record.error)
            types[kind] += 1

    def result_counts(self) -> Counter[str]:
        """How many rows have each result word (e.g. {"CONFLICT": 12, "FAILED": 3})."""
        self._update_summary()
        return Counter(self._result_counts)

    def error_type_counts(self) -> Counter[str]:
        """How many rows share each error text once ids and numbers are replaced by "#"."""
        self._update_summary()
        return Counter(self._error_type_counts)

    def error_type_summary(self, top: int = 5) -> list[tuple[str, int]]:
        """The `top` most frequent error types with their counts, most frequent first."""
        return self.error_type_counts().most_common(top)


class FailureFilterProxy(QSortFilterProxyModel):
    """Filters the failure table by search text and result type; sorting goes to the source.

    The proxy never sorts itself (its sort column stays -1, so it keeps the source's order);
    `sort()` forwards to `FailureTableModel.sort`, which is fast at 100,000 rows.

    Signals: `filterChanged()` after the search text or result filter changed.
    """

    filterChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self._result: str | None = None
        self._source: FailureTableModel | None = None

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        self._source = model if isinstance(model, FailureTableModel) else None
        super().setSourceModel(model)

    # -- filter ----------------------------------------------------------------------------

    def search_text(self) -> str:
        return self._needle

    def result_filter(self) -> str | None:
        return self._result

    def is_filtered(self) -> bool:
        return bool(self._needle) or self._result is not None

    def set_search_text(self, text: str) -> None:
        needle = text.strip().casefold()
        if needle != self._needle:
            self.beginFilterChange()
            self._needle = needle
            self._end_filter_change()

    def set_result_filter(self, result: str | None) -> None:
        result = result or None
        if result != self._result:
            self.beginFilterChange()
            self._result = result
            self._end_filter_change()

    def _end_filter_change(self) -> None:
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        self.filterChanged.emit()

    def accepts(self, record: FailureRecord) -> bool:
        """Whether `record` passes the current filter (the same test as filterAcceptsRow)."""
        if self._result is not None and record.result != self._result:
            return False
        needle = self._needle
        if not needle:
            return True
        return (needle in record.customer_id.casefold()
                or needle in record.username.casefold()
                or needle in record.error.casefold()
                or needle in record.result.casefold()
                or needle in _file_name(record.source_file).casefold())

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        # fast path: called once per source row whenever the mapping is rebuilt
        if not self._needle and self._result is None:
            return True
        if self._source is None:
            return True
        rows = self._source.rows_view()
        return source_row < len(rows) and self.accepts(rows[source_row])

    def visible_records(self) -> list[FailureRecord]:
        """The records the proxy shows, in view order, without a Python call per proxy row."""
        if self._source is None:
            return [self.data(self.index(r, 0), FailureTableModel.RecordRole)
                    for r in range(self.rowCount())]
        rows = self._source.rows_view()
        if not self.is_filtered():
            return list(rows)
        # the proxy keeps source order (it never sorts), so filtering the source rows in
        # order gives exactly the proxy's rows
        return [r for r in rows if self.accepts(r)]

    # -- sorting ---------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort via the source model's fast sort; the proxy itself keeps source order."""
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)
