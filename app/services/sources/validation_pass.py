"""Reads, maps and checks an import's files without sending anything: the review before
Start and `import --dry-run`.

It reads through the same `BatchSource` an import uses, so what it counts as valid is
exactly what an import would send (mappings, sheets and the assignment applied, customer
ids repeated across files caught), and it writes the same error report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.models.records import CustomerRecord
from app.services.pipeline.batch_source import BatchSource
from app.services.sources.customer_reader import InvalidEntry, ReadProblem
from app.services.sources.error_report import ErrorLine, write_error_report
from app.services.sources.source_options import SourceOptions
from app.services.sources.spreadsheet_reader import SpreadsheetReader
from app.services.sources.table_source import is_spreadsheet

FIRST_INVALID_KEPT = 200  # refused rows shown in the review; the report has them all
_BATCHES_PER_STEP = 50
_BATCH_SIZE = 200


class ValidationCancelled(Exception):
    """The caller's `cancelled()` said stop."""


@dataclass(slots=True)
class ValidationResult:
    """What a validation pass found.

    `rows`: rows (entries) read; `valid`: those an import would send; `invalid`: those it
    would refuse. `first_invalid` holds the first refused rows (file, row, data, reason),
    `first_errors` the first lines of the error report (one per reason, with column and
    value). `problems`: files (or parts of them) that could not be read at all.
    `unmapped_columns`: by spreadsheet, the columns no target reads.
    """

    files: int = 0
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    first_invalid: list[InvalidEntry] = field(default_factory=list)
    first_errors: list[ErrorLine] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    error_report: Path | None = None
    error_lines: int = 0
    unmapped_columns: dict[str, list[str]] = field(default_factory=dict)
    header_unmapped: list[ReadProblem] = field(default_factory=list)

    @property
    def all_valid(self) -> bool:
        return not self.invalid and not self.problems


def validate_files(files: list[Path], options: SourceOptions | None = None, *,
                   report_path: Path | None = None,
                   cancelled: Callable[[], bool] | None = None,
                   progress: Callable[[int], None] | None = None) -> ValidationResult:
    """Read every file as an import would, count valid and refused rows, and write the
    error report to `report_path` (when given and anything was refused or unreadable).

    `progress(rows)` is called now and then with the rows read so far; `cancelled()`
    returning True stops the pass (ValidationCancelled).
    """
    options = options or SourceOptions()
    result = ValidationResult(files=len(files))
    source = BatchSource(list(files), _BATCH_SIZE, keep_records=False, options=options)
    lines: list[ErrorLine] = []
    while True:
        if cancelled is not None and cancelled():
            raise ValidationCancelled
        chunk = source.next_chunk(_BATCHES_PER_STEP)
        result.valid += sum(len(batch) for batch in chunk.batches)
        result.invalid += len(chunk.invalid)
        for failure in chunk.invalid:
            if len(result.first_invalid) >= FIRST_INVALID_KEPT:
                break
            record = CustomerRecord(failure.original_data, failure.source_file,
                                    failure.record_number, failure.kind)
            result.first_invalid.append(InvalidEntry(record, ReadProblem(
                failure.source_file, failure.error, failure.record_number)))
        for problem in chunk.problems:
            result.problems.append(problem)
            if problem.header_unmapped:
                result.header_unmapped.append(problem)
        lines.extend(chunk.error_lines)
        if progress is not None:
            progress(result.valid + result.invalid)
        if chunk.exhausted:
            break
    result.rows = result.valid + result.invalid
    result.first_errors = lines[:FIRST_INVALID_KEPT]
    result.error_lines = len(lines)
    _fill_fields(result)
    result.unmapped_columns = _unmapped_columns(files, options)
    if report_path is not None and lines:
        write_error_report(report_path, lines)
        result.error_report = Path(report_path)
    return result


def _fill_fields(result: ValidationResult) -> None:
    """Give each refused row shown the column of its first reason."""
    first_column: dict[tuple[str, int | None], str] = {}
    for line in result.first_errors:
        first_column.setdefault((line.file, line.row), line.column)
    for entry in result.first_invalid:
        key = (Path(entry.problem.source_file).name, entry.problem.record_number)
        column = first_column.get(key)
        if column:
            entry.problem = ReadProblem(entry.problem.source_file, entry.problem.message,
                                        entry.problem.record_number, column)


def _unmapped_columns(files: list[Path], options: SourceOptions) -> dict[str, list[str]]:
    """The columns of each spreadsheet that no target reads (read from the header only)."""
    unmapped: dict[str, list[str]] = {}
    for path in files:
        if not is_spreadsheet(path):
            continue
        try:
            reader = SpreadsheetReader(path, options.mapping_for(path),
                                       sheet=options.sheet_for(path),
                                       extra_mapping=options.with_assignment_column)
            rows = iter(reader)
            next(rows, None)  # the header and mapping only
            rows.close()  # type: ignore[attr-defined]
        except Exception:  # the pass itself already named the file
            continue
        if reader.unmapped_columns:
            unmapped[str(path)] = list(reader.unmapped_columns)
    return unmapped
