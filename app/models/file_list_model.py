"""The list of customer files on the Files tab: a Qt table model and its sorting proxy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QIcon

from app.models.display_text import human_size
from app.models.file_inspection import FileInspection, is_spreadsheet
from app.models.jobs import FileHistory
from app.models.status_colours import status_colours
from app.util.paths import path_key

AnyIndex = QModelIndex | QPersistentModelIndex


def _partly_imported_text(entry: FileEntry) -> str:
    """What became of a file imported in part, as its status: "Imported · 3 invalid",
    "Imported · 56 failed", "6 failed" (none went in), "Imported in part · 40 left"."""
    history = entry.history
    assert history is not None
    imported = len(history.imported)
    failed = history.open_failures
    left = max(0, history.records - imported)
    if failed and left <= failed:
        if not imported:
            return f"{failed:,} failed"
        # rows refused before sending are the file's own: said apart from the service's
        invalid = min(entry.invalid, failed)
        parts = [f"{failed - invalid:,} failed"] if failed > invalid else []
        if invalid:
            parts.append(f"{invalid:,} invalid")
        return " · ".join(["Imported", *parts])
    return f"Imported in part · {left:,} left"


class FileStatus(StrEnum):
    """Where a listed file stands. Plain strings, so `entry.status == "ready"` works."""

    COUNTING = "counting"  # being inspected on a worker thread
    READY = "ready"  # readable, holds customers, not imported yet
    INVALID = "invalid"  # cannot be imported: unreadable, broken or no customers
    IMPORTING = "importing"
    IMPORTED = "imported"  # every customer of its content was imported (perhaps earlier)
    PARTLY_IMPORTED = "partly"  # imported, but some customers are not (yet)
    FAILED = "failed"  # the import of this file stopped or could not start


_STATUS_LABELS = {
    FileStatus.COUNTING: "Counting…",
    FileStatus.READY: "Ready",
    FileStatus.INVALID: "Invalid",
    FileStatus.IMPORTING: "Importing…",
    FileStatus.IMPORTED: "Imported",
    FileStatus.PARTLY_IMPORTED: "Imported in part",
    FileStatus.FAILED: "Failed",
}
# Sorting by Status groups problems first: they are what the user has to look at.
_STATUS_ORDER = {
    FileStatus.INVALID: 0,
    FileStatus.FAILED: 1,
    FileStatus.COUNTING: 2,
    FileStatus.IMPORTING: 3,
    FileStatus.READY: 4,
    FileStatus.PARTLY_IMPORTED: 5,
    FileStatus.IMPORTED: 6,
}
_KIND_LABELS = {"customers": "Customers", "households": "Households", "mixed": "Mixed",
                "spreadsheet": "Spreadsheet"}
_KIND_TIPS = {
    "spreadsheet": "CSV file or Excel workbook: each row becomes a customer through its "
                   "mapping",
    "customers": "Customer (person) entries, sent to the customers endpoint",
    "households": "Household entries, sent to the households endpoint",
    "mixed": "Both customers and households: each goes to its own endpoint",
}

@dataclass(slots=True)
class FileEntry:
    """One listed file. customers is None while the file is still being counted."""

    path: Path
    size_bytes: int = 0
    kind: str = ""  # "customers" | "households" | "mixed" | ""
    customers: int | None = None  # entries read, valid + invalid
    invalid: int = 0  # entries the importer refuses before sending
    status: str = FileStatus.COUNTING
    detail: str = ""  # why the file has its status, shown as the Status tooltip
    sha256: str = ""  # its content's fingerprint, once counted
    history: FileHistory | None = None  # what earlier jobs imported of this content
    # spreadsheets: the mapping (file format, None: from the header), the workbook sheet
    # (None: the first with data), and what the Mapping column shows ("auto", a profile)
    mapping: dict[str, Any] | None = None
    sheet: str | None = None
    mapping_name: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_spreadsheet(self) -> bool:
        """CSV or Excel: rows are counted and checked with its mapping at Start."""
        return is_spreadsheet(self.path)


_ENTRY_FIELDS = frozenset(f.name for f in fields(FileEntry)) - {"path"}


def fields_for_inspection(inspection: FileInspection) -> dict[str, Any]:
    """The FileEntry fields that show what a worker found in a file."""
    found: dict[str, Any] = {
        "size_bytes": inspection.size_bytes,
        "kind": inspection.kind,
        "customers": inspection.customers,
        "invalid": inspection.invalid,
        "sha256": inspection.sha256,
        "history": None,
    }
    if inspection.problem is not None:
        found["status"] = FileStatus.INVALID
        detail = inspection.problem[:1].upper() + inspection.problem[1:]
        if inspection.customers:
            detail += (f". {inspection.customers:,} read before the problem; nothing from "
                       "this file is imported until it is fixed")
        found["detail"] = detail + ". Fix the file, then add it again to re-check it."
    elif inspection.customers and not inspection.valid:
        # nothing in it could be sent: as good as unreadable
        found["status"] = FileStatus.INVALID
        found["detail"] = (f"None of its {inspection.customers:,} entries can be sent "
                           f"(first: {inspection.first_invalid}). Fix the file, then add it "
                           "again to re-check it.")
    else:
        found["status"] = FileStatus.READY
        if inspection.invalid:
            found["detail"] = (
                f"Ready: {inspection.valid:,} will be sent; {inspection.invalid:,} invalid "
                f"{'entry is' if inspection.invalid == 1 else 'entries are'} refused before "
                "sending and listed as failures with the reason"
                + (f" (first: {inspection.first_invalid})." if inspection.first_invalid
                   else "."))
        else:
            count = inspection.customers
            found["detail"] = f"Ready: {count:,} {'entry' if count == 1 else 'entries'} to send."
    return found


#: Statuses of files an import takes (see FileListModel.ready_paths).
_SENDABLE = (FileStatus.READY, FileStatus.FAILED, FileStatus.PARTLY_IMPORTED)


SPREADSHEET_READY = ("Ready: its rows are counted and checked with its mapping when the "
                     "import starts (the review before Start lists any refused row).")


def _ready_detail(entry: FileEntry) -> str:
    if entry.is_spreadsheet and entry.customers is None:
        return SPREADSHEET_READY
    count = entry.customers or 0
    if entry.invalid:
        return (f"Ready: {count - entry.invalid:,} will be sent; {entry.invalid:,} invalid "
                f"{'entry is' if entry.invalid == 1 else 'entries are'} refused before "
                "sending and listed as failures with the reason.")
    return f"Ready: {count:,} {'entry' if count == 1 else 'entries'} to send."


class FileListModel(QAbstractTableModel):
    """Table of the customer files to import: Name, Kind, Customers, Size, Status.

    Flat (no children). Emits the standard model signals only: one rowsInserted per
    `add_paths` call and dataChanged per update, so callers should batch their updates
    (`update_entries`, `set_status`) rather than update file by file.
    """

    NAME, KIND, CUSTOMERS, SIZE, STATUS, MAPPING = range(6)
    HEADERS = ("Name", "Kind", "Customers", "Size", "Status", "Mapping")
    HEADER_TIPS = (
        "File name (hover a row for the full path)",
        "Customers, households, or a mix of both",
        "Entries in the file, with how many of them are invalid (spreadsheets: counted "
        "when the import starts)",
        "Size on disk",
        "Where the file stands (hover for the reason)",
        "Spreadsheets: how columns become customers (auto: from the header, or a saved "
        "mapping)",
    )

    EntryRole = Qt.ItemDataRole.UserRole + 1  # the FileEntry of the row
    SortRole = Qt.ItemDataRole.UserRole + 2  # raw values: numbers for Customers and Size

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._entries: list[FileEntry] = []
        self._rows: dict[str, int] = {}  # path_key -> row
        self._warning_icon: QIcon | None = None

    # -- Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.HEADER_TIPS[section]
        if role == Qt.ItemDataRole.TextAlignmentRole and section in (self.CUSTOMERS,
                                                                     self.SIZE):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._entries):
            return None
        entry = self._entries[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(entry, column)
        if role == self.EntryRole:
            return entry
        if role == self.SortRole:
            return self._sort_value(entry, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(entry, column)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            # "…" means nothing to a screen reader
            if column == self.CUSTOMERS and entry.customers is None:
                return "counted at start" if entry.is_spreadsheet else "counting"
            return self._display(entry, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if entry.status in (FileStatus.INVALID, FileStatus.FAILED):
                return QBrush(status_colours().error)  # for the palette in use
            if column == self.CUSTOMERS and entry.invalid:
                return QBrush(status_colours().warning)
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            if column == self.STATUS and entry.status in (FileStatus.INVALID,
                                                          FileStatus.FAILED):
                return self._warning_icon
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.CUSTOMERS, self.SIZE):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def _display(self, entry: FileEntry, column: int) -> str:
        if column == self.NAME:
            return entry.name
        if column == self.KIND:
            return _KIND_LABELS.get(entry.kind, entry.kind)
        if column == self.MAPPING:
            return (entry.mapping_name or "auto") if entry.is_spreadsheet else ""
        if column == self.CUSTOMERS:
            if entry.customers is None:
                # a spreadsheet's rows are counted with its mapping, at Start
                return "–" if entry.is_spreadsheet and entry.status != FileStatus.COUNTING \
                    else "…"
            if entry.status == FileStatus.INVALID and not entry.customers:
                return "—"  # nothing could be read: "0" would read as an empty file
            text = f"{entry.customers:,}"
            return f"{text} ({entry.invalid:,} invalid)" if entry.invalid else text
        if column == self.SIZE:
            return human_size(entry.size_bytes)
        if entry.status == FileStatus.PARTLY_IMPORTED and entry.history is not None:
            return _partly_imported_text(entry)
        return _STATUS_LABELS.get(entry.status, str(entry.status).capitalize())  # type: ignore[call-overload]

    def _tooltip(self, entry: FileEntry, column: int) -> str | None:
        if column == self.NAME:
            return str(entry.path)
        if column == self.STATUS:
            return entry.detail or self._display(entry, column)
        if column == self.SIZE:
            return f"{entry.size_bytes:,} bytes"
        if column == self.KIND:
            return _KIND_TIPS.get(entry.kind)
        if column == self.MAPPING and entry.is_spreadsheet:
            sheet = f"; sheet {entry.sheet}" if entry.sheet else ""
            return (f"Mapping: {entry.mapping_name or 'auto'}{sheet}. Select the file and "
                    "use Edit Mapping… to change it.")
        if column == self.CUSTOMERS and entry.customers is None and entry.is_spreadsheet:
            return "Rows are counted and checked with the mapping when the import starts"
        if column == self.CUSTOMERS and entry.customers is not None:
            return (f"{entry.customers - entry.invalid:,} valid, {entry.invalid:,} invalid"
                    if entry.invalid else f"{entry.customers:,} entries, all valid")
        return None

    def _sort_value(self, entry: FileEntry, column: int) -> Any:
        if column == self.NAME:
            return entry.name.casefold()
        if column == self.KIND:
            return entry.kind
        if column == self.CUSTOMERS:
            return -1 if entry.customers is None else entry.customers
        if column == self.SIZE:
            return entry.size_bytes
        if column == self.MAPPING:
            return entry.mapping_name.casefold()
        return _STATUS_ORDER.get(entry.status, len(_STATUS_ORDER))  # type: ignore[call-overload]

    def set_warning_icon(self, icon: QIcon | None) -> None:
        """The icon beside the status of a file that cannot be imported (the view's style)."""
        self._warning_icon = icon

    # -- list operations -------------------------------------------------------------

    def add_paths(self, paths: Iterable[str | Path],
                  sizes: Mapping[str, int] | None = None) -> list[FileEntry]:
        """Append the paths not listed yet, in "counting" state; returns the new entries.

        All new rows go in with ONE beginInsertRows, so 1,000 files cost one view update.
        `sizes` (path_key -> bytes) may carry sizes already known, e.g. from a folder scan.
        """
        new: list[FileEntry] = []
        keys: set[str] = set()
        for raw in paths:
            path = Path(raw)
            key = path_key(path)
            if key in self._rows or key in keys:
                continue
            keys.add(key)
            size = sizes.get(key, 0) if sizes else 0
            new.append(FileEntry(path=path, size_bytes=size))
        if not new:
            return []
        first = len(self._entries)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for offset, entry in enumerate(new):
            self._entries.append(entry)
            self._rows[path_key(entry.path)] = first + offset
        self.endInsertRows()
        return new

    def remove_rows(self, rows: Iterable[int]) -> list[FileEntry]:
        """Remove the given source rows; returns the removed entries.

        Contiguous rows go in one beginRemoveRows each, from the bottom up so the row
        numbers still to remove stay valid.
        """
        wanted = sorted({r for r in rows if 0 <= r < len(self._entries)}, reverse=True)
        removed: list[FileEntry] = []
        while wanted:
            last = first = wanted.pop(0)
            while wanted and wanted[0] == first - 1:
                first = wanted.pop(0)
            self.beginRemoveRows(QModelIndex(), first, last)
            removed[:0] = self._entries[first:last + 1]
            del self._entries[first:last + 1]
            self.endRemoveRows()
        if removed:
            self._reindex()
        return removed

    def remove_paths(self, paths: Iterable[str | Path]) -> list[FileEntry]:
        """Remove the listed files among `paths`; returns the removed entries."""
        rows = [self._rows[k] for k in map(path_key, paths) if k in self._rows]
        return self.remove_rows(rows)

    def clear(self) -> None:
        """Remove every row."""
        if not self._entries:
            return
        self.beginResetModel()
        self._entries.clear()
        self._rows.clear()
        self.endResetModel()

    def _reindex(self) -> None:
        self._rows = {path_key(e.path): row for row, e in enumerate(self._entries)}

    # -- queries ---------------------------------------------------------------------

    def entries(self) -> list[FileEntry]:
        """All entries in the order they were added (a copy of the list, not of entries)."""
        return list(self._entries)

    def entry_for(self, path: str | Path) -> FileEntry | None:
        row = self._rows.get(path_key(path))
        return None if row is None else self._entries[row]

    def row_of(self, path: str | Path) -> int | None:
        return self._rows.get(path_key(path))

    def total_customers(self) -> int | None:
        """Entries (valid + invalid) in every file that can be read; None while counting.

        Files whose status is "invalid" are left out: they will not be imported.
        """
        total = 0
        for entry in self._entries:
            if entry.is_spreadsheet and entry.status != FileStatus.COUNTING:
                continue  # counted at Start, with its mapping (see spreadsheet_count)
            if entry.status == FileStatus.COUNTING or entry.customers is None:
                return None
            if entry.status != FileStatus.INVALID:
                total += entry.customers
        return total

    def ready_customers(self) -> int | None:
        """Entries (valid + invalid) in the files `ready_paths` returns; None while counting.

        This, not total_customers(), is what an import of ready_paths() will read: it
        leaves out files already imported.
        """
        if any(e.status == FileStatus.COUNTING or e.customers is None for e in self._entries):
            return None  # still counting, or a spreadsheet (its rows are counted at Start)
        return sum(e.customers or 0 for e in self._entries if e.status in _SENDABLE)

    def ready_paths(self) -> list[Path]:
        """Files an import should take now, in the order they were added.

        "ready" files, plus "failed" ones (whose import stopped or could not start) and
        those "imported in part": the import then sends only the customers not imported
        yet. Files whose customers were all imported are left out (the window asks before
        sending them again), as are "invalid", "counting" and "importing" ones.
        """
        return [e.path for e in self._entries if e.status in _SENDABLE]

    def imported_before(self) -> list[FileEntry]:
        """Listed files an earlier import took, in whole or in part (by content)."""
        return [e for e in self._entries if e.history is not None and e.status in (
            FileStatus.IMPORTED, FileStatus.PARTLY_IMPORTED)]

    def apply_histories(self, histories: Mapping[str, FileHistory]) -> int:
        """Show what earlier jobs imported of each listed file (by content); returns how
        many files changed. Files under way (counting, importing) or invalid stay as they
        are."""
        changes: dict[Path, dict[str, Any]] = {}
        for entry in self._entries:
            if not entry.sha256 or entry.status in (FileStatus.COUNTING,
                                                    FileStatus.IMPORTING,
                                                    FileStatus.INVALID):
                continue
            history = histories.get(entry.sha256)
            if history is None or not history.last_job:
                if entry.history is not None:  # another results folder: new again
                    changes[entry.path] = {"history": None, "status": FileStatus.READY,
                                           "detail": _ready_detail(entry)}
                continue
            when = history.last_imported_at.replace("T", " ")[:16]
            if history.all_imported:
                changes[entry.path] = {
                    "history": history, "status": FileStatus.IMPORTED,
                    "detail": f"Already imported {when}, job #{history.last_job}: all "
                              f"{history.records:,} customers went in. Start asks before "
                              "sending them again."}
            else:
                left = max(0, history.records - len(history.imported))
                changes[entry.path] = {
                    "history": history, "status": FileStatus.PARTLY_IMPORTED,
                    "detail": f"Imported {when}, job #{history.last_job}: "
                              f"{len(history.imported):,} customers went in, "
                              f"{history.open_failures:,} failed. Start sends only the "
                              f"{left:,} not imported yet."}
        return self.update_entries(changes)

    def spreadsheet_count(self) -> int:
        """Listed spreadsheets (their rows are not in total_customers)."""
        return sum(1 for e in self._entries if e.is_spreadsheet)

    def invalid_count(self) -> int:
        return sum(1 for e in self._entries if e.status == FileStatus.INVALID)

    # -- updates ---------------------------------------------------------------------

    def update_entry(self, path: str | Path, **changes: Any) -> bool:
        """Change fields of one entry; emits dataChanged for that row only.

        Returns False when the path is not listed (it may have been removed meanwhile).
        """
        return self.update_entries({Path(path): changes}) == 1

    def update_entries(self, changes: Mapping[Path, Mapping[str, Any]]) -> int:
        """Change fields of many entries with ONE dataChanged (over the rows touched).

        Paths no longer listed are skipped; returns how many entries changed.
        """
        touched: list[int] = []
        for path, values in changes.items():
            unknown = set(values) - _ENTRY_FIELDS
            if unknown:
                raise TypeError(f"FileEntry has no field(s) {sorted(unknown)}")
            row = self._rows.get(path_key(path))
            if row is None:
                continue
            entry = self._entries[row]
            for name, value in values.items():
                setattr(entry, name, value)
            touched.append(row)
        if touched:
            # One range for the lot: views repaint only what is visible anyway, and the
            # proxy re-sorts once instead of once per file.
            self.dataChanged.emit(self.index(min(touched), 0),
                                  self.index(max(touched), self.columnCount() - 1))
        return len(touched)

    def apply_inspections(self, inspections: Iterable[FileInspection]) -> int:
        """Show what workers found in files; one dataChanged for the lot."""
        return self.update_entries({i.path: fields_for_inspection(i) for i in inspections})

    def set_status(self, paths: Iterable[str | Path], status: str, detail: str = "") -> int:
        """Give the listed files among `paths` a status (and reason); one dataChanged."""
        value = FileStatus(status)  # refuse words the model does not know
        return self.update_entries({Path(p): {"status": value, "detail": detail}
                                    for p in paths})


class FileListProxy(QSortFilterProxyModel):
    """Sorts the file list by `FileListModel.SortRole` (numbers sort as numbers).

    Sorting runs in C++; a file list is at most a few thousand rows, so asking the Python
    model for sort values is cheap enough.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(FileListModel.SortRole)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setDynamicSortFilter(True)

    def entry_at(self, index: AnyIndex) -> FileEntry | None:
        """The FileEntry behind a proxy index."""
        value = self.data(index, FileListModel.EntryRole)
        return value if isinstance(value, FileEntry) else None
