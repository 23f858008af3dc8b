"""Reads Excel workbooks (`.xlsx`, `.xlsm`) as a header and a stream of rows.

python-calamine (Rust) does the reading: measured on 210,000 rows x 15 columns with shared
strings as Excel saves them, it reads 70,000-120,000 rows/s at a peak of about 280 MB, where
openpyxl's read-only mode manages 15,000 rows/s at 180 MB. It loads the chosen sheet before
the first row comes out (so the memory grows with the sheet), and lets go of Python's lock
while it does, so a worker thread does not freeze the window.

Cells arrive as text, numbers (always floats), booleans, dates and times: dates formatted
as dates in Excel are real dates here. value_conversion.py turns them into entry values.

A workbook is a zip archive, and one built to unpack to far more than any customer list
(a "zip bomb": 1.2 MB holding a 1.2 GB cell) would take gigabytes to load. So the sizes
its archive declares are checked before anything is unpacked (`check_unpacked_sizes`);
python-calamine refuses a part that unpacks to more than it declares.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import python_calamine

from app.models.display_text import human_size, printable_text
from app.services.sources.table_source import MAX_CELL_CHARS, TableError, column_names
from app.services.sources.value_conversion import cell_text

_PROGRESS_EVERY_ROWS = 512
_MB = 1024 * 1024

#: The most a part of a workbook (a sheet, the shared text) may unpack to. A real list of
#: 1,000,000 customers in 15 columns is a sheet of 540-830 MB (measured: 536 bytes a row
#: as Excel saves it, 825 with inline text as openpyxl saves it); python-calamine holds
#: about twice the sheet in memory while it reads.
MAX_UNPACKED_PART_BYTES = 2048 * _MB
#: Real sheets pack 5 to 20 times smaller (measured: 5-8); a part packed more tightly than
#: this, and big enough to matter, is built to unpack to far more than it holds.
MAX_PACKING_RATIO = 100
#: Parts smaller than this unpacked cost little, however tightly they are packed.
_RATIO_CHECKED_FROM_BYTES = 16 * _MB


@dataclass(frozen=True, slots=True)
class SheetInfo:
    """One sheet of a workbook, for choosing among them."""

    name: str
    visible: bool
    is_worksheet: bool  # False for a chart sheet, macro sheet and the like


def check_unpacked_sizes(path: Path) -> None:
    """Raise TableError when the workbook at `path` would unpack to far more than a real one.

    Reads only the archive's table of contents (the sizes each part declares); a file that
    is not a zip archive is left to python-calamine to report.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    for part in parts:
        unpacked, packed = part.file_size, max(1, part.compress_size)
        name = printable_text(part.filename[:80])  # a name inside the file: anything goes
        if unpacked > MAX_UNPACKED_PART_BYTES:
            raise TableError(
                f"the workbook's part {name} would unpack to {human_size(unpacked)}, "
                f"more than the {human_size(MAX_UNPACKED_PART_BYTES)} a workbook part may hold "
                "(a list of 1,000,000 customers needs under 1 GB); the workbook was not "
                "read: split it, or save it as CSV")
        if unpacked >= _RATIO_CHECKED_FROM_BYTES and unpacked > MAX_PACKING_RATIO * packed:
            raise TableError(
                f"the workbook's part {name} would unpack from {human_size(packed)} to "
                f"{human_size(unpacked)}, {unpacked // packed:,} times its packed size (a real "
                "sheet packs 5 to 20 times): the file is built to fill the memory, not a "
                "customer list, and was not read")


def _open_workbook(path: Path) -> python_calamine.CalamineWorkbook:
    check_unpacked_sizes(path)
    try:
        return python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError:
        raise TableError("the workbook is protected by a password; save a copy "
                         "without one") from None
    except python_calamine.CalamineError as exc:
        raise TableError(f"not a readable Excel workbook ({type(exc).__name__})") from None
    except OSError as exc:
        raise TableError(f"cannot open the file ({exc.strerror or exc})") from None


def list_sheets(path: Path) -> list[SheetInfo]:
    """The sheets of the workbook at `path`, in the workbook's order."""
    workbook = _open_workbook(Path(path))
    try:
        return [SheetInfo(m.name, m.visible == python_calamine.SheetVisibleEnum.Visible,
                          m.typ == python_calamine.SheetTypeEnum.WorkSheet)
                for m in workbook.sheets_metadata]
    finally:
        workbook.close()


