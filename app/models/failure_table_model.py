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
LIVE_PULL_LIMIT = 20_000  # most rows one timer tick takes in (~30 ms of proxy work)
SORT_KEY_SLICE = 4_000  # records whose sort keys one idle step computes (a few ms)

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
_ITEM_FLAGS = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
               | Qt.ItemFlag.ItemNeverHasChildren)
# the layout signals' full signature, so the sort hint reaches views attached directly
_LAYOUT_SIGNATURE = ("QList<QPersistentModelIndex>", "QAbstractItemModel::LayoutChangeHint")
_SORT_HINT = QAbstractItemModel.LayoutChangeHint.VerticalSortHint
_ERROR_TYPE_CACHE_LIMIT = 50_000


def text_sort_key(text: str) -> str:
    """Case-insensitive key that puts Å Ä Ö after Z and accented letters by their base."""
    key = text.casefold()
    # translate() is slow per character; most error texts and many names are plain ASCII
    return key if key.isascii() else key.translate(_SORT_TRANSLATION)


# Sort keys are computed a column at a time for many records, as plain strings: string
# comparisons in list.sort are far cheaper than tuple comparisons, and values that repeat
# (names, batch texts) are converted once.

def _text_keys(values: list[str]) -> list[str]:
    # for columns whose values repeat (names): each distinct value is converted once
    memo = {value: text_sort_key(value) for value in set(values)}
    return list(map(memo.__getitem__, values))


def _id_keys(records: Sequence[FailureRecord]) -> list[str]:
    # numeric ids in numeric order (zero-padded), anything else after them as text
    keys = []
    for record in records:
        value = record.customer_id
        keys.append("0" + value.zfill(24) if value.isdigit() else "1" + text_sort_key(value))
    return keys


def _batch_keys(records: Sequence[FailureRecord]) -> list[str]:
    # by batch number first (batch 2 before batch 10), then by the text
    memo: dict[tuple[int, str], str] = {}
    keys = []
    for record in records:
        pair = (record.batch_number, record.batch_info)
        key = memo.get(pair)
        if key is None:
            key = memo[pair] = (f"{max(record.batch_number, 0):012d}\x00"
                                f"{text_sort_key(record.batch_info)}")
        keys.append(key)
    return keys


