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
import contextlib
import csv
import errno
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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


def _cells(line: ErrorLine) -> tuple[str, int | str, str, str, str]:
    return (neutralise_cell(line.file), line.row or "", neutralise_cell(line.column),
            neutralise_cell(line.value), neutralise_cell(line.message))


def _csv_lines(lines: Iterable[ErrorLine], delimiter: str, *,
               header: bool = True) -> Iterator[bytes]:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    if header:
        writer.writerow(ERROR_REPORT_COLUMNS)
    for count, line in enumerate(lines, start=1):
        writer.writerow(_cells(line))
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


class ErrorLineSpool:
    """An import's error report lines, put to disk as they are found: a temporary file
    (deleted when closed, readable by its owner only) in `folder`, not a list in memory, so
    200,000 refused rows cost a few kilobytes of memory, not 45 MB. Should that file not
    be possible (a full disk), lines are kept in memory instead; none is lost.
    `write(path)` makes the report from them (atomically, header and BOM first)."""

    def __init__(self, folder: Path, delimiter: str | None = None) -> None:
        self._folder = Path(folder)
        self._separator = checked_separator(delimiter)
        self._spool: IO[str] | None = None
        self._writer: Any = None
        self._held: list[ErrorLine] = []  # when the temporary file cannot be written
        self.count = 0

    def add(self, lines: Iterable[ErrorLine]) -> None:
        for line in lines:
            self.count += 1
            if not self._held and self._open():
                try:
                    self._writer.writerow(_cells(line))
                    continue
                except OSError:
                    self._close_spool()
            self._held.append(line)

    def _open(self) -> bool:
        if self._spool is not None:
            return True
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._spool = tempfile.TemporaryFile(  # noqa: SIM115 (kept open while adding)
                "w+", encoding="utf-8", newline="", dir=self._folder,
                prefix=".error_report_", suffix=".partial")
        except OSError:
            return False
        self._writer = csv.writer(self._spool, delimiter=self._separator,
                                  lineterminator="\r\n")
        return True

    def _close_spool(self) -> None:
        if self._spool is not None:
            with contextlib.suppress(OSError):
                self._spool.close()
        self._spool = self._writer = None

    def write(self, path: Path) -> int:
        """The report of every line added, at `path` (atomically); returns the count."""
        spool = self._spool

        def write(handle: IO[bytes]) -> None:
            handle.write(codecs.BOM_UTF8)
            header = io.StringIO(newline="")
            csv.writer(header, delimiter=self._separator,
                       lineterminator="\r\n").writerow(ERROR_REPORT_COLUMNS)
            handle.write(header.getvalue().encode("utf-8"))
            if spool is not None:
                spool.flush()
                spool.seek(0)
                while chunk := spool.read(1 << 16):
                    handle.write(chunk.encode("utf-8"))
                spool.seek(0, os.SEEK_END)
            for part in _csv_lines(self._held, self._separator, header=False):
                handle.write(part)

        atomic_write(Path(path), write)
        return self.count

    def close(self) -> None:
        """Let the temporary file go (the report is written, or will not be)."""
        self._close_spool()


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
