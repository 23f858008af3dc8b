"""Applies an `Assignment` to the customers of an import, in file order."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from app.models.records import CustomerRecord
from app.services.sources.mapping import TargetPath, parse_target
from app.services.sources.source_options import Assignment, AssignmentMode


def set_path(entry: dict[str, Any], path: TargetPath, value: Any) -> None:
    """Set `value` at `path` in `entry`, making the objects and list items on the way."""
    node: Any = entry
    for part, following in itertools.pairwise(path):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(part, int):
            while len(node) <= part:
                node.append(None)
            if not isinstance(node[part], dict | list):
                node[part] = empty
            node = node[part]
        else:
            if not isinstance(node.get(part), dict | list):
                node[part] = empty
            node = node[part]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def get_path(entry: Any, path: TargetPath) -> Any:
    """The value at `path` in `entry`, None when any step is missing."""
    node = entry
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
            node = node[part]
        else:
            if not isinstance(node, dict):
                return None
            node = node.get(part)
    return node


class AssignmentRule:
    """Sets the assignment's target on each customer read, file by file.

    Round robin counts the customers of the import in file order (including those a
    resumed job or an earlier import skips, so that every customer gets the same value on
    every run); `count_in_file` tells how many the current file had. For spreadsheets,
    *By column* is part of the mapping (see SourceOptions.with_assignment_column), so
    nothing is left to do here.
    """

    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment
        self.count_in_file = 0
        self._target = parse_target(assignment.target) if assignment.active else ()
        self._source = (parse_target(assignment.column)
                        if assignment.mode is AssignmentMode.COLUMN else ())

    def for_file(self, before: int, *, spreadsheet: bool = False, exempt: bool = False
                 ) -> Callable[[CustomerRecord], None] | None:
        """The function to call with each customer of the next file (None: nothing to do).
        `before`: customers of the import in the files before this one; `exempt`: a file
        whose customers keep what they hold (a retry file: assigned when first sent)."""
        self.count_in_file = 0
        mode = self.assignment.mode
        if exempt or mode is AssignmentMode.NONE or (
                mode is AssignmentMode.COLUMN and spreadsheet):
            return None
        target = self._target
        if mode is AssignmentMode.SINGLE:
            value = self.assignment.values[0]

            def assign(record: CustomerRecord) -> None:
                self.count_in_file += 1
                if isinstance(record.data, dict):
                    set_path(record.data, target, value)
            return assign
        if mode is AssignmentMode.ROUND_ROBIN:
            values = self.assignment.values

            def assign_in_turn(record: CustomerRecord) -> None:
                position = before + self.count_in_file
                self.count_in_file += 1
                if isinstance(record.data, dict):
                    set_path(record.data, target, values[position % len(values)])
            return assign_in_turn
        source = self._source

        def assign_from_entry(record: CustomerRecord) -> None:
            self.count_in_file += 1
            value = get_path(record.data, source)
            if value is not None and isinstance(record.data, dict):
                set_path(record.data, target, value)
        return assign_from_entry
