"""The review before Start: the validation pass on a worker, and what the dialog shows."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QDialog, QFileDialog
from pytestqt.qtbot import QtBot

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources.source_options import SourceOptions
from app.services.sources.validation_pass import validate_files
from app.util.background import Cancelled, Pool, thread_pool
from app.views.review_dialog import ReviewDialog
from tests.excel_files import write_excel_like_workbook

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
TIMEOUT_MS = 30_000


def write_csv(path: Path, rows: list[str]) -> Path:
    """European Excel's "CSV UTF-8": BOM, `;`, CRLF."""
    header = "Kundnummer;Förnamn;Efternamn;Födelsedatum;E-post;Butik"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([header, *rows]) + "\r\n").encode())
    return path


GOOD = ["1001;Åsa;Öberg;01.05.1966;asa@example.se;S01",
        "1002;Örjan;Åkesson;24.12.1975;orjan@example.se;S02"]
BAD = ["1003;Émile;Ängström;31.02.1980;emile@example.se;S01",  # no such date
       "1004;Märta;;01.01.1990;inte-en-adress;S02",  # no last name, bad e-mail
       "1001;Åsa;Dubblett;01.05.1966;;S01"]  # customer id used in row 2


def review(qtbot: QtBot, files: list[Path], options: SourceOptions | None = None,
           report: Path | None = None) -> ReviewDialog:
    dialog = ReviewDialog(files, options or SourceOptions(), report_path=report)
    qtbot.addWidget(dialog)
    dialog.open()
    with qtbot.waitSignal(dialog.reviewed, timeout=TIMEOUT_MS):
        dialog.start()
    return dialog


def table_rows(dialog: ReviewDialog) -> list[tuple[str, ...]]:
    table = dialog.invalid_table
    return [tuple(table.item(r, c).text() for c in range(table.columnCount()))
            for r in range(table.rowCount())]


def test_invalid_rows_with_reasons_and_the_error_report(qtbot: QtBot, tmp_path: Path):
    path = write_csv(tmp_path / "kunder_januari.csv", GOOD + BAD)
    report = tmp_path / "out" / ".review" / "error_report_review.csv"
    report.parent.mkdir(parents=True)
    dialog = review(qtbot, [path], report=report)
    result = dialog.validation_result()
    assert (result.rows, result.valid, result.invalid) == (5, 2, 3)
    assert dialog.summary_label.text() == "2 valid, 3 invalid"
    rows = table_rows(dialog)
    assert {(r[1], r[2]) for r in rows} == {("4", "Födelsedatum"), ("5", "Efternamn"),
                                            ("5", "E-post"), ("6", "Kundnummer")}
    assert len(rows) == 4  # one line per reason
    assert all(r[0] == "kunder_januari.csv" for r in rows)
    date_row = next(r for r in rows if r[2] == "Födelsedatum")
    assert date_row[3] == "31.02.1980" and "not a real date" in date_row[4]
    assert "Butik" in dialog.unmapped_label.text() and dialog.unmapped_label.isVisibleTo(dialog)
    # the report is offered; a copy can be saved
    assert dialog.error_report() == report and report.is_file()
    assert dialog.open_report_button.isVisibleTo(dialog)
    assert dialog.save_report_button.isVisibleTo(dialog)
    save = dialog.open_save_dialog()
    assert isinstance(save, QFileDialog)
    assert not save.testOption(QFileDialog.Option.DontUseNativeDialog)  # the system's
    save.reject()
    copy = tmp_path / "kopia.csv"
    assert dialog.save_report(copy)
    with copy.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["file", "row", "column", "value", "message"]
    assert {line[3] for line in lines[1:]} >= {"31.02.1980", "inte-en-adress"}
    # Import Valid Rows Only is the default
    assert dialog.import_button.text() == "Import Valid Rows Only"
    assert dialog.import_button.isDefault() and dialog.import_button.isEnabled()
    dialog.import_button.click()
    assert dialog.result() == QDialog.DialogCode.Accepted
    dialog.tasks.wait()


