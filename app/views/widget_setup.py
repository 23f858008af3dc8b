"""Small helpers every tab uses: accessible names with tooltips, read-only record tables,
and acting on a Yes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QMessageBox, QTableView, QWidget


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


def when_yes(box: QMessageBox, action: Callable[[], object]) -> None:
    """Run `action` once when the user answers `box` with Yes.

    Decided by the button clicked, once the box is finished: whether Qt also reports a Yes
    as `accepted` differs between Qt versions (6.11 does, earlier ones did not).
    """
    def finished(_result: int) -> None:
        if box.standardButton(box.clickedButton()) == QMessageBox.StandardButton.Yes:
            action()

    box.finished.connect(finished)
