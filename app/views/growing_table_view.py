"""A table view for a model that grows at the end while it is watched."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex
from PySide6.QtWidgets import QTableView, QWidget

# what happened to the model since the view last laid out its items
_NOTHING, _APPENDED_BELOW, _OTHER = range(3)


class GrowingTableView(QTableView):
    """A QTableView that repaints no rows when new rows arrive below the visible ones.

    QTableView lays out and repaints every visible cell after any row insert, even one far
    below what is shown. During an import the failure table takes in new rows several times
    a second while the user looks at its top; repainting those unchanged cells is most of
    what the window does then. Here only the scroll bars take in such rows. Any other change
    (a sort, a filter, a reset, rows inserted among the visible ones) is laid out and
    repainted as usual.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._since_layout = _NOTHING
        self._watched: QAbstractItemModel | None = None

    def setModel(self, model: QAbstractItemModel | None) -> None:
        if self._watched is not None:
            self._watched.rowsInserted.disconnect(self._rows_inserted)
            for signal in self._other_changes(self._watched):
                signal.disconnect(self._model_changed)
        super().setModel(model)
        self._watched = model
        self._since_layout = _OTHER
        if model is not None:
            model.rowsInserted.connect(self._rows_inserted)
            for signal in self._other_changes(model):
                signal.connect(self._model_changed)

    @staticmethod
    def _other_changes(model: QAbstractItemModel) -> tuple:
        return (model.modelReset, model.layoutChanged, model.rowsRemoved, model.rowsMoved,
                model.columnsInserted, model.columnsRemoved, model.columnsMoved,
                model.headerDataChanged)

    def _model_changed(self, *_args: object) -> None:
        self._since_layout = _OTHER

    def _rows_inserted(self, parent: QModelIndex | QPersistentModelIndex, first: int,
                       _last: int) -> None:
        if self._since_layout == _OTHER:
            return
        # the row under the viewport's last pixel line; -1 when the rows end above it
        last_shown = self.rowAt(self.viewport().height() - 1)
        if parent.isValid() or last_shown < 0 or first <= last_shown:
            self._since_layout = _OTHER
        else:
            self._since_layout = _APPENDED_BELOW

    def doItemsLayout(self) -> None:
        since_layout, self._since_layout = self._since_layout, _NOTHING
        if since_layout == _APPENDED_BELOW:
            # Qt cleared its pending-layout flag before calling this; the scroll bars are
            # all that changed on screen
            self.updateGeometries()
            return
        super().doItemsLayout()
