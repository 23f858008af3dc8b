"""A mapping: which spreadsheet column feeds which part of an API entry (docs/mapping.md).

A mapping file is JSON:

    {"name": "Member export",
     "fields": {"person.customerId": "MMID", "person.customerCards[0].number": "MMID"},
     "constants": {"person.customerCards[0].type": "MAIN_CARD", "person.status": "ACTIVE"},
     "null_values": ["NULL", ""],
     "types": {"person.memberSince": "date"}}

Targets are paths in the entry: keys joined by dots, `[n]` for the n-th item of a list.
`types` is optional; without it the last key of a target decides (`birthday` is a date,
`statisticalUseAllowed` a boolean, `customerId` an identifier, anything else text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.services.sources.value_conversion import FieldType, field_type_of

TargetPath = tuple[str | int, ...]

#: What an entry is when the mapping says nothing else (docs/api.md).
DEFAULT_CONSTANTS: dict[str, Any] = {"changeType": "CREATE", "type": "PERSON"}
DEFAULT_NULL_VALUES: tuple[str, ...] = ("",)
_MAX_LIST_INDEX = 99
_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
_TARGET = re.compile(rf"{_KEY}(?:\.{_KEY}|\[\d{{1,2}}\])*")
_PART = re.compile(rf"\.?({_KEY})|\[(\d+)\]")


class MappingError(ValueError):
    """A mapping that cannot be used as written; the message says what to change."""


def parse_target(target: str) -> TargetPath:
    """`person.customerCards[0].number` as ("person", "customerCards", 0, "number")."""
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise MappingError(
            f"{target!r} is not a target path: use keys joined by dots and [n] for list "
            "items, e.g. person.customerCards[0].number")
    parts: list[str | int] = []
    for match in _PART.finditer(target):
        key, index = match.groups()
        if key is not None:
            parts.append(key)
        else:
            if int(index) > _MAX_LIST_INDEX:
                raise MappingError(f"{target}: list positions go up to [{_MAX_LIST_INDEX}]")
            parts.append(int(index))
    return tuple(parts)


def format_target(path: TargetPath) -> str:
    """The text form of a parsed target path."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@dataclass(slots=True)
class Mapping:
    """How the rows of one spreadsheet layout become API entries.

    fields: target path -> column name; constants: target path -> value set on every entry;
    null_values: cell texts that mean "no value" (compared after trimming, any case);
    types: target path -> "text", "identifier", "date" or "boolean", where the key alone
    does not tell.
    """

    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES
    types: dict[str, FieldType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise MappingError when the mapping cannot be used (names the first mistake)."""
        if not isinstance(self.name, str):
            raise MappingError("name must be text")
        seen: dict[TargetPath, str] = {}
        for where, targets in (("fields", self.fields), ("constants", self.constants)):
            if not isinstance(targets, MappingABC):
                raise MappingError(f"{where} must be an object of target paths")
            for target in targets:
                path = parse_target(target)
                if path in seen:
                    raise MappingError(f"{target} is set twice (in {seen[path]} and {where})")
                seen[path] = where
        for target, column in self.fields.items():
            if not isinstance(column, str) or not column.strip():
                raise MappingError(f"{target}: the column must be a column name (text)")
        for target, value in self.constants.items():
            if value is None:
                raise MappingError(f"{target}: a constant cannot be null; leave the target "
                                   "out instead")
            if isinstance(value, dict | list):
                raise MappingError(
                    f"{target}: a constant is a single value; set each key of an object or "
                    "list item as its own target")
        paths = sorted(seen, key=len)
        for index, shorter in enumerate(paths):
            for longer in paths[index + 1:]:
                if longer[:len(shorter)] == shorter:
                    raise MappingError(
                        f"{format_target(shorter)} holds a value, so "
                        f"{format_target(longer)} cannot be inside it")
        if not all(isinstance(v, str) for v in self.null_values):
            raise MappingError("null_values must be a list of texts")
        for target, kind in self.types.items():
            parse_target(target)
            if kind not in FieldType._value2member_map_:
                raise MappingError(f"{target}: type {kind!r} is not one of "
                                   + ", ".join(t.value for t in FieldType))

    def type_of(self, target: str) -> FieldType:
        """The type of the value at `target`: as `types` says, else by its last key."""
        kind = self.types.get(target)
        return FieldType(kind) if kind else field_type_of(target)

    def to_dict(self) -> dict[str, Any]:
        """The mapping in its file format."""
        data: dict[str, Any] = {"name": self.name, "fields": dict(self.fields),
                                "constants": dict(self.constants),
                                "null_values": list(self.null_values)}
        if self.types:
            data["types"] = {target: str(kind) for target, kind in self.types.items()}
        return data

    def to_json(self) -> bytes:
        """The mapping file's content (UTF-8 JSON, indented for people)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_dict(cls, data: Any) -> Mapping:
        """A mapping from its file format; raises MappingError for anything else."""
        if not isinstance(data, dict):
            raise MappingError("a mapping file holds one JSON object")
        unknown = set(data) - {"name", "fields", "constants", "null_values", "types"}
        if unknown:
            raise MappingError("unknown keys in the mapping: " + ", ".join(sorted(unknown)))
        nulls = data.get("null_values", list(DEFAULT_NULL_VALUES))
        if not isinstance(nulls, list):
            raise MappingError("null_values must be a list of texts")
        types = data.get("types") or {}
        if not isinstance(types, dict):
            raise MappingError("types must be an object of target paths")
        fields = data.get("fields") or {}
        constants = data.get("constants") or {}
        for where, value in (("fields", fields), ("constants", constants)):
            if not isinstance(value, dict):
                raise MappingError(f"{where} must be an object of target paths")
        return cls(name=data.get("name") or "", fields=dict(fields),
                   constants=dict(constants), null_values=tuple(nulls), types=dict(types))

    @classmethod
    def from_json(cls, text: bytes | str) -> Mapping:
        """A mapping from a mapping file's content."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise MappingError(f"the mapping is not valid JSON ({exc})") from None
        return cls.from_dict(data)
