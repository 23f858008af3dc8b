"""The History tab and what the window does with jobs: imported-before files, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox, QTableView

from app.models.history_model import HistoryModel, HistoryProxy
from app.models.jobs import FileFingerprint, JobRecord, JobState
from app.services.jobs.journal import Journal
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxThread
from app.views.main_window import MainWindow
from tests.conftest import ROOT, wait_for_signal
from tests.test_helper_processes import wait_until
from tests.test_main_window import connect_to as connect
from tests.test_main_window import open_window, stop_any_import


@pytest.fixture
def sandbox_thread():
    with SandboxThread(SandboxConfig(static_token="history-token", seed=5)) as thread:
        yield thread


@pytest.fixture
def window(qtbot, qloop, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = open_window(qtbot, settings, tmp_path / "out", max_retries=0)
    yield win
    stop_any_import(qloop, win)


def start_and_wait(qtbot, qloop, win: MainWindow, start=None):
    async def go():
        (start or win.start_import)()
        (summary,) = await wait_for_signal(win.runner.finished, 60)
        return summary

    return qloop.run_until_complete(go())


def job(number: int, state: JobState = JobState.COMPLETED, failed: int = 0) -> JobRecord:
    return JobRecord(number, "import", state, f"2026-11-{number % 28 + 1:02d}T10:00:00",
                     None, {}, 100 * number, 100 * number - failed, failed, 0, failed,
                     float(number), [FileFingerprint(f"/in/kunder_{number}.json", 10, "ab")])


def test_history_model_passes_the_model_tester(qtmodeltester):
    model = HistoryModel()
    model.set_jobs([job(n, failed=n % 3) for n in range(1, 40)])
    qtmodeltester.check(model)
    assert model.data(model.index(0, HistoryModel.STATE)) == "completed"
    # newest first until a column is chosen
    assert model.data(model.index(0, HistoryModel.CUSTOMERS), HistoryModel.SortRole) == 3900
    model.sort(HistoryModel.FAILED, Qt.SortOrder.AscendingOrder)
    qtmodeltester.check(model)


def test_history_sorts_numbers_as_numbers_and_selection_follows_the_job(qtbot):
    model = HistoryModel()
    proxy = HistoryProxy()
    proxy.setSourceModel(model)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(HistoryModel.JOB, Qt.SortOrder.DescendingOrder)
    model.set_jobs([job(n, failed=(n * 7) % 12) for n in range(1, 13)])
    assert [proxy.job_at(r).id for r in range(3)] == [12, 11, 10]
    view.selectRow(1)  # job 11

    view.sortByColumn(HistoryModel.CUSTOMERS, Qt.SortOrder.AscendingOrder)
    customers = [proxy.data(proxy.index(r, HistoryModel.CUSTOMERS)) for r in range(12)]
    # 900 before 1,000: numbers, not text
    assert customers[:10] == ["100", "200", "300", "400", "500", "600", "700", "800", "900",
                              "1,000"]
    assert len(customers) == 12
    selected = view.selectionModel().selectedRows()
    assert [proxy.job_at(i.row()).id for i in selected] == [11]

    view.sortByColumn(HistoryModel.FAILED, Qt.SortOrder.DescendingOrder)
    failed = [proxy.job_at(r).failed for r in range(12)]
    assert failed == sorted(failed, reverse=True)
    assert proxy.job_at(0).id == 5  # (5 * 7) % 12 == 11
    # a reload keeps the chosen order
    model.set_jobs([job(n, failed=(n * 5) % 12) for n in range(1, 13)])
    reloaded = [proxy.job_at(r).failed for r in range(12)]
    assert reloaded == sorted(reloaded, reverse=True)
    assert proxy.job_at(0).id == 7  # (7 * 5) % 12 == 11


def test_a_file_imported_before_asks_what_to_send(qtbot, qloop, window, sandbox_thread,
                                                  tmp_path):
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(120, refused=3))
    connect(window, sandbox_thread)
    window.files_tab.add_paths([source])
    qtbot.waitUntil(lambda: window.files_tab.ready_files() == [source]
                    and not window.files_tab.is_counting(), timeout=10_000)
    first = start_and_wait(qtbot, qloop, window)
    assert (first.succeeded, first.failed) == (117, 3)
    qtbot.waitUntil(lambda: len(window.files_tab.imported_before()) == 1, timeout=5000)

    requests = sandbox_thread.server.request_count
    window.start_import()
    prompt = window.findChild(QMessageBox, "imported_before_prompt")
    assert prompt is not None and prompt.isVisible()
    assert "kunder.json: 117 imported, 3 not yet" in prompt.text()

    async def answer_rest():
        rest = next(b for b in prompt.buttons() if b.text().startswith("Send Only"))
        qtbot.mouseClick(rest, Qt.MouseButton.LeftButton)
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    second = qloop.run_until_complete(answer_rest())
    # only the three refused ones went again
    assert (second.total, second.skipped_already_imported) == (3, 117)
    assert sandbox_thread.server.request_count - requests == 1


def test_history_tab_lists_jobs_and_shows_a_jobs_failures(qtbot, qloop, window,
                                                          sandbox_thread, tmp_path):
    first_file = tmp_path / "in" / "a.json"
    write_customer_file(first_file, generate_customers(60, refused=4))
    second_file = tmp_path / "in2" / "b.json"
    write_customer_file(second_file, generate_customers(30, start_id=80_000))
    connect(window, sandbox_thread)
    # the first batch meets an outage (no retries): 50 a retry can fix, 4 refused
    sandbox_thread.server.config.fail_first_requests = 1
    summaries = []
    for source in (first_file, second_file):
        window.files_tab.clear()
        window.files_tab.add_paths([source])
        qtbot.waitUntil(lambda s=source: window.files_tab.ready_files() == [s]
                        and not window.files_tab.is_counting(), timeout=10_000)
        summaries.append(start_and_wait(qtbot, qloop, window))
    first = summaries[0]
    fixable = first.failed_by_result["HTTP_ERROR"]
    assert fixable == 50 and first.failed == fixable + first.failed_by_result["FAILED"] > 50
    tab = window.history_tab
    qtbot.waitUntil(lambda: tab.model.rowCount() == 2, timeout=5000)
    assert [tab.proxy.job_at(r).id for r in range(2)] == [2, 1]  # newest first
    assert tab.select_job(1)
    assert tab.failures_button.isEnabled() and tab.retry_button.isEnabled()
    assert not tab.resume_button.isEnabled()  # completed: nothing to resume
    qtbot.mouseClick(tab.failures_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.failed_tab
    assert window.failed_tab.job_filter() == 1
    # (a reload the import's end started may come in first: wait for the job's own)
    qtbot.waitUntil(lambda: window.failed_tab.model.rowCount() == first.failed
                    and not window.failed_tab.is_loading(), timeout=5000)

    # retry its open failures: those a retry can fix are loaded as retry files
    tab.select_job(1)
    with qtbot.waitSignal(window.files_tab.countingFinished, timeout=10_000):
        qtbot.mouseClick(tab.retry_button, Qt.MouseButton.LeftButton)
    ready = window.files_tab.ready_files()
    assert len(ready) == 1 and ready[0].parent.name.startswith("retry_batches_")
    assert window.files_tab.ready_customers() == fixable

    # delete from the history: asks, and the result files stay
    tab.select_job(2)
    box = tab.ask_delete()
    assert box is not None and "stay in the results folder" in box.informativeText()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    # a reload asked before the delete (the retry's) may answer first, listing both jobs:
    # wait for the list the delete's own reload brings
    qtbot.waitUntil(lambda: [tab.proxy.job_at(r).id for r in range(tab.proxy.rowCount())]
                    == [1], timeout=5000)
    assert any((tmp_path / "out").glob("retry_batches_*"))


def test_an_interrupted_job_is_offered_for_resume(qtbot, qloop, tmp_path, sandbox_thread):
    server = sandbox_thread.server
    server.config.latency_ms = 40
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(1_500))
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "main.py"), "import", str(source), "--url",
               server.customers_url("c4r"), "--token", server.static_token,
               "--output-dir", str(out), "--batch-size", "20", "--concurrency", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(server.customers) >= 300)
    finally:
        process.kill()
        process.wait(10)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.import_tab.set_run_settings({"output_dir": out})
    connect(win, sandbox_thread)
    win.show()
    qtbot.waitUntil(lambda: win.findChild(QMessageBox, "resume_prompt") is not None,
                    timeout=5000)
    prompt = win.findChild(QMessageBox, "resume_prompt")
    assert "Job #1" in prompt.text() and "stopped before it finished" in prompt.text()

    async def accept():
        qtbot.mouseClick(prompt.button(QMessageBox.StandardButton.Yes),
                         Qt.MouseButton.LeftButton)
        (summary,) = await wait_for_signal(win.runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(accept())
    assert summary.resumed and summary.job == 1
    assert (summary.total, summary.succeeded, summary.failed) == (1_500, 1_500, 0)
    assert len(server.customers) == 1_500
    # sent again only what the kill left unrecorded: the 2 batches of 20 in flight, one
    # answered within the journal's last 20 ms (2 at once, 40 ms each) and the commit
    # under way; and none of them more than once
    attempts = server.create_attempts
    assert len(attempts) == 1_500 and max(attempts.values()) <= 2
    assert attempts.total() - 1_500 <= (2 + 1 + 1) * 20
    journal = Journal.open(out, create=False)
    try:
        assert journal.jobs()[0].state is JobState.COMPLETED
    finally:
        journal.close()
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "history", "--output-dir",
                           str(out), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(done.stdout)[0]["state"] == "completed"


def test_error_report_of_the_selected_job(qtbot, tmp_path):
    from dataclasses import replace
    from pathlib import Path

    from app.views.history_tab import HistoryTab

    report = tmp_path / "error_report_job2.csv"
    report.write_text("\ufefffile,row,column,value,message\r\nkunder.csv,3,Efternamn,,"
                      "last name is missing\r\n", encoding="utf-8")
    tab = HistoryTab(lambda: tmp_path)
    qtbot.addWidget(tab)
    jobs = [job(1), replace(job(2), error_report=str(report)),
            replace(job(3), error_report=str(tmp_path / "gone.csv"))]
    tab.model.set_jobs(jobs)
    assert not tab.report_button.isEnabled()  # nothing selected
    enabled = {}
    for number in (1, 2, 3):
        assert tab.select_job(number)
        enabled[number] = tab.report_button.isEnabled()
    assert enabled == {1: False, 2: True, 3: False}
    assert tab.select_job(2)
    assert tab.error_report() == report
    assert [a.text() for a in tab.report_button.menu().actions()] == ["Open", "Save a Copy…"]
    dialog = tab.open_save_report_dialog()
    assert dialog is not None and dialog.objectName() == "save_error_report_dialog"
    dialog.reject()
    copy = tmp_path / "kopia" / "rapport.csv"
    copy.parent.mkdir()
    messages: list[str] = []
    tab.statusMessage.connect(messages.append)
    assert tab.save_error_report(report, copy)
    assert copy.read_text("utf-8-sig").splitlines()[1] == ("kunder.csv,3,Efternamn,,"
                                                           "last name is missing")
    assert messages == [f"Error report saved as {copy}"]
    assert not tab.save_error_report(report, tmp_path / "no" / "such" / "folder.csv")
    assert Path(report).is_file()
