"""A spreadsheet added again (by content, whatever its name) starts its mapping step from
the mapping the latest import of that content used, read from the results folder's real
import history; other spreadsheets still start from the automatic mapping."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.services.connection.auth import StaticToken
from app.services.jobs.history_tasks import mapping_used_for
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import ImportSettings
from app.services.sandbox.sandbox_server import SandboxThread
from app.services.sources.file_fingerprint import fingerprint
from app.services.sources.mapping import Mapping
from app.views.files_tab import FilesTab
from app.views.main_window import MainWindow
from app.views.mapping_dialog import MappingDialog
from app.views.review_dialog import ReviewDialog
from tests.conftest import RecordingListener, until, wait_for_signal

TIMEOUT_MS = 30_000


def write_csv(path: Path, rows: list[str],
              header: str = "Kundnummer;Förnamn;Efternamn;Butik") -> Path:
    """As European Excel saves "CSV UTF-8": BOM, `;`, CRLF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([header, *rows]) + "\r\n").encode())
    return path


MEMBERS = ["8001;Åsa;Öberg;S01", "8002;Łukasz;Ängström;S02", "8003;Émile;Åkesson;S01"]
BIRTH_HEADER = "Kundnummer;Förnamn;Efternamn;Födelsedatum"
# the last row's date does not exist: refused before sending
BORN = ["8201;Åsa;Öberg;01.05.1966", "8202;Örjan;Łęcki;24.12.1975",
        "8203;Émile;Ängström;31.02.1980"]


@pytest.fixture
def no_saved_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.services.sources import mapping_profiles
    monkeypatch.setattr(mapping_profiles, "profiles_folder", lambda: tmp_path / "profiles")


def new_tab(qtbot: QtBot) -> FilesTab:
    tab = FilesTab()
    qtbot.addWidget(tab)
    tab.resize(900, 420)
    tab.show()
    qtbot.waitExposed(tab)
    return tab


@pytest.fixture
def tabs(qtbot: QtBot) -> Iterator[list[FilesTab]]:
    made: list[FilesTab] = []
    yield made
    for tab in made:
        tab.shutdown()


def mapping_step(qtbot: QtBot, tab: FilesTab, name: str) -> MappingDialog:
    """The mapping step of `name`, once its preview is shown."""
    qtbot.waitUntil(lambda: (d := tab.mapping_dialog()) is not None and d.isVisible()
                    and d.windowTitle().startswith(f"Map the columns of {name}")
                    and bool(d.preview_rows()), timeout=TIMEOUT_MS)
    dialog = tab.mapping_dialog()
    assert dialog is not None
    return dialog


def accept(qtbot: QtBot, tab: FilesTab, dialog: MappingDialog) -> Mapping:
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: tab.mapping_dialog() is None, timeout=TIMEOUT_MS)
    mapping = dialog.mapping()
    assert mapping is not None
    return mapping


def import_through_engine(qloop, server: SandboxThread, tab: FilesTab, output: Path) -> int:
    """Import the tab's ready files as the window does (its mappings by path) into
    `output`; returns how many customers went in."""
    options = tab.source_options()
    settings = ImportSettings(customers_url=server.server.customers_url("c4r"),
                              output_dir=output, file_mappings=options.file_mappings,
                              file_sheets=options.file_sheets, backoff_base_s=0.01,
                              backoff_max_s=0.05)
    engine = ImportEngine(tab.ready_files(), settings, StaticToken(server.server.static_token),
                          listener=RecordingListener())
    summary = qloop.run_until_complete(engine.run())
    return summary.succeeded


