"""Streaming readers for customer files: JSON batch files and JSON Lines.

A file is never loaded whole: entries are parsed one at a time (ijson), so memory holds
the batches in flight, not the file. Every entry is checked before it may be sent; an
entry that fails the check, and a file or line that cannot be read, is reported naming the
file, the record (or line) number and the field.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from app.models.records import CustomerRecord, RecordKind

CUSTOMER_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
WRAPPER_KEYS = ("data", "households", "customers")
CHANGE_TYPES = frozenset({"CREATE", "UPDATE"})

# Files the importer itself writes next to customer files; never customer data.
_NOT_CUSTOMER_FILES = re.compile(
    r"^(retry_summary\.json|_SUMMARY_.*\.json|failed_customers\.json|import_report.*\.json)$",
    re.IGNORECASE,
)
_WRAPPER_AT_START = re.compile(rb'^\s*\{\s*"(data|households|customers)"\s*:\s*\[')


@dataclass(slots=True, frozen=True)
class ReadProblem:
    """A file, line or entry that could not be used, with a message fit to show a user."""

    source_file: str
    message: str
    record_number: int | None = None
    field: str | None = None
    fatal_for_file: bool = False  # the rest of the file could not be read

    def __str__(self) -> str:
        where = Path(self.source_file).name
        if self.record_number is not None:
            where += f", record {self.record_number}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class InvalidEntry:
    """An entry read from a file that must not be sent, with the reason."""

    record: CustomerRecord
    problem: ReadProblem


ReadItem = CustomerRecord | InvalidEntry | ReadProblem


def find_customer_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[ReadProblem]]:
    """Expand files and folders (searched recursively) into customer files, in a stable order."""
    found: list[Path] = []
    problems: list[ReadProblem] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            found.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*"), key=lambda p: (str(p.parent), p.name)):
                if (child.is_file() and child.suffix.lower() in CUSTOMER_FILE_SUFFIXES
                        and not is_bookkeeping_file(child)):
                    add(child)
        elif path.is_file():
            add(path)
        else:
            problems.append(ReadProblem(str(path), "no such file or folder", fatal_for_file=True))
    return found, problems


def is_bookkeeping_file(path: Path) -> bool:
    """True for summaries and reports the importer writes beside retry files."""
    return bool(_NOT_CUSTOMER_FILES.match(path.name)) or path.name.startswith(".")


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _open_as_utf8(raw: IO[bytes]) -> tuple[IO[bytes], int]:
    """Skip a byte-order mark, returning a seekable UTF-8 stream and where its data starts.

    UTF-16/32 files (rare: Excel's "Unicode text") are converted to UTF-8 in memory.
    """
    head = raw.read(4)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            if encoding == "utf-8":
                raw.seek(len(bom))
                return raw, len(bom)
            raw.seek(len(bom))
            text = raw.read().decode(encoding)
            return io.BytesIO(text.encode("utf-8")), 0
    raw.seek(0)
    return raw, 0


def _friendly_parse_error(exc: Exception) -> str:
    """First line of a parser error, without the snippet of file content it quotes."""
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:]
    first = text.split("\\n")[0].split("\n")[0].strip().rstrip("'\"")
    if "invalid bytes in UTF8" in first or isinstance(exc, UnicodeDecodeError):
        return ("the file is not UTF-8 text (it may have been saved as ANSI/Windows-1252); "
                "save it as UTF-8 and load it again")
    return f"broken JSON ({first})"


class FileReader:
    """Reads one customer file as a stream of records, invalid entries and problems.

    `bytes_read` tells how far into the file the reader is, for progress and ETA.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.bytes_read = 0
        self.records_read = 0

    def __iter__(self) -> Iterator[ReadItem]:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            yield ReadProblem(self.name, f"cannot open the file ({exc.strerror or exc})",
                              fatal_for_file=True)
            return
        with handle:
            self._handle = handle
            try:
                stream, start = _open_as_utf8(handle)
            except UnicodeDecodeError as exc:
                yield ReadProblem(self.name, _friendly_parse_error(exc), fatal_for_file=True)
                return
            if self.path.suffix.lower() in JSON_LINES_SUFFIXES:
                yield from self._read_json_lines(stream)
            else:
                yield from self._read_json(stream, start)
            self.bytes_read = self._position()

    def _position(self) -> int:
        try:
            return self._handle.tell()
        except (OSError, ValueError):
            return self.bytes_read

    def _entry(self, entry: Any, default_kind: RecordKind) -> ReadItem:
        self.records_read += 1
        if self.records_read % 256 == 0:
            self.bytes_read = self._position()
        record = CustomerRecord(entry, self.name, self.records_read,
                                kind_of_entry(entry, default_kind))
        problem = check_entry(record)
        return InvalidEntry(record, problem) if problem else record

    def _read_json(self, stream: IO[bytes], start: int) -> Iterator[ReadItem]:
        head = stream.read(65536)
        stream.seek(start)
        stripped = head.lstrip()
        if not stripped:
            yield ReadProblem(self.name, "the file is empty", fatal_for_file=True)
            return
        prefix, default_kind = self._detect_layout(stream, head, start)
        if prefix is None:
            yield ReadProblem(
                self.name,
                'no customers found: expected {"data": [...]}, {"households": [...]}, '
                '{"customers": [...]} or a list of customers',
                fatal_for_file=True)
            return
        skip = 0
        if _ARRAY_AT_START.match(head):
            # fast path: large slices of the array parsed at once; ijson only if that fails
            try:
                for entry in _array_entries_in_slices(stream, start):
                    skip += 1
                    yield self._entry(entry, default_kind)
                return
            except _SlicingFailed:
                stream.seek(start)
        try:
            if prefix == "":
                # a file holding a single entry
                entry = orjson.loads(stream.read())
                yield self._entry(entry, default_kind)
                return
            for entry in ijson.items(stream, prefix, use_float=True):
                if skip:
                    skip -= 1  # already read by the fast path before it gave up
                    continue
                yield self._entry(entry, default_kind)
        except (ijson.JSONError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            after = (f" after record {self.records_read}" if self.records_read else "")
            yield ReadProblem(self.name, f"{_friendly_parse_error(exc)}{after}; "
                              "the rest of this file was not read",
                              record_number=self.records_read + 1, fatal_for_file=True)

    def _detect_layout(
        self, stream: IO[bytes], head: bytes, start: int
    ) -> tuple[str | None, RecordKind]:
        match = _WRAPPER_AT_START.match(head)
        if match:
            key = match.group(1).decode()
            return f"{key}.item", _kind_for_wrapper(key)
        first = head.lstrip()[:1]
        if first == b"[":
            return "item", RecordKind.CUSTOMERS
        if first != b"{":
            return None, RecordKind.CUSTOMERS
        # An object whose wrapper key is not first, or a single entry: find the top-level keys.
        keys: list[str] = []
        try:
            for prefix, event, value in ijson.parse(stream):
                if prefix == "" and event == "map_key":
                    keys.append(value)
                    if value in WRAPPER_KEYS:
                        break
        except (ijson.JSONError, UnicodeDecodeError):
            pass  # the real read below reports it with its position
        stream.seek(start)
        for key in keys:
            if key in WRAPPER_KEYS:
                return f"{key}.item", _kind_for_wrapper(key)
        if {"person", "household", "changeType"} & set(keys):
            return "", RecordKind.CUSTOMERS
        return None, RecordKind.CUSTOMERS

    def _read_json_lines(self, stream: IO[bytes]) -> Iterator[ReadItem]:
        for line_number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                # keep the line itself as the original data: nothing read is lost
                self.records_read += 1
                record = CustomerRecord(line.decode("utf-8", "replace").rstrip("\r\n"),
                                        self.name, self.records_read)
                yield InvalidEntry(record, ReadProblem(
                    self.name, f"line {line_number}: {_friendly_parse_error(exc)}",
                    record_number=self.records_read))
                continue
            entries: list[Any] = [value]
            default_kind = RecordKind.CUSTOMERS
            if isinstance(value, dict):
                for key in WRAPPER_KEYS:
                    if isinstance(value.get(key), list):
                        entries, default_kind = value[key], _kind_for_wrapper(key)
                        break
            for entry in entries:
                yield self._entry(entry, default_kind)


_ARRAY_AT_START = re.compile(rb'^\s*(\{\s*"(?:data|households|customers)"\s*:\s*)?\[')
_SLICE_BYTES = 1 << 20
_MAX_PENDING_BYTES = 64 << 20
_MAX_CUT_ATTEMPTS = 16


class _SlicingFailed(Exception):
    """The file is not laid out as the fast path expects; ijson takes over."""


def _array_entries_in_slices(stream: IO[bytes], start: int) -> Iterator[Any]:
    """The entries of the file's customer array, parsed a megabyte at a time with orjson.

    Streaming parsers build each value token by token in Python-visible steps; here a
    slice is cut after a `}` followed by `,` and parsed as `[slice]` in one call. A cut
    inside a nested value or a string leaves brackets or quotes unbalanced, so the parse
    fails and an earlier cut is tried: a successful parse proves the cut was at the top
    level. Anything unexpected raises `_SlicingFailed`, and the caller reads the file with
    ijson instead (which also reports broken JSON precisely).
    """
    stream.seek(start)
    pending = stream.read(_SLICE_BYTES)
    opening = _ARRAY_AT_START.match(pending)
    if opening is None:
        raise _SlicingFailed
    wrapped = opening.group(1) is not None
    pending = pending[opening.end():]
    while True:
        more = stream.read(_SLICE_BYTES)
        if not more:
            yield from _last_slice(pending, wrapped)
            return
        pending += more
        parsed = _parse_leading_entries(pending)
        if parsed is None:
            if len(pending) > _MAX_PENDING_BYTES:
                raise _SlicingFailed
            continue
        entries, rest_at = parsed
        pending = pending[rest_at:]
        yield from entries


def _parse_leading_entries(pending: bytes) -> tuple[list[Any], int] | None:
    """Entries before the last top-level `},` in `pending`, and where the rest begins."""
    end = len(pending)
    for _ in range(_MAX_CUT_ATTEMPTS):
        brace = pending.rfind(b"}", 0, end)
        if brace < 0:
            return None
        end = brace
        after = brace + 1
        while after < len(pending) and pending[after] in b" \t\r\n":
            after += 1
        if after >= len(pending) or pending[after] != 0x2C:  # not followed by ","
            continue
        try:
            entries = orjson.loads(b"[" + pending[:brace + 1] + b"]")
        except orjson.JSONDecodeError:
            continue
        return entries, after + 1
    return None


def _last_slice(pending: bytes, wrapped: bool) -> list[Any]:
    close = pending.rfind(b"]")
    if close < 0:
        raise _SlicingFailed
    tail = pending[close + 1:].strip()
    if tail != (b"}" if wrapped else b""):
        raise _SlicingFailed
    body = pending[:close]
    if not body.strip():
        return []
    try:
        return orjson.loads(b"[" + body + b"]")
    except orjson.JSONDecodeError:
        raise _SlicingFailed from None


def iter_json_array(path: Path) -> Iterator[Any]:
    """The items of a JSON file holding a list (or `{"data": [...]}`), without loading it whole.

    Parsed in slices, so a thread reading a large file never holds Python's global lock
    for long (which would freeze the window). Raises ValueError for a file that is not
    such a list.
    """
    with Path(path).open("rb") as raw:
        stream, start = _open_as_utf8(raw)
        yielded = 0
        try:
            for item in _array_entries_in_slices(stream, start):
                yielded += 1
                yield item
            return
        except _SlicingFailed:
            stream.seek(start)
        head = stream.read(65536)
        stream.seek(start)
        if not head.strip():
            return
        if head.lstrip()[:1] != b"[":
            data = orjson.loads(stream.read())  # an object wrapping the list: rare, small
            items = next((v for v in data.values() if isinstance(v, list)), None) if \
                isinstance(data, dict) else None
            if items is None:
                raise ValueError(f"{Path(path).name} does not hold a list")
            yield from items[yielded:]
            return
        try:
            for index, item in enumerate(ijson.items(stream, "item", use_float=True)):
                if index >= yielded:
                    yield item
        except ijson.JSONError as exc:
            raise ValueError(f"{Path(path).name}: {_friendly_parse_error(exc)}") from None


def _kind_for_wrapper(key: str) -> RecordKind:
    return RecordKind.HOUSEHOLDS if key == "households" else RecordKind.CUSTOMERS


def kind_of_entry(entry: Any, default: RecordKind) -> RecordKind:
    if isinstance(entry, dict) and "person" not in entry and (
            "household" in entry or "householdId" in entry):
        return RecordKind.HOUSEHOLDS
    return default


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_real_date(text: Any) -> bool:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_entry(record: CustomerRecord) -> ReadProblem | None:
    """Why an entry must not be sent, or None when it may be."""
    entry = record.data

    def problem(field: str | None, message: str) -> ReadProblem:
        return ReadProblem(record.source_file, message, record.record_number, field)

    if not isinstance(entry, dict):
        kind = {list: "a list", str: "text", int: "a number", float: "a number"}.get(
            type(entry), type(entry).__name__)
        return problem(None, f"entry is {kind}, not an object")
    change_type = entry.get("changeType")
    if change_type is None:
        return problem("changeType", "changeType is missing (CREATE or UPDATE)")
    if not isinstance(change_type, str) or change_type.upper() not in CHANGE_TYPES:
        return problem("changeType", f"changeType must be CREATE or UPDATE, not {change_type!r}")
    if record.kind is RecordKind.HOUSEHOLDS:
        inner = entry.get("household", entry)
        if not isinstance(inner, dict):
            return problem("household", "household must be an object")
        if not _present(inner.get("householdId")):
            return problem("householdId", "householdId is missing")
        return None
    person = entry.get("person")
    if not isinstance(person, dict):
        return problem("person", "person is missing" if person is None
                       else "person must be an object")
    customer_id = person.get("customerId")
    if not _present(customer_id):
        return problem("person.customerId", "customerId is missing")
    if not isinstance(customer_id, str | int) or isinstance(customer_id, bool):
        return problem("person.customerId", "customerId must be text")
    for name_field in ("firstName", "lastName"):
        value = person.get(name_field)
        if value is not None and not isinstance(value, str):
            return problem(f"person.{name_field}", f"{name_field} must be text")
    birthday = person.get("birthday")
    if birthday not in (None, "") and not _is_real_date(birthday):
        return problem("person.birthday",
                       f"birthday {birthday!r} is not a real date (YYYY-MM-DD)")
    for list_field in ("addresses", "customerCards"):
        value = person.get(list_field)
        if value is not None and not isinstance(value, list):
            return problem(f"person.{list_field}", f"{list_field} must be a list")
    cards = person.get("customerCards") or []
    for index, card in enumerate(cards, start=1):
        if not isinstance(card, dict):
            return problem(f"person.customerCards[{index}]", "a customer card must be an object")
        if not _present(card.get("number", card.get("cardNumber"))):
            return problem(f"person.customerCards[{index}].number", "card number is missing")
    return None


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""
