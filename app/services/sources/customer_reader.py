"""Streaming readers for customer files: JSON batch files and JSON Lines.

A file is never loaded whole: entries are parsed one at a time (ijson), so memory holds
the batches in flight, not the file. Every entry is checked before it may be sent; an
entry that fails the check, and a file or line that cannot be read, is reported naming the
file, the record (or line) number and the field. Nesting is limited while the file is
read (`MAX_READ_DEPTH`): a damaged or hostile file nested 100,000 levels deep costs a
moment and a refused entry, never the memory of the structure.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import ijson
import orjson
from ijson.backends import python as exact_ijson

from app.models.display_text import printable_path
from app.models.entry_json import find_unsendable, loads_exact, may_hold_long_integer
from app.models.file_inspection import is_spreadsheet
from app.models.records import CustomerRecord, RecordKind

CUSTOMER_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
WRAPPER_KEYS = ("data", "households", "customers")
CHANGE_TYPES = frozenset({"CREATE", "UPDATE"})

#: Entries are built from the file's text up to this many levels deep; what lies deeper is
#: skipped unread and the entry refused. Deeper than any entry can be sent
#: (MAX_SENDABLE_DEPTH, so an entry nested a little too deep is still kept whole, to be
#: refused naming its field), and far below where building it would cost: ijson's own
#: `items` keeps the whole path at every level, so memory grows with the square of the
#: depth (10,000 levels: 256 MB; 100,000 levels: over 20 GB).
MAX_READ_DEPTH = 512
_TOO_DEEP = (f"the entry is nested more than {MAX_READ_DEPTH} levels deep; no customer entry "
             "is, so the file is probably damaged (what lies deeper was not read)")

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
        name = Path(self.source_file).name
        where = printable_path(name)
        if self.record_number is not None:
            # spreadsheets number their rows as the spreadsheet program shows them
            unit = "row" if is_spreadsheet(Path(name)) else "record"
            where += f", {unit} {self.record_number}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class InvalidEntry:
    """An entry read from a file that must not be sent, with the reason."""

    record: CustomerRecord
    problem: ReadProblem


ReadItem = CustomerRecord | InvalidEntry | ReadProblem


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _encoding_without_bom(head: bytes) -> str | None:
    """UTF-16/32 told apart by where the zero bytes are (RFC 4627): JSON starts with ASCII."""
    if len(head) < 4 or b"\x00" not in head[:4]:
        return None
    zero = [b == 0 for b in head[:4]]
    if zero == [True, True, True, False]:
        return "utf-32-be"
    if zero == [False, True, True, True]:
        return "utf-32-le"
    if zero[0] and zero[2] and not zero[1]:
        return "utf-16-be"
    if zero[1] and zero[3] and not zero[0]:
        return "utf-16-le"
    return None


def _open_as_utf8(raw: IO[bytes]) -> tuple[IO[bytes], int]:
    """Skip a byte-order mark, returning a seekable UTF-8 stream and where its data starts.

    UTF-16/32 files (rare: Excel's and Notepad's "Unicode" text, with or without a
    byte-order mark) are converted to UTF-8 in memory.
    """
    head = raw.read(4)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            raw.seek(len(bom))
            if encoding == "utf-8":
                return raw, len(bom)
            return io.BytesIO(raw.read().decode(encoding).encode("utf-8")), 0
    guessed = _encoding_without_bom(head)
    raw.seek(0)
    if guessed is not None:
        return io.BytesIO(raw.read().decode(guessed).encode("utf-8")), 0
    return raw, 0


def _friendly_parse_error(exc: Exception) -> str:
    """First line of a parser error, without the snippet of file content it quotes."""
    if isinstance(exc, RecursionError) or "depth limit exceeded" in str(exc):
        return (f"nested more than {MAX_READ_DEPTH} levels deep; no customer entry is, so "
                "the file is probably damaged")
    if isinstance(exc, UnicodeDecodeError) and not exc.encoding.startswith("utf-8"):
        return f"the file looks like {exc.encoding.upper()[:6]} text but is not valid there"
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:]
    first = text.split("\\n")[0].split("\n")[0].strip().rstrip("'\"")
    if "invalid bytes in UTF8" in first or isinstance(exc, UnicodeDecodeError):
        return ("the file is not UTF-8 text (it may have been saved as ANSI/Windows-1252); "
                "save it as UTF-8 and load it again")
    return f"broken JSON ({first})"


@dataclass(slots=True, frozen=True)
class _Layout:
    """Where a JSON file keeps its customers."""

    prefix: str | None  # ijson prefix of the entries; "" a single entry; None: not found
    kind: RecordKind = RecordKind.CUSTOMERS
    problem: str | None = None  # the file has a wrapper, but it holds no list


_NOT_FOUND = ('no customers found: expected {"data": [...]}, {"households": [...]}, '
              '{"customers": [...]} or a list of customers')
_VALUE_WORDS = {"start_map": "an object", "string": "text", "number": "a number",
                "integer": "a number", "double": "a number", "boolean": "true or false",
                "null": "null"}


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

    def _entry(self, entry: Any, default_kind: RecordKind, *, check_text: bool = False
               ) -> ReadItem:
        """The entry as a record, or as an InvalidEntry saying why it cannot be sent.

        `check_text`: the entry was read by a parser that keeps odd text (bytes that are
        not UTF-8, lone surrogates) or any depth, so look for those too.
        """
        self.records_read += 1
        if self.records_read % 256 == 0:
            self.bytes_read = self._position()
        if entry.__class__ is _TooDeep:
            # refused as it stands: what could be read of it is kept with the failure
            record = CustomerRecord(entry.entry, self.name, self.records_read,
                                    kind_of_entry(entry.entry, default_kind))
            return InvalidEntry(record, ReadProblem(self.name, _TOO_DEEP, self.records_read,
                                                    entry.field))
        record = CustomerRecord(entry, self.name, self.records_read,
                                kind_of_entry(entry, default_kind))
        problem = check_entry(record)
        if problem is None and check_text:
            found = find_unsendable(entry)
            if found is not None:
                problem = ReadProblem(self.name, found[1], self.records_read, found[0])
        return InvalidEntry(record, problem) if problem else record

    def _read_json(self, stream: IO[bytes], start: int) -> Iterator[ReadItem]:
        head = stream.read(65536)
        stream.seek(start)
        if not head.strip():
            yield ReadProblem(self.name, "the file is empty", fatal_for_file=True)
            return
        layout = self._detect_layout(stream, head, start)
        if layout.prefix is None:
            yield ReadProblem(self.name, layout.problem or _NOT_FOUND, fatal_for_file=True)
            return
        if _ARRAY_AT_START.match(head):
            # fast path: large slices of the array parsed at once; ijson only if that fails
            try:
                for entry, exact in _array_entries_in_slices(stream, start):
                    yield self._entry(entry, layout.kind, check_text=exact)
                return
            except _TextAfterList as extra:
                yield ReadProblem(self.name, self._text_after_list(extra), fatal_for_file=True)
                return
            except _SlicingFailed:
                stream.seek(start)
        if layout.prefix == "":
            yield from self._read_single_entry(stream, layout.kind)
            return
        yield from self._read_with_ijson(stream, start, layout)

    def _text_after_list(self, extra: _TextAfterList) -> str:
        where = (f"after the last customer (record {self.records_read}, line {extra.line})"
                 if self.records_read else f"after the list ends (line {extra.line})")
        return (f"{where} the file goes on with text that is not part of the list "
                f"({_snippet(extra.text)}); that text was not read")

    def _read_single_entry(self, stream: IO[bytes], kind: RecordKind) -> Iterator[ReadItem]:
        try:
            entry = loads_exact(stream.read())
        except (ValueError, RecursionError) as exc:
            yield ReadProblem(self.name, f"{_friendly_parse_error(exc)}; the file was not read",
                              record_number=1, fatal_for_file=True)
            return
        yield self._entry(entry, kind, check_text=True)

    def _read_with_ijson(self, stream: IO[bytes], start: int, layout: _Layout
                         ) -> Iterator[ReadItem]:
        """The entries under `layout.prefix`, streamed by ijson (see `_entries`).

        Its fast C parser changes what it cannot hold (a lone surrogate becomes "?") or
        stops at a long integer or a byte that is not UTF-8; then the pure Python parser,
        which keeps all of them exactly, reads the file again from the entry where the C
        parser left off.
        """
        assert layout.prefix is not None
        for exact in (False, True):
            stream.seek(start)
            given = self.records_read  # by the fast path or the parser before this one
            source: Any = _BytesAsEscapes(stream) if exact else _ExactnessWatch(stream)
            items = _entries((exact_ijson.basic_parse if exact else ijson.basic_parse)(
                source, use_float=True), layout.prefix)
            try:
                for index, entry in enumerate(items):
                    if index < given:
                        continue
                    yield self._entry(entry, layout.kind, check_text=True)
                return
            except _NeedsExactParser:
                continue
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                if not exact and ("integer overflow" in str(exc)
                                  or "invalid bytes in UTF8" in str(exc)):
                    continue
                yield self._broken_json(exc)
                return

    def _broken_json(self, exc: Exception) -> ReadProblem:
        reason = _friendly_parse_error(exc)
        if "trailing garbage" in str(exc):
            where = (f"after the last customer (record {self.records_read})"
                     if self.records_read else "after the list ends")
            return ReadProblem(self.name, f"{where} the file goes on with text that is not "
                               "part of the list; that text was not read", fatal_for_file=True)
        after = f" after record {self.records_read}" if self.records_read else ""
        return ReadProblem(self.name, f"{reason}{after}; the rest of this file was not read",
                           record_number=self.records_read + 1, fatal_for_file=True)

    def _detect_layout(self, stream: IO[bytes], head: bytes, start: int) -> _Layout:
        match = _WRAPPER_AT_START.match(head)
        if match:
            key = match.group(1).decode()
            return _Layout(f"{key}.item", _kind_for_wrapper(key))
        first = head.lstrip()[:1]
        if first == b"[":
            return _Layout("item")
        if first != b"{":
            return _Layout(None)
        # An object whose wrapper key is not first, or a single entry: find the top-level
        # keys, and what a wrapper key holds. Basic events carry no path (ijson's `parse`
        # builds one per level, which a deeply nested value makes cost gigabytes).
        keys: list[str] = []
        wrappers: dict[str, str] = {}  # wrapper key -> the event of its value
        for parse in (ijson.basic_parse, exact_ijson.basic_parse):
            keys.clear()
            wrappers.clear()
            stream.seek(start)
            try:
                pending_key = ""
                depth = 0
                for event, value in parse(stream):
                    if pending_key:
                        wrappers[pending_key] = event
                        if event == "start_array":
                            break
                        pending_key = ""
                    if event in _STARTS:
                        depth += 1
                    elif event in _ENDS:
                        depth -= 1
                    elif depth == 1 and event == "map_key":
                        keys.append(value)
                        if value in WRAPPER_KEYS:
                            pending_key = value
                break
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                if "integer overflow" in str(exc):
                    continue  # a long integer before the list: the exact parser goes on
                break  # the real read below reports it with its position
        stream.seek(start)
        for key, event in wrappers.items():
            if event == "start_array":
                return _Layout(f"{key}.item", _kind_for_wrapper(key))
        if wrappers:
            key, event = next(iter(wrappers.items()))
            what = _VALUE_WORDS.get(event, "something else")
            return _Layout(None, problem=f'"{key}" holds {what}, not a list of customers: '
                           "no customers could be read from the file")
        if {"person", "household", "changeType"} & set(keys):
            return _Layout("", RecordKind.CUSTOMERS)
        return _Layout(None)

    def _read_json_lines(self, stream: IO[bytes]) -> Iterator[ReadItem]:
        for line_number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                value, exact = _load_line(line)
            except (ValueError, RecursionError) as exc:
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
                yield self._entry(entry, default_kind, check_text=exact)


def _load_line(line: bytes) -> tuple[Any, bool]:
    """One JSON Lines value, and whether the exact parser had to read it."""
    if not may_hold_long_integer(line):
        try:
            return orjson.loads(line), False
        except orjson.JSONDecodeError:
            pass
    return loads_exact(line), True


def _snippet(text: bytes, limit: int = 40) -> str:
    shown = " ".join(text.decode("utf-8", "replace").split())
    return repr(shown if len(shown) <= limit else shown[:limit] + "…")


_ARRAY_AT_START = re.compile(rb'^\s*(\{\s*"(?:data|households|customers)"\s*:\s*)?\[')
_SLICE_BYTES = 1 << 20
_MAX_PENDING_BYTES = 64 << 20
_MAX_CUT_ATTEMPTS = 16
# an escaped UTF-16 surrogate without its other half (a pair is a high one, then a low one)
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


_STARTS = frozenset({"start_map", "start_array"})
_ENDS = frozenset({"end_map", "end_array"})


@dataclass(slots=True, frozen=True)
class _TooDeep:
    """An entry nested deeper than `MAX_READ_DEPTH`: built down to there, and where the
    first too-deep value is (it holds a note instead)."""

    entry: Any
    field: str


def _entries(events: Iterator[tuple[str, Any]], prefix: str) -> Iterator[Any]:
    """The values under `prefix` ("item": of a top-level list; "KEY.item": of the list
    under a top-level KEY), built from ijson's basic events as `ijson.items` builds them.

    Unlike `ijson.items`, nothing deeper than `MAX_READ_DEPTH` is built: such an entry
    comes as a `_TooDeep`, and reading goes on with the next one. The events after the
    list are read to the end, so that text after it is reported as before.
    """
    wanted = None if prefix == "item" else prefix.removesuffix(".item")
    first = next(events, None)
    if first is not None and first[0] == "start_array" and wanted is None:
        yield from _list_items(events)
    elif first is not None and first[0] == "start_map" and wanted is not None:
        for event, value in events:
            if event == "end_map":
                break
            if event != "map_key":
                continue
            inner, _ = next(events, ("", None))  # at the end: the parser has said why
            if value == wanted and inner == "start_array":
                yield from _list_items(events)
            elif inner in _STARTS:
                _skip_value(events)
    for _ in events:  # the parser reports text after the document, or broken JSON
        pass


def _list_items(events: Iterator[tuple[str, Any]]) -> Iterator[Any]:
    """The items of the list whose `start_array` was the last event read, up to its end."""
    stack: list[Any] = []  # the containers of the item being built, outermost first
    keys: list[Any] = []  # the key (or None in a list) under which each of them sits
    key: Any = None
    too_deep: str | None = None
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event in _STARTS:
            if len(stack) > MAX_READ_DEPTH:
                too_deep = too_deep or _where(stack, keys, key)
                _skip_value(events)
                value = f"(nested more than {MAX_READ_DEPTH} levels deep: not read)"
            else:
                value = {} if event == "start_map" else []
                if stack:
                    top = stack[-1]
                    if top.__class__ is dict:
                        top[key] = value
                    else:
                        top.append(value)
                stack.append(value)
                keys.append(key)
                continue
        elif event in _ENDS:
            if not stack:
                return  # the list itself ended
            done = stack.pop()
            keys.pop()
            if not stack:
                yield done if too_deep is None else _TooDeep(done, too_deep)
                too_deep = None
            continue
        if not stack:
            yield value
        elif stack[-1].__class__ is dict:
            stack[-1][key] = value
        else:
            stack[-1].append(value)


def _where(stack: list[Any], keys: list[Any], key: Any) -> str:
    """The field path of the first few levels down to a value about to be added."""
    parts: list[str] = []
    for level in range(1, min(len(stack), 3) + 1):
        parent = stack[level - 1]
        if parent.__class__ is dict:
            name = keys[level] if level < len(stack) else key
            parts.append(f".{name}" if parts else str(name))
        else:
            index = len(parent) - 1 if level < len(stack) else len(parent)
            parts.append(f"[{index}]")
    return "".join(parts) or "(entry)"


def _skip_value(events: Iterator[tuple[str, Any]]) -> None:
    """Read past the object or list whose start was the last event read, building nothing."""
    depth = 1
    for event, _ in events:
        if event in _STARTS:
            depth += 1
        elif event in _ENDS:
            depth -= 1
            if not depth:
                return


class _SlicingFailed(Exception):
    """The file is not laid out as the fast path expects; ijson takes over."""


class _TextAfterList(Exception):
    """The customer list ended, but the file goes on with something else."""

    def __init__(self, text: bytes, line: int) -> None:
        super().__init__("text after the list")
        self.text = text
        self.line = line


class _NeedsExactParser(Exception):
    """The text holds something ijson's C parser would change; use the exact one."""


