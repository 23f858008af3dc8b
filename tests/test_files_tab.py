"""The Files tab: file inspection, the file list model and the tab itself (pytest-qt)."""

from __future__ import annotations

import hashlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from PySide6.QtCore import QMimeData, QModelIndex, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QFileDialog
from pytestqt.qtbot import QtBot

from app.models.display_text import human_size
from app.models.file_list_model import (
    FileEntry,
    FileListModel,
    FileListProxy,
    FileStatus,
)
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources import file_checker
from app.services.sources.file_checker import FileChecker
from app.services.sources.file_inspector import (
    NO_CUSTOMERS_FOUND,
    FileInspection,
    inspect_file,
)
from app.util.background import Cancelled, CancelToken, Pool, thread_pool
from app.util.paths import path_key
from app.views.files_tab import FilesTab

COUNT_TIMEOUT_MS = 30_000


# -- helpers and fixtures ------------------------------------------------------------------


def households(count: int) -> Iterator[dict[str, object]]:
    for i in range(count):
        yield {"changeType": "CREATE",
               "household": {"householdId": f"H{i:05d}", "name": f"Hushåll {i}"}}


@pytest.fixture
def tab(qtbot: QtBot) -> Iterator[FilesTab]:
    widget = FilesTab()
    qtbot.addWidget(widget)
    widget.resize(900, 420)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


@pytest.fixture
def customer_tree(tmp_path: Path) -> Path:
    """A folder with subfolders: 4 customer files (one with invalid entries) + noise."""
    root = tmp_path / "import"
    write_customer_file(root / "a_customers.json", generate_customers(5))
    write_customer_file(root / "sub" / "b_households.json", households(3),
                        wrapper="households")
    write_customer_file(root / "sub" / "deeper" / "c_lines.jsonl",
                        generate_customers(4, start_id=60000000000), json_lines=True)
    write_customer_file(root / "sub" / "d_some_invalid.json",
                        generate_customers(6, start_id=70000000000, invalid=2))
    (root / "notes.txt").write_text("not a customer file", encoding="utf-8")
    (root / "sub" / "retry_summary.json").write_text(
        '{"createdAt": "2026-01-01T10:00:00", "importStartedAt": "2026-01-01T09:59:59"}',
        encoding="utf-8")
    return root


def listed_names(tab: FilesTab) -> list[str]:
    return sorted(e.path.name for e in tab.model.entries())


def add_and_wait(qtbot: QtBot, tab: FilesTab, paths: list[Path]) -> None:
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        tab.add_paths(paths)


# -- inspect_file ----------------------------------------------------------------------------


