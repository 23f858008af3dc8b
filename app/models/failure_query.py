"""The failure list in SQL: sort keys, filters, counts and pages over a `failures` table.

The Failed Customers tab lists failures straight from SQLite: the results folder's journal
(`import_history.sqlite`), or a `FailureStore`'s own database when the list has no journal
behind it. Both have the journal's `failures` table (same column names), and both carry
the columns and indexes defined here, so that sorting a million failures by any column is
an index scan, and the process holds a number per listed failure (its rowid, in an
`array`), never a Python object.

Sort keys are SQL expressions over built-in functions only (VIRTUAL generated columns), so
every program writing the journal keeps its indexes, whichever functions it registered:

* names sort in Swedish alphabetical order without a per-comparison collator: Å Ä Ö after
  Z (Norwegian Æ Ø share the Ä Ö places), other accents as their base letter (é as e, ü as
  y as Swedish dictionaries do), case ignored; `text_sort_key` is the same key in Python;
* customer ids that are numbers sort as numbers (2 before 10), other ids after them;
* errors sort by their first 100 characters, folded as names are.

Changing a key changes the schema: the journal needs a new migration for it.
"""

from __future__ import annotations

import sqlite3
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, overload

import orjson

from app.models.records import FailureRecord, Result

COLUMNS: tuple[str, ...] = ("Customer ID", "Username", "Error", "Timestamp", "Batch Info",
                            "Result")
COL_ID, COL_USERNAME, COL_ERROR, COL_TIMESTAMP, COL_BATCH, COL_RESULT = range(len(COLUMNS))

#: Columns of a failure row (`FailureRecord.to_row`), as the journal names them.
FAILURE_COLUMNS = (
    "customer_id", "username", "result", "error", "timestamp", "batch_info", "original",
    "source_file", "record_number", "batch_number", "http_status", "kind", "retriable",
    "whole_batch", "key", "attempts", "last_job", "resolved_job", "resolved_at")

#: What the table shows of a failure (no original data: that is read when opened).
DISPLAY_COLUMNS = ("customer_id", "username", "result", "error", "timestamp", "batch_info",
                   "attempts", "resolved_job", "resolved_at")
(D_ID, D_USERNAME, D_RESULT, D_ERROR, D_TIMESTAMP, D_BATCH_INFO, D_ATTEMPTS, D_RESOLVED_JOB,
 D_RESOLVED_AT) = range(len(DISPLAY_COLUMNS))
DisplayRow = tuple  # the DISPLAY_COLUMNS of one failure

# -- sort keys ---------------------------------------------------------------------------------

# letter -> what it sorts as (both cases); after ASCII letters are made lower case
_FOLDED = {
    "å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}",
    "é": "e", "è": "e", "ê": "e", "ë": "e", "ę": "e", "á": "a", "à": "a", "â": "a", "ą": "a",
    "í": "i", "ì": "i", "î": "i", "ï": "i", "ó": "o", "ò": "o", "ô": "o",
    "ú": "u", "ù": "u", "û": "u", "ü": "y", "ç": "c", "č": "c", "ć": "c", "ñ": "n", "ń": "n",
    "ł": "l", "ś": "s", "š": "s", "ž": "z", "ź": "z", "ż": "z",
}
_FOLD_PAIRS = tuple((case, to) for letter, to in _FOLDED.items()
                    for case in (letter.upper(), letter))
_ASCII_LOWER = {ord(c): c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}  # as SQL's lower()
_FOLD_TABLE = _ASCII_LOWER | {ord(case): to for case, to in _FOLD_PAIRS}
# SQLite's parser refuses deeper nesting than about 30 calls: the replacements are split
# over generated columns, each one replacing this many letters of the previous one
_FOLD_STEP = 24
ERROR_KEY_CHARS = 100


def text_sort_key(text: str) -> str:
    """The key names sort by: case ignored, Å Ä Ö after Z, accented letters as their base.

    The same as the SQL of the `name_key` column (ASCII letters lower case, the letters of
    `_FOLDED` replaced), so a Python sort and the table's agree.
    """
    return text.translate(_FOLD_TABLE)


def id_sort_key(customer_id: str) -> str:
    """Numeric ids in numeric order (by length, then digits), anything else after them."""
    if customer_id and customer_id.isascii() and customer_id.isdigit():
        digits = customer_id.lstrip("0")
        return "0" + chr(48 + len(digits)) + digits
    return "1" + customer_id.translate(_ASCII_LOWER)