class _ExactnessWatch:
    """The stream ijson's C parser reads, watched for what that parser cannot keep."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._tail = b""  # the end of the last read, for escapes cut in two

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            seen = self._tail + data
            if may_hold_long_integer(seen) or (
                    b"\\u" in seen and _LONE_SURROGATE_ESCAPE.search(seen)):
                raise _NeedsExactParser
            self._tail = data[-24:]
        return data


class _BytesAsEscapes:
    """A stream whose bytes that are not UTF-8 read as `\\udcXX` escapes.

    Inside a JSON string such an escape is a lone surrogate, which the exact parser keeps,
    so the entry can be refused for that one byte (naming it) while the file reads on.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        text = self._decoder.decode(data, final=not data)
        return text.encode("utf-8", "backslashreplace")


def _array_entries_in_slices(stream: IO[bytes], start: int) -> Iterator[tuple[Any, bool]]:
    """The entries of the file's customer array, parsed a megabyte at a time.

    Each comes with a flag: True when the exact parser read it (see `_parse_slice`).

    Streaming parsers build each value token by token in Python-visible steps; here a
    slice is cut after a `}` followed by `,` and parsed as `[slice]` in one call. A cut
    inside a nested value or a string leaves brackets or quotes unbalanced, so the parse
    fails and an earlier cut is tried: a successful parse proves the cut was at the top
    level. Slices are parsed exactly (see `_parse_slice`). Anything unexpected raises
    `_SlicingFailed`, and the caller reads the file with ijson instead (which also reports
    broken JSON precisely); text after the list raises `_TextAfterList`.
    """
    stream.seek(start)
    pending = stream.read(_SLICE_BYTES)
    opening = _ARRAY_AT_START.match(pending)
    if opening is None:
        raise _SlicingFailed
    wrapped = opening.group(1) is not None
    lines_before = pending[:opening.end()].count(b"\n")
    pending = pending[opening.end():]
    while True:
        more = stream.read(_SLICE_BYTES)
        if not more:
            yield from _last_slice(pending, wrapped, lines_before)
            return
        pending += more
        parsed = _parse_leading_entries(pending)
        if parsed is None:
            if len(pending) > _MAX_PENDING_BYTES:
                raise _SlicingFailed
            continue
        entries, exact, rest_at = parsed
        lines_before += pending.count(b"\n", 0, rest_at)
        pending = pending[rest_at:]
        for entry in entries:
            yield entry, exact


