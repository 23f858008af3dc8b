"""Reads CSV files (`.csv`, `.tsv`, `.txt`) as a stream of rows, whatever program saved them.

The encoding is detected first (text_encoding.py), then the delimiter (`,` `;` tab `|`)
from the first 64 kB: the one that splits the header into several columns and the rows
into as many cells as the header, most often. Quoted cells may hold delimiters, line
breaks and doubled quotes. The standard library's `csv.reader` does the splitting: in C,
a row at a time, so memory stays flat however long the file is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.services.sources.table_source import TableError, column_names
from app.services.sources.text_encoding import TextEncoding, detect_encoding

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
_SAMPLE_CHARS = 64 * 1024
_PROGRESS_EVERY_ROWS = 512


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How a CSV file is written: its text encoding and its delimiter."""

    encoding: TextEncoding
    delimiter: str

    @property
    def description(self) -> str:
        """E.g. "CSV, UTF-8 with BOM, semicolon"."""
        return f"CSV, {self.encoding.label}, {_DELIMITER_NAMES[self.delimiter]}"


def _reader(stream: IO[str], delimiter: str) -> Iterator[list[str]]:
    # skipinitialspace: `a, "b, c"` is two cells, as a person writing it means
    return csv.reader(stream, delimiter=delimiter, quotechar='"', doublequote=True,
                      skipinitialspace=True, strict=False)


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
        self._text = self.format.encoding.wrap(self._raw)
        self._reader = _reader(self._text, self.format.delimiter)
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
        except (csv.Error, UnicodeDecodeError) as exc:
            self.close()
            raise TableError(self._broken(exc, self.header_row + 1), self.header_row + 1
                             ) from None

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
        try:
            for cells in self._reader:
                number += 1
                if number % _PROGRESS_EVERY_ROWS == 0:
                    self.bytes_read = raw.tell()
                if cells:
                    first = cells[0]
                    # most rows start with a value; the others are checked cell by cell
                    if (first and not first.isspace()) or any(c.strip() for c in cells):
                        yield number, cells
        except (csv.Error, UnicodeDecodeError) as exc:
            # the row being read when it failed is the one after the last complete row
            raise TableError(self._broken(exc, number + 1), number + 1) from None
        finally:
            if not raw.closed:
                self.bytes_read = raw.tell()
            self.close()

    def _broken(self, exc: Exception, row: int) -> str:
        if isinstance(exc, UnicodeDecodeError):
            return f"row {row}: " + _not_text(self.format.encoding, exc)
        if "field larger than field limit" in str(exc):
            return (f"row {row}: a quoted cell never ends (a quote \" opened and not closed); "
                    "the rest of the file was not read")
        return f"row {row}: the CSV cannot be read ({exc})"
