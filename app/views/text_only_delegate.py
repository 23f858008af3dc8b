"""A delegate that paints cells from their display text alone."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

_HAS_DISPLAY = QStyleOptionViewItem.ViewItemFeature.HasDisplay


class TextOnlyDelegate(QStyledItemDelegate):
    """Paints a cell's display text, in its text colour; asks the model for nothing else.

    The standard delegate asks for seven roles per cell (font, colours, check state, icon,
    ...). Through a proxy over a Python model each of them is several calls into Python, so a
    table whose model only has text repaints noticeably faster with this one; the failure
    table repaints each time a chunk of new failures arrives during an import.
    """

    def initStyleOption(self, option: QStyleOptionViewItem,
                        index: QModelIndex | QPersistentModelIndex) -> None:
        # PySide6 converts a persistent index to QModelIndex here; its stubs do not say so
        option.index = index  # type: ignore[assignment]
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if text:
            option.text = text
            option.features |= _HAS_DISPLAY
        brush = index.data(Qt.ItemDataRole.ForegroundRole)
        if isinstance(brush, QBrush):
            option.palette.setBrush(QPalette.ColorRole.Text, brush)