_COLUMN_KEYS: dict[int, Callable[[Sequence[FailureRecord]], list[str]]] = {
    COL_ID: _id_keys,
    COL_USERNAME: lambda records: _text_keys([r.username for r in records]),
    # errors are nearly all distinct (they name the customer): hashing them for a memo
    # would cost more than converting each
    COL_ERROR: lambda records: [text_sort_key(r.error) for r in records],
    COL_TIMESTAMP: lambda records: [r.timestamp for r in records],  # ISO text sorts by time
    COL_BATCH: _batch_keys,
    COL_RESULT: lambda records: [r.result for r in records],
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

    Signals: `recordsPulled(int)` after new rows were added (how many); `sortStarting()` and
    `sortFinished()` around a sort that reorders rows (before `layoutAboutToBeChanged`, after
    `layoutChanged`); plus the standard model signals.
    """

    RecordRole = Qt.ItemDataRole.UserRole + 1

    recordsPulled = Signal(int)
    sortStarting = Signal()
    sortFinished = Signal()

    def __init__(self, store: FailureStore, parent: QObject | None = None, *,
                 pull_interval_ms: int = DEFAULT_PULL_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._store = store
        self._generation = store.generation
        self._arrival: list[FailureRecord] = []  # store order (mirror of the store's prefix)
        self._order: list[int] = []  # display row -> index into _arrival
        # column -> sort key of each record, aligned with _arrival; extended when needed, so
        # sorting a column again (or the other way round) costs only the sort itself
        self._key_cache: dict[int, list[str]] = {}
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
        # the store outlives models: stop being called once this one is gone
        self.destroyed.connect(lambda *_args: store.remove_listener(on_store_changed))
        self._timer = QTimer(self)
        self._timer.setInterval(pull_interval_ms)
        self._timer.timeout.connect(self._on_timer)
        # computes sort keys a slice at a time while nothing else happens, so the first
        # click on a header after a big import only has to sort
        self._key_timer = QTimer(self)
        self._key_timer.setInterval(0)
        self._key_timer.timeout.connect(self._compute_sort_keys_slice)
        self.pull_new_records()

    # -- store access ----------------------------------------------------------------------

    @property
    def store(self) -> FailureStore:
        return self._store

    def detach(self) -> None:
        """Stop listening to the store (call before dropping the model for good)."""
        self._timer.stop()
        self._key_timer.stop()
        self._store.remove_listener(self._listener)

    def set_live_updates(self, enabled: bool) -> None:
        """Pull new records every ~150 ms while enabled; nothing happens on its own otherwise.

        Sort keys of new rows are prepared in idle time while live updates are off (during
        an import the window has better things to do).
        """
        if enabled and not self._timer.isActive():
            self._timer.start()
            self._key_timer.stop()
            self._pending.set()  # catch up on the next tick with what arrived meanwhile
        elif not enabled:
            self._timer.stop()
            self._prepare_sort_keys()

    def live_updates(self) -> bool:
        return self._timer.isActive()

    def pending_count(self) -> int:
        """How many records the store holds that this model has not taken in yet."""
        if self._store.generation != self._generation:
            return len(self._store)
        return max(0, len(self._store) - len(self._arrival))

    def _on_timer(self) -> None:
        if self._pending.is_set() or self._store.generation != self._generation:
            # bounded, so a sudden flood never blocks the GUI for long; the rest follows on
            # the next ticks
            self.pull_new_records(limit=LIVE_PULL_LIMIT)

    def pull_new_records(self, resort: bool = False, limit: int | None = None) -> int:
        """Take in what the store gained since the last pull, as one row insert.

        Resets the model instead when the store was cleared. With `resort`, the current sort
        is applied again afterwards (new rows otherwise wait at the end). `limit` caps how
        many records one call takes in (the live timer uses it). Returns how many rows were
        added.
        """
        self._pending.clear()  # before reading, so an append racing with us re-arms it
        if self._store.generation != self._generation:
            added = self._reset_from_store()
        else:
            generation = self._generation
            new = self._store.records_from(len(self._arrival))
            if limit is not None and len(new) > limit:
                new = new[:limit]
                self._pending.set()  # more to take on the next tick
            if self._store.generation != generation:
                # cleared while we read: those indices mean nothing any more
                added = self._reset_from_store()
            elif new:
                first = len(self._order)
                self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
                start = len(self._arrival)
                self._arrival.extend(new)
                self._order.extend(range(start, start + len(new)))
                self.endInsertRows()
                added = len(new)
            else:
                added = 0
        if resort and self._sort_column >= 0:
            self.sort(self._sort_column, self._sort_order)
        if added:
            self.recordsPulled.emit(added)
            if not self._timer.isActive():
                self._prepare_sort_keys()
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
        self._key_cache.clear()
        self._order = self._sorted_order(list(range(len(records))), self._sort_column,
                                         self._sort_order)
        self._summary_upto = 0
        self._result_counts.clear()
        self._error_type_counts.clear()
        self.endResetModel()
        return len(records)

    # -- Qt model interface ----------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = index.row()
        if row >= len(self._order):
            return None
        record = self._arrival[self._order[row]]
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
              and 0 <= section < len(self._order)):
            return str(section + 1)
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        # a constant: selection models may ask for every selected cell
        return _ITEM_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    # -- sorting ---------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort all rows by `column` (-1: the order they arrived in) with one Python sort."""
        self._sort_column = column if 0 <= column < len(COLUMNS) else -1
        self._sort_order = order
        if len(self._order) < 2:
            return
        old_order = self._order
        new_order = self._sorted_order(old_order, self._sort_column, order)
        if new_order == old_order:
            return  # already in this order: no layout change for the views to process
        self.sortStarting.emit()
        self.layoutAboutToBeChanged[_LAYOUT_SIGNATURE].emit([], _SORT_HINT)
        self._order = new_order
        persistent = self.persistentIndexList()
        if persistent:
            # selection and current row follow their records to the new rows
            row_of = [0] * len(self._arrival)
            for row, position in enumerate(new_order):
                row_of[position] = row
            count = len(old_order)
            self.changePersistentIndexList(
                persistent,
                [self.index(row_of[old_order[i.row()]], i.column())
                 if i.isValid() and i.row() < count else QModelIndex() for i in persistent])
        self.layoutChanged[_LAYOUT_SIGNATURE].emit([], _SORT_HINT)
        self.sortFinished.emit()

    def sort_column(self) -> int:
        return self._sort_column

    def sort_keys_ready(self) -> bool:
        """Whether every column's sort keys are computed for every row."""
        count = len(self._arrival)
        return all(len(self._key_cache.get(column, ())) >= count for column in _COLUMN_KEYS)

    def _prepare_sort_keys(self) -> None:
        if not self.sort_keys_ready():
            self._key_timer.start()

    def _compute_sort_keys_slice(self) -> None:
        for column, make_keys in _COLUMN_KEYS.items():
            keys = self._key_cache.setdefault(column, [])
            if len(keys) < len(self._arrival):
                keys.extend(make_keys(self._arrival[len(keys):len(keys) + SORT_KEY_SLICE]))
                return
        self._key_timer.stop()

    def sort_order(self) -> Qt.SortOrder:
        return self._sort_order

    def _sorted_order(self, order: list[int], column: int, sort_order: Qt.SortOrder
                      ) -> list[int]:
        if column < 0:
            return sorted(order)
        keys = self._key_cache.setdefault(column, [])
        if len(keys) < len(self._arrival):
            keys.extend(_COLUMN_KEYS[column](self._arrival[len(keys):]))
        # stable, also with reverse=True: equal keys keep the previous order, so sorting by
        # one column and then another gives a two-level order
        return sorted(order, key=keys.__getitem__,
                      reverse=sort_order == Qt.SortOrder.DescendingOrder)

    # -- access for views, export and summaries --------------------------------------------

    def record(self, row: int) -> FailureRecord:
        """The record shown at `row`."""
        return self._arrival[self._order[row]]

    def records(self) -> list[FailureRecord]:
        """All rows in display order (a new list; the records themselves are shared)."""
        arrival = self._arrival
        return [arrival[i] for i in self._order]

    def arrival_index(self, row: int) -> int:
        """Position in arrival (store) order of the record shown at `row`."""
        return self._order[row]

    def arrival_records(self) -> list[FailureRecord]:
        """The records in arrival order: the model's own list, do not modify it."""
        return self._arrival

    def display_order(self) -> list[int]:
        """Arrival index of each row, in display order: the model's own list, do not modify."""
        return self._order

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


def _matches(records: Sequence[FailureRecord], needle: str, result: str | None
             ) -> list[bool]:
    """For each record, whether it contains `needle` (casefolded) and has `result`."""
    matches = []
    for r in records:
        if result is not None and r.result != result:
            matches.append(False)
        else:
            matches.append(not needle
                           or needle in r.customer_id.casefold()
                           or needle in r.username.casefold()
                           or needle in r.error.casefold()
                           or needle in r.result.casefold()
                           or needle in _file_name(r.source_file).casefold())
    return matches


class FailureFilterProxy(QSortFilterProxyModel):
    """Filters the failure table by search text and result type; sorting goes to the source.

    The proxy never sorts itself (its sort column stays -1, so it keeps the source's order);
    `sort()` forwards to `FailureTableModel.sort`, which is fast at 100,000 rows. Whether a
    record matches is computed once per filter and record (in bulk, cached by the record's
    arrival index), so the refiltering a source sort causes costs no string searching.

    Signals: `filterChanged()` after the search text or result filter changed.
    """

    filterChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._needle = ""
        self._result: str | None = None
        self._source: FailureTableModel | None = None
        self._matches: list[bool] = []  # by arrival index, for the current filter

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        if self._source is not None:
            self._source.modelAboutToBeReset.disconnect(self._forget_matches)
        self._source = model if isinstance(model, FailureTableModel) else None
        self._matches = []
        if self._source is not None:
            # before the reset reaches the proxy's own handling, which refilters
            self._source.modelAboutToBeReset.connect(self._forget_matches)
        super().setSourceModel(model)

    def _forget_matches(self) -> None:
        self._matches = []

    # -- filter ----------------------------------------------------------------------------

    def search_text(self) -> str:
        return self._needle

    def result_filter(self) -> str | None:
        return self._result

    def is_filtered(self) -> bool:
        return bool(self._needle) or self._result is not None

    def set_search_text(self, text: str) -> None:
        """Show only rows whose id, username, error, result or source file name contain
        `text` (case-insensitive); "" shows all."""
        self._set_filter(text.strip().casefold(), self._result)

    def set_result_filter(self, result: str | None) -> None:
        """Show only rows with this result word; None (or "") shows all."""
        self._set_filter(self._needle, result or None)

    def _set_filter(self, needle: str, result: str | None) -> None:
        if (needle, result) == (self._needle, self._result):
            return
        narrower = ((not self._needle or self._needle in needle)
                    and (self._result is None or self._result == result))
        if narrower:
            # rows only disappear: Qt's incremental update is cheapest (and keeps selection)
            self.beginFilterChange()
            self._needle, self._result, self._matches = needle, result, []
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            # rows come back: the incremental update would announce every gap between shown
            # rows as a separate insert; rebuilding the mapping at once is several times faster
            self._needle, self._result, self._matches = needle, result, []
            self.invalidate()
        self.filterChanged.emit()

    def accepts(self, record: FailureRecord) -> bool:
        """Whether `record` passes the current filter (the same test as filterAcceptsRow)."""
        return _matches((record,), self._needle, self._result)[0]

    def _match_list(self) -> list[bool]:
        source = self._source
        assert source is not None
        arrival = source.arrival_records()
        matches = self._matches
        if len(matches) < len(arrival):
            matches.extend(_matches(arrival[len(matches):], self._needle, self._result))
        return matches

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        # fast path: called once per source row whenever the mapping is rebuilt
        if not self._needle and self._result is None:
            return True
        source = self._source
        if source is None:
            return True
        try:
            position = source.arrival_index(source_row)
        except IndexError:
            return False
        matches = self._matches
        if position >= len(matches):
            matches = self._match_list()  # new rows: decided in bulk
        return matches[position]

    def visible_positions(self) -> list[int]:
        """Arrival index (see FailureTableModel.arrival_index) of each proxy row, in order."""
        source = self._source
        if source is None:
            return []
        order = source.display_order()
        if not self.is_filtered():
            return list(order)
        # the proxy keeps source order (it never sorts), so filtering the source rows in
        # order gives exactly the proxy's rows
        matches = self._match_list()
        return [position for position in order if matches[position]]

    def visible_records(self) -> list[FailureRecord]:
        """The records the proxy shows, in view order, without a Python call per proxy row."""
        source = self._source
        if source is None:
            return [self.data(self.index(r, 0), FailureTableModel.RecordRole)
                    for r in range(self.rowCount())]
        arrival = source.arrival_records()
        return [arrival[position] for position in self.visible_positions()]

    # -- sorting ---------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort via the source model's fast sort; the proxy itself keeps source order."""
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)
