"""What a customer file holds, as counted before an import (a plain record)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FileKind = Literal["customers", "households", "mixed", ""]

#: Files read as spreadsheets (CSV and Excel workbooks), by suffix.
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
SPREADSHEET_SUFFIXES = CSV_SUFFIXES + XLSX_SUFFIXES


def is_spreadsheet(path: Path) -> bool:
    """Whether `path` is read as a spreadsheet (by its suffix)."""
    return Path(path).suffix.lower() in SPREADSHEET_SUFFIXES


@dataclass(frozen=True, slots=True)
class FileInspection:
    """What one customer file holds.

    customers counts every entry read (valid and invalid); invalid counts the entries the
    importer would refuse before sending. problem is set when the file cannot be imported:
    the message of the `ReadProblem` that stopped the read (counts then cover only what was
    read before it), or "no customers found".
    """

    path: Path
    kind: FileKind = ""
    customers: int = 0
    invalid: int = 0
    size_bytes: int = 0
    problem: str | None = None
    first_invalid: str = ""  # why the first invalid entry is refused (file, record, field)
    sha256: str = ""  # the content's fingerprint (to find what earlier imports did with it)

    @property
    def usable(self) -> bool:
        """True when the file can be imported."""
        return self.problem is None

    @property
    def valid(self) -> int:
        """Entries that would be sent."""
        return self.customers - self.invalid
