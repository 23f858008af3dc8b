"""Builds one API entry from one spreadsheet row, as a mapping says.

`RowMapper` resolves a `Mapping` against a file's columns once, then maps each row in two
steps: `convert` turns the mapped cells into values (collecting every cell that cannot be
converted), and `build` assembles the entry from them. Between the two, the validator
looks at the values (row_validation.py).

What an entry holds:

- a cell that is empty, or holds one of the mapping's null values, sets nothing;
- a list item (`customerCards[1]`, `addresses[0]`) that gets no value from the row is left
  out, constants and all, and the list closes up; an empty list is left out;
- `changeType` is `CREATE` and `type` is `PERSON` unless the mapping sets them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.services.sources.auto_mapping import Role, role_of_header
from app.services.sources.customer_reader import CHANGE_TYPES
from app.services.sources.mapping import (
    DEFAULT_CONSTANTS,
    Mapping,
    MappingError,
    TargetPath,
    format_target,
    parse_target,
)
from app.services.sources.row_compiler import compile_builder, compile_text_converter
from app.services.sources.table_source import listed_columns
from app.services.sources.value_conversion import (
    CONVERTERS,
    ConversionError,
    FieldType,
    cell_text,
)


@dataclass(slots=True, frozen=True)
class RowIssue:
    """One reason a row cannot be sent: the column (when one is to blame), its text, why."""

    column: str | None
    value: str
    message: str


@dataclass(slots=True, frozen=True)
class _Slot:
    """One mapped target: where its cell is, and how the cell becomes its value."""

    target: str
    column: str
    index: int
    kind: FieldType
    convert: Callable[[Any], Any]


_ROLE_OF_KEY = {
    "customerId": Role.CUSTOMER_ID,
    "lastName": Role.LAST_NAME,
    "email": Role.EMAIL,
    "emailAddress": Role.EMAIL,
    "personalNumber": Role.PERSONAL_NUMBER,
    "socialSecurityNumber": Role.PERSONAL_NUMBER,
}


def _role_of_target(path: TargetPath) -> Role | None:
    last = path[-1]
    if len(path) >= 3 and path[-3] == "customerCards" and last in ("number", "cardNumber"):
        return Role.CARD_NUMBER
    return _ROLE_OF_KEY.get(last) if isinstance(last, str) else None


class RowMapper:
    """A mapping resolved against one file's columns; maps that file's rows to entries.

    `typed_cells`: the rows come from a workbook, whose cells may be numbers, dates and
    booleans as well as text (the compiled path then handles them too). Raises
    MappingError when a mapped column is not in the file.
    """

    def __init__(self, mapping: Mapping, columns: Sequence[str], *,
                 typed_cells: bool = False) -> None:
        self.mapping = mapping
        self.columns = list(columns)
        index_of = _column_index(self.columns)
        missing = [c for c in mapping.fields.values() if _find_column(c, index_of) is None]
        if missing:
            raise MappingError(
                "the file has no column " + ", ".join(repr(c) for c in dict.fromkeys(missing))
                + " (its columns: " + listed_columns(self.columns) + ")")
        self._slots: list[_Slot] = []
        for target, column in mapping.fields.items():
            index = _find_column(column, index_of)
            assert index is not None
            kind = mapping.type_of(target)
            self._slots.append(_Slot(target, self.columns[index], index, kind,
                                     CONVERTERS[kind]))
        # `convert_closely` handles text targets first, then the ones that convert
        self._text_slots = tuple((n, s.index) for n, s in enumerate(self._slots)
                                 if s.kind is FieldType.TEXT)
        self._other_slots = tuple((n, s.index, s.convert) for n, s in enumerate(self._slots)
                                  if s.kind is not FieldType.TEXT)
        # an empty cell never sets a value, whatever the mapping lists
        self._nulls = frozenset(v for n in (*mapping.null_values, "")
                                for v in (n.strip(), n.strip().upper(), n.strip().lower()))
        self._width = max((s.index for s in self._slots), default=-1) + 1
        self.roles: dict[Role, list[int]] = {}
        for n, slot in enumerate(self._slots):
            roles: set[Role] = set()
            by_target = _role_of_target(parse_target(slot.target))
            if by_target is not None:
                roles.add(by_target)
            if role_of_header(slot.column) is Role.PERSONAL_NUMBER:
                roles.add(Role.PERSONAL_NUMBER)  # e.g. an SSN column feeding a card number
            for role in roles:
                self.roles.setdefault(role, []).append(n)
        self.change_type_slots = tuple(
            n for n, slot in enumerate(self._slots) if slot.target == "changeType")
        _check_constants(mapping)
        constants = {k: v for k, v in DEFAULT_CONSTANTS.items()
                     if k not in mapping.fields and k not in mapping.constants}
        constants.update(mapping.constants)
        #: `build(values)`: the API entry holding `values` and the mapping's constants
        self.build = compile_builder(_target_tree(self._slots, constants), len(self._slots))
        #: `convert_text(row)`: the values of an ordinary row, or None when a cell needs
        #: `convert_closely` (compiled: see row_compiler.py)
        self.convert_text = compile_text_converter(
            [(slot.index, slot.kind) for slot in self._slots], self._nulls,
            typed_cells=typed_cells)

    @property
    def slots(self) -> list[_Slot]:
        """The mapped targets in the mapping's order (values come in the same order)."""
        return self._slots

    def column_of(self, slot: int) -> str:
        """The column that feeds the value at position `slot`."""
        return self._slots[slot].column

    def convert(self, row: Sequence[Any]) -> tuple[list[Any], list[RowIssue] | None]:
        """The mapped cells of `row` as values (None: no value), and the cells that failed."""
        values = self.convert_text(row)  # the compiled path: every ordinary CSV row
        if values is not None:
            return values, None
        return self.convert_closely(row)

    def convert_closely(self, row: Sequence[Any]) -> tuple[list[Any], list[RowIssue] | None]:
        """`convert` without the compiled path: any cell, naming each that fails."""
        if len(row) < self._width:  # a short row: the missing cells are empty
            row = [*row, *([""] * (self._width - len(row)))]
        nulls = self._nulls
        values: list[Any] = [None] * len(self._slots)
        issues: list[RowIssue] | None = None
        for n, index in self._text_slots:
            cell = row[index]
            if cell.__class__ is str:
                text = cell.strip()
                if text in nulls:
                    continue
                values[n] = text if text.isascii() else unicodedata.normalize("NFC", text)
            elif cell is not None:  # a number, date or boolean from a workbook
                try:
                    values[n] = CONVERTERS[FieldType.TEXT](cell)
                except ConversionError as exc:
                    issues = issues or []
                    issues.append(RowIssue(self._slots[n].column, cell_text(cell), str(exc)))
        for n, index, convert in self._other_slots:
            cell = row[index]
            if cell is None or (cell.__class__ is str and cell.strip() in nulls):
                continue
            try:
                values[n] = convert(cell)
            except ConversionError as exc:
                issues = issues or []
                issues.append(RowIssue(self._slots[n].column, cell_text(cell), str(exc)))
        return values, issues

    def map_row(self, row: Sequence[Any]) -> tuple[dict[str, Any] | None, list[RowIssue]]:
        """Convert and build in one step: (entry, []) or (None, the cells that failed)."""
        values, issues = self.convert(row)
        if issues:
            return None, issues
        return self.build(values), []

    def row_data(self, row: Sequence[Any]) -> dict[str, str]:
        """The row as {column: text}, for an entry that cannot be sent (nothing is lost)."""
        data = {column: cell_text(row[i]) if i < len(row) else ""
                for i, column in enumerate(self.columns)}
        for i in range(len(self.columns), len(row)):
            text = cell_text(row[i])
            if text:
                data[f"(column {i + 1})"] = text
        return data