def _is_ascii_sql(value: str) -> str:
    # a text's length in characters equals its length in bytes only when it is ASCII
    return f"length({value}) = length(CAST({value} AS BLOB))"


def _fold_columns(name: str, source: str) -> list[tuple[str, str]]:
    """(column, expression) of the generated columns that fold `source`: the last one,
    `<name>_key`, is the key; the others are steps towards it, computed only for text that
    is not plain ASCII."""
    steps = [_FOLD_PAIRS[i:i + _FOLD_STEP] for i in range(0, len(_FOLD_PAIRS), _FOLD_STEP)]
    columns: list[tuple[str, str]] = []
    previous = f"lower({source})"
    for n, step in enumerate(steps):
        expression = previous
        for case, to in step:
            expression = f"replace({expression}, '{case}', '{to}')"
        if n == len(steps) - 1:
            expression = (f"CASE WHEN {_is_ascii_sql(source)} THEN lower({source}) "
                          f"ELSE {expression} END")
            columns.append((f"{name}_key", expression))
        else:
            columns.append((f"{name}_fold{n + 1}", expression))
            previous = f"{name}_fold{n + 1}"
    return columns


_ID_KEY_SQL = ("CASE WHEN customer_id <> '' AND customer_id NOT GLOB '*[^0-9]*' "
               "THEN '0' || char(48 + length(ltrim(customer_id, '0'))) || "
               "ltrim(customer_id, '0') ELSE '1' || lower(customer_id) END")
_GENERATED: tuple[tuple[str, str], ...] = (
    *_fold_columns("name", "username"),
    *_fold_columns("error", f"substr(error, 1, {ERROR_KEY_CHARS})"),
    ("id_key", _ID_KEY_SQL),
)

#: The generated columns the list sorts by (VIRTUAL: they take no room in the table).
LIST_COLUMNS_DDL: tuple[str, ...] = tuple(
    f"ALTER TABLE failures ADD COLUMN {column} TEXT GENERATED ALWAYS AS ({expression}) VIRTUAL"
    for column, expression in _GENERATED)

#: Indexes the list reads through. Each sort index ends with `state`: one scan of it gives
#: the open failures (state checked in the index) or all of them, in key order.
LIST_INDEXES_DDL: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS failures_by_state ON failures(state, timestamp)",
    "CREATE INDEX IF NOT EXISTS failures_in_state ON failures(state)",
    "CREATE INDEX IF NOT EXISTS failures_by_id_key ON failures(id_key, state)",
    "CREATE INDEX IF NOT EXISTS failures_by_name_key ON failures(name_key, state)",
    "CREATE INDEX IF NOT EXISTS failures_by_error_key ON failures(error_key, state)",
    "CREATE INDEX IF NOT EXISTS failures_by_batch ON failures(batch_number, batch_info, state)",
    "CREATE INDEX IF NOT EXISTS failures_by_result ON failures(result, state)",
    "CREATE INDEX IF NOT EXISTS failures_by_job ON failures(state, last_job)",
)

# ORDER BY of each column, ascending (descending is the ascending order reversed)
_ORDER_BY = {
    -1: "rowid",
    COL_ID: "id_key",
    COL_USERNAME: "name_key",
    COL_ERROR: "error_key",
    COL_TIMESTAMP: "timestamp",
    COL_BATCH: "batch_number, batch_info",
    COL_RESULT: "result",
}

# -- error types --------------------------------------------------------------------------------

NO_ERROR_TEXT = "(no error text)"
_ERROR_TYPE_CHARS = 160
_DIGIT_RUN_PASSES = 6  # "##" -> "#" this often: runs of up to 64 digits become one "#"


def error_type(error: str) -> str:
    """The first line of `error` with every run of digits as one "#", so that similar
    errors group together (the same as `ERROR_TYPE_SQL`)."""
    first = error.strip(" \t\n\r").partition("\n")[0]
    for digit in "0123456789":
        first = first.replace(digit, "#")
    for _ in range(_DIGIT_RUN_PASSES):
        first = first.replace("##", "#")
    return first[:_ERROR_TYPE_CHARS] or NO_ERROR_TEXT


def _error_type_sql() -> str:
    trimmed = "trim(error, char(32, 9, 10, 13))"
    expression = f"substr({trimmed}, 1, instr({trimmed} || char(10), char(10)) - 1)"
    for digit in "0123456789":
        expression = f"replace({expression}, '{digit}', '#')"
    for _ in range(_DIGIT_RUN_PASSES):
        expression = f"replace({expression}, '##', '#')"
    return f"coalesce(nullif(substr({expression}, 1, {_ERROR_TYPE_CHARS}), ''), " \
           f"'{NO_ERROR_TEXT}')"