def _parse_slice(candidate: bytes) -> tuple[list[Any], bool] | None:
    """The entries of `[...]`, exactly as written, or None when this is no valid cut.

    The flag says whether the exact parser read them: then some entry may hold text that
    cannot be sent, and each is checked (`find_unsendable`).

    orjson reads nearly every slice. The standard library takes over for a slice that
    may hold a long integer (orjson would turn it into a float) or whose content orjson
    refuses (bytes that are not UTF-8, a lone surrogate): such text stays in the entry,
    to be refused for that one customer rather than the whole file.
    """
    if not may_hold_long_integer(candidate):
        try:
            return orjson.loads(candidate), False
        except orjson.JSONDecodeError as exc:
            if exc.pos >= len(candidate) - 2:
                return None  # unbalanced at the end: the cut was inside a value
            if "depth limit exceeded" in str(exc):
                raise _SlicingFailed from None  # the standard library would only recurse
    try:
        entries = loads_exact(candidate)
    except ValueError:
        return None
    except RecursionError:
        raise _SlicingFailed from None  # nested beyond Python's limit: ijson copes
    return (entries, True) if isinstance(entries, list) else None


def _parse_leading_entries(pending: bytes) -> tuple[list[Any], bool, int] | None:
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
        parsed = _parse_slice(b"[" + pending[:brace + 1] + b"]")
        if parsed is None:
            continue
        return parsed[0], parsed[1], after + 1
    return None


