"""Flows that confused a new user: questions made moot by the import's end, the list of
the results folder in use, what the retry prompt offers."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.views.main_window import MainWindow
from tests.conftest import wait_for_signal
from tests.test_main_window import connect_to, find_prompt, open_window, stop_any_import


@pytest.fixture
def window(qtbot, qloop, tmp_path):
    win = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                       QSettings.Format.IniFormat),
                      tmp_path / "out", max_retries=0)
    yield win
    stop_any_import(qloop, win)


def load(qtbot, window: MainWindow, path, customers) -> None:
    write_customer_file(path, customers)
    window.files_tab.add_paths([path])
    qtbot.waitUntil(lambda: bool(window.files_tab.ready_files())
                    and not window.files_tab.is_counting(), timeout=10_000)


def test_a_cancel_question_the_import_s_end_made_moot_closes_itself(
        qtbot, qloop, window, sandbox_thread, tmp_path):
    load(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(400))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 20, "concurrency": 1})
    sandbox_thread.server.config.latency_ms = 10
    sandbox_thread.server.config.fail_first_requests = 1  # no retries: 20 for a retry

    async def scenario():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await wait_for_signal(window.runner.progressChanged, 30)
        window.session.ask_cancel()  # the user presses Cancel... and does not answer
        question = find_prompt(window, "cancel_prompt")
        assert question is not None and question.isVisible() and question.isModal()
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(scenario())
    assert not summary.cancelled and summary.failed == 20
    # the question is gone; the retry prompt is the one prompt, and it answers
    qtbot.waitUntil(lambda: find_prompt(window, "cancel_prompt") is None, timeout=2000)
    prompt = find_prompt(window, "retry_prompt")
    assert prompt is not None
    qtbot.waitUntil(prompt.isVisible, timeout=2000)
    visible = [box for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert visible == [prompt]
    qtbot.mouseClick(prompt.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.files_tab.is_counting()
                    and window.files_tab.total_customers() == 20, timeout=10_000)
    assert all(p.parent.name.startswith("retry_batches_")
               for p in window.files_tab.ready_files())


def test_pressing_cancel_during_the_import_still_cancels(qtbot, qloop, window, sandbox_thread,
                                                        tmp_path):
    load(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(2_000))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 1})
    sandbox_thread.server.config.latency_ms = 20

    async def scenario():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await wait_for_signal(window.runner.progressChanged, 30)
        window.session.ask_cancel()
        question = find_prompt(window, "cancel_prompt")
        assert question is not None
        qtbot.mouseClick(question.button(QMessageBox.StandardButton.Yes),
                         Qt.MouseButton.LeftButton)
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(scenario())
    assert summary.cancelled and summary.succeeded < 2_000


def test_after_a_resume_the_retry_prompt_offers_the_whole_job_s_failures(
        qtbot, qloop, tmp_path, sandbox_thread):
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_helper_processes import wait_until

    server = sandbox_thread.server
    server.config.latency_ms = 40
    server.config.fail_first_requests = 3  # with no retries: 3 batches of 20 fail for good
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(1_500))
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "main.py"), "import", str(source), "--url",
               server.customers_url("c4r"), "--token", server.static_token,
               "--output-dir", str(out), "--batch-size", "20", "--concurrency", "2",
               "--retries", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(server.customers) >= 300)
    finally:
        process.kill()
        process.wait(10)
    win = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                       QSettings.Format.IniFormat), out, max_retries=0)
    connect_to(win, sandbox_thread)
    qtbot.waitUntil(lambda: find_prompt(win, "resume_prompt") is not None, timeout=5000)

    async def resume():
        qtbot.mouseClick(find_prompt(win, "resume_prompt").button(
            QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
        (summary,) = await wait_for_signal(win.runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(resume())
    assert summary.resumed and summary.failed == 60
    qtbot.waitUntil(lambda: find_prompt(win, "retry_prompt") is not None, timeout=5000)
    prompt = find_prompt(win, "retry_prompt")
    assert prompt.text().startswith("60 customers could not be imported for reasons a retry "
                                    "can fix")
    assert "failed for their data" not in prompt.text()
    qtbot.mouseClick(prompt.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.files_tab.is_counting()
                    and win.files_tab.total_customers() == 60, timeout=10_000)
    stop_any_import(qloop, win)


def a_cancelled_job_then_the_next_start(qtbot, qloop, window: MainWindow, sandbox_thread,
                                        tmp_path) -> MainWindow:
    """Job #1 cancelled by the user, then the window of the app's next start (no keychain
    here: it holds no secret), on the same settings and results folder."""
    load(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(2_000))
    connect_to(window, sandbox_thread)  # the token typed (the tests' keychain refuses all)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 1})
    sandbox_thread.server.config.latency_ms = 20

    async def cancelled_import():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await wait_for_signal(window.runner.progressChanged, 30)
        window.session.cancel()
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    first = qloop.run_until_complete(cancelled_import())
    assert first.cancelled and first.job == 1
    window.close()
    again = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                         QSettings.Format.IniFormat),
                        tmp_path / "out", max_retries=0)
    assert again.import_tab.connection.token_edit.text() == ""  # nothing kept
    return again


def test_resuming_keeps_the_token_typed_when_no_keychain_holds_it(qtbot, qloop, window,
                                                                   sandbox_thread, tmp_path):
    again = a_cancelled_job_then_the_next_start(qtbot, qloop, window, sandbox_thread,
                                                tmp_path)
    # the token is typed again; then History → Resume
    connect_to(again, sandbox_thread)
    token = again.import_tab.connection.token_edit.text()
    assert token == sandbox_thread.server.static_token
    history = again.history_tab
    qtbot.waitUntil(lambda: history.model.rowCount() == 1, timeout=5000)

    async def resume():
        assert history.select_job(1)
        qtbot.mouseClick(history.resume_button, Qt.MouseButton.LeftButton)
        assert again.runner.running, again.import_tab.state_label.text()
        (summary,) = await wait_for_signal(again.runner.finished, 60)
        return summary

    try:
        resumed = qloop.run_until_complete(resume())
    finally:
        stop_any_import(qloop, again)
    assert again.import_tab.connection.token_edit.text() == token  # never wiped
    assert resumed.resumed and resumed.job == 1
    assert resumed.succeeded + resumed.failed == 2_000


def test_a_demo_killed_during_its_import_offers_to_resume_it_with_the_right_count(
        tmp_path, sandbox_thread):
    import subprocess
    import sys

    from app.services.jobs.history_tasks import load_jobs
    from app.services.sandbox.demo import demo_results_folder
    from app.services.sandbox.sample_customers import generate_customers as customers_of
    from tests.conftest import ROOT
    from tests.test_helper_processes import wait_until

    base = tmp_path / "Bulk Customer Import"
    earlier = base / "Demo" / "2026-12-01 10.00.00"
    assert demo_results_folder(base).parent == base / "Demo"  # nothing to resume: new
    server = sandbox_thread.server
    server.config.latency_ms = 40
    source = tmp_path / "kunder.json"
    write_customer_file(source, customers_of(1_500))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "import", str(source), "--url",
         server.customers_url("c4r"), "--token", server.static_token, "--output-dir",
         str(earlier), "--batch-size", "20", "--concurrency", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(server.customers) >= 300)
    finally:
        process.kill()
        process.wait(10)
    created = len(server.customers)

    assert demo_results_folder(base) == earlier  # the next launch goes on there
    assert demo_results_folder(earlier) == earlier
    (job,) = load_jobs(earlier)
    # what its finished batches recorded, not counters written once a second: at most the
    # batches in flight (2 of 20) were created without being recorded
    assert created - 2 * 20 <= job.succeeded <= created


def test_the_import_tab_says_what_the_next_import_takes(window):
    tab = window.import_tab
    tab.set_files_summary(3, 0, importing=True)  # spreadsheets: counted as they are read
    assert tab.files_label.text() == "Importing 3 files"
    tab.set_files_summary(1, 2_400, importing=True)
    assert tab.files_label.text() == "Importing 1 file · 2,400 customers"
    tab.set_files_summary(0, None, listed=1)  # the retry file went in
    assert tab.files_label.text() == ("Nothing new to import: the file on the Files tab "
                                      "went in; add files there")
    tab.set_files_summary(0, None, listed=0)
    assert tab.files_label.text() == "No files loaded: add files on the Files tab"
    tab.set_files_summary(1, 1)
    assert tab.files_label.text() == "1 file ready · 1 customer"


def test_a_resume_asks_for_the_secret_no_keychain_kept(qtbot, qloop, window, sandbox_thread,
                                                       tmp_path):
    from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit

    again = a_cancelled_job_then_the_next_start(qtbot, qloop, window, sandbox_thread,
                                                tmp_path)
    history = again.history_tab
    qtbot.waitUntil(lambda: history.model.rowCount() == 1, timeout=5000)
    assert history.select_job(1)
    qtbot.mouseClick(history.resume_button, Qt.MouseButton.LeftButton)
    assert not again.runner.running
    prompt = again.findChild(QDialog, "sign_in_prompt")
    assert prompt is not None and prompt.isVisible()
    fields = prompt.findChildren(QLineEdit)
    assert [f.accessibleName() for f in fields] == ["Bearer token"]
    resume = prompt.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    assert not resume.isEnabled()
    fields[0].setText(sandbox_thread.server.static_token)
    screenshots = Path(__file__).resolve().parent / "screenshots"
    screenshots.mkdir(exist_ok=True)
    assert prompt.grab().save(str(screenshots / "sign_in_prompt.png"))

    async def resumed_import():
        qtbot.mouseClick(resume, Qt.MouseButton.LeftButton)
        assert again.runner.running
        (summary,) = await wait_for_signal(again.runner.finished, 60)
        return summary

    try:
        summary = qloop.run_until_complete(resumed_import())
    finally:
        stop_any_import(qloop, again)
    assert summary.resumed and summary.succeeded + summary.failed == 2_000
    assert again.import_tab.connection.token_edit.text() == sandbox_thread.server.static_token


def test_the_csv_separator_chosen_is_remembered_for_the_next_start(qtbot, window, tmp_path):
    combo = window.failed_tab.separator_combo
    choice = next(combo.itemData(i) for i in range(combo.count())
                  if combo.itemData(i) != combo.currentData())
    combo.setCurrentIndex(combo.findData(choice))
    window.close()  # saves the settings
    again = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                         QSettings.Format.IniFormat),
                        tmp_path / "out", max_retries=0)
    assert again.failed_tab.separator_combo.currentData() == choice