ERROR_TYPE_SQL = _error_type_sql()

# -- the query ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailureQuery:
    """Which failures the list shows, in which order.

    `search` (case-insensitive, already casefolded) is looked for in the customer id,
    username, error, result and source file name; `result` keeps one result word; resolved
    failures are left out unless `show_resolved`; `job` keeps the customers whose latest
    attempt was in that job. `sort_column` is one of the COL_ constants, -1 for the order
    the failures first happened in.
    """

    search: str = ""
    result: str | None = None
    show_resolved: bool = False
    job: int | None = None
    sort_column: int = -1
    descending: bool = False

    def ascending(self) -> FailureQuery:
        return replace(self, descending=False)

    def same_rows(self, other: FailureQuery) -> bool:
        """Whether `other` lists the same failures (perhaps in another order)."""
        return (self.search, self.result, self.show_resolved, self.job) == (
            other.search, other.result, other.show_resolved, other.job)


def _basename_sql(column: str) -> str:
    # the part after the last / or \: rtrim() strips the name, leaving the folder
    path = f"replace({column}, '\\', '/')"
    return f"replace({path}, rtrim({path}, replace({path}, '/', '')), '')"


def _where(query: FailureQuery, *, sorted_by_index: bool) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.job is not None:
        # a job's failures come from the job index (then sorted): most jobs are small
        states = "('open', 'resolved')" if query.show_resolved else "('open')"
        clauses.append(f"state IN {states} AND last_job = ?")
        args.append(query.job)
    elif not query.show_resolved:
        # "+state" keeps the planner from reading by the state index: the sort index,
        # which ends with state, gives the order and the filter at once
        clauses.append("+state = 'open'" if sorted_by_index else "state = 'open'")
    elif not sorted_by_index:
        clauses.append("state IN ('open', 'resolved')")  # the state index, not the table
    if query.result is not None:
        clauses.append("result = ?")
        args.append(query.result)
    if query.search:
        if query.search.isascii():
            # lower() folds ASCII letters only, which is all an ASCII text can match
            fields = ("customer_id", "username", "error", "result",
                      _basename_sql("source_file"))
            clauses.append("(" + " OR ".join(f"instr(lower({f}), ?) > 0" for f in fields) + ")")
            args += [query.search] * len(fields)
        else:
            clauses.append("failure_matches(?, customer_id, username, error, result, "
                           "source_file)")
            args.append(query.search)
    return clauses, args


def _failure_matches(needle: str, *fields: str | None) -> bool:
    # registered on the list's connections: Python's casefold() for non-ASCII searches
    *texts, source_file = fields
    name = (source_file or "").replace("\\", "/").rpartition("/")[2]
    return any(needle in (text or "").casefold() for text in (*texts, name))


def order_sql(query: FailureQuery, *, after: int | None = None) -> tuple[str, list[Any]]:
    """SELECT of the rowids `query` lists, in ascending order of its sort column (ties by
    the order they first failed in); with `after`, only rows with a greater rowid."""
    column = query.sort_column if query.sort_column in _ORDER_BY else -1
    # the open failures in first-failed order come from the state index, the others from
    # the sort column's index, which also filters the state
    clauses, args = _where(query, sorted_by_index=column not in (-1, COL_TIMESTAMP))
    if after is not None:
        clauses.insert(0, "rowid > ?")
        args.insert(0, after)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    order_by = _ORDER_BY[column]
    if query.show_resolved and column not in (-1, COL_TIMESTAMP):
        order_by += ", state"  # the index order: no sort needed
    return f"SELECT rowid FROM failures{where} ORDER BY {order_by}", args


# -- reading ------------------------------------------------------------------------------------


