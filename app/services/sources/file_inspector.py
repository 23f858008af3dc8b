"""Counts what a customer file holds, for the Files tab, without loading the file whole.

Plain synchronous code meant for worker threads: the file is streamed through `FileReader`,
so a 200,000-customer file costs a read of the file, never its size in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.models.file_inspection import FileInspection, FileKind
from app.models.records import RecordKind
from app.services.sources.customer_reader import FileReader, InvalidEntry, ReadProblem
from app.services.sources.file_fingerprint import fingerprint
from app.services.sources.mapping import Mapping, MappingError
from app.services.sources.spreadsheet_reader import SpreadsheetReader
from app.services.sources.table_source import is_spreadsheet

NO_CUSTOMERS_FOUND = "no customers found"

# How often (in entries, ~1 ms of work) a long inspection calls its `cancelled` callback:
# often enough to stop at once and to let a caller pace itself, rarely enough to cost nothing.
_CANCEL_CHECK_EVERY = 64


class _Unusable(Exception):
    """The file cannot be read as asked; the message says why."""


class InspectionCancelled(Exception):
    """Raised by `inspect_file` when its `cancelled` callback answered True."""


def _kind_of(kinds: set[RecordKind]) -> FileKind:
    if len(kinds) > 1:
        return "mixed"
    if RecordKind.HOUSEHOLDS in kinds:
        return "households"
    if RecordKind.CUSTOMERS in kinds:
        return "customers"
    return ""


def inspect_file(path: Path, *, cancelled: Callable[[], bool] | None = None,
                 mapping: dict[str, Any] | None = None, sheet: str | None = None
                 ) -> FileInspection:
    """Stream through `path` and count its entries; never raises for a bad file.

    `cancelled` is polled now and then; when it returns True the read stops with
    `InspectionCancelled` (used when the user removes files that are still being counted).
    A spreadsheet is read with `mapping` (file format; None: from its header) and `sheet`,
    and its rows are checked as an import checks them.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # FileReader reports why the file cannot be opened
    kinds: set[RecordKind] = set()
    customers = invalid = 0
    problem: str | None = None
    first_invalid = ""
    try:
        reader: FileReader | SpreadsheetReader
        if is_spreadsheet(path):
            try:
                chosen = Mapping.from_dict(mapping) if mapping else None
            except MappingError as exc:
                raise _Unusable(f"the mapping cannot be used: {exc}") from None
            reader = SpreadsheetReader(path, chosen, sheet=sheet)
        else:
            reader = FileReader(path)
        for item in reader:
            if isinstance(item, InvalidEntry):
                customers += 1
                invalid += 1
                kinds.add(item.record.kind)
                first_invalid = first_invalid or str(item.problem)
            elif isinstance(item, ReadProblem):
                if item.fatal_for_file:
                    problem = item.message
                    break
                # a non-fatal problem without an entry is not a customer: nothing to count
            else:
                customers += 1
                kinds.add(item.kind)
            if cancelled is not None and customers % _CANCEL_CHECK_EVERY == 0 and cancelled():
                raise InspectionCancelled(str(path))
    except InspectionCancelled:
        raise
    except _Unusable as exc:
        problem = str(exc)
    except Exception as exc:  # a reader bug must not take a worker thread down with it
        problem = f"the file could not be read ({type(exc).__name__}: {exc})"
    if problem is None and customers == 0:
        problem = NO_CUSTOMERS_FOUND
    sha256 = ""
    if problem is None:
        # changed under us: the import reads (and fingerprints) it again anyway
        with contextlib.suppress(OSError):
            sha256 = fingerprint(path).sha256  # the page cache holds it now: a quick read
    return FileInspection(path=path, kind=_kind_of(kinds), customers=customers,
                          invalid=invalid, size_bytes=size, problem=problem,
                          first_invalid=first_invalid, sha256=sha256)
