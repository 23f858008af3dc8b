"""What CSV files and workbooks have in common: a header and rows, each with its row number.

`open_table` picks the reader by the file's suffix. A table's `rows()` yields
`(row_number, cells)` for every non-empty row after the header, where `row_number` is the
number the spreadsheet program shows (the header of a plain file is row 1) and `cells` are
in the order of `columns`. Empty rows are skipped but still counted, so the numbers stay
those a person sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from app.models.display_text import printable_path, printable_text

# the suffixes live with the plain records, where the Files tab's model can see them too
from app.models.file_inspection import (
    CSV_SUFFIXES,
    SPREADSHEET_SUFFIXES,
    XLSX_SUFFIXES,
    is_spreadsheet,
)

__all__ = ["CSV_SUFFIXES", "MAX_CELL_CHARS", "SPREADSHEET_SUFFIXES", "XLSX_SUFFIXES", "Table",
           "TableError", "column_letter", "column_names", "is_spreadsheet", "listed_columns",
           "open_table"]

#: The most characters a cell may hold: Excel's own limit. A longer cell cannot come from a
#: real spreadsheet, so its row is refused (naming the cell) rather than sent or cut short.
MAX_CELL_CHARS = 32_767
#: Columns named at most in one message: a header of 100,000 columns is summed up.
COLUMNS_NAMED = 50
_COLUMN_NAME_CHARS = 60


class TableError(Exception):
    """A file that cannot be read as a table; the message is fit to show a user.

    `row` is the row number where reading stopped, when it stopped part-way.
    """

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


class Table(Protocol):
    """A header and rows, read as a stream."""

    path: Path
    columns: list[str]  # header names, trimmed and unique
    header_row: int  # the header's row number as the spreadsheet shows it
    size_bytes: int
    bytes_read: int  # how far reading has come, for progress (an estimate for workbooks)
    description: str  # how the file was read, e.g. "CSV, UTF-8 with BOM, semicolon"
    typed_cells: bool  # cells may be numbers, dates, booleans (workbooks), not just text
    # the number of the last row yielded that holds a cell longer than MAX_CELL_CHARS
    # (0: none yet); set before that row is yielded
    long_row: int

    def rows(self) -> Iterator[tuple[int, Sequence[Any]]]: ...

    def close(self) -> None: ...



def column_letter(index: int) -> str:
    """The spreadsheet letter of the 0-based column `index`: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_names(header: Sequence[str], first_column: int = 0) -> list[str]:
    """Header cells as column names: trimmed, a blank one named by its letter ("Column F"),
    a repeated one numbered ("Phone (2)"), so each column can be told apart."""
    names: list[str] = []
    taken: set[str] = set()
    for offset, cell in enumerate(header):
        name = cell.strip().lstrip("\ufeff").strip()
        if not name:
            name = f"Column {column_letter(first_column + offset)}"
        if name.casefold() in taken:
            count = 2
            while f"{name} ({count})".casefold() in taken:
                count += 1
            name = f"{name} ({count})"
        taken.add(name.casefold())
        names.append(name)
    return names


def listed_columns(columns: Sequence[str], limit: int = COLUMNS_NAMED) -> str:
    """`columns` for a message: "A, B, C", the first `limit` of them, then "… and 99,950
    more"; a name is cut short at 60 characters and its control characters escaped."""
    shown = [printable_text(name if len(name) <= _COLUMN_NAME_CHARS
                            else name[:_COLUMN_NAME_CHARS - 1] + "…")
             for name in columns[:limit]]
    text = ", ".join(shown)
    if len(columns) > limit:
        text += f" … and {len(columns) - limit:,} more"
    return text


def open_table(path: Path, *, sheet: str | int | None = None) -> Table:
    """The table in the CSV file or workbook at `path`; `sheet` chooses a workbook's sheet
    by name or 0-based position (default: the first sheet with data).

    Raises TableError for a file that cannot be read as a table.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        from app.services.sources.csv_reader import CsvTable

        return CsvTable(path)
    if suffix in XLSX_SUFFIXES:
        from app.services.sources.xlsx_reader import XlsxTable

        return XlsxTable(path, sheet=sheet)
    raise TableError(f"{printable_path(path.name)} is not a spreadsheet "
                     f"({', '.join(SPREADSHEET_SUFFIXES)})")