def open_list_connection(path: Path, *, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to the list's database; never creates it (raises
    sqlite3.OperationalError when it is not there)."""
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    connection = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s,
                                 isolation_level=None, check_same_thread=False)
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        connection.execute("PRAGMA query_only = 1")
        connection.create_function("failure_matches", 6, _failure_matches, deterministic=True)
    except sqlite3.Error:
        connection.close()
        raise
    return connection


_PARSE_SLICE = 1 << 19  # characters of rowids parsed at once (a few milliseconds' work)


def read_order(connection: sqlite3.Connection, query: FailureQuery, *,
               after: int | None = None) -> array[int]:
    """The rowids `query` lists, in its order, as a compact array.

    SQLite hands them over as one text (made without Python's lock: a row at a time they
    would cost a Python object each), parsed as JSON a slice at a time, so that this
    thread never holds Python's lock for long while the GUI thread waits for it.
    """
    sql, args = order_sql(query.ascending(), after=after)
    # not flattened into the aggregate (it has an ORDER BY): the text keeps the order
    (text,) = connection.execute(f"SELECT group_concat(rowid) FROM ({sql})", args).fetchone()
    order: array[int] = array("q")
    start, end = 0, len(text or "")
    while start < end:
        stop = text.find(",", start + _PARSE_SLICE)
        if stop < 0:
            stop = end
        order.extend(orjson.loads("[" + text[start:stop] + "]"))
        start = stop + 1
    if query.descending:
        order.reverse()
    return order


def last_rowid(connection: sqlite3.Connection) -> int:
    """The greatest rowid in the table (0 when empty): rows added later have greater ones."""
    (value,) = connection.execute("SELECT max(rowid) FROM failures").fetchone()
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class FailureCounts:
    """How many failures the list's scope (the job shown, or all) holds."""

    open: int = 0
    resolved: int = 0
    by_result: dict[str, int] = field(default_factory=dict)  # open ones, per result word


def read_counts(connection: sqlite3.Connection, job: int | None = None) -> FailureCounts:
    where, args = (" WHERE last_job = ?", [job]) if job is not None else ("", [])
    by_result: dict[str, int] = {}
    counts = {"open": 0, "resolved": 0}
    for result, state, count in connection.execute(
            f"SELECT result, state, count(*) FROM failures{where} GROUP BY result, state",
            args):
        counts[state] = counts.get(state, 0) + count
        if state == "open":
            by_result[result] = count
    return FailureCounts(counts["open"], counts["resolved"], by_result)


def read_error_types(connection: sqlite3.Connection, job: int | None = None, top: int = 10
                     ) -> list[tuple[str, int]]:
    """The `top` most frequent kinds of open error (see `error_type`), each as a real
    example (the first failure of its kind, shortened) with its count."""
    where = "WHERE state = 'open'" + (" AND last_job = ?" if job is not None else "")
    args: list[Any] = [job] if job is not None else []
    kinds = connection.execute(
        f"SELECT {ERROR_TYPE_SQL} AS error_kind, count(*), min(rowid) FROM failures {where} "
        "GROUP BY error_kind ORDER BY 2 DESC, 3 LIMIT ?", [*args, top]).fetchall()
    examples = dict(connection.execute(
        "SELECT rowid, error FROM failures WHERE rowid IN (SELECT value FROM json_each(?))",
        (_json_list(first for _kind, _count, first in kinds),)).fetchall())
    return [(short_error(examples.get(first, ""), _ERROR_TYPE_CHARS) or NO_ERROR_TEXT, count)
            for _kind, count, first in kinds]


