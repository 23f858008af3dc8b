"""The mapping step for spreadsheets (pytest-qt, offscreen, real files)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QComboBox, QDialog
from pytestqt.qtbot import QtBot

from app.services.sources import mapping_profiles
from app.services.sources.mapping import Mapping
from app.util.background import Pool, run_task, thread_pool
from app.views import mapping_dialog
from app.views.mapping_dialog import NOT_IMPORTED, MappingDialog
from tests.excel_files import write_excel_like_workbook

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
HEADER = "Kundnummer;Förnamn;Efternamn;Födelsedatum;Butik;E-post;Mobil;Telefon"
ROWS = [
    "1001;Åsa;Öberg;01.05.1966;S01;asa@example.se;0701234567;081234567",
    "1002;Émile;Ängström;31.02.1980;S02;inte-en-adress;;",
    "1003;Örjan;Åkesson;1975-12-24;S01;orjan@example.se;0707654321;",
]


def write_member_csv(path: Path, rows: list[str] = ROWS) -> Path:
    """As European Excel saves "CSV UTF-8": BOM, `;`, CRLF."""
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([HEADER, *rows]) + "\r\n").encode())
    return path


def write_workbook(path: Path) -> Path:
    return write_excel_like_workbook(path, [
        ("Anteckningar", [["Exporterad", "2026-01-05"]]),
        ("Medlemmar", [["CustomerID", "FirstName", "LastName", "BirthDate", "Region"],
                       [9000578, "Åsa", "Öberg", date(1966, 5, 1), "Nord"],
                       [9000579, "Björn", "Ärlig", date(1970, 1, 31), "Syd"]]),
    ])


@pytest.fixture(autouse=True)
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "profiles"
    monkeypatch.setattr(mapping_profiles, "profiles_folder", lambda: folder)
    return folder


def open_dialog(qtbot: QtBot, path: Path, **kwargs: object) -> MappingDialog:
    dialog = MappingDialog(path, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(lambda: bool(dialog.preview_rows()) or dialog.error_label.isVisible(),
                    timeout=10_000)
    return dialog


@pytest.fixture
def csv_dialog(qtbot: QtBot, tmp_path: Path) -> Iterator[MappingDialog]:
    dialog = open_dialog(qtbot, write_member_csv(tmp_path / "medlemmar.csv"))
    yield dialog
    dialog.wait()


def targets(dialog: MappingDialog) -> dict[str, str]:
    table = dialog.columns_table
    return {table.item(r, 0).text(): dialog.target_of_row(r) for r in range(table.rowCount())}


def test_columns_samples_and_automatic_targets(csv_dialog: MappingDialog):
    table = csv_dialog.columns_table
    assert table.rowCount() == 8
    assert [table.item(r, 0).text() for r in range(8)] == HEADER.split(";")
    assert targets(csv_dialog) == {
        "Kundnummer": "person.customerId", "Förnamn": "person.firstName",
        "Efternamn": "person.lastName", "Födelsedatum": "person.birthday",
        "Butik": "", "E-post": "person.email", "Mobil": "person.phone", "Telefon": ""}
    samples = table.item(1, 1).text()
    assert samples == "Åsa · Émile · Örjan"
    # unmapped columns are marked, and named under the table
    assert csv_dialog.unmapped_columns() == ["Butik", "Telefon"]
    assert csv_dialog.unmapped_label.text() == "Not imported: Butik, Telefon"
    assert table.item(4, 0).font().italic() and not table.item(0, 0).font().italic()
    combo = table.cellWidget(4, 2)
    assert isinstance(combo, QComboBox) and combo.currentText() == NOT_IMPORTED
    # the defaults every entry gets, as constants the user sees
    constants = {csv_dialog.constants_table.item(r, 0).text():
                 csv_dialog.constants_table.item(r, 1).text()
                 for r in range(csv_dialog.constants_table.rowCount())}
    assert constants == {"changeType": "CREATE", "type": "PERSON"}
    assert not csv_dialog.sheet_combo.isVisibleTo(csv_dialog)


def test_preview_shows_entries_as_sent_and_refused_rows_with_reasons(
        csv_dialog: MappingDialog):
    rows = csv_dialog.preview_rows()
    assert [r.row_number for r in rows] == [2, 3, 4]
    assert rows[0].entry == {"changeType": "CREATE", "type": "PERSON", "person": {
        "customerId": "1001", "firstName": "Åsa", "lastName": "Öberg",
        "birthday": "1966-05-01", "email": "asa@example.se", "phone": "0701234567"}}
    assert rows[1].entry is None
    assert {i.column for i in rows[1].issues} == {"Födelsedatum", "E-post"}
    text = csv_dialog.preview_text()
    assert '"firstName": "Åsa"' in text and '"lastName": "Åkesson"' in text
    assert "Row 3: not sent" in text and "31.02.1980 is not a real date" in text
    assert csv_dialog.preview_summary.text() == (
        "First 3 rows: 2 will be sent, 1 refused (the preview says why, in red).")


def test_editing_a_target_and_a_constant_refreshes_the_preview(qtbot: QtBot,
                                                              csv_dialog: MappingDialog):
    with qtbot.waitSignal(csv_dialog.previewUpdated, timeout=10_000):
        csv_dialog.set_target("Butik", "person.homeStore")
    assert csv_dialog.preview_rows()[0].entry["person"]["homeStore"] == "S01"
    assert "Butik" not in csv_dialog.unmapped_columns()
    with qtbot.waitSignal(csv_dialog.previewUpdated, timeout=10_000):
        csv_dialog.add_constant("person.statisticalUseAllowed", "true")
    assert csv_dialog.preview_rows()[2].entry["person"]["statisticalUseAllowed"] is True
    # a target given twice is shown inline, never a crash; OK refuses it
    with qtbot.waitSignal(csv_dialog.previewUpdated, timeout=10_000):
        csv_dialog.set_target("Telefon", "person.phone")
    assert csv_dialog.error_label.isVisible()
    assert "person.phone gets two columns" in csv_dialog.error_label.text()
    csv_dialog.ok_button.click()
    assert csv_dialog.isVisible() and csv_dialog.mapping() is None
    with qtbot.waitSignal(csv_dialog.previewUpdated, timeout=10_000):
        csv_dialog.set_target("Telefon", "")
    assert not csv_dialog.error_label.isVisible()
    csv_dialog.ok_button.click()
    assert csv_dialog.result() == QDialog.DialogCode.Accepted
    mapping = csv_dialog.mapping()
    assert mapping is not None and mapping.fields["person.homeStore"] == "Butik"
    assert mapping.constants == {"changeType": "CREATE", "type": "PERSON",
                                 "person.statisticalUseAllowed": True}
    assert csv_dialog.mapping_label() == "auto (edited)"


def test_ok_without_changes_is_the_automatic_mapping(csv_dialog: MappingDialog):
    csv_dialog.ok_button.click()
    assert csv_dialog.mapping_label() == "auto"
    assert csv_dialog.mapping() is not None
    assert csv_dialog.mapping().fields["person.customerId"] == "Kundnummer"
    assert csv_dialog.sheet() is None


def test_save_as_profile_load_it_export_and_import(qtbot: QtBot, tmp_path: Path,
                                                  profiles: Path, csv_dialog: MappingDialog):
    csv_dialog.set_target("Butik", "person.homeStore")
    assert csv_dialog.save_profile("Medlemsexport Åre")
    saved = json.loads((profiles / "Medlemsexport Åre.json").read_text("utf-8"))
    assert saved["fields"]["person.homeStore"] == "Butik"
    assert csv_dialog.profile_combo.currentText() == "Medlemsexport Åre"
    # saving again under that name asks first
    assert not csv_dialog.save_profile("Medlemsexport Åre")
    assert csv_dialog.findChild(QDialog, "replaceProfilePrompt") is not None

    exported = tmp_path / "delad.json"
    assert csv_dialog.export_mapping_file(exported)
    assert Mapping.from_json(exported.read_bytes()).fields == saved["fields"]

    # a second file of the same layout: the saved mapping is offered and loads
    other = open_dialog(qtbot, write_member_csv(tmp_path / "februari.csv", ROWS[:1]))
    index = other.profile_combo.findText("Medlemsexport Åre")
    assert index > 0
    other.profile_combo.setCurrentIndex(index)
    other.profile_combo.activated.emit(index)
    assert targets(other)["Butik"] == "person.homeStore"
    other.ok_button.click()
    assert other.mapping_label() == "Medlemsexport Åre"

    # importing a mapping file keeps it as a profile
    data = json.loads(exported.read_text("utf-8"))
    data["name"] = "Från kollega"
    (tmp_path / "kollega.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    third = open_dialog(qtbot, write_member_csv(tmp_path / "mars.csv", ROWS[:1]))
    assert third.import_mapping_file(tmp_path / "kollega.json")
    assert (profiles / "Från kollega.json").is_file()
    assert third.profile_combo.currentText() == "Från kollega"
    # a file that is no mapping is refused inline
    (tmp_path / "trasig.json").write_text("{inte json", "utf-8")
    assert not third.import_mapping_file(tmp_path / "trasig.json")
    assert "Not imported" in third.error_label.text()
    for dialog in (other, third):
        dialog.wait()


def test_workbook_sheet_chooser(qtbot: QtBot, tmp_path: Path):
    path = write_workbook(tmp_path / "medlemmar.xlsx")
    dialog = open_dialog(qtbot, path, sheet="Medlemmar")
    assert dialog.sheet_combo.isVisibleTo(dialog)
    assert [dialog.sheet_combo.itemText(i) for i in range(dialog.sheet_combo.count())] == [
        "First sheet with data", "Anteckningar", "Medlemmar"]
    assert dialog.sheet_combo.currentText() == "Medlemmar"
    assert set(targets(dialog)) == {"CustomerID", "FirstName", "LastName", "BirthDate",
                                    "Region"}
    first = dialog.preview_rows()[0].entry
    assert first["person"]["customerId"] == "9000578"
    assert first["person"]["birthday"] == "1966-05-01"
    # another sheet: other columns
    with qtbot.waitSignal(dialog.previewUpdated, timeout=10_000):
        dialog.sheet_combo.setCurrentIndex(1)
    assert set(targets(dialog)) == {"Exporterad", "2026-01-05"}
    assert dialog.sheet() == "Anteckningar"
    dialog.wait()


def test_unreadable_file_is_shown_inline(qtbot: QtBot, tmp_path: Path):
    path = tmp_path / "trasig.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    dialog = open_dialog(qtbot, path)
    assert dialog.error_label.isVisible() and "cannot be read" in dialog.error_label.text()
    assert not dialog.ok_button.isEnabled()
    dialog.wait()


def test_screenshot(qtbot: QtBot, csv_dialog: MappingDialog):
    with qtbot.waitSignal(csv_dialog.previewUpdated, timeout=10_000):
        csv_dialog.set_target("Butik", "person.homeStore")
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / "mapping_dialog.png"
    assert csv_dialog.width() <= 1280 and csv_dialog.height() <= 800
    assert csv_dialog.grab().save(str(path))
    assert path.stat().st_size > 10_000


def test_ok_refuses_a_mapping_that_names_a_column_the_file_lacks(qtbot: QtBot,
                                                                  tmp_path: Path):
    mapping = Mapping(fields={"person.customerId": "Kundnummer",
                              "person.lastName": "Släktnamn"})  # not a column of this file
    dialog = open_dialog(qtbot, write_member_csv(tmp_path / "medlemmar.csv"), mapping=mapping)
    dialog.ok_button.click()
    assert dialog.isVisible() and dialog.mapping() is None
    assert "no column 'Släktnamn'" in dialog.error_label.text()


def test_a_dialog_closed_while_its_workbook_loads_is_never_answered(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the spreadsheet pool's one thread is busy with another read: the dialog's waits
    started, release = threading.Event(), threading.Event()
    busy = run_task(Pool.SPREADSHEETS, lambda: (started.set(), release.wait(30)))
    assert started.wait(10)
    samples: list[Path] = []
    monkeypatch.setattr(mapping_dialog, "column_samples",
                        lambda path, **_: samples.append(path) or [])
    dialog = MappingDialog(write_workbook(tmp_path / "stor.xlsx"))
    dialog.open()
    assert dialog.is_reading()
    dialog.reject()  # Cancel while the workbook loads: no waiting
    assert not dialog.is_reading()
    shiboken6.delete(dialog)
    release.set()
    qtbot.waitUntil(lambda: busy.finished)
    assert thread_pool(Pool.SPREADSHEETS).waitForDone(10_000)
    QCoreApplication.sendPostedEvents()  # an answer would be delivered now
    assert samples == []  # a read cancelled before it started never runs


def test_a_dialog_deleted_mid_read_hears_nothing(qtbot: QtBot, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    started, release = threading.Event(), threading.Event()
    answers: list[object] = []

    def stubborn(path: Path, **_: object) -> list[object]:  # a big workbook loading
        started.set()
        release.wait(30)
        return []

    monkeypatch.setattr(mapping_dialog, "column_samples", stubborn)
    monkeypatch.setattr(MappingDialog, "_columns_read",
                        lambda _self, result, error="": answers.append(result))
    dialog = MappingDialog(write_member_csv(tmp_path / "medlemmar.csv"))
    dialog.open()
    assert started.wait(10)
    shiboken6.delete(dialog)  # its window closed, say: no done(), no cancel
    release.set()
    assert thread_pool(Pool.SPREADSHEETS).waitForDone(10_000)
    QCoreApplication.sendPostedEvents()
    assert answers == []