def test_inspect_data_wrapper(tmp_path: Path) -> None:
    path = tmp_path / "customers.json"
    write_customer_file(path, generate_customers(7, invalid=2), wrapper="data")
    result = inspect_file(path)
    assert result == FileInspection(
        path=path, kind="customers", customers=7, invalid=2, size_bytes=path.stat().st_size,
        problem=None, first_invalid="customers.json, record 6, field person.birthday: "
        "birthday '1987-02-30' is not a real date (YYYY-MM-DD)",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    assert result.usable and result.valid == 5


def test_inspect_households(tmp_path: Path) -> None:
    path = tmp_path / "households.json"
    write_customer_file(path, households(4), wrapper="households")
    result = inspect_file(path)
    assert (result.kind, result.customers, result.invalid, result.problem) == (
        "households", 4, 0, None)


def test_inspect_json_lines_and_plain_list(tmp_path: Path) -> None:
    lines = tmp_path / "customers.jsonl"
    write_customer_file(lines, generate_customers(3), json_lines=True)
    with lines.open("ab") as handle:
        handle.write(b"{not json\n")  # a broken line is an invalid entry, not a lost file
    result = inspect_file(lines)
    assert (result.kind, result.customers, result.invalid, result.problem) == (
        "customers", 4, 1, None)

    plain = tmp_path / "list.json"
    write_customer_file(plain, generate_customers(2), wrapper=None)
    assert inspect_file(plain).customers == 2


def test_inspect_mixed(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    entries = [*generate_customers(2), *households(1)]
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    assert inspect_file(path).kind == "mixed"


def test_inspect_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    good = orjson.dumps(next(generate_customers(1)))
    path.write_bytes(b'{"data": [' + good + b', {"changeType": "CRE')
    result = inspect_file(path)
    assert result.problem is not None and "broken JSON" in result.problem
    assert result.customers == 1  # what was read before the break
    assert not result.usable


def test_inspect_cp1252_file_names_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ansi.json"
    text = ('{"data": [{"changeType": "CREATE", "person": '
            '{"customerId": "1", "firstName": "Åsa", "lastName": "Sjöberg"}}]}')
    path.write_bytes(text.encode("cp1252"))
    result = inspect_file(path)
    # the entry, not the whole file: one stray byte must not cost a file's other customers
    assert (result.problem, result.customers, result.invalid) == (None, 1, 1)
    assert "record 1, field person.firstName" in result.first_invalid
    assert "0xC5, which is not UTF-8" in result.first_invalid


def test_inspect_empty_and_customerless_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    result = inspect_file(empty)
    assert result.problem == "the file is empty"
    assert (result.customers, result.size_bytes, result.kind) == (0, 0, "")

    no_entries = tmp_path / "none.json"
    no_entries.write_bytes(b'{"data": []}')
    assert inspect_file(no_entries).problem == NO_CUSTOMERS_FOUND

    empty_lines = tmp_path / "empty.jsonl"
    empty_lines.write_bytes(b"\n\n")
    assert inspect_file(empty_lines).problem == NO_CUSTOMERS_FOUND


def test_inspect_missing_file_and_cancel(tmp_path: Path) -> None:
    result = inspect_file(tmp_path / "gone.json")
    assert result.problem is not None and "cannot open" in result.problem

    big = tmp_path / "big.json"
    write_customer_file(big, generate_customers(2000))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        inspect_file(big, token=token)


# -- the model -------------------------------------------------------------------------------


def filled_model(tmp_path: Path) -> FileListModel:
    model = FileListModel()
    model.add_paths([tmp_path / "b.json", tmp_path / "a.json", tmp_path / "c.jsonl"])
    model.update_entry(tmp_path / "b.json", customers=12345, invalid=2, size_bytes=1536,
                       kind="customers", status=FileStatus.READY, detail="Ready")
    model.update_entry(tmp_path / "a.json", customers=0, size_bytes=900,
                       status=FileStatus.INVALID, detail="The file is empty")
    return model  # c.jsonl is still counting


def test_model_passes_model_tester(qtmodeltester, tmp_path: Path) -> None:
    model = filled_model(tmp_path)
    qtmodeltester.check(model)
    proxy = FileListProxy()
    proxy.setSourceModel(model)
    proxy.sort(FileListModel.SIZE, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(proxy)
    # the testers keep watching: mutations must keep the model consistent
    model.add_paths([tmp_path / "d.json", tmp_path / "e.json"])
    model.set_status([tmp_path / "d.json", tmp_path / "e.json"], "ready")
    model.remove_rows([0, 2])
    model.clear()


def test_model_display_roles(tmp_path: Path) -> None:
    model = filled_model(tmp_path)
    row = {e.path.name: r for r, e in enumerate(model.entries())}

    def cell(name: str, column: int, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        return model.data(model.index(row[name], column), role)

    assert cell("b.json", FileListModel.NAME) == "b.json"
    assert cell("b.json", FileListModel.NAME, Qt.ItemDataRole.ToolTipRole) == str(
        tmp_path / "b.json")
    assert cell("b.json", FileListModel.CUSTOMERS) == "12,345 (2 invalid)"
    assert cell("b.json", FileListModel.SIZE) == "1.5 KB"
    assert cell("b.json", FileListModel.KIND) == "Customers"
    assert cell("c.jsonl", FileListModel.CUSTOMERS) == "…"
    assert cell("c.jsonl", FileListModel.STATUS) == "Counting…"
    assert cell("a.json", FileListModel.STATUS) == "Invalid"
    assert cell("a.json", FileListModel.STATUS, Qt.ItemDataRole.ToolTipRole) == (
        "The file is empty")
    assert cell("a.json", FileListModel.NAME, Qt.ItemDataRole.ForegroundRole) is not None
    assert cell("b.json", FileListModel.NAME, Qt.ItemDataRole.ForegroundRole) is None
    entry = cell("b.json", 0, FileListModel.EntryRole)
    assert isinstance(entry, FileEntry) and entry.customers == 12345
    assert cell("b.json", FileListModel.SIZE, FileListModel.SortRole) == 1536
    assert cell("c.jsonl", FileListModel.CUSTOMERS, FileListModel.SortRole) == -1
    assert model.rowCount(model.index(0, 0)) == 0
    assert model.headerData(2, Qt.Orientation.Horizontal) == "Customers"
    assert [human_size(n) for n in (0, 1023, 10 * 1024 * 1024)] == ["0 B", "1023 B",
                                                                      "10.0 MB"]


def test_model_operations(qtbot: QtBot, tmp_path: Path) -> None:
    model = filled_model(tmp_path)
    inserted: list[tuple[int, int]] = []
    changed: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    model.dataChanged.connect(lambda tl, br, _roles=(): changed.append((tl.row(), br.row())))

    new = model.add_paths([tmp_path / "a.json", tmp_path / "x.json", tmp_path / "y.json",
                           tmp_path / "x.json"])
    assert [e.path.name for e in new] == ["x.json", "y.json"]  # a.json already listed
    assert inserted == [(3, 4)]  # one insertion for the whole chunk

    assert model.update_entry(tmp_path / "y.json", customers=3, status="ready")
    assert changed == [(4, 4)]  # that row only
    assert not model.update_entry(tmp_path / "nope.json", customers=1)
    with pytest.raises(TypeError):
        model.update_entry(tmp_path / "y.json", colour="red")

    assert model.total_customers() is None  # c.jsonl and x.json still counting
    model.set_status([tmp_path / "c.jsonl", tmp_path / "x.json"], "failed", "stopped")
    model.update_entries({tmp_path / "c.jsonl": {"customers": 4},
                          tmp_path / "x.json": {"customers": 1}})
    # a.json is invalid, so its entries do not count
    assert model.total_customers() == 12345 + 4 + 1 + 3
    assert [p.name for p in model.ready_paths()] == ["b.json", "c.jsonl", "x.json", "y.json"]
    assert model.ready_customers() == 12345 + 4 + 1 + 3
    model.set_status([tmp_path / "b.json"], "imported")
    assert tmp_path / "b.json" not in model.ready_paths()
    assert model.ready_customers() == 4 + 1 + 3  # imported files are not read again
    assert model.total_customers() == 12345 + 4 + 1 + 3
    with pytest.raises(ValueError):
        model.set_status([tmp_path / "b.json"], "done")

    removed = model.remove_rows([0, 1, 4])
    assert [e.path.name for e in removed] == ["b.json", "a.json", "y.json"]
    assert [e.path.name for e in model.entries()] == ["c.jsonl", "x.json"]
    assert model.entry_for(tmp_path / "x.json") is model.entries()[1]
    model.clear()
    assert model.rowCount() == 0 and model.total_customers() == 0


def test_proxy_sorts_numbers_as_numbers(tmp_path: Path) -> None:
    model = FileListModel()
    sizes = {"small.json": 900, "big.json": 10 * 1024, "mid.json": 2048}
    model.add_paths([tmp_path / name for name in sizes])
    for name, size in sizes.items():
        model.update_entry(tmp_path / name, size_bytes=size, customers=size // 100,
                           status="ready")
    proxy = FileListProxy()
    proxy.setSourceModel(model)
    for column in (FileListModel.SIZE, FileListModel.CUSTOMERS):
        proxy.sort(column, Qt.SortOrder.AscendingOrder)
        names = [proxy.data(proxy.index(r, 0)) for r in range(proxy.rowCount())]
        assert names == ["small.json", "mid.json", "big.json"]


# -- the tab -------------------------------------------------------------------------------


def test_add_folder_with_subfolders(qtbot: QtBot, tab: FilesTab, customer_tree: Path) -> None:
    changes: list[None] = []
    tab.filesChanged.connect(lambda: changes.append(None))
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        tab.add_paths([customer_tree])
        assert tab.is_counting()
        assert tab.total_customers() is None
    assert not tab.is_counting()
    assert listed_names(tab) == ["a_customers.json", "b_households.json", "c_lines.jsonl",
                                 "d_some_invalid.json"]
    by_name = {e.path.name: e for e in tab.model.entries()}
    assert by_name["b_households.json"].kind == "households"
    assert by_name["c_lines.jsonl"].customers == 4
    assert (by_name["d_some_invalid.json"].customers,
            by_name["d_some_invalid.json"].invalid) == (6, 2)
    assert all(e.status == "ready" for e in by_name.values())
    assert tab.total_customers() == tab.ready_customers() == 5 + 3 + 4 + 6
    assert len(tab.ready_files()) == 4
    assert tab.summary_label.text() == "4 files · 18 customers"
    assert not tab.progress_bar.isVisible()
    assert changes

    # adding the same folder again adds nothing
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        tab.add_paths([customer_tree])
    assert tab.model.rowCount() == 4


def test_invalid_files_are_flagged_and_counted_again(qtbot: QtBot, tab: FilesTab,
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "ansi.json"
    bad.write_bytes('{"data": [{"changeType": "CREATE", "person": {"customerId": "1", '
                    '"lastName": "Öberg"}}]}'.encode("cp1252"))
    good = tmp_path / "good.json"
    write_customer_file(good, generate_customers(2))
    add_and_wait(qtbot, tab, [bad, good])
    entry = tab.model.entry_for(bad)
    assert entry is not None and entry.status == "invalid" and "UTF-8" in entry.detail
    assert tab.ready_files() == [good]
    assert tab.summary_label.text() == "2 files · 2 customers · 1 invalid file"
    assert tab.total_customers() == 2

    # fixed and added again: counted again
    write_customer_file(bad, generate_customers(3, start_id=1))
    add_and_wait(qtbot, tab, [bad])
    entry = tab.model.entry_for(bad)
    assert entry is not None and (entry.status, entry.customers) == ("ready", 3)


def _drag_enter(mime: QMimeData) -> QDragEnterEvent:
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    try:
        return QDragEnterEvent(QPointF(20, 20), *args)
    except TypeError:  # PySide6 before 6.12 takes a QPoint (6.12 deprecates that)
        return QDragEnterEvent(QPoint(20, 20), *args)


def _drop(tab: FilesTab, paths: list[Path]) -> tuple[bool, bool]:
    """A real drag-enter then drop of local files, as Explorer or Finder sends them."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = _drag_enter(mime)
    QApplication.sendEvent(tab, enter)
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(tab, drop)
    return enter.isAccepted(), drop.isAccepted()


def test_drop_files_and_folders(qtbot: QtBot, tab: FilesTab, customer_tree: Path,
                                tmp_path: Path) -> None:
    single = tmp_path / "single.json"
    write_customer_file(single, generate_customers(2, start_id=80000000000))
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        accepted = _drop(tab, [single, customer_tree / "sub"])
    assert accepted == (True, True)
    assert listed_names(tab) == ["b_households.json", "c_lines.jsonl",
                                 "d_some_invalid.json", "single.json"]

    # text without URLs is refused
    mime = QMimeData()
    mime.setText("hello")
    enter = _drag_enter(mime)
    QApplication.sendEvent(tab, enter)
    assert not enter.isAccepted()

    tab.set_locked(True)  # during an import, drops are refused
    assert not _drop(tab, [customer_tree])[1]
    assert not tab.add_files_button.isEnabled() and not tab.clear_button.isEnabled()
    tab.set_locked(False)
    assert tab.clear_button.isEnabled()


def test_add_directory_through_dialog(qtbot: QtBot, tab: FilesTab,
                                      customer_tree: Path) -> None:
    qtbot.mouseClick(tab.add_dir_button, Qt.MouseButton.LeftButton)
    dialog = tab.findChild(QFileDialog, "addDirectoryDialog")
    assert dialog is not None and dialog.isVisible()
    assert not dialog.testOption(QFileDialog.Option.DontUseNativeDialog)  # the system's
    assert dialog.fileMode() == QFileDialog.FileMode.Directory
    dialog.setDirectory(str(customer_tree.parent))
    dialog.selectFile(str(customer_tree))
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        dialog.accept()
    assert len(tab.model.entries()) == 4
    assert tab.last_folder == customer_tree
    qtbot.waitUntil(lambda: tab.findChild(QFileDialog) is None)  # closed dialogs go away


def test_add_files_through_dialog(qtbot: QtBot, tab: FilesTab, customer_tree: Path) -> None:
    tab.last_folder = str(customer_tree)  # as the main window restores it from QSettings
    tab.add_files_button.click()
    dialog = tab.findChild(QFileDialog, "addFilesDialog")
    assert dialog is not None
    assert Path(dialog.directory().absolutePath()) == customer_tree
    assert dialog.fileMode() == QFileDialog.FileMode.ExistingFiles
    dialog.selectFile(str(customer_tree / "a_customers.json"))
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        dialog.accept()
    assert listed_names(tab) == ["a_customers.json"]
    assert tab.last_folder == customer_tree


def test_remove_with_button_and_delete_key(qtbot: QtBot, tab: FilesTab,
                                           customer_tree: Path) -> None:
    add_and_wait(qtbot, tab, [customer_tree])
    assert not tab.remove_button.isEnabled()
    tab.table.selectRow(0)
    assert tab.remove_button.isEnabled()
    with qtbot.waitSignal(tab.filesChanged):
        qtbot.mouseClick(tab.remove_button, Qt.MouseButton.LeftButton)
    assert listed_names(tab) == ["b_households.json", "c_lines.jsonl", "d_some_invalid.json"]

    # sorted view: the selection maps back to the right source rows
    tab.table.sortByColumn(FileListModel.NAME, Qt.SortOrder.DescendingOrder)
    tab.table.selectRow(0)  # d_some_invalid.json
    tab.table.selectionModel().select(
        tab.proxy.index(2, 0), tab.table.selectionModel().SelectionFlag.Select
        | tab.table.selectionModel().SelectionFlag.Rows)  # b_households.json
    tab.table.setFocus()
    qtbot.keyClick(tab.table, Qt.Key.Key_Delete)
    assert listed_names(tab) == ["c_lines.jsonl"]
    assert tab.summary_label.text() == "1 file · 4 customers"


def test_clear(qtbot: QtBot, tab: FilesTab, customer_tree: Path) -> None:
    add_and_wait(qtbot, tab, [customer_tree])
    with qtbot.waitSignal(tab.filesChanged):
        qtbot.mouseClick(tab.clear_button, Qt.MouseButton.LeftButton)
    assert tab.model.rowCount() == 0
    assert tab.ready_files() == [] and tab.total_customers() == 0
    assert not tab.clear_button.isEnabled()
    assert tab.summary_label.text() == "No files"


def test_clear_while_counting_ends_the_session(qtbot: QtBot, tab: FilesTab,
                                               tmp_path: Path) -> None:
    for i in range(40):
        write_customer_file(tmp_path / "many" / f"f{i:02d}.json",
                            generate_customers(300, start_id=i * 1000))
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        tab.add_paths([tmp_path / "many"])
        qtbot.waitUntil(lambda: tab.model.rowCount() == 40)
        tab.clear()
        assert not tab.is_counting()
    assert tab.model.rowCount() == 0


def test_a_cancelled_count_stops_and_tells_nothing(qtbot: QtBot, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "stor.json"
    write_customer_file(big, generate_customers(20_000))
    started = threading.Event()
    outcomes: list[str] = []

    def watched(path: Path, *, token: CancelToken) -> FileInspection:
        started.set()
        try:
            result = inspect_file(path, token=token)
        except Cancelled:
            outcomes.append("stopped")
            raise
        outcomes.append("counted to the end")
        return result

    monkeypatch.setattr(file_checker, "inspect_file", watched)
    checker = FileChecker()
    counted: list[object] = []
    checker.inspected.connect(counted.append)
    checker.inspect([big], {})  # size unknown: counted on a thread of the pool
    assert started.wait(10)
    with qtbot.waitSignal(checker.finished, timeout=COUNT_TIMEOUT_MS):
        checker.cancel_all()  # the user cleared the list
    assert thread_pool(Pool.FILE_CHECKS).waitForDone(COUNT_TIMEOUT_MS)
    QApplication.sendPostedEvents()  # an answer would be delivered now
    assert outcomes == ["stopped"]
    assert counted == [] and not checker.is_busy()


def counting_helpers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "file-counter"]


def test_a_big_file_is_counted_in_a_helper_process(qtbot: QtBot, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "stor.json"
    write_customer_file(big, generate_customers(12_000, invalid=3))
    size = big.stat().st_size
    assert size >= file_checker.LARGE_FILE_BYTES
    # counted in this process, it would fail
    monkeypatch.setattr(file_checker, "inspect_file", lambda *_a, **_k: pytest.fail("here"))
    checker = FileChecker()
    counted: list[FileInspection] = []
    checker.inspected.connect(counted.extend)
    with qtbot.waitSignal(checker.finished, timeout=COUNT_TIMEOUT_MS):
        checker.inspect([big], {path_key(big): size})
    assert len(counted) == 1
    assert (counted[0].customers, counted[0].invalid, counted[0].problem) == (12_000, 3, None)
    assert counted[0].size_bytes == size and len(counted[0].sha256) == 64


def test_cancelling_a_big_count_ends_its_helper_process(qtbot: QtBot, tmp_path: Path) -> None:
    big = tmp_path / "stor.json"
    write_customer_file(big, generate_customers(60_000))
    checker = FileChecker()
    counted: list[object] = []
    checker.inspected.connect(counted.append)
    checker.inspect([big], {path_key(big): big.stat().st_size})
    qtbot.waitUntil(lambda: len(counting_helpers()) == 1, timeout=COUNT_TIMEOUT_MS)
    helper = counting_helpers()[0]
    with qtbot.waitSignal(checker.finished, timeout=COUNT_TIMEOUT_MS):
        checker.cancel_all()
    assert thread_pool(Pool.FILE_CHECKS).waitForDone(COUNT_TIMEOUT_MS)
    assert helper.exitcode == -signal.SIGKILL  # stopped, not done counting
    assert counting_helpers() == []
    QApplication.sendPostedEvents()
    assert counted == []


def test_load_retry_folder_lists_only_batch_files(qtbot: QtBot, tab: FilesTab,
                                                  tmp_path: Path,
                                                  customer_tree: Path) -> None:
    add_and_wait(qtbot, tab, [customer_tree])
    retry = tmp_path / "retry_batches_20250703_143022"
    write_customer_file(retry / "retry_batch_01_failed.json", generate_customers(3))
    (retry / "retry_summary.json").write_text(
        '{"createdAt": "2026-01-01T10:00:00", "importStartedAt": "2026-01-01T09:59:59"}',
        encoding="utf-8")
    (retry / "RETRY_INSTRUCTIONS.md").write_text("# Retry\n", encoding="utf-8")
    finished: list[None] = []
    tab.countingFinished.connect(lambda: finished.append(None))
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        tab.load_retry_folder(retry)
    assert listed_names(tab) == ["retry_batch_01_failed.json"]
    assert tab.ready_files() == [retry / "retry_batch_01_failed.json"]
    assert tab.total_customers() == 3
    qtbot.wait(3 * 100)  # no second countingFinished from the clear() inside
    assert len(finished) == 1


def test_thousand_files_keep_the_gui_responsive(qtbot: QtBot, tab: FilesTab,
                                                tmp_path: Path) -> None:
    folder = tmp_path / "thousand"
    for i in range(1000):
        write_customer_file(folder / f"part_{i // 100:02d}" / f"customers_{i:04d}.json",
                            generate_customers(3, start_id=50000000000 + i * 10, seed=i))
    counts = {"dataChanged": 0, "rowsInserted": 0}
    tab.model.dataChanged.connect(lambda *_: counts.__setitem__(
        "dataChanged", counts["dataChanged"] + 1))
    tab.model.rowsInserted.connect(lambda *_: counts.__setitem__(
        "rowsInserted", counts["rowsInserted"] + 1))

    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    progress_seen: list[str] = []
    tab.filesChanged.connect(lambda: progress_seen.append(tab.progress_label.text()))
    try:
        last[0] = time.perf_counter()
        with qtbot.waitSignal(tab.countingFinished, timeout=120_000):
            tab.add_paths([folder])
    finally:
        heartbeat.stop()

    assert tab.model.rowCount() == 1000
    assert tab.total_customers() == 3000
    assert len(gaps) > 5
    assert max(gaps) < 0.2, f"GUI froze for {max(gaps) * 1000:.0f} ms"
    assert counts["rowsInserted"] == 1  # all 1,000 rows in one go
    assert counts["dataChanged"] < 100, counts  # coalesced, not one per file
    assert any(text.startswith("Checking ") for text in progress_seen)
    print(f"1,000 files: {len(gaps)} beats, worst gap {max(gaps) * 1000:.0f} ms, {counts}")


def test_swedish_names_and_screenshot(qtbot: QtBot, tab: FilesTab, tmp_path: Path) -> None:
    folder = tmp_path / "Kunder Åsa Ärlig Östberg"
    write_customer_file(folder / "kunder_Åsa_Ärlig_Öberg.json", generate_customers(1234))
    write_customer_file(folder / "hushåll_Göteborg.json", households(12),
                        wrapper="households")
    write_customer_file(folder / "Malmö_rader.jsonl", generate_customers(40, invalid=3),
                        json_lines=True)
    (folder / "trasig_fil_Ö.json").write_bytes(b'{"data": [{"changeType": ')
    add_and_wait(qtbot, tab, [folder])
    names = [tab.proxy.data(tab.proxy.index(r, FileListModel.NAME))
             for r in range(tab.proxy.rowCount())]
    assert "kunder_Åsa_Ärlig_Öberg.json" in names
    assert "hushåll_Göteborg.json" in names
    row = names.index("kunder_Åsa_Ärlig_Öberg.json")
    assert tab.proxy.data(tab.proxy.index(row, FileListModel.NAME),
                          Qt.ItemDataRole.ToolTipRole) == str(
        folder / "kunder_Åsa_Ärlig_Öberg.json")
    assert tab.proxy.data(tab.proxy.index(row, FileListModel.CUSTOMERS)) == "1,234"
    assert tab.summary_label.text() == "4 files · 1,286 customers · 1 invalid file"

    shot = tmp_path / "files_tab.png"
    assert tab.grab().save(str(shot))
    assert shot.stat().st_size > 0
    image = QImage(str(shot))
    assert image.width() == tab.width() and not image.isNull()


def test_accessibility_and_tab_order(tab: FilesTab) -> None:
    controls = [tab.add_files_button, tab.add_dir_button, tab.remove_button,
                tab.clear_button, tab.table, tab.summary_label, tab.progress_bar]
    for control in controls:
        assert control.accessibleName(), control
    for control in [*controls[:4], tab.progress_bar, tab.summary_label]:
        assert control.toolTip(), control
    order = [tab.add_files_button]
    for _ in range(5):
        order.append(order[-1].nextInFocusChain())
    assert order[1:] == [tab.add_dir_button, tab.remove_button, tab.clear_button,
                         tab.edit_mapping_button, tab.table]
    assert tab.edit_mapping_button.accessibleName() and tab.edit_mapping_button.toolTip()


def test_model_index_for_invalid_parent_is_safe(tmp_path: Path) -> None:
    model = filled_model(tmp_path)
    assert model.data(QModelIndex()) is None
    assert model.flags(QModelIndex()) == Qt.ItemFlag.NoItemFlags


# -- spreadsheets: the mapping step ------------------------------------------------------------


def write_swedish_csv(path: Path, rows: int = 3) -> Path:
    """As European Excel saves "CSV UTF-8": BOM, `;`, CRLF, Swedish names."""
    lines = ["Kundnummer;Förnamn;Efternamn;Butik"]
    names = [("Åsa", "Öberg"), ("Émile", "Ängström"), ("Örjan", "Åkesson")]
    for i in range(rows):
        first, last = names[i % 3]
        lines.append(f"{1001 + i};{first};{last};S0{i % 2 + 1}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    return path


def wait_for_mapping_dialog(qtbot: QtBot, tab: FilesTab, name: str):
    qtbot.waitUntil(lambda: tab.mapping_dialog() is not None
                    and tab.mapping_dialog().isVisible()
                    and tab.mapping_dialog().windowTitle().startswith(f"Map the columns of "
                                                                      f"{name}")
                    and bool(tab.mapping_dialog().preview_rows()), timeout=COUNT_TIMEOUT_MS)
    return tab.mapping_dialog()


@pytest.fixture
def no_saved_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.services.sources import mapping_profiles
    monkeypatch.setattr(mapping_profiles, "profiles_folder", lambda: tmp_path / "profiles")


def test_adding_spreadsheets_opens_the_mapping_step_one_at_a_time(
        qtbot: QtBot, qtmodeltester, tab: FilesTab, tmp_path: Path,
        no_saved_mappings: None):
    from tests.excel_files import write_excel_like_workbook
    csv_path = write_swedish_csv(tmp_path / "kunder_åäö.csv")
    xlsx_path = write_excel_like_workbook(tmp_path / "medlemmar.xlsx", [
        ("Blad1", [["CustomerID", "FirstName", "LastName"], [5001, "Åke", "Ödman"]])])
    json_path = tmp_path / "a.json"
    write_customer_file(json_path, generate_customers(4))
    add_and_wait(qtbot, tab, [csv_path, xlsx_path, json_path])
    assert listed_names(tab) == ["a.json", "kunder_åäö.csv", "medlemmar.xlsx"]

    first = wait_for_mapping_dialog(qtbot, tab, "kunder_åäö.csv")
    assert "(1 more waiting)" in first.windowTitle()
    assert [r.entry["person"]["firstName"] for r in first.preview_rows()] == [
        "Åsa", "Émile", "Örjan"]
    first.set_target("Butik", "person.homeStore")
    first.ok_button.click()
    second = wait_for_mapping_dialog(qtbot, tab, "medlemmar.xlsx")
    assert second is not first
    second.ok_button.click()
    qtbot.waitUntil(lambda: tab.mapping_dialog() is None)

    model = tab.model

    def cell(name: str, column: int) -> str:
        row = next(r for r, e in enumerate(model.entries()) if e.name == name)
        return model.data(model.index(row, column))

    assert cell("kunder_åäö.csv", FileListModel.MAPPING) == "auto (edited)"
    assert cell("medlemmar.xlsx", FileListModel.MAPPING) == "auto"
    assert cell("a.json", FileListModel.MAPPING) == ""
    # rows are counted at Start, with the mapping: no made-up count
    assert cell("kunder_åäö.csv", FileListModel.CUSTOMERS) == "–"
    assert cell("kunder_åäö.csv", FileListModel.KIND) == "Spreadsheet"
    assert cell("a.json", FileListModel.CUSTOMERS) == "4"
    assert set(tab.ready_files()) == {csv_path, xlsx_path, json_path}
    assert len(tab.ready_files()) == 3
    assert tab.total_customers() == 4  # the JSON file's; spreadsheets are counted at Start
    assert tab.summary_label.text() == ("3 files · 4 customers · rows of 2 spreadsheets "
                                        "counted at Start")
    mappings = tab.file_mappings()
    assert set(mappings) == {str(csv_path), str(xlsx_path)}
    assert mappings[str(csv_path)]["fields"]["person.homeStore"] == "Butik"
    assert mappings[str(xlsx_path)]["fields"]["person.customerId"] == "CustomerID"
    assert tab.file_sheets() == {}
    assert set(tab.spreadsheet_columns()) == {"Kundnummer", "Förnamn", "Efternamn", "Butik",
                                              "CustomerID", "FirstName", "LastName"}
    qtmodeltester.check(model)  # with spreadsheets and their mapping column


def test_cancelling_the_mapping_step_takes_the_file_off_the_list(
        qtbot: QtBot, tab: FilesTab, tmp_path: Path, no_saved_mappings: None):
    csv_path = write_swedish_csv(tmp_path / "kunder.csv")
    with qtbot.waitSignal(tab.countingFinished, timeout=COUNT_TIMEOUT_MS):
        assert _drop(tab, [csv_path]) == (True, True)
    dialog = wait_for_mapping_dialog(qtbot, tab, "kunder.csv")
    assert listed_names(tab) == ["kunder.csv"]
    messages: list[str] = []
    tab.statusMessage.connect(messages.append)
    dialog.reject()
    qtbot.waitUntil(lambda: tab.model.rowCount() == 0)
    assert tab.file_mappings() == {} and tab.ready_files() == []
    assert messages == ["kunder.csv was not added: its mapping step was cancelled"]


def test_edit_mapping_of_a_listed_spreadsheet(qtbot: QtBot, tab: FilesTab, tmp_path: Path,
                                              no_saved_mappings: None):
    csv_path = write_swedish_csv(tmp_path / "kunder.csv")
    add_and_wait(qtbot, tab, [csv_path])
    wait_for_mapping_dialog(qtbot, tab, "kunder.csv").ok_button.click()
    qtbot.waitUntil(lambda: tab.mapping_dialog() is None)
    assert "person.homeStore" not in tab.file_mappings()[str(csv_path)]["fields"]
    assert not tab.edit_mapping_button.isEnabled()  # nothing selected
    tab.table.selectRow(0)
    assert tab.edit_mapping_button.isVisible() and tab.edit_mapping_button.isEnabled()
    tab.edit_mapping_button.click()
    dialog = wait_for_mapping_dialog(qtbot, tab, "kunder.csv")
    assert "more waiting" not in dialog.windowTitle()
    with qtbot.waitSignal(dialog.previewUpdated, timeout=COUNT_TIMEOUT_MS):
        dialog.set_target("Butik", "person.customerGroup")
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: tab.mapping_dialog() is None)
    assert tab.file_mappings()[str(csv_path)]["fields"]["person.customerGroup"] == "Butik"
    # cancelling an edit keeps the file and its mapping
    tab.edit_mapping_button.click()
    wait_for_mapping_dialog(qtbot, tab, "kunder.csv").reject()
    qtbot.waitUntil(lambda: tab.mapping_dialog() is None)
    assert listed_names(tab) == ["kunder.csv"]
    assert tab.file_mappings()[str(csv_path)]["fields"]["person.customerGroup"] == "Butik"
    # locked during an import: no editing
    tab.set_locked(True)
    assert not tab.edit_mapping_button.isEnabled()
    assert tab.edit_mapping(csv_path) is None


@pytest.mark.parametrize(("records", "imported", "failed", "invalid", "shown"), [
    (240, 237, 3, 3, "Imported · 3 invalid"),  # a spreadsheet's refused rows
    (400, 344, 56, 2, "Imported · 54 failed · 2 invalid"),
    (6, 0, 6, 0, "6 failed"),  # a retry file whose customers all failed again
    (100, 60, 0, 0, "Imported in part · 40 left"),  # stopped: the rest not sent yet
    (50, 50, 0, 0, "Imported"),
])
def test_a_file_s_status_says_what_became_of_it(tmp_path, records, imported, failed, invalid,
                                                shown):
    from app.models.jobs import FileHistory
    from app.models.record_ranges import RecordRanges

    model = FileListModel()
    path = tmp_path / "kunder_östra.csv"
    model.add_paths([path])
    model.update_entry(path, status=FileStatus.READY, sha256="abc", customers=records,
                       invalid=invalid)
    history = FileHistory("abc", records, RecordRanges([(1, imported)] if imported else []),
                          failed, 3, "2026-12-08T10:00:00")
    assert model.apply_histories({"abc": history}) == 1
    row = model.row_of(path)
    assert row is not None
    assert model.data(model.index(row, FileListModel.STATUS)) == shown


@pytest.mark.skipif(not hasattr(__import__("os"), "symlink"), reason="symlinks")
def test_links_to_other_folders_are_named_on_the_files_tab(qtbot: QtBot, tab: FilesTab,
                                                           tmp_path: Path) -> None:
    chosen = tmp_path / "Dokument"
    write_customer_file(chosen / "kunder.json", generate_customers(3))
    elsewhere = tmp_path / "Min musik"
    elsewhere.mkdir()
    (chosen / "Min musik").symlink_to(elsewhere, target_is_directory=True)
    messages: list[str] = []
    tab.statusMessage.connect(messages.append)
    tab.add_paths([chosen])
    qtbot.waitUntil(lambda: bool(tab.ready_files()) and not tab.is_counting(), timeout=10_000)
    assert [p.name for p in tab.ready_files()] == ["kunder.json"]
    notes = [m for m in messages if m.startswith("Not followed: 1 link to other folders")]
    assert len(notes) == 1 and "Min musik" in notes[0]
