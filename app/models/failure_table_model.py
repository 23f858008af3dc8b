"""Qt models for the Failed Customers tab: a table over the FailureStore and its filter proxy.

Built for 100,000+ rows arriving during an import:

* the store's listener (called from worker threads) only sets a `threading.Event`; a
  QTimer on the GUI thread pulls whatever is new in ONE `beginInsertRows`/`endInsertRows`,
  and the rows that changed in place (a customer failing again, or resolved by a later
  job) with one `dataChanged` each;
* rows are the store's compact tuples (see `FailureRecord.to_row`), which Python's garbage
  collector leaves alone; a `FailureRecord` is made only for a row somebody opens or copies;
* sorting is done here, in Python, on precomputed keys (one `list.sort`), instead of letting
  QSortFilterProxyModel compare rows by calling back into Python per comparison;
* summaries (counts by result and by error type, of the open failures) are computed
  incrementally, and only when somebody asks for them (the tab asks on a throttle).
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
from PySide6.QtGui import QBrush, QColor

from app.models.failure_store import FailureStore
from app.models.records import (
    ROW_ATTEMPTS,
    ROW_BATCH,
    ROW_BATCH_INFO,
    ROW_ERROR,
    ROW_ID,
    ROW_RESOLVED_AT,
    ROW_RESOLVED_JOB,
    ROW_RESULT,
    ROW_SOURCE_FILE,
    ROW_TIMESTAMP,
    ROW_USERNAME,
    FailureRecord,
    FailureRow,
)

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
MANY_CHANGED_ROWS = 500  # more rows changed at once than this: one dataChanged for all

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
_RESOLVED_COLOR = QColor(0x80, 0x80, 0x80)  # readable, but clearly not an open failure


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


def _id_keys(rows: Sequence[FailureRow]) -> list[str]:
    # numeric ids in numeric order (zero-padded), anything else after them as text
    keys = []
    for row in rows:
        value = row[ROW_ID]
        keys.append("0" + value.zfill(24) if value.isdigit() else "1" + text_sort_key(value))
    return keys


def _batch_keys(rows: Sequence[FailureRow]) -> list[str]:
    # by batch number first (batch 2 before batch 10), then by the text
    memo: dict[tuple[int, str], str] = {}
    keys = []
    for row in rows:
        pair = (row[ROW_BATCH], row[ROW_BATCH_INFO])
        key = memo.get(pair)
        if key is None:
            key = memo[pair] = (f"{max(pair[0], 0):012d}\x00{text_sort_key(pair[1])}")
        keys.append(key)
    return keys


_COLUMN_KEYS: dict[int, Callable[[Sequence[FailureRow]], list[str]]] = {
    COL_ID: _id_keys,
    COL_USERNAME: lambda rows: _text_keys([r[ROW_USERNAME] for r in rows]),
    # errors are nearly all distinct (they name the customer): hashing them for a memo
    # would cost more than converting each
    COL_ERROR: lambda rows: [text_sort_key(r[ROW_ERROR]) for r in rows],
    COL_TIMESTAMP: lambda rows: [r[ROW_TIMESTAMP] for r in rows],  # ISO text sorts by time
    COL_BATCH: _batch_keys,
    COL_RESULT: lambda rows: [r[ROW_RESULT] for r in rows],
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
    """The error with ids and numbers replaced by "#", so similar errors group together.

    For grouping only: what a user reads is an example of each group (`error_type_summary`).
    """
    first = error.strip().partition("\n")[0]
    return _DIGITS.sub("#", first)[:160] or "(no error text)"


def _file_name(path: str) -> str:
    # cheaper than Path(path).name, which matters when filtering 100,000 rows
    return path.replace("\\", "/").rpartition("/")[2]


def display_value(row: FailureRow, column: int) -> str:
    """What the table shows in `column` for `row`."""
    if column == COL_ID:
        return row[ROW_ID]
    if column == COL_USERNAME:
        return row[ROW_USERNAME]
    if column == COL_ERROR:
        return short_error(row[ROW_ERROR])
    if column == COL_TIMESTAMP:
        return display_timestamp(row[ROW_TIMESTAMP])
    if column == COL_BATCH:
        return row[ROW_BATCH_INFO]
    if column == COL_RESULT:
        if row[ROW_RESOLVED_JOB] is not None:
            return f"{row[ROW_RESULT]} (resolved)"
        attempts = row[ROW_ATTEMPTS]
        return f"{row[ROW_RESULT]} ×{attempts}" if attempts > 1 else row[ROW_RESULT]
    return ""


def full_value(row: FailureRow, column: int) -> str:
    """The complete value of `column` (tooltips and copying)."""
    if column == COL_ERROR:
        return row[ROW_ERROR]
    if column == COL_TIMESTAMP:
        return row[ROW_TIMESTAMP]
    if column == COL_RESULT:
        text = row[ROW_RESULT]
        if row[ROW_ATTEMPTS] > 1:
            text += f" (failed {row[ROW_ATTEMPTS]} times)"
        if row[ROW_RESOLVED_JOB] is not None:
            when = display_timestamp(row[ROW_RESOLVED_AT] or "")
            text += f"; resolved: imported by job #{row[ROW_RESOLVED_JOB]} {when}".rstrip()
        return text
    return display_value(row, column)


def is_resolved(row: FailureRow) -> bool:
    return row[ROW_RESOLVED_JOB] is not None


class FailureTableModel(QAbstractTableModel):
    """Table of failure rows read from a FailureStore, for the Failed Customers tab.

    Rows are pulled from the store in coalesced chunks (one insert per chunk) by a timer that
    runs only while live updates are on, or on demand with `pull_new_records()`; rows that
    changed in place in the store (failed again, resolved) are updated by the same pull.
    Sorting is done here on precomputed keys (`sort()`); rows arriving while sorted are
    appended at the end until `pull_new_records(resort=True)`. A store whose rows were all
    replaced (new `generation`) resets the model. Resolved rows are shown greyed.

    Signals: `recordsPulled(int)` after new rows were added (how many); `rowsUpdated(list)`
    with the arrival positions of rows that changed in place, before their `dataChanged`;
    `sortStarting()` and `sortFinished()` around a sort that reorders rows (before
    `layoutAboutToBeChanged`, after `layoutChanged`); plus the standard model signals.
    """

    RecordRole = Qt.ItemDataRole.UserRole + 1  # a FailureRecord, made for the asking
    ResolvedRole = Qt.ItemDataRole.UserRole + 2  # whether the row's failure is resolved

    recordsPulled = Signal(int)
    rowsUpdated = Signal(object)
    sortStarting = Signal()
    sortFinished = Signal()

    def __init__(self, store: FailureStore, parent: QObject | None = None, *,
                 pull_interval_ms: int = DEFAULT_PULL_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._store = store
        self._generation = store.generation
        self._arrival: list[FailureRow] = []  # store order (mirror of the store's prefix)
        self._order: list[int] = []  # display row -> index into _arrival
        # column -> sort key of each row, aligned with _arrival; extended when needed, so
        # sorting a column again (or the other way round) costs only the sort itself
        self._key_cache: dict[int, list[str]] = {}
        self._sort_column = -1  # -1: store (arrival) order
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._summary_upto = 0  # how many of _arrival the summary counters include
        self._result_counts: Counter[str] = Counter()
        self._error_type_counts: Counter[str] = Counter()
        self._error_type_examples: dict[str, str] = {}
        self._error_type_cache: dict[str, str] = {}
        self._open = 0
        # The store calls listeners from whichever thread changed it. Only this Event is
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
        """How many rows the store holds that this model has not taken in yet."""
        if self._store.generation != self._generation:
            return len(self._store)
        return max(0, len(self._store) - len(self._arrival))

    def _on_timer(self) -> None:
        if self._pending.is_set() or self._store.generation != self._generation:
            # bounded, so a sudden flood never blocks the GUI for long; the rest follows on
            # the next ticks
            self.pull_new_records(limit=LIVE_PULL_LIMIT)

    def pull_new_records(self, resort: bool = False, limit: int | None = None) -> int:
        """Take in what the store gained or changed since the last pull.

        New rows come as one row insert; rows changed in place as `dataChanged`. Resets the
        model instead when the store's rows were replaced. With `resort`, the current sort
        is applied again afterwards (new rows otherwise wait at the end). `limit` caps how
        many new rows one call takes in (the live timer uses it). Returns how many rows were
        added.
        """
        self._pending.clear()  # before reading, so a change racing with us re-arms it
        if self._store.generation != self._generation:
            added = self._reset_from_store()
        else:
            generation = self._generation
            self._apply_changed_rows()
            new = self._store.rows_from(len(self._arrival))
            if limit is not None and len(new) > limit:
                new = new[:limit]
                self._pending.set()  # more to take on the next tick
            if self._store.generation != generation:
                # replaced while we read: those positions mean nothing any more
                added = self._reset_from_store()
            elif new:
                first = len(self._order)
                self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
                start = len(self._arrival)
                self._arrival.extend(new)
                self._order.extend(range(start, start + len(new)))
                self._open += sum(1 for row in new if row[ROW_RESOLVED_JOB] is None)
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

    def _apply_changed_rows(self) -> None:
        changed = self._store.take_changed(len(self._arrival))
        if not changed:
            return
        rows = self._store.rows_at(changed)
        for position, row in rows.items():
            old = self._arrival[position]
            self._open += (row[ROW_RESOLVED_JOB] is None) - (old[ROW_RESOLVED_JOB] is None)
            self._arrival[position] = row
        for column, keys in self._key_cache.items():
            cached = [position for position in rows if position < len(keys)]
            for position, key in zip(cached, _COLUMN_KEYS[column]([rows[p] for p in cached]),
                                     strict=True):
                keys[position] = key
        # the summary counts what is open now: count again, from the start
        self._summary_upto = 0
        self._result_counts.clear()
        self._error_type_counts.clear()
        self._error_type_examples.clear()
        self.rowsUpdated.emit(list(rows))
        last = len(COLUMNS) - 1
        if len(rows) > MANY_CHANGED_ROWS:
            # one notice for the lot: a view repaints what it shows either way
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._order) - 1, last))
            return
        display_row = {position: row for row, position in enumerate(self._order)} \
            if len(rows) > 8 else None
        for position in rows:
            row = display_row[position] if display_row is not None else \
                self._order.index(position)
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))

    def _reset_from_store(self) -> int:
        self.beginResetModel()
        while True:
            generation = self._store.generation
            rows = self._store.snapshot()
            self._store.take_changed(len(rows))  # all of them are new to us anyway
            if self._store.generation == generation:
                break
        self._generation = generation
        self._arrival = rows
        self._key_cache.clear()
        self._order = self._sorted_order(list(range(len(rows))), self._sort_column,
                                         self._sort_order)
        self._open = sum(1 for row in rows if row[ROW_RESOLVED_JOB] is None)
        self._summary_upto = 0
        self._result_counts.clear()
        self._error_type_counts.clear()
        self._error_type_examples.clear()
        self.endResetModel()
        return len(rows)

    # -- Qt model interface ----------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        position = index.row()
        if position >= len(self._order):
            return None
        row = self._arrival[self._order[position]]
        if role == Qt.ItemDataRole.DisplayRole:
            return display_value(row, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return full_value(row, index.column()) or None
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(_RESOLVED_COLOR) if row[ROW_RESOLVED_JOB] is not None else None
        if role == self.RecordRole:
            return FailureRecord.from_row(row)
        if role == self.ResolvedRole:
            return row[ROW_RESOLVED_JOB] is not None
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

    def open_count(self) -> int:
        """Rows whose failure is still open (resolved ones are shown until the next reload)."""
        return self._open

    def record(self, row: int) -> FailureRecord:
        """The failure shown at `row`, as a record."""
        return FailureRecord.from_row(self._arrival[self._order[row]])

    def records(self) -> list[FailureRecord]:
        """All rows in display order, as records (made now: for exports)."""
        arrival = self._arrival
        return [FailureRecord.from_row(arrival[i]) for i in self._order]

    def arrival_index(self, row: int) -> int:
        """Position in arrival (store) order of the row shown at `row`."""
        return self._order[row]

    def arrival_rows(self) -> list[FailureRow]:
        """The rows in arrival order: the model's own list, do not modify it."""
        return self._arrival

    def display_order(self) -> list[int]:
        """Arrival index of each row, in display order: the model's own list, do not modify."""
        return self._order

    def _update_summary(self) -> None:
        # incremental: each row is counted once; error texts repeat a lot, so their
        # normalised form is cached by text. Only open failures count.
        new = self._arrival[self._summary_upto:]
        if not new:
            return
        self._summary_upto = len(self._arrival)
        open_rows = [row for row in new if row[ROW_RESOLVED_JOB] is None]
        self._result_counts.update(row[ROW_RESULT] for row in open_rows)
        cache = self._error_type_cache
        if len(cache) > _ERROR_TYPE_CACHE_LIMIT:
            cache.clear()
        types = self._error_type_counts
        examples = self._error_type_examples
        for row in open_rows:
            error = row[ROW_ERROR]
            kind = cache.get(error)
            if kind is None:
                kind = cache[error] = error_type(error)
            types[kind] += 1
            if kind not in examples:
                examples[kind] = short_error(error, 160) or "(no error text)"

    def result_counts(self) -> Counter[str]:
        """How many open failures have each result word (e.g. {"CONFLICT": 12})."""
        self._update_summary()
        return Counter(self._result_counts)

    def error_type_counts(self) -> Counter[str]:
        """How many open failures share each error text once ids and numbers are left out."""
        self._update_summary()
        return Counter(self._error_type_counts)

    def error_type_summary(self, top: int = 5) -> list[tuple[str, int]]:
        """The `top` most frequent kinds of error, each as a real example with its count."""
        counts = self.error_type_counts()
        return [(self._error_type_examples.get(kind, kind), n)
                for kind, n in counts.most_common(top)]