def test_the_same_content_added_again_starts_from_the_mapping_its_import_used(
        qtbot: QtBot, qloop, tabs: list[FilesTab], sandbox_thread: SandboxThread,
        tmp_path: Path, no_saved_mappings: None) -> None:
    output = tmp_path / "results"
    first = write_csv(tmp_path / "in" / "kunder_åäö.csv", MEMBERS)

    # the first time: automatic, then one more column mapped by hand, and imported
    tab = new_tab(qtbot)
    tabs.append(tab)
    tab.set_output_dir(output)  # no history there yet
    tab.add_paths([first])
    dialog = mapping_step(qtbot, tab, first.name)
    assert not dialog.used_before_label.isVisible()
    automatic = dialog._auto_mapping().to_dict()
    assert "person.homeStore" not in automatic["fields"]
    with qtbot.waitSignal(dialog.previewUpdated, timeout=TIMEOUT_MS):
        dialog.set_target("Butik", "person.homeStore")
    earlier = accept(qtbot, tab, dialog)
    assert earlier.fields["person.homeStore"] == "Butik"
    assert import_through_engine(qloop, sandbox_thread, tab, output) == 3
    stores = {key: person.get("homeStore")
              for key, person in sandbox_thread.server.customers.items()}
    assert stores == {"8001": "S01", "8002": "S02", "8003": "S01"}

    sha256 = fingerprint(first).sha256
    used = mapping_used_for(output, sha256)
    assert used is not None and used.job_id == 1
    assert used.mapping == earlier.to_dict()

    # later, a fresh window's Files tab on the same results folder: the same content,
    # under another name, and a spreadsheet never imported
    again = tmp_path / "mail" / "Kopia av kunder (2).csv"
    again.parent.mkdir()
    shutil.copyfile(first, again)
    other = write_csv(tmp_path / "in" / "nya_kunder.csv", ["8101;Örjan;Łęcki;S03"])
    later = new_tab(qtbot)
    tabs.append(later)
    later.set_output_dir(output)
    later.add_paths([again, other])

    dialog = mapping_step(qtbot, later, again.name)
    assert "(1 more waiting)" in dialog.windowTitle()
    assert dialog.used_before_label.isVisible()
    assert "job #1" in dialog.used_before_label.text()
    assert dialog.profile_combo.currentText() == "As in job #1"
    assert accept(qtbot, later, dialog).to_dict() == earlier.to_dict()
    entry = later.model.entry_for(again)
    assert entry is not None and entry.sha256 == sha256
    assert entry.mapping_name == "as in job #1"
    assert later.file_mappings()[str(again)] == earlier.to_dict()

    dialog = mapping_step(qtbot, later, other.name)
    assert not dialog.used_before_label.isVisible()
    assert dialog.profile_combo.currentIndex() == 0  # Automatic (from the header)
    assert accept(qtbot, later, dialog).fields == automatic["fields"]  # same header
    entry = later.model.entry_for(other)
    assert entry is not None and entry.mapping_name == "auto"
    assert entry.sha256 == fingerprint(other).sha256


def test_without_an_earlier_import_there_is_no_mapping_to_remember(tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "kunder.csv", MEMBERS)
    assert mapping_used_for(tmp_path / "results", fingerprint(sheet).sha256) is None


# -- the review before Start says what was imported before -------------------------------


@pytest.fixture
def window(qtbot: QtBot, qloop, tmp_path: Path) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.import_tab.set_run_settings({"output_dir": tmp_path / "out", "max_retries": 1})
    win.resize(1280, 820)
    win.show()
    yield win
    if win.runner.running:
        win.runner.cancel()
        qloop.run_until_complete(win.runner.wait())


def start_and_wait(qtbot: QtBot, qloop, win: MainWindow, click: Callable[[], None]) -> int:
    """Start (`click` answers what Start asks), accept the review, wait for the import;
    returns how many customers went in."""

    async def run() -> int:
        win.start_import()
        click()
        review = win.review_dialog
        assert review is not None
        assert await until(lambda: review.validation_result() is not None)
        review.import_button.click()
        (summary,) = await wait_for_signal(win.runner.finished, 60)
        return int(summary.succeeded)

    return qloop.run_until_complete(run())


def test_the_review_says_before_start_which_rows_were_imported_before(
        qtbot: QtBot, qloop, window: MainWindow, sandbox_thread: SandboxThread,
        tmp_path: Path, no_saved_mappings: None) -> None:
    sheet = write_csv(tmp_path / "in" / "kunder_åäö.csv", BORN, BIRTH_HEADER)
    files = window.files_tab
    files.add_paths([sheet])
    accept(qtbot, files, mapping_step(qtbot, files, sheet.name))
    panel = window.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    panel.host_edit.setText(sandbox_thread.base_url)
    panel.token_edit.setText(sandbox_thread.server.static_token)
    assert start_and_wait(qtbot, qloop, window, lambda: None) == 2
    assert window.review_dialog is None

    # the same file again: its valid rows went in, the refused one is still to fix
    assert files.model.entry_for(sheet) is not None
    qtbot.waitUntil(lambda: bool(files.imported_before()), timeout=TIMEOUT_MS)
    (entry,) = files.imported_before()
    assert entry.history is not None and len(entry.history.imported) == 2

    def send_the_rest() -> None:
        prompt = window.findChild(QMessageBox, "imported_before_prompt")
        assert prompt is not None and prompt.isVisible()
        (rest,) = [b for b in prompt.buttons()
                   if b.text() == "Send Only What Is Not Imported"]
        rest.click()

    async def review_after_start() -> ReviewDialog:
        window.start_import()
        send_the_rest()
        review = window.review_dialog
        assert review is not None
        assert await until(lambda: review.validation_result() is not None)
        return review

    review = qloop.run_until_complete(review_after_start())
    assert review.summary_label.text() == "2 valid, 1 invalid"
    assert review.imported_before_label.isVisible()
    assert review.imported_before_label.text() == (
        "Imported before, not sent again: 2 rows of the rows checked "
        f"({sheet.name}: 2 rows (job #1)).")
    review.back_button.click()
    assert window.review_dialog is None and not window.runner.running
