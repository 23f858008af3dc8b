"""Small helpers every tab uses: accessible names with tooltips, and read-only record tables."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTableView, QWidget


def describe(widgets: Iterable[tuple[QWidget, str] | tuple[QWidget, str, str]]) -> None:
    """Give each widget an accessible name (for screen readers) and a tooltip.

    Each item is (widget, name) or (widget, name, tooltip); the tooltip defaults to the name.
    """
    for widget, name, *tooltip in widgets:
        widget.setAccessibleName(name)
        widget.setToolTip(tooltip[0] if tooltip else name)


def setup_record_table(table: QTableView) -> None:
    """A read-only table of records: whole rows selected, several at once, one line per row."""
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    # Tab moves on to the next control instead of trapping keyboard users in the cells
    table.setTabKeyNavigation(False)
