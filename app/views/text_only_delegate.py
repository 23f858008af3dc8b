"""A delegate that paints cells from their display text alone."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.models.status_colours import status_colours

_HAS_DISPLAY = QStyleOptionViewItem.ViewItemFeature.HasDisplay
_TEXT = QPalette.ColorRole.Text

Cell = Callable[[int, int], tuple[str, bool]]  # (row, column) -> (text, shown dimmed)


class TextOnlyDelegate(QStyledItemDelegate):
    """Paints a cell's text, dimmed where `cell` says so (in the dimmed colour of the
    palette in use, light or dark); asks the model nothing else.

    The standard delegate asks the model for seven roles per cell (font, colours, check
    state, icon, ...), each a call from Qt into Python and back. This one makes one call
    per cell, to `cell(row, column)`, straight to the Python model: the failure table,
    which repaints each time new failures arrive during an import, paints in about half
    the time.
    """

    def __init__(self, parent: QWidget, cell: Cell) -> None:
        super().__init__(parent)
        self._cell = cell

    def initStyleOption(self, option: QStyleOptionViewItem,
                        index: QModelIndex | QPersistentModelIndex) -> None:
        # PySide6 converts a persistent index to QModelIndex here; its stubs do not say so
        option.index = index  # type: ignore[assignment]
        text, dimmed = self._cell(index.row(), index.column())
        if text:
            option.text = text
            option.features |= _HAS_DISPLAY
        if dimmed:
            option.palette.setColor(_TEXT, status_colours(option.palette).dimmed)

