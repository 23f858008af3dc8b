"""Reads CSV files (`.csv`, `.tsv`, `.txt`) as a stream of rows, whatever program saved them.

The encoding is detected first (text_encoding.py), then the delimiter (`,` `;` tab `|`)
from the first 64 kB: the one that splits the header into several columns and the rows
into as many cells as the header, most often. Quoted cells may hold delimiters, line
breaks and doubled quotes. The standard library's `csv.reader` does the splitting: in C,
a row at a time, so memory stays flat however long the file is. Lines are read at most
`MAX_LINE_CHARS` at a time, so a damaged file of one endless line is refused, not loaded.
"""

from __future__ import annotations

import _csv
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.services.sources.table_source import MAX_CELL_CHARS, TableError, column_names
from app.services.sources.text_encoding import TextEncoding, detect_encoding

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
_SAMPLE_CHARS = 64 * 1024
_PROGRESS_EVERY_ROWS = 512
#: A line longer than this (in characters, its line end included) is refused with the rest
#: of the file: no spreadsheet row is that long (100,000 columns of short cells make
#: about 800,000), and reading on would hold the whole line in memory, however long.
MAX_LINE_CHARS = 4 * 1024 * 1024


class _LineTooLong(Exception):
    """A line of the file is longer than MAX_LINE_CHARS."""


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How a CSV file is written: its text encoding and its delimiter."""

    encoding: TextEncoding
    delimiter: str

    @property
    def description(self) -> str:
        """E.g. "CSV, UTF-8 with BOM, semicolon"."""
        return f"CSV, {self.encoding.label}, {_DELIMITER_NAMES[self.delimiter]}"


def _reader(stream: Iterable[str], delimiter: str) -> _csv.Reader:
    """A row iterator that also counts the lines read (`line_num`)."""
    # skipinitialspace: `a, "b, c"` is two cells, as a person writing it means
    return csv.reader(stream, delimiter=delimiter, quotechar='"', doublequote=True,
                      skipinitialspace=True, strict=False)


def _lines(text: IO[str], long_line: list[bool]) -> Iterator[str]:
    """The lines of `text` for `csv.reader`, none longer than MAX_LINE_CHARS; sets
    `long_line[0]` on reading one that may hold a cell over MAX_CELL_CHARS."""
    readline = text.readline
    while True:
        line = readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_CELL_CHARS:
            if len(line) > MAX_LINE_CHARS:
                raise _LineTooLong
            long_line[0] = True
        yield line


def detect_delimiter(sample: str, *, prefer: str | None = None) -> str:
    """The delimiter of the CSV text `sample` (the start of a file)."""
    cut = sample.rfind("\n")
    if len(sample) >= _SAMPLE_CHARS and cut > 0:
        sample = sample[:cut]  # the last line may have been cut short
    order = ([prefer] if prefer else []) + [d for d in DELIMITERS if d != prefer]
    best, best_score = order[0], (False, -1.0, 0)
    for delimiter in order:
        try:
            rows = [row for row in _reader(io.StringIO(sample, newline=""), delimiter)
                    if any(cell.strip() for cell in row)]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        same = sum(1 for row in rows if len(row) == width) / len(rows)
        score = (width > 1, same, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect_csv_format(path: Path) -> CsvFormat:
    """The encoding and delimiter of the CSV file at `path`."""
    path = Path(path)
    encoding = detect_encoding(path)
    with path.open("rb") as raw, encoding.wrap(raw) as text:
        try:
            sample = text.read(_SAMPLE_CHARS)
        except UnicodeDecodeError as exc:
            raise TableError(_not_text(encoding, exc)) from None
    if not sample.strip(" \t\r\n\u00a0\ufeff" + "".join(DELIMITERS)):
        raise TableError("the file is empty: no header row was found")
    prefer = "\t" if path.suffix.lower() == ".tsv" else None
    return CsvFormat(encoding, detect_delimiter(sample, prefer=prefer))


def _not_text(encoding: TextEncoding, exc: UnicodeDecodeError) -> str:
    return (f"the file is not valid {encoding.label} text (byte {exc.start} of a block); "
            "save it again as CSV UTF-8")


class CsvTable:
    """A CSV file as a header and a stream of rows (see table_source.Table).

    Raises TableError when the file cannot be opened or holds no header.
    """

    typed_cells = False  # every cell is text

    def __init__(self, path: Path, *, csv_format: CsvFormat | None = None) -> None:
        self.path = Path(path)
        try:
            self.size_bytes = self.path.stat().st_size
            self.format = csv_format or detect_csv_format(self.path)
            self._raw = self.path.open("rb")
        except OSError as exc:
            raise TableError(f"cannot open the file ({exc.strerror or exc})") from None
        self.description = self.format.description
        self.bytes_read = 0
        self.long_row = 0
        # set when a line that may hold a cell over MAX_CELL_CHARS was read
        self._long_line = [False]
        self._text = self.format.encoding.wrap(self._raw)
        self._reader = csv_reader = _reader(_lines(self._text, self._long_line),
                                            self.format.delimiter)
        self.header_row = 0
        try:
            for cells in self._reader:
                self.header_row += 1
                if any(cell.strip() for cell in cells):
                    self.columns = column_names(cells)
                    break
            else:
                self.close()
                raise TableError("the file is empty: no header row was found")
        except (csv.Error, UnicodeDecodeError, _LineTooLong) as exc:
            self.close()
            row = self.header_row + 1
            raise TableError(self._broken(exc, row, csv_reader.line_num <= row), row) from None

    def __enter__(self) -> CsvTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (also done when `rows()` ends)."""
        self._text.close()

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """`(row_number, cells)` for each non-empty row after the header (cells untrimmed).

        Raises TableError, naming the row, when the file turns out to be unreadable.
        """
        number = self.header_row
        raw = self._raw
        reader, long_line = self._reader, self._long_line
        # lines read beyond one a row: it grows when a quoted cell spans lines
        extra_lines = reader.line_num - number
        try:
            for cells in reader:
                number += 1
                if number % _PROGRESS_EVERY_ROWS == 0:
                    self.bytes_read = raw.tell()
                if cells:
                    first = cells[0]
                    # most rows start with a value; the others are checked cell by cell
                    if (first and not first.isspace()) or any(c.strip() for c in cells):
                        # only a long line, or a row of several lines, can hold a long cell
                        if long_line[0] or reader.line_num - number != extra_lines:
                            extra_lines = reader.line_num - number
                            long_line[0] = False
                            if max(map(len, cells)) > MAX_CELL_CHARS:
                                self.long_row = number
                        yield number, cells
        except (csv.Error, UnicodeDecodeError, _LineTooLong) as exc:
            # the row being read when it failed is the one after the last complete row
            one_line = reader.line_num - extra_lines - number <= 1
            raise TableError(self._broken(exc, number + 1, one_line), number + 1) from None
        finally:
            if not raw.closed:
                self.bytes_read = raw.tell()
            self.close()

    def _broken(self, exc: Exception, row: int, one_line: bool) -> str:
        """What went wrong at `row`; `one_line`: the row was read from a single line."""
        if isinstance(exc, UnicodeDecodeError):
            return f"row {row}: " + _not_text(self.format.encoding, exc)
        if isinstance(exc, _LineTooLong):
            return (f"row {row} is a line of more than {MAX_LINE_CHARS:,} characters, longer "
                    "than any spreadsheet row: the file is damaged or not a CSV file; the "
                    "rest of the file was not read")
        if "field larger than field limit" in str(exc):
            if one_line:
                return (f"row {row}: a cell holds more than {csv.field_size_limit():,} "
                        f"characters (a spreadsheet cell holds at most {MAX_CELL_CHARS:,}): "
                        "the file is damaged or not a CSV file; the rest of the file was "
                        "not read")
            return (f"row {row}: a quoted cell never ends (a quote \" opened and not closed); "
                    "the rest of the file was not read")
        return f"row {row}: the CSV cannot be read ({exc})"