def test_everything_valid_starts_with_one_click(qtbot: QtBot, tmp_path: Path):
    from datetime import date
    csv_path = write_csv(tmp_path / "kunder.csv", GOOD)
    xlsx = write_excel_like_workbook(tmp_path / "medlemmar.xlsx", [
        ("Medlemmar", [["CustomerID", "FirstName", "LastName", "BirthDate"],
                       [9000578, "Åke", "Ödman", date(1966, 5, 1)]])])
    json_path = tmp_path / "a.json"
    write_customer_file(json_path, generate_customers(3, start_id=500000))
    dialog = review(qtbot, [csv_path, xlsx, json_path], report=tmp_path / "report.csv")
    assert dialog.summary_label.text() == "All 6 rows are valid and ready to import."
    assert dialog.import_button.text() == "Start Import" and dialog.import_button.isDefault()
    assert not dialog.invalid_table.isVisibleTo(dialog)
    assert not dialog.open_report_button.isVisibleTo(dialog)
    assert dialog.error_report() is None and not (tmp_path / "report.csv").exists()
    dialog.import_button.click()
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_unreadable_file_and_nothing_valid(qtbot: QtBot, tmp_path: Path):
    broken = tmp_path / "trasig.xlsx"
    broken.write_bytes(b"PK\x03\x04 no workbook")
    bad = write_csv(tmp_path / "dåliga.csv", BAD[:2])
    dialog = review(qtbot, [broken, bad])
    assert "trasig.xlsx" in dialog.problems_label.text()
    assert dialog.problems_label.isVisibleTo(dialog)
    assert dialog.summary_label.text() == "0 valid, 2 invalid"
    assert not dialog.import_button.isEnabled()
    dialog.back_button.click()
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_the_pass_can_be_cancelled(qtbot: QtBot, tmp_path: Path):
    started = []

    def slow_validate(files, options, *, report_path, token, progress):
        started.append(True)
        rows = 0
        while not token.cancelled:
            rows += 1
            progress(rows)
        raise RuntimeError("cancelled")

    dialog = ReviewDialog([write_csv(tmp_path / "k.csv", GOOD)], SourceOptions(),
                          report_path=None, validate=slow_validate)
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.start()
    qtbot.waitUntil(lambda: bool(started) and dialog.rows_label.text().endswith("rows checked"),
                    timeout=TIMEOUT_MS)
    assert dialog.pages.currentIndex() == 0 and dialog.back_button.text() == "Cancel"
    failures: list[str] = []
    dialog.tasks.failed.connect(failures.append)
    dialog.back_button.click()
    assert dialog.result() == QDialog.DialogCode.Rejected
    assert dialog.tasks.wait(5000)
    QCoreApplication.sendPostedEvents()  # a queued answer would arrive now, were one sent
    assert failures == []


def test_a_pass_that_fails_is_said_and_import_is_still_possible(qtbot: QtBot, tmp_path: Path):
    def broken(*_args, **_kwargs):
        raise OSError("disk on fire")

    dialog = ReviewDialog([tmp_path / "k.csv"], SourceOptions(), report_path=None,
                          validate=broken)
    qtbot.addWidget(dialog)
    dialog.open()
    with qtbot.waitSignal(dialog.tasks.failed, timeout=TIMEOUT_MS):
        dialog.start()
    assert dialog.detail_label.text().startswith("Disk on fire. The import still checks")
    assert dialog.import_button.text() == "Import Anyway" and dialog.import_button.isEnabled()


@pytest.mark.parametrize("name", ["review_dialog"])
def test_screenshot(qtbot: QtBot, tmp_path: Path, name: str):
    path = write_csv(tmp_path / "kunder_januari.csv", GOOD + BAD)
    dialog = review(qtbot, [path], report=tmp_path / "report.csv")
    SCREENSHOTS.mkdir(exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    assert dialog.width() <= 1280 and dialog.height() <= 800
    assert dialog.grab().save(str(target))
    assert target.stat().st_size > 10_000


def test_closing_the_review_never_waits_for_the_check(qtbot: QtBot, tmp_path: Path):
    started, release = threading.Event(), threading.Event()

    def stubborn(*_args, **_kwargs):  # a workbook still loading: deaf to Cancel
        started.set()
        release.wait(30)
        raise OSError("too late")

    dialog = ReviewDialog([write_csv(tmp_path / "k.csv", GOOD)], SourceOptions(),
                          report_path=None, validate=stubborn)
    dialog.open()
    dialog.start()
    assert started.wait(10)
    dialog.back_button.click()
    took = time.perf_counter()
    shiboken6.delete(dialog)  # what deleteLater comes to
    took = time.perf_counter() - took
    release.set()
    # the shared pool outlives each review
    assert thread_pool(Pool.SPREADSHEETS).waitForDone(10_000)
    assert took < 1.0  # with a pool of its own the dialog waited the whole 30 s here


def test_cancel_stops_a_real_pass_between_steps(qtbot: QtBot, tmp_path: Path):
    rows = [f"{2000 + i};Åsa;Öberg;01.05.1966;asa{i}@example.se;S01" for i in range(30_000)]
    path = write_csv(tmp_path / "stor.csv", rows)
    outcomes: list[str] = []

    def watched(files, options, *, report_path, token, progress):
        def progress_then_hold(rows: int) -> None:
            progress(rows)
            token.wait(10)  # the pass goes on once Cancel was pressed (or 10 s passed)

        try:
            result = validate_files(files, options, report_path=report_path, token=token,
                                    progress=progress_then_hold)
        except Cancelled:
            outcomes.append("stopped")
            raise
        outcomes.append("checked to the end")
        return result

    dialog = ReviewDialog([path], SourceOptions(), report_path=None, validate=watched)
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.start()
    qtbot.waitUntil(lambda: dialog.rows_label.text().endswith("rows checked"),
                    timeout=TIMEOUT_MS)
    dialog.back_button.click()
    assert thread_pool(Pool.SPREADSHEETS).waitForDone(TIMEOUT_MS)
    assert outcomes == ["stopped"]
    assert dialog.validation_result() is None