def _last_slice(pending: bytes, wrapped: bool, lines_before: int
                ) -> Iterator[tuple[Any, bool]]:
    close = pending.rfind(b"]")
    if close < 0:
        raise _SlicingFailed
    body = pending[:close]
    entries: list[tuple[Any, bool]] = []
    if body.strip():
        parsed = _parse_slice(b"[" + body + b"]")
        if parsed is None:
            raise _SlicingFailed
        entries = [(entry, parsed[1]) for entry in parsed[0]]
    tail = pending[close + 1:].strip()
    if wrapped:
        if not tail.startswith(b"}"):
            raise _SlicingFailed
        tail = tail[1:].strip()
    if tail:
        yield from entries
        at = pending.find(tail[:1], close + 1)
        raise _TextAfterList(tail, lines_before + pending.count(b"\n", 0, at) + 1)
    yield from entries


def iter_json_array(path: Path) -> Iterator[Any]:
    """The items of a JSON file holding a list (or `{"data": [...]}`), without loading it whole.

    Parsed in slices, so a thread reading a large file never holds Python's global lock
    for long (which would freeze the window). Raises ValueError for a file that is not
    such a list.
    """
    shown = printable_path(Path(path).name)
    with Path(path).open("rb") as raw:
        stream, start = _open_as_utf8(raw)
        yielded = 0
        try:
            for item, _exact in _array_entries_in_slices(stream, start):
                yielded += 1
                yield item
            return
        except _TextAfterList:
            raise ValueError(f"{shown} goes on after its list") from None
        except _SlicingFailed:
            stream.seek(start)
        head = stream.read(65536)
        stream.seek(start)
        if not head.strip():
            return
        if head.lstrip()[:1] != b"[":
            data = loads_exact(stream.read())  # an object wrapping the list: rare, small
            items = next((v for v in data.values() if isinstance(v, list)), None) if \
                isinstance(data, dict) else None
            if items is None:
                raise ValueError(f"{shown} does not hold a list")
            yield from items[yielded:]
            return
        try:
            entries = _entries(exact_ijson.basic_parse(stream, use_float=True), "item")
            for index, item in enumerate(entries):
                if item.__class__ is _TooDeep:
                    raise ValueError(f"{shown}: item {index + 1} is nested more "
                                     f"than {MAX_READ_DEPTH} levels deep")
                if index >= yielded:
                    yield item
        except ijson.JSONError as exc:
            raise ValueError(f"{shown}: {_friendly_parse_error(exc)}") from None


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
        household_id = inner.get("householdId")
        if not _present(household_id):
            return problem("householdId", "householdId is missing")
        if not isinstance(household_id, str):
            return problem("householdId", _text_needed("householdId", household_id))
        return None
    person = entry.get("person")
    if not isinstance(person, dict):
        return problem("person", "person is missing" if person is None
                       else "person must be an object")
    customer_id = person.get("customerId")
    if not _present(customer_id):
        return problem("person.customerId", "customerId is missing")
    if not isinstance(customer_id, str):
        # the service refuses a number here ("customerId must be a string")
        return problem("person.customerId", _text_needed("customerId", customer_id))
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


def _text_needed(field: str, value: Any) -> str:
    if isinstance(value, bool | dict | list):
        return f"{field} must be text, not {type(value).__name__}"
    return f'{field} must be text in quotes ("{value}"), not a number'


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""
