"""What an import needs to know to read its files: mappings, sheets, and the assignment.

`SourceOptions` travels with the import settings (and into a reader process), so it holds
plain data only: mappings in their file format (docs/mapping.md), sheet names, and the
assignment as a small dict. Everything here is also kept with the job in the journal, so a
resumed job reads its files exactly as the first run did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.services.sources.mapping import Mapping, MappingError, parse_target


class OnExisting(StrEnum):
    """What to do with a customer the service already has (a CONFLICT answer)."""

    CREATE = "create"  # a CONFLICT is a failure, as for any refused customer
    SKIP = "skip"  # a CONFLICT counts as skipped: not failed, not in the retry files
    UPDATE = "update"  # a CONFLICT is sent once more as UPDATE and counted as updated

    @property
    def label(self) -> str:
        return {"create": "Create (existing customers fail)",
                "skip": "Skip existing customers",
                "update": "Update existing customers"}[self.value]


class AssignmentMode(StrEnum):
    """How `Assignment` chooses the value it sets."""

    NONE = "none"
    SINGLE = "single"  # one value for every customer
    ROUND_ROBIN = "round-robin"  # the values in turn, in file order
    COLUMN = "column"  # from a source column (spreadsheets) or a path in the entry (JSON)


@dataclass(slots=True, frozen=True)
class Assignment:
    """Sets one target path (a home store, a customer group...) on every customer sent.

    `values` holds the single value or the round-robin list; `column` names the source
    column (spreadsheets) or the entry path (JSON) of the *By column* mode.
    """

    mode: AssignmentMode = AssignmentMode.NONE
    target: str = ""
    values: tuple[str, ...] = ()
    column: str = ""

    def __post_init__(self) -> None:
        if self.mode is AssignmentMode.NONE:
            return
        if not self.target:
            raise MappingError("an assignment needs a target path, e.g. person.homeStore")
        parse_target(self.target)
        if self.mode is AssignmentMode.SINGLE and len(self.values) != 1:
            raise MappingError("a single assignment sets exactly one value")
        if self.mode is AssignmentMode.ROUND_ROBIN and not self.values:
            raise MappingError("a round-robin assignment needs at least one value")
        if self.mode is AssignmentMode.COLUMN and not self.column:
            raise MappingError("a by-column assignment needs the column (or entry path) "
                               "to take the value from")

    @property
    def active(self) -> bool:
        return self.mode is not AssignmentMode.NONE

    def to_dict(self) -> dict[str, Any]:
        if not self.active:
            return {}
        data: dict[str, Any] = {"mode": self.mode.value, "target": self.target}
        if self.values:
            data["values"] = list(self.values)
        if self.column:
            data["column"] = self.column
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Assignment:
        """From `to_dict`'s form; {} or None is no assignment. Raises MappingError."""
        if not data:
            return cls()
        try:
            mode = AssignmentMode(str(data.get("mode", "none")))
        except ValueError:
            raise MappingError(f"unknown assignment mode {data.get('mode')!r}: use single, "
                               "round-robin or column") from None
        values = data.get("values") or ()
        if isinstance(values, str):
            values = (values,)
        return cls(mode, str(data.get("target") or ""), tuple(str(v) for v in values),
                   str(data.get("column") or ""))

    @classmethod
    def parse(cls, text: str) -> Assignment:
        """The command line's form: `single:PATH=VALUE`, `round-robin:PATH=V1,V2,V3`,
        `column:PATH=COLUMN`. Raises MappingError with a message for the user."""
        mode_text, _, rest = text.partition(":")
        target, equals, value = rest.partition("=")
        if not equals or not target.strip():
            raise MappingError(f"--assign {text!r}: write MODE:PATH=VALUE, e.g. "
                               "single:person.homeStore=S001")
        try:
            mode = AssignmentMode(mode_text.strip().lower())
        except ValueError:
            raise MappingError(f"--assign {text!r}: the mode is single, round-robin or "
                               "column") from None
        target = target.strip()
        if mode is AssignmentMode.ROUND_ROBIN:
            values = tuple(v.strip() for v in value.split(",") if v.strip())
            return cls(mode, target, values)
        if mode is AssignmentMode.COLUMN:
            return cls(mode, target, column=value.strip())
        return cls(mode, target, (value.strip(),))


@dataclass(slots=True)
class SourceOptions:
    """How the files of one import are read.

    mapping: the mapping (file format) for every spreadsheet without one of its own; None
    maps each file from its header. file_mappings / file_sheets: by file path (str).
    sheet: the sheet of a workbook without one of its own (None: the first with data).
    """

    mapping: dict[str, Any] | None = None
    file_mappings: dict[str, dict[str, Any]] = field(default_factory=dict)
    sheet: str | None = None
    file_sheets: dict[str, str] = field(default_factory=dict)
    assignment: dict[str, Any] = field(default_factory=dict)
    # files the assignment leaves alone: retry files hold the values given when their
    # customers were first sent
    unassigned_files: list[str] = field(default_factory=list)

    def mapping_for(self, path: Path) -> Mapping | None:
        """The mapping for `path`, None to map it from its header. Raises MappingError."""
        data = self.file_mappings.get(str(path), self.mapping)
        return Mapping.from_dict(data) if data else None

    def sheet_for(self, path: Path) -> str | None:
        return self.file_sheets.get(str(path), self.sheet)

    def assignment_rule(self) -> Assignment:
        return Assignment.from_dict(self.assignment)

    def with_assignment_column(self, mapping: Mapping | None, columns: Sequence[str]
                               ) -> Mapping | None:
        """For a spreadsheet, *By column* is one more mapped field."""
        rule = self.assignment_rule()
        if rule.mode is not AssignmentMode.COLUMN:
            return mapping
        if mapping is None:
            from app.services.sources.auto_mapping import auto_map
            mapping = auto_map(list(columns)).mapping
        fields = {t: c for t, c in mapping.fields.items() if t != rule.target}
        fields[rule.target] = rule.column
        constants = {t: v for t, v in mapping.constants.items() if t != rule.target}
        return Mapping(mapping.name, fields, constants, mapping.null_values,
                       dict(mapping.types))