def _check_constants(mapping: Mapping) -> None:
    """Refuse constants every entry would be refused for (better once than per row)."""
    change_type = mapping.constants.get("changeType")
    if change_type is not None and str(change_type).upper() not in CHANGE_TYPES:
        raise MappingError(f"changeType must be CREATE or UPDATE, not {change_type!r}")
    kind = mapping.constants.get("type")
    if kind is not None and kind != "PERSON":
        raise MappingError(f"type must be PERSON, not {kind!r}")
    if "type" in mapping.fields:
        raise MappingError("type is always PERSON: set it as a constant, not from a column")


def column_key(name: str) -> str:
    """How a mapping's column name is matched to a header: spaces around it and case do
    not count."""
    return name.strip().casefold()


def _column_index(columns: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, column in enumerate(columns):
        index.setdefault(column, i)
        index.setdefault(column_key(column), i)
    return index


def _find_column(column: str, index_of: dict[str, int]) -> int | None:
    found = index_of.get(column)
    return found if found is not None else index_of.get(column_key(column))


def _target_tree(slots: list[_Slot], constants: dict[str, Any]) -> dict[str | int, Any]:
    """The targets as a tree: objects keyed by name, lists by position, leaves
    ("slot", value index) and ("constant", value)."""
    tree: dict[str | int, Any] = {}
    for n, slot in enumerate(slots):
        _insert(tree, parse_target(slot.target), ("slot", n))
    for target, value in constants.items():
        _insert(tree, parse_target(target), ("constant", value))
    _check_tree(tree)
    return tree


def _insert(tree: dict[str | int, Any], path: TargetPath, leaf: tuple[str, Any]) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise MappingError(f"{format_target(path)}: a target holds a value and other "
                               "targets at once")
    node[path[-1]] = leaf


def _check_tree(node: dict[str | int, Any]) -> None:
    keys = {type(key) for key in node}
    if len(keys) > 1:
        raise MappingError("a target is used both as a list ([n]) and as an object")
    for child in node.values():
        if isinstance(child, dict):
            _check_tree(child)
