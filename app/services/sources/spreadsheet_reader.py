"""Reads a spreadsheet (CSV or Excel workbook) as API entries, the way FileReader reads JSON.

`SpreadsheetReader` yields what FileReader yields: a `CustomerRecord` for each row that
may be sent (its data is the API entry), an `InvalidRow` (an `InvalidEntry`) for each row
that may not (its data is the row itself, {column: text}, so nothing typed is lost), and a
`ReadProblem` with `fatal_for_file` when the file cannot be read on. Record numbers are
the row numbers the spreadsheet shows, so "row 17" in a message is row 17 in Excel.

For the mapping step: `column_samples` lists the columns with a few values each, and
`preview_entries` maps the first rows without reading the rest of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.models.records import CustomerRecord
from app.services.sources.auto_mapping import Role, auto_map, role_of_header
from app.services.sources.customer_reader import InvalidEntry, ReadItem, ReadProblem
from app.services.sources.mapping import Mapping, MappingError
from app.services.sources.row_mapping import RowIssue, RowMapper
from app.services.sources.row_validation import ImportValidator
from app.services.sources.table_source import (
    MAX_CELL_CHARS,
    Table,
    TableError,
    column_letter,
    listed_columns,
    open_table,
)
from app.services.sources.value_conversion import cell_text

_PROGRESS_EVERY_ROWS = 256


@dataclass(slots=True)
class InvalidRow(InvalidEntry):
    """A row that must not be sent: the row as {column: text}, and every reason.

    `problem` sums the reasons up (the first reason's column is its field), as the import
    shows it; `issues` are the reasons one by one, for the error report.
    """

    issues: tuple[RowIssue, ...] = ()
    customer_id: str = ""  # from the mapped column, when the row has one
    display_name: str = ""  # "FIRST LAST" from the mapped columns, as the API writes it


def _identifier(mapper: RowMapper) -> Callable[[list[Any]], tuple[str, str]]:
    """(customer id, "FIRST LAST") of a row's values, for the failure list of refused rows."""
    def slot_of(key: str) -> int | None:
        return next((n for n, slot in enumerate(mapper.slots)
                     if slot.target.rsplit(".", 1)[-1] == key), None)

    id_slot, first_slot, last_slot = (next(iter(mapper.roles.get(Role.CUSTOMER_ID, ())), None),
                                      slot_of("firstName"), slot_of("lastName"))

    def identify(values: list[Any]) -> tuple[str, str]:
        def text(slot: int | None) -> str:
            value = None if slot is None or slot >= len(values) else values[slot]
            return "" if value is None else str(value).strip()
        name = " ".join(part for part in (text(first_slot), text(last_slot)) if part)
        return text(id_slot), name.upper()

    return identify


def unmappable_header_message(missing: Sequence[str], columns: Sequence[str]) -> str:
    """What a user reads when no column of the header gives a required field."""
    return ("no column of the header gives " + " or ".join(missing) + " (columns: "
            + listed_columns(columns) + "); choose the columns in a mapping (--mapping)")


def long_cell_issues(cells: Sequence[Any], columns: Sequence[str]) -> list[RowIssue]:
    """The cells of a row longer than a spreadsheet cell can be (MAX_CELL_CHARS), each
    named by its column, its value cut to a glimpse."""
    issues = []
    for index, cell in enumerate(cells):
        if cell.__class__ is str and len(cell) > MAX_CELL_CHARS:
            column = (columns[index] if index < len(columns)
                      else f"Column {column_letter(index)}")
            issues.append(RowIssue(column, cell[:40] + "…", (
                f"the cell holds {len(cell):,} characters, more than the {MAX_CELL_CHARS:,} a "
                "spreadsheet cell can hold: the file is damaged, or the cell is not customer "
                "data")))
    return issues


def _problem_for(source_file: str, row_number: int, issues: Sequence[RowIssue]) -> ReadProblem:
    message = "; ".join(issue.message for issue in issues)
    return ReadProblem(source_file, message, row_number, issues[0].column if issues else None)


class SpreadsheetReader:
    """Reads one CSV file or one sheet of a workbook as records, invalid rows and problems.

    mapping: how rows become entries (default: guessed from the header, see auto_mapping);
    sheet: a workbook's sheet by name or 0-based position (default: first with data);
    validator: shared by all files of one import, so repeated customer ids are caught
    across files. `bytes_read` and `records_read` tell the progress, as in FileReader.
    """

    def __init__(self, path: Path, mapping: Mapping | None = None, *,
                 sheet: str | int | None = None,
                 validator: ImportValidator | None = None,
                 extra_mapping: Callable[[Mapping | None, list[str]], Mapping | None]
                 | None = None) -> None:
        self.path = Path(path)
        self.extra_mapping = extra_mapping
        self.name = str(self.path)
        self.mapping = mapping
        self.sheet = sheet
        self.validator = validator if validator is not None else ImportValidator()
        self.bytes_read = 0
        self.records_read = 0  # rows read (valid and invalid)
        # the row number of the last record yielded: every row up to it has been yielded
        # (record numbers are row numbers, so they start at 2 and skip empty rows)
        self.last_record_number = 0
        self.columns: list[str] = []
        self.unmapped_columns: list[str] = []  # columns no target reads (shown to the user)
        self.description = ""  # how the file was read, once it was opened

    def __iter__(self) -> Iterator[ReadItem]:
        try:
            table = open_table(self.path, sheet=self.sheet)
        except TableError as exc:
            yield ReadProblem(self.name, str(exc), fatal_for_file=True)
            return
        try:
            self.columns = table.columns
            self.description = table.description
            mapping = self.mapping
            try:
                if self.extra_mapping is not None:
                    mapping = self.extra_mapping(mapping, table.columns)
                mapping = mapping or auto_map(table.columns).mapping
                mapper = RowMapper(mapping, table.columns, typed_cells=table.typed_cells)
            except MappingError as exc:
                yield ReadProblem(self.name, f"the mapping does not fit this file: {exc}",
                                  fatal_for_file=True)
                return
            missing = self.validator.missing_required(mapper)
            if missing:
                yield ReadProblem(self.name, unmappable_header_message(missing, table.columns),
                                  record_number=table.header_row, fatal_for_file=True)
                return
            used = {slot.column for slot in mapper.slots}
            self.unmapped_columns = [c for c in table.columns if c not in used]
            yield from self._rows(table, mapper)
        finally:
            table.close()
            self.bytes_read = table.bytes_read

    def _rows(self, table: Table, mapper: RowMapper) -> Iterator[ReadItem]:
        name = self.name
        # the hot loop: each step bound once (200,000 rows make every lookup count)
        convert_text = mapper.convert_text
        check_row = self.validator.row_checker(mapper, name)
        build = mapper.build
        identify = _identifier(mapper)
        try:
            for row_number, cells in table.rows():
                self.records_read += 1
                if self.records_read % _PROGRESS_EVERY_ROWS == 0:
                    self.bytes_read = table.bytes_read
                long_row = table.long_row == row_number
                values = None if long_row else convert_text(cells)
                if values is not None:
                    issues = check_row(values, row_number)
                else:  # a cell that does not convert, a short row, a cell far too long
                    values, failed = mapper.convert_closely(cells)
                    if long_row:
                        failed = [*(failed or ()), *long_cell_issues(cells, table.columns)]
                    issues = self.validator.check(mapper, values, name, row_number, failed)
                self.last_record_number = row_number  # set first: the caller has it next
                if issues:
                    customer_id, display_name = identify(values)
                    first = self.validator.first_row_of(customer_id) if customer_id else None
                    if first is not None and first != (name, row_number):
                        # the id belongs to an earlier row: this row is its own failure,
                        # not the customer that row brings in
                        customer_id = ""
                    yield InvalidRow(CustomerRecord(mapper.row_data(cells), name, row_number),
                                     _problem_for(name, row_number, issues), tuple(issues),
                                     customer_id, display_name)
                else:
                    yield CustomerRecord(build(values), name, row_number)
        except TableError as exc:
            yield ReadProblem(self.name, str(exc), record_number=exc.row,
                              fatal_for_file=True)


@dataclass(slots=True)
class ColumnSample:
    """A column of a file for the mapping step: its name, a few values, what it looks like."""

    name: str
    samples: list[str] = field(default_factory=list)
    role: Role | None = None  # what the header says it holds, when obvious


def column_samples(path: Path, *, sheet: str | int | None = None, count: int = 5,
                   scan_rows: int = 200) -> list[ColumnSample]:
    """Each column with up to `count` different non-empty values from the first
    `scan_rows` rows. Raises TableError when the file cannot be read as a table."""
    with _opened(path, sheet) as table:
        columns = [ColumnSample(name, role=role_of_header(name)) for name in table.columns]
        seen: list[set[str]] = [set() for _ in columns]
        for scanned, (_, cells) in enumerate(table.rows(), start=1):
            for column, values, cell in zip(columns, seen, cells, strict=False):
                text = cell_text(cell)
                if text and len(values) < count and text not in values:
                    values.add(text)
                    column.samples.append(text)
            if scanned >= scan_rows:
                break
    return columns


@dataclass(slots=True)
class PreviewRow:
    """One row of the preview: its number, the entry it becomes (or None), and why not."""

    row_number: int
    entry: dict[str, Any] | None
    issues: list[RowIssue] = field(default_factory=list)


def preview_entries(path: Path, mapping: Mapping, *, sheet: str | int | None = None,
                    count: int = 20) -> list[PreviewRow]:
    """The first `count` rows of the file mapped with `mapping`, checked as in an import
    (customer ids repeated within these rows included).

    Raises TableError for a file that cannot be read, MappingError for a mapping that does
    not fit it.
    """
    validator = ImportValidator()
    preview: list[PreviewRow] = []
    with _opened(path, sheet) as table:
        mapper = RowMapper(mapping, table.columns, typed_cells=table.typed_cells)
        for row_number, cells in table.rows():
            values, issues = mapper.convert(cells)
            if table.long_row == row_number:
                issues = [*(issues or ()), *long_cell_issues(cells, table.columns)]
            problems = validator.check(mapper, values, str(path), row_number, issues)
            entry = None if problems else mapper.build(values)
            preview.append(PreviewRow(row_number, entry, problems))
            if len(preview) >= count:
                break
    return preview


class _opened:
    """`open_table` as a context manager that always closes the table."""

    def __init__(self, path: Path, sheet: str | int | None) -> None:
        self._table = open_table(Path(path), sheet=sheet)

    def __enter__(self) -> Table:
        return self._table

    def __exit__(self, *exc_info: object) -> None:
        self._table.close()
