"""Compiles a mapping into two plain functions, so a row costs straight-line code.

A mapping is the same for every row of a file, but walking its target tree for each of
200,000 rows costs more than reading the file. So, once per file, the mapping is written
out as Python source and compiled (the technique `dataclasses` and `attrs` use for their
`__init__`):

- `build(values)`: the API entry from a row's converted values;
- `convert_text(row)`: the values of an ordinary row, or None when any cell needs a closer
  look (a row shorter than the header, a value that does not convert, an identifier that
  may be in scientific notation); `RowMapper.convert_closely` then takes the row and says
  exactly what is wrong. For CSV every cell is text; for workbooks a variant also takes
  numbers, dates and booleans.

Only names the code generator makes up go into the source: dictionary keys come from
target paths, which `parse_target` allows to be ASCII identifiers only, and are written
with `repr`; every constant and helper is passed in, never written out. Tests hold the
compiled functions to the same results as the general path, row by row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from app.services.sources.value_conversion import (
    CONVERTERS,
    FALSE_WORDS,
    TRUE_WORDS,
    ConversionError,
    FieldType,
    date_from_text,
)

# A node of the target tree: a dict keyed by name (an object) or by position (a list), or a
# leaf ("slot", index into the values) / ("constant", value). In the generated code, None
# stands for "no value from the row" (a constant is never None: mapping.py refuses it).
Node = dict[str | int, Any]


class _Source:
    """Lines of generated code, and the objects the code refers to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def refer(self, value: Any) -> str:
        """A name under which the generated code finds `value`."""
        name = self.fresh("K")
        self.names[name] = value
        return name

    def add(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    def compile(self, name: str) -> Callable[..., Any]:
        namespace = dict(self.names)
        exec(compile("\n".join(self.lines), f"<mapping {name}>", "exec"), namespace)
        return namespace[name]


def compile_builder(tree: Node, slot_count: int) -> Callable[[list[Any]], dict[str, Any]]:
    """`build(values)`: the entry for one row, as row_mapping.py describes it."""
    source = _Source()
    source.lines.append("def build(v):")
    if slot_count:
        source.add(", ".join(f"v{n}" for n in range(slot_count)) + ", = v")
    root = _object(source, tree) if tree else "None"
    source.add(f"return {{}} if {root} is None else {root}")
    return source.compile("build")


def _node(source: _Source, node: Node) -> str:
    if node and all(isinstance(key, int) for key in node):
        return _list(source, node)
    return _object(source, node)


def _object(source: _Source, node: Node) -> str:
    """Code for an object node; returns the variable holding it (None: nothing)."""
    parts: list[tuple[str, str]] = []  # (key, expression) in the entry's order
    fed: list[str] = []  # what holds a value from the row
    for key, child in node.items():
        if isinstance(child, dict):
            child_var = _node(source, child)
            parts.append((str(key), child_var))
            fed.append(child_var)
        elif child[0] == "slot":
            parts.append((str(key), f"v{child[1]}"))
            fed.append(f"v{child[1]}")
    constants = [(str(key), source.refer(child[1])) for key, child in node.items()
                 if isinstance(child, tuple) and child[0] == "constant"]
    var = source.fresh("o")
    if not fed:  # only constants: nothing from the row, so nothing at all
        source.add(f"{var} = None")
        return var
    # constants first, as people write entries (changeType, type, person)
    literal = ", ".join(f"{key!r}: {expression}" for key, expression in constants + parts)
    source.add(f"if {' and '.join(f'{name} is None' for name in fed)}:")
    source.add(f"{var} = None", 2)
    source.add("else:")
    source.add(f"{var} = {{{literal}}}", 2)
    if len(fed) > 1:  # (one value: it is not None here, and constants never are)
        source.add(f"if None in {var}.values():", 2)  # rare: one C-level scan to find out
        source.add(f"{var} = {{k: x for k, x in {var}.items() if x is not None}}", 3)
    return var


def _list(source: _Source, node: Node) -> str:
    """Code for a list node: its items that got a value, in order, or None."""
    items = []
    for _, child in sorted(node.items(), key=lambda item: item[0]):
        if isinstance(child, dict):
            items.append(_node(source, child))
        elif child[0] == "slot":
            items.append(f"v{child[1]}")
        # a constant alone never makes a list item
    var = source.fresh("l")
    if not items:
        source.add(f"{var} = None")
    elif len(items) == 1:
        source.add(f"{var} = None if {items[0]} is None else [{items[0]}]")
    else:
        source.add(f"{var} = [{', '.join(items)}]")
        source.add(f"if None in {var}:")
        source.add(f"{var} = [x for x in {var} if x is not None] or None", 2)
    return var


def compile_text_converter(columns: Sequence[tuple[int, FieldType]], nulls: frozenset[str],
                           *, typed_cells: bool = False
                           ) -> Callable[[Sequence[Any]], list[Any] | None]:
    """`convert_text(row)`: the values of an ordinary row, or None for a closer look.

    `columns` gives, per value, the cell's index in the row and the value's type. With
    `typed_cells` (workbooks), a cell may also be a number, date or boolean, converted by
    value_conversion's functions; without it (CSV) every cell is text, and any other cell
    sends the row to the closer look.
    """
    source = _Source()
    source.names.update({
        "NULLS": nulls, "nfc": unicodedata.normalize, "date_from_text": date_from_text,
        "BOOLEANS": {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)},
        "ConversionError": ConversionError})
    # "is it a null value?" as comparisons (a length check each) rather than a set lookup,
    # which would hash every cell: measured the dearest step of a row before this
    words = sorted(nulls - {""})
    if len(words) <= 4:
        is_null = " or ".join(["not {v}"] + [f"{{v}} == {source.refer(w)}" for w in words])
    else:
        is_null = "not {v} or {v} in NULLS"
    source.lines.append("def convert_text(row):")
    source.add("try:")
    source.add("pass", 2)  # for a mapping without columns
    done: dict[tuple[int, FieldType], int] = {}
    for n, (index, kind) in enumerate(columns):
        same = done.get((index, kind))
        if same is not None:  # one column feeding several targets: converted once
            source.add(f"v{n} = v{same}", 2)
            continue
        done[(index, kind)] = n
        if typed_cells:
            source.add(f"v{n} = row[{index}]", 2)
            source.add(f"if v{n}.__class__ is not str:", 2)
            source.add(f"v{n} = None if v{n} is None else {source.refer(CONVERTERS[kind])}"
                       f"(v{n})", 3)
            source.add("else:", 2)
            _text_cell(source, n, f"v{n}.strip()", kind, is_null, 3)
        else:
            _text_cell(source, n, f"row[{index}].strip()", kind, is_null, 2)
    # AttributeError: a cell that is not text; IndexError: a row shorter than the header
    source.add("except (ConversionError, AttributeError, IndexError):")
    source.add("return None", 2)
    source.add("return [" + ", ".join(f"v{n}" for n in range(len(columns))) + "]")
    return source.compile("convert_text")


def _text_cell(source: _Source, n: int, text: str, kind: FieldType, is_null: str,
               depth: int) -> None:
    """Code turning the text `text` into value `v{n}` of type `kind`."""
    source.add(f"v{n} = {text}", depth)
    source.add(f"if {is_null.format(v=f'v{n}')}:", depth)
    source.add(f"v{n} = None", depth + 1)
    if kind is FieldType.DATE:
        source.add("else:", depth)
        source.add(f"v{n} = date_from_text(v{n})", depth + 1)
    elif kind is FieldType.BOOLEAN:
        source.add("else:", depth)
        source.add(f"v{n} = BOOLEANS.get(v{n}.casefold())", depth + 1)
        source.add(f"if v{n} is None:", depth + 1)
        source.add("return None", depth + 2)
    else:
        source.add(f"elif not v{n}.isascii():", depth)
        source.add(f"v{n} = nfc('NFC', v{n})", depth + 1)
        if kind is FieldType.IDENTIFIER:
            # maybe scientific notation (9.00058E+12): the general path decides
            source.add(f"if v{n} is not None and ('E' in v{n} or 'e' in v{n}):", depth)
            source.add("return None", depth + 1)