def _matches(rows: Sequence[FailureRow], needle: str, result: str | None,
             show_resolved: bool) -> list[bool]:
    """For each row, whether it contains `needle` (casefolded), has `result`, and is open
    (or resolved rows are shown)."""
    matches = []
    for r in rows:
        if (result is not None and r[ROW_RESULT] != result) or (
                not show_resolved and r[ROW_RESOLVED_JOB] is not None):
            matches.append(False)
        else:
            matches.append(not needle
                           or needle in r[ROW_ID].casefold()
                           or needle in r[ROW_USERNAME].casefold()
                           or needle in r[ROW_ERROR].casefold()
                           or needle in r[ROW_RESULT].casefold()
                           or needle in _file_name(r[ROW_SOURCE_FILE]).casefold())
    return matches


class FailureFilterProxy(QSortFilterProxyModel):
    """Filters the failure table by search text, result type and whether resolved failures
    are shown (they are not, at first); sorting goes to the source.

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
        self._show_resolved = False
        self._source: FailureTableModel | None = None
        self._matches: list[bool] = []  # by arrival index, for the current filter

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        if self._source is not None:
            self._source.modelAboutToBeReset.disconnect(self._forget_matches)
            self._source.rowsUpdated.disconnect(self._forget_updated)
        self._source = model if isinstance(model, FailureTableModel) else None
        self._matches = []
        if self._source is not None:
            # before the reset (or dataChanged) reaches the proxy's own handling, which
            # refilters with what the matches say
            self._source.modelAboutToBeReset.connect(self._forget_matches)
            self._source.rowsUpdated.connect(self._forget_updated)
        super().setSourceModel(model)

    def _forget_matches(self) -> None:
        self._matches = []

    def _forget_updated(self, positions: list[int]) -> None:
        if self._source is None:
            return
        rows = self._source.arrival_rows()
        for position in positions:
            if position < len(self._matches):
                self._matches[position] = _matches(
                    (rows[position],), self._needle, self._result, self._show_resolved)[0]

    # -- filter ----------------------------------------------------------------------------

    def search_text(self) -> str:
        return self._needle

    def result_filter(self) -> str | None:
        return self._result

    def is_filtered(self) -> bool:
        """Whether the user narrowed the list (search text or result)."""
        return bool(self._needle) or self._result is not None

    def _hides_rows(self) -> bool:
        source = self._source
        hides_resolved = (not self._show_resolved and source is not None
                          and source.open_count() != source.rowCount())
        return self.is_filtered() or hides_resolved

    def shows_resolved(self) -> bool:
        return self._show_resolved

    def set_show_resolved(self, show: bool) -> None:
        """Show the failures a later import resolved (greyed), or only the open ones."""
        if show == self._show_resolved:
            return
        self._show_resolved = show
        self._matches = []
        self.invalidate()
        self.filterChanged.emit()

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
        return _matches((record.to_row(),), self._needle, self._result,
                        self._show_resolved)[0]

    def _match_list(self) -> list[bool]:
        source = self._source
        assert source is not None
        arrival = source.arrival_rows()
        matches = self._matches
        if len(matches) < len(arrival):
            matches.extend(_matches(arrival[len(matches):], self._needle, self._result,
                                    self._show_resolved))
        return matches

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        # fast path: called once per source row whenever the mapping is rebuilt
        if not self._hides_rows():
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
        if not self._hides_rows():
            return list(order)
        # the proxy keeps source order (it never sorts), so filtering the source rows in
        # order gives exactly the proxy's rows
        matches = self._match_list()
        return [position for position in order if matches[position]]

    def visible_rows(self) -> list[FailureRow]:
        """The rows the proxy shows, in view order, without a Python call per proxy row."""
        source = self._source
        if source is None:
            return [self.data(self.index(r, 0), FailureTableModel.RecordRole).to_row()
                    for r in range(self.rowCount())]
        arrival = source.arrival_rows()
        return [arrival[position] for position in self.visible_positions()]

    def visible_records(self) -> list[FailureRecord]:
        """The failures the proxy shows, in view order, as records (for exports)."""
        return [FailureRecord.from_row(row) for row in self.visible_rows()]

    # -- sorting ---------------------------------------------------------------------------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort via the source model's fast sort; the proxy itself keeps source order."""
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)
