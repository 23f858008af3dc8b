"""The History tab's table: one row per import job of the results folder."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush

from app.models.jobs import JobRecord, JobState, duration_text, files_text
from app.models.status_colours import Tone, status_colours

AnyIndex = QModelIndex | QPersistentModelIndex

_LAYOUT_SIGNATURE = ("QList<QPersistentModelIndex>", "QAbstractItemModel::LayoutChangeHint")
_SORT_HINT = QAbstractItemModel.LayoutChangeHint.VerticalSortHint

_STATE_TONES = {
    JobState.INTERRUPTED: Tone.WARNING,
    JobState.FAILED: Tone.ERROR,
    JobState.COMPLETED_WITH_FAILURES: Tone.ERROR,
    JobState.COMPLETED: Tone.SUCCESS,
}




class HistoryModel(QAbstractTableModel):
    """Jobs, newest first: started, files, customers, imported, failed, open failures,
    state, duration. `SortRole` gives raw values, for sorting numbers as numbers.

    The model sorts itself (`sort`), with one Python sort over keys made once per job:
    a proxy sorting 1,000 jobs would call back into Python for every comparison.
    """

    JOB, STARTED, FILES, CUSTOMERS, IMPORTED, FAILED, OPEN, STATE, DURATION = range(9)
    HEADERS = ("Job", "Started", "Files", "Customers", "Imported", "Failed", "Open failures",
               "State", "Duration")
    JobRole = Qt.ItemDataRole.UserRole + 1
    SortRole = Qt.ItemDataRole.UserRole + 2
    _NUMBERS = frozenset({JOB, CUSTOMERS, IMPORTED, FAILED, OPEN, DURATION})

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[JobRecord] = []
        self._keys: dict[int, tuple[Any, ...]] = {}  # by job id: sort values by column
        self._files_texts: dict[int, str] = {}  # by job id
        self._sort_column = -1  # -1: as given (newest first)
        self._sort_order = Qt.SortOrder.AscendingOrder

    def set_jobs(self, jobs: list[JobRecord]) -> None:
        self.beginResetModel()
        self._files_texts = {job.id: files_text(job) for job in jobs}
        self._keys = {job.id: self._sort_values(job) for job in jobs}
        self._jobs = self._sorted(list(jobs))
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the jobs by `column` (-1: newest first); selections follow their jobs."""
        self._sort_column = column if 0 <= column < len(self.HEADERS) else -1
        self._sort_order = order
        new_jobs = self._sorted(self._jobs)
        if [j.id for j in new_jobs] == [j.id for j in self._jobs]:
            return
        # PySide6's stubs have no SignalInstance.__getitem__ (picking an overload by signature)
        self.layoutAboutToBeChanged[_LAYOUT_SIGNATURE].emit(  # type: ignore[index]
            [], _SORT_HINT)
        persistent = self.persistentIndexList()
        row_of = {job.id: row for row, job in enumerate(new_jobs)}
        old_jobs, self._jobs = self._jobs, new_jobs
        if persistent:
            self.changePersistentIndexList(
                persistent,
                [self.index(row_of[old_jobs[i.row()].id], i.column())
                 if i.isValid() and i.row() < len(old_jobs) else QModelIndex()
                 for i in persistent])
        self.layoutChanged[_LAYOUT_SIGNATURE].emit([], _SORT_HINT)  # type: ignore[index]

    def _sorted(self, jobs: list[JobRecord]) -> list[JobRecord]:
        column = self._sort_column
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        if column < 0:
            return sorted(jobs, key=lambda job: job.id, reverse=True)
        keys = self._keys
        # ties in the newest-first order, whichever way the column goes
        newest_first = sorted(jobs, key=lambda job: job.id, reverse=True)
        return sorted(newest_first, key=lambda job: keys[job.id][column], reverse=descending)

    def job(self, row: int) -> JobRecord:
        return self._jobs[row]

    def jobs(self) -> list[JobRecord]:
        return list(self._jobs)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.HEADERS):
            if role == Qt.ItemDataRole.DisplayRole:
                return self.HEADERS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in self._NUMBERS:
                return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._jobs):
            return None
        job = self._jobs[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, column)
        if role == self.SortRole:
            return self._keys[job.id][column]
        if role == self.JobRole:
            return job
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.FILES:
                return "\n".join(f.path for f in job.files) or None
            if column == self.STATE and job.error:
                return job.error
            if column == self.STATE and job.state is JobState.INTERRUPTED:
                return "Its app stopped before it finished: it can be resumed"
            return None
        if role == Qt.ItemDataRole.ForegroundRole and column == self.STATE:
            tone = _STATE_TONES.get(job.state)  # coloured for the palette in use
            return QBrush(status_colours().colour(tone)) if tone is not None else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self._NUMBERS:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def _display(self, job: JobRecord, column: int) -> str:
        if column == self.JOB:
            return f"#{job.id}" + (" (retry)" if job.kind == "retry" else "")
        if column == self.STARTED:
            return job.started.replace("T", " ")[:16]
        if column == self.FILES:
            return self._files_texts[job.id]
        if column == self.CUSTOMERS:
            return f"{job.read:,}"
        if column == self.IMPORTED:
            return f"{job.succeeded:,}"
        if column == self.FAILED:
            return f"{job.failed:,}"
        if column == self.OPEN:
            return f"{job.open_failures:,}"
        if column == self.STATE:
            return job.state.label
        return duration_text(job.duration_s)

    def _sort_values(self, job: JobRecord) -> tuple[Any, ...]:
        return (job.id, job.started, self._files_texts[job.id].casefold(), job.read, job.succeeded,
                job.failed, job.open_failures, job.state.label, job.duration_s)


class HistoryProxy(QSortFilterProxyModel):
    """The History tab's view of the jobs; sorting goes to `HistoryModel.sort` (the proxy
    itself keeps the source's order, its sort column stays -1)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(HistoryModel.SortRole)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if source is not None:
            source.sort(column, order)

    def job_at(self, row: int) -> JobRecord | None:
        index = self.index(row, 0)
        job = self.data(index, HistoryModel.JobRole) if index.isValid() else None
        return job if isinstance(job, JobRecord) else None
