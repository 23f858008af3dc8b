"""A big import runs in a helper process (`engine_process`): the window hears the same
events, pauses, resumes, cancels and moves its results the same way, and hears when the
process dies."""

from __future__ import annotations

import asyncio
import pickle
import sys
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QSettings, Qt

from app.services.connection.auth import PasswordGrant, PasswordGrantSettings, Secret
from app.services.pipeline import qt_import_runner
from app.services.pipeline.import_events import ImportState
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.util.helper_processes import HELPER_NICENESS
from app.views.main_window import MainWindow
from tests.conftest import wait_for_signal
from tests.test_helper_processes import python_children, wait_until
from tests.test_main_window import connect_to, find_prompt, open_window, stop_any_import


@pytest.fixture
def window(qtbot, qloop, tmp_path):
    win = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                       QSettings.Format.IniFormat),
                      tmp_path / "out", max_retries=1)
    yield win
    stop_any_import(qloop, win)


def load_files(qtbot, window: MainWindow, path: Path, customers) -> None:
    write_customer_file(path, customers)
    window.files_tab.add_paths([path])
    qtbot.waitUntil(lambda: bool(window.files_tab.ready_files())
                    and not window.files_tab.is_counting(), timeout=10_000)


async def progress_until(window: MainWindow, condition, timeout: float = 60):
    """The first progress report (after now) for which `condition(progress)` holds."""
    while True:
        (progress,) = await wait_for_signal(window.runner.progressChanged, timeout)
        if condition(progress):
            return progress


def test_a_big_import_runs_in_a_process_and_the_window_hears_all_of_it(
        qtbot, qloop, window, sandbox_thread, tmp_path, monkeypatch):
    # "big" from 500 customers on (20,000 in use): the choice is the runner's own
    monkeypatch.setattr(qt_import_runner, "ENGINE_PROCESS_MIN_CUSTOMERS", 500)
    load_files(qtbot, window, tmp_path / "in" / "kunder_åäö.json",
               generate_customers(600, refused=6, invalid=3))
    connect_to(window, sandbox_thread)
    assert window.runner.use_process is None
    logged: list[str] = []
    window.runner.logMessage.connect(lambda _level, text: logged.append(text))
    failures_heard: list[int] = []
    window.runner.failuresFound.connect(lambda records: failures_heard.append(len(records)))

    async def run():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        assert window.runner.running and window.runner.in_process
        process = window.runner.process
        assert process is not None and process.is_alive()
        # it gives way to the window: below normal priority
        assert wait_until(lambda: runs_below_normal(process.pid), 10)
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary, process

    summary, process = qloop.run_until_complete(run())
    assert (summary.total, summary.succeeded, summary.failed) == (600, 591, 9)
    assert summary.failed_by_result == {"FAILED": 6, "INVALID": 3}
    assert sum(failures_heard) == 9 and len(failures_heard) >= 1
    assert any(line.startswith("Import finished") for line in logged)
    assert sandbox_thread.server.create_attempts.total() == 597  # the 3 invalid never sent
    assert wait_until(lambda: process.exitcode is not None, 10) and process.exitcode == 0
    assert not window.runner.running
    # the window shows the outcome as for an import run here
    failed_tab = window.failed_tab
    qtbot.waitUntil(lambda: failed_tab.model.rowCount() == 9, timeout=5000)
    assert window.tabs.tabText(2) == "Failed &Customers (9)"
    assert window.import_tab.succeeded_value.text() == "591"
    # all 9 failed for their data: nothing for a retry, the state line says what to do
    qtbot.waitUntil(lambda: "9 customers failed for their data: correct them" in
                    window.import_tab.state_label.text(), timeout=5000)
    assert find_prompt(window, "retry_prompt") is None


def test_a_small_import_runs_here(qtbot, qloop, window, sandbox_thread, tmp_path):
    load_files(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(40))
    connect_to(window, sandbox_thread)

    async def run():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        assert window.runner.running and not window.runner.in_process
        assert window.runner.process is None
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    assert qloop.run_until_complete(run()).succeeded == 40