def _is_empty(cells: list[Any]) -> bool:
    return all(cell == "" or cell is None or (cell.__class__ is str and cell.isspace())
               for cell in cells)


class XlsxTable:
    """One sheet of a workbook as a header and a stream of rows (see table_source.Table).

    `sheet`: a sheet name or 0-based position; by default the first visible worksheet that
    holds data. Raises TableError for a workbook that cannot be read, a sheet that is not
    there, and a sheet without data.
    """

    typed_cells = True  # numbers, dates and booleans as well as text

    def __init__(self, path: Path, *, sheet: str | int | None = None) -> None:
        self.path = Path(path)
        try:
            self.size_bytes = self.path.stat().st_size
        except OSError as exc:
            raise TableError(f"cannot open the file ({exc.strerror or exc})") from None
        self.bytes_read = 0
        self.long_row = 0
        workbook = _open_workbook(self.path)
        try:
            self.sheet_name, loaded = self._choose_sheet(workbook, sheet)
        except python_calamine.CalamineError as exc:
            raise TableError(f"the sheet cannot be read ({type(exc).__name__}): the "
                             "workbook may be damaged") from None
        finally:
            workbook.close()  # the sheet keeps its own cells; the shared strings can go
        self.description = f"Excel workbook, sheet {self.sheet_name!r}"
        self._total_rows = max(1, (loaded.end or (0, 0))[0] + 1)
        self._rows: Iterator[list[Any]] | None = iter(loaded.iter_rows())
        self._first_row = self._first_row_number(loaded)
        self.header_row = self._first_row - 1
        for cells in self._rows:
            self.header_row += 1
            if not _is_empty(cells):
                self.columns = column_names([cell_text(c) for c in cells],
                                            (loaded.start or (0, 0))[1])
                break
        else:
            raise TableError(f"sheet {self.sheet_name!r} has no header row")

    @staticmethod
    def _choose_sheet(workbook: python_calamine.CalamineWorkbook, sheet: str | int | None
                      ) -> tuple[str, python_calamine.CalamineSheet]:
        names = workbook.sheet_names
        if sheet is not None:
            name = names[sheet] if isinstance(sheet, int) and 0 <= sheet < len(names) else sheet
            if name not in names:
                raise TableError(f"the workbook has no sheet {sheet!r} "
                                 f"(its sheets: {', '.join(names)})")
            loaded = workbook.get_sheet_by_name(str(name))
            if loaded.start is None:
                raise TableError(f"sheet {name!r} is empty")
            return str(name), loaded
        visible = python_calamine.SheetVisibleEnum.Visible
        worksheet = python_calamine.SheetTypeEnum.WorkSheet
        candidates = [m.name for m in workbook.sheets_metadata
                      if m.visible == visible and m.typ == worksheet]
        # a visible worksheet first; a hidden one only when no visible sheet has data
        for name in candidates + [n for n in names if n not in candidates]:
            try:
                loaded = workbook.get_sheet_by_name(name)
            except python_calamine.CalamineError:
                continue  # a chart sheet or the like: no cells to read
            if loaded.start is not None:
                return name, loaded
        raise TableError("the workbook has no sheet with data")

    @staticmethod
    def _first_row_number(loaded: python_calamine.CalamineSheet) -> int:
        """The row number of the first row `iter_rows` gives.

        python-calamine starts at the sheet's first row even when the data starts lower
        (its `to_python` does not); should a version start at the data, its first row is
        not empty, and the number follows from `start`.
        """
        start_row = (loaded.start or (0, 0))[0]
        if start_row == 0:
            return 1
        first = next(iter(loaded.iter_rows()), [])
        return start_row + 1 if not _is_empty(first) else 1

    def __enter__(self) -> XlsxTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the sheet's cells (also done when `rows()` ends)."""
        self._rows = None

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """`(row_number, cells)` for each non-empty row after the header."""
        if self._rows is None:
            return
        number = self.header_row
        scale = self.size_bytes / self._total_rows
        try:
            for cells in self._rows:
                number += 1
                if number % _PROGRESS_EVERY_ROWS == 0:
                    self.bytes_read = int(number * scale)
                first = cells[0] if cells else ""
                if (first.__class__ is not str and first is not None) or (
                        first and not first.isspace()) or not _is_empty(cells):
                    for cell in cells:
                        if cell.__class__ is str and len(cell) > MAX_CELL_CHARS:
                            self.long_row = number
                            break
                    yield number, cells
        finally:
            self.bytes_read = self.size_bytes
            self.close()
