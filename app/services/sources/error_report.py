"""The error report of an import: every refused row, one line per reason, as a CSV for Excel.

Columns `file,row,column,value,message`; `row` is the row number the spreadsheet shows
(the header is row 1), so a user can go straight to it. Cells are separated by the
computer's list separator unless another is asked for (`;` where numbers have a decimal
comma, see app/util/csv_separator.py), so Excel splits them into columns. The file is UTF-8
with a byte-order mark and CRLF line ends (Excel then shows Å Ä Ö as they are), every cell is
made formula-safe (a value such as `=HYPERLINK(...)` is shown, never run), and it is written
atomically and readable by its owner only: it holds the refused rows' personal data.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.services.sources.customer_reader import InvalidEntry, ReadProblem
from app.services.sources.spreadsheet_reader import InvalidRow
from app.util.atomic_files import atomic_write
from app.util.csv_separator import checked_separator
from app.util.spreadsheet_cells import neutralise_cell

ERROR_REPORT_COLUMNS = ("file", "row", "column", "value", "message")


@dataclass(frozen=True, slots=True)
class ErrorLine:
    """One line of the error report."""

    file: str
    row: int | None
    column: str
    value: str
    message: str


def error_lines(item: InvalidEntry | ReadProblem) -> list[ErrorLine]:
    """The report's lines for a refused row (one per reason) or a file's problem."""
    if isinstance(item, ReadProblem):
        return [ErrorLine(Path(item.source_file).name, item.record_number, item.field or "",
                          "", item.message)]
    file = Path(item.problem.source_file).name
    row = item.problem.record_number
    if isinstance(item, InvalidRow) and item.issues:
        return [ErrorLine(file, row, issue.column or "", issue.value, issue.message)
                for issue in item.issues]
    column = item.problem.field or ""
    data = item.record.data
    value = data.get(column, "") if isinstance(data, dict) and column else ""
    return [ErrorLine(file, row, column, value if isinstance(value, str) else "",
                      item.problem.message)]


def _csv_lines(lines: Iterable[ErrorLine], delimiter: str) -> Iterator[bytes]:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(ERROR_REPORT_COLUMNS)
    for count, line in enumerate(lines, start=1):
        writer.writerow((neutralise_cell(line.file), line.row or "",
                         neutralise_cell(line.column), neutralise_cell(line.value),
                         neutralise_cell(line.message)))
        if count % 1024 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_error_report(path: Path, items: Iterable[InvalidEntry | ReadProblem | ErrorLine],
                       *, delimiter: str | None = None) -> int:
    """Write the error report for `items` to `path` (atomically); returns its line count.

    `items` is consumed as a stream, so a report of any size costs little memory. Cells are
    separated by `delimiter` (None: the system's list separator; ValueError when it cannot
    separate CSV cells).
    """
    separator = checked_separator(delimiter)
    written = 0

    def lines() -> Iterator[ErrorLine]:
        nonlocal written
        for item in items:
            for line in [item] if isinstance(item, ErrorLine) else error_lines(item):
                written += 1
                yield line

    def write(handle: IO[bytes]) -> None:
        handle.write(codecs.BOM_UTF8)
        for chunk in _csv_lines(lines(), separator):
            handle.write(chunk)

    atomic_write(Path(path), write)
    return written


def save_report_copy(report: Path, target: Path) -> Path:
    """Copy the error report `report` to `target` (atomically), readable by its owner only
    like the report itself: it holds the refused rows' personal data."""
    target = Path(target)
    if not target.parent.is_dir():  # a folder chosen to save into is never made up
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(target.parent))

    def write(handle: IO[bytes]) -> None:
        with Path(report).open("rb") as source:
            shutil.copyfileobj(source, handle)

    return atomic_write(target, write)


class ErrorReport:
    """Collects the refused rows of an import (from several files) for one report."""

    def __init__(self) -> None:
        self.lines: list[ErrorLine] = []

    def add(self, item: InvalidEntry | ReadProblem) -> None:
        """Add a refused row (every reason) or a file's problem."""
        self.lines.extend(error_lines(item))

    def __len__(self) -> int:
        return len(self.lines)

    def write(self, path: Path, *, delimiter: str | None = None) -> Path:
        """Write the report to `path` atomically (UTF-8 with BOM, formula-safe), separated
        by `delimiter` (None: the system's list separator)."""
        write_error_report(path, self.lines, delimiter=delimiter)
        return Path(path)