def test_pause_resume_and_cancel_reach_the_import_in_its_process(
        qtbot, qloop, window, sandbox_thread, tmp_path):
    load_files(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(3_000))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 2})
    server = sandbox_thread.server
    server.config.latency_ms = 20
    window.runner.use_process = True
    runner = window.runner

    async def scenario():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await progress_until(window, lambda p: p.succeeded >= 100)
        window.session.toggle_pause()
        assert runner.paused and window.import_tab.pause_button.text() == "Resume"
        await progress_until(window, lambda p: p.state == ImportState.PAUSED
                             and p.requests_in_flight == 0)
        sent = server.request_count
        # reports made while paused keep it paused, on both sides
        await progress_until(window, lambda p: True)
        await progress_until(window, lambda p: True)
        assert runner.paused and server.request_count == sent
        window.session.toggle_pause()
        assert not runner.paused
        await progress_until(window, lambda p: p.state == ImportState.RUNNING
                             and server.request_count > sent)
        runner.cancel("the import was cancelled")
        (summary,) = await wait_for_signal(runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(scenario())
    assert summary.cancelled and 0 < summary.succeeded < 3_000
    # nothing lost: whatever was not imported is a failure, in the retry files
    assert summary.succeeded + summary.failed == 3_000
    assert summary.retry_customers == summary.failed


def test_moving_the_results_reaches_the_import_in_its_process(
        qtbot, qloop, window, sandbox_thread, tmp_path):
    load_files(qtbot, window, tmp_path / "in" / "kunder.json",
               generate_customers(3_000, refused=600))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 2})
    sandbox_thread.server.config.latency_ms = 20
    window.runner.use_process = True
    elsewhere = tmp_path / "någon annanstans"
    elsewhere.mkdir()

    async def scenario():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await progress_until(window, lambda p: p.failed >= 20)
        window.session.toggle_pause()
        await progress_until(window, lambda p: p.state == ImportState.PAUSED)
        window.session.move_results(elsewhere)
        assert not window.runner.paused  # moving resumes
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(scenario())
    assert summary.failed == 600 and summary.retry_dir is not None
    assert summary.result_files_complete
    assert summary.retry_dir.parent == elsewhere
    assert sum(1 for _ in summary.retry_dir.glob("retry_batch_*.json")) >= 1


def test_the_window_hears_when_the_import_process_dies(qtbot, qloop, window, sandbox_thread,
                                                       tmp_path):
    load_files(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(3_000))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 2})
    sandbox_thread.server.config.latency_ms = 20
    window.runner.use_process = True

    async def scenario():
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await progress_until(window, lambda p: p.succeeded >= 50)
        window.runner.process.kill()
        (message,) = await wait_for_signal(window.runner.crashed, 30)
        return message

    message = qloop.run_until_complete(scenario())
    assert "ended unexpectedly" in message and "resume the job from the History tab" in message
    assert not window.runner.running and window.import_tab.start_button.isEnabled()
    assert "stopped unexpectedly" in window.import_tab.state_label.text()
    assert wait_until(lambda: not python_children_of_the_import(), 10)


def runs_below_normal(pid: int) -> bool:
    try:
        priority = psutil.Process(pid).nice()
    except psutil.NoSuchProcess:
        return False
    if sys.platform == "win32":
        return priority == psutil.BELOW_NORMAL_PRIORITY_CLASS
    return priority == HELPER_NICENESS > psutil.Process().nice()


def python_children_of_the_import() -> list:
    import os

    return [p for p in python_children(os.getpid())
            if "resource_tracker" not in " ".join(p.cmdline())]


def test_a_sign_in_crosses_to_the_import_process_without_its_lock_or_callbacks():
    grant = PasswordGrant(PasswordGrantSettings(
        token_url="https://auth.example/token", username="åsa", password=Secret("lösen-Ö"),
        client_id="app"), "Engage")
    grant.on_new_token = print
    copy = pickle.loads(pickle.dumps(grant))
    assert "lösen-Ö" in copy.known_secrets() and copy.known_secrets() == grant.known_secrets()
    assert copy.settings == grant.settings and copy.on_new_token is None
    assert copy.network is None and copy._lock is not grant._lock
    asyncio.run(asyncio.wait_for(copy._lock.acquire(), 1))  # a working lock of its own


def test_failures_cross_packed_and_are_unpacked_only_when_read():
    from app.services.pipeline.engine_process import PackedFailures
    from tests.test_failed_customers_tab import make_failures

    records = make_failures(3)
    packed = pickle.loads(pickle.dumps(PackedFailures(records)))
    assert len(packed) == 3
    assert list(packed) == records and records[1] in packed
    assert {r.username for r in packed} == {r.username for r in records}
    assert any(ch in "".join(r.username for r in packed) for ch in "ÅÄÖÉ")