def _json_list(values: Iterable[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def read_display_rows(connection: sqlite3.Connection, rowids: Sequence[int]
                      ) -> dict[int, DisplayRow]:
    """What the table shows of these failures, by rowid (a rowid no longer there is left
    out)."""
    if not rowids:
        return {}
    rows = connection.execute(
        f"SELECT rowid, {', '.join(DISPLAY_COLUMNS)} FROM failures "
        "WHERE rowid IN (SELECT value FROM json_each(?))", (_json_list(rowids),)).fetchall()
    return {row[0]: row[1:] for row in rows}


def read_mark(connection: sqlite3.Connection, rowids: Sequence[int]) -> str:
    """One text that changes whenever one of these failures changes the way an import
    changes them (failed again, resolved): checked instead of reading the rows again."""
    (mark,) = connection.execute(
        "SELECT group_concat(mark, '|') FROM (SELECT attempts || ':' || "
        "ifnull(resolved_job, '') || ':' || timestamp AS mark FROM failures "
        "WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid)",
        (_json_list(rowids),)).fetchone()
    return mark or ""


def mark_of(rows: Iterable[tuple[int, DisplayRow | None]]) -> str:
    """`read_mark` of these (rowid, row) pairs, from rows read earlier."""
    marks = []
    for _rowid, row in sorted(rows, key=lambda pair: pair[0]):
        if row is not None:
            job = row[D_RESOLVED_JOB]
            marks.append(f"{row[D_ATTEMPTS]}:{'' if job is None else job}:{row[D_TIMESTAMP]}")
    return "|".join(marks)


def read_records(connection: sqlite3.Connection, rowids: Sequence[int]
                 ) -> list[FailureRecord | None]:
    """These failures, complete, in the order given (None for a rowid no longer there)."""
    if not rowids:
        return []
    found = {row[0]: FailureRecord.from_row(row[1:]) for row in connection.execute(
        f"SELECT rowid, {', '.join(FAILURE_COLUMNS)} FROM failures "
        "WHERE rowid IN (SELECT value FROM json_each(?))", (_json_list(rowids),))}
    return [found.get(rowid) for rowid in rowids]


def positions_of(order: Sequence[int], rowids: Sequence[int]) -> dict[int, int]:
    """Where each of `rowids` is in `order` (left out: not there)."""
    if not rowids:
        return {}
    if len(rowids) <= 4 and isinstance(order, array):
        # a few: searched in the array's bytes, without a Python step per row
        data = order.tobytes()
        found: dict[int, int] = {}
        for rowid in rowids:
            needle = int(rowid).to_bytes(8, sys.byteorder, signed=True)
            start = 0
            while (at := data.find(needle, start)) >= 0:
                if at % 8 == 0:
                    found[rowid] = at // 8
                    break
                start = at + 1
        return found
    wanted = set(rowids)
    return {rowid: row for row, rowid in enumerate(order) if rowid in wanted}


class FailureRecords(Sequence[FailureRecord]):
    """The failures of `rowids`, in that order, read from the list's database a slice at a
    time whenever they are gone through (for an export: never all of them in memory as
    records). Rows no longer there are skipped. Meant for one worker thread."""

    def __init__(self, path: Path, rowids: Sequence[int], chunk: int = 500) -> None:
        self.path = Path(path)
        self.rowids = rowids
        self.chunk = chunk

    def __len__(self) -> int:
        return len(self.rowids)

    @overload
    def __getitem__(self, index: int) -> FailureRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[FailureRecord]: ...

    def __getitem__(self, index: int | slice) -> FailureRecord | list[FailureRecord]:
        if isinstance(index, slice):
            return list(self._read(self.rowids[index]))
        records = list(self._read([self.rowids[index]]))
        if not records:
            raise IndexError(index)
        return records[0]

    def __iter__(self) -> Iterator[FailureRecord]:
        return self._read(self.rowids)

    def _read(self, rowids: Sequence[int]) -> Iterator[FailureRecord]:
        connection = open_list_connection(self.path)
        try:
            for start in range(0, len(rowids), self.chunk):
                for record in read_records(connection, rowids[start:start + self.chunk]):
                    if record is not None:
                        yield record
        finally:
            connection.close()


# -- showing ------------------------------------------------------------------------------------

ERROR_DISPLAY_CHARS = 80


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


def display_value(row: DisplayRow, column: int) -> str:
    """What the table shows in `column` for `row`."""
    if column == COL_ID:
        return row[D_ID]
    if column == COL_USERNAME:
        return row[D_USERNAME]
    if column == COL_ERROR:
        return short_error(row[D_ERROR])
    if column == COL_TIMESTAMP:
        return display_timestamp(row[D_TIMESTAMP])
    if column == COL_BATCH:
        return row[D_BATCH_INFO]
    if column == COL_RESULT:
        if row[D_RESOLVED_JOB] is not None:
            return f"{row[D_RESULT]} (resolved by job #{row[D_RESOLVED_JOB]})"
        attempts = row[D_ATTEMPTS]
        # "×2": sent twice, failed twice; a row refused before sending was never sent
        if attempts > 1 and row[D_RESULT] != Result.INVALID:
            return f"{row[D_RESULT]} ×{attempts}"
        return row[D_RESULT]
    return ""


def full_value(row: DisplayRow, column: int) -> str:
    """The complete value of `column` (tooltips)."""
    if column == COL_ERROR:
        return row[D_ERROR]
    if column == COL_TIMESTAMP:
        return row[D_TIMESTAMP]
    if column == COL_RESULT:
        text = row[D_RESULT]
        if row[D_ATTEMPTS] > 1:
            text += f" (failed {row[D_ATTEMPTS]} times)"
        if row[D_RESOLVED_JOB] is not None:
            when = display_timestamp(row[D_RESOLVED_AT] or "")
            text += f"; resolved: imported by job #{row[D_RESOLVED_JOB]} {when}".rstrip()
        return text
    return display_value(row, column)
