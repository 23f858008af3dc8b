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

from app.services.sources.batch_source import BatchSource
from app.services.sources.customer_reader import ReadProblem
from app.services.sources.error_report import ErrorLine, write_error_report
from app.services.sources.source_options import SourceOptions
from app.util.cancel_token import CancelToken

FIRST_INVALID_KEPT = 200  # refused rows shown in the review; the report has them all
_BATCHES_PER_STEP = 50
_BATCH_SIZE = 200


@dataclass(slots=True)
class ValidationResult:
    """What a validation pass found.

    `rows`: rows (entries) read; `valid`: those an import would send; `invalid`: those it
    would refuse. `first_errors`: the first lines of the error report (one per reason,
    with file, row, column and value). `problems`: files (or parts of them) that could not
    be read at all. `unmapped_columns`: by spreadsheet, the columns no target reads.
    """

    files: int = 0
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    first_errors: list[ErrorLine] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    error_report: Path | None = None
    error_lines: int = 0
    unmapped_columns: dict[str, list[str]] = field(default_factory=dict)


def validate_files(files: list[Path], options: SourceOptions | None = None, *,
                   report_path: Path | None = None,
                   token: CancelToken | None = None,
                   progress: Callable[[int], None] | None = None,
                   delimiter: str | None = None) -> ValidationResult:
    """Read every file as an import would, count valid and refused rows, and write the
    error report to `report_path` (when given and anything was refused or unreadable),
    separated by `delimiter` (None: the system's list separator).

    `progress(rows)` is called now and then with the rows read so far; once `token` is
    cancelled the pass stops (`Cancelled`) between steps.
    """
    options = options or SourceOptions()
    result = ValidationResult(files=len(files))
    source = BatchSource(list(files), _BATCH_SIZE, keep_records=False, options=options)
    lines: list[ErrorLine] = []
    while True:
        if token is not None:
            token.check()
        chunk = source.next_chunk(_BATCHES_PER_STEP)
        result.valid += sum(len(batch) for batch in chunk.batches)
        result.invalid += len(chunk.invalid)
        result.problems.extend(chunk.problems)
        lines.extend(chunk.error_lines)
        if progress is not None:
            progress(result.valid + result.invalid)
        if chunk.exhausted:
            break
    result.rows = result.valid + result.invalid
    result.first_errors = lines[:FIRST_INVALID_KEPT]
    result.error_lines = len(lines)
    result.unmapped_columns = source.unmapped_columns
    if report_path is not None and lines:
        write_error_report(report_path, lines, delimiter=delimiter)
        result.error_report = Path(report_path)
    return result

