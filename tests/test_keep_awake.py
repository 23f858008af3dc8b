"""The computer stays awake while an import runs, in the window and on the command line, and
is let go when it ends, however it ends; keeping awake never fails an import.

On Linux the lock is `systemd-inhibit` running a command that waits on its input. The
machines that run these tests have no logind to grant it, so a stand-in named
`systemd-inhibit` comes first on PATH: a real process, run with the real arguments, which
runs its last argument (the waiting command) as the real one does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QSettings, Qt

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxThread
from app.util import keep_awake
from app.util.keep_awake import KeepAwake
from app.views.main_window import MainWindow
from tests.conftest import ROOT, until, wait_for_signal
from tests.test_helper_processes import wait_until
from tests.test_import_process import load_files
from tests.test_main_window import connect_to, open_window, stop_any_import

on_linux = pytest.mark.skipif(not sys.platform.startswith("linux"),
                              reason="systemd-inhibit is Linux's way")

EXPECTED_ARGUMENTS = ["--what=idle:sleep", "--mode=block", "--who=Bulk Customer Import",
                      "--why=Importing customers", "cat"]


@pytest.fixture(autouse=True)
def nothing_logged_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new run of the app: nothing logged once already."""
    monkeypatch.setattr(keep_awake, "_logged", set())


@pytest.fixture
def inhibitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `systemd-inhibit` first on PATH that runs its last argument and waits for it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "systemd-inhibit"
    script.write_text('#!/bin/sh\nfor last; do :; done\n"$last"\n', encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return script


def inhibitors(script: Path, pid: int | None = None) -> list[psutil.Process]:
    """The stand-in's processes among the descendants of `pid` (default: this process)."""
    found = []
    try:
        descendants = psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for process in descendants:
        try:
            if str(script) in process.cmdline():
                found.append(process)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass  # ended (a zombie is not holding anything either)
    return found


def holding(script: Path, pid: int | None = None) -> psutil.Process | None:
    """The one stand-in running (with the real arguments, its waiting command under it)."""
    found = inhibitors(script, pid)
    if len(found) != 1:
        return None
    (process,) = found
    try:
        if process.cmdline()[2:] != EXPECTED_ARGUMENTS or not process.children():
            return None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return process


def gone(processes: list[psutil.Process]) -> bool:
    """Whether all have ended (a zombie has: it only waits to be reaped)."""
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


@pytest.fixture
def window(qtbot, qloop, tmp_path: Path) -> Iterator[MainWindow]:
    win = open_window(qtbot, QSettings(str(tmp_path / "settings.ini"),
                                       QSettings.Format.IniFormat),
                      tmp_path / "out", max_retries=0)
    yield win
    stop_any_import(qloop, win)


@on_linux
def test_a_window_import_holds_the_inhibitor_exactly_while_it_runs(
        qtbot, qloop, window: MainWindow, sandbox_thread: SandboxThread, inhibitor: Path,
        tmp_path: Path) -> None:
    load_files(qtbot, window, tmp_path / "in" / "kunder_åäö.json", generate_customers(200))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 1})
    sandbox_thread.server.config.latency_ms = 30  # 20 batches: over half a second
    assert inhibitors(inhibitor) == []

    async def scenario() -> tuple[list[psutil.Process], bool, object]:
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await until(lambda: holding(inhibitor) is not None or not window.runner.running)
        process = holding(inhibitor)
        assert process is not None, "no inhibitor while the import ran"
        held = [process, *process.children()]  # the stand-in and the command it waits on
        running = window.runner.running
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return held, running, summary

    held, running_then, summary = qloop.run_until_complete(scenario())
    assert running_then and summary.succeeded == 200  # type: ignore[attr-defined]
    assert len(held) == 2
    assert gone(held) and inhibitors(inhibitor) == []  # let go as the import finished


@on_linux
def test_an_import_that_crashes_lets_the_computer_sleep_again(
        qtbot, qloop, window: MainWindow, sandbox_thread: SandboxThread, inhibitor: Path,
        tmp_path: Path) -> None:
    load_files(qtbot, window, tmp_path / "in" / "kunder.json", generate_customers(3_000))
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 10, "concurrency": 2})
    sandbox_thread.server.config.latency_ms = 20
    window.runner.use_process = True

    async def scenario() -> tuple[list[psutil.Process], str]:
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        await until(lambda: holding(inhibitor) is not None or not window.runner.running)
        process = holding(inhibitor)
        assert process is not None, "no inhibitor while the import ran"
        held = [process, *process.children()]
        window.runner.process.kill()  # the import process dies
        (message,) = await wait_for_signal(window.runner.crashed, 30)
        return held, message

    held, message = qloop.run_until_complete(scenario())
    assert "ended unexpectedly" in message
    assert len(held) == 2 and gone(held) and inhibitors(inhibitor) == []


def command_line_import(sandbox_thread: SandboxThread, tmp_path: Path) -> subprocess.Popen:
    source = tmp_path / "in" / "kunder_åäö.json"
    write_customer_file(source, generate_customers(200))
    server = sandbox_thread.server
    server.config.latency_ms = 30
    command = [sys.executable, str(ROOT / "main.py"), "import", str(source),
               "--url", server.customers_url("c4r"), "--token", server.static_token,
               "--batch-size", "10", "--concurrency", "1", "--output-dir",
               str(tmp_path / "out"), "--json"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})


@on_linux
def test_the_command_line_holds_the_inhibitor_for_its_run(
        sandbox_thread: SandboxThread, inhibitor: Path, tmp_path: Path) -> None:
    importer = command_line_import(sandbox_thread, tmp_path)
    try:
        assert wait_until(lambda: holding(inhibitor, importer.pid) is not None
                          or importer.poll() is not None), "the import never started"
        process = holding(inhibitor, importer.pid)
        assert process is not None and importer.poll() is None
        held = [process, *process.children()]
        assert importer.wait(timeout=120) == 0
        assert len(held) == 2 and gone(held)
        assert len(sandbox_thread.server.customers) == 200
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()


@on_linux
def test_the_inhibitor_ends_with_a_killed_command_line(
        sandbox_thread: SandboxThread, inhibitor: Path, tmp_path: Path) -> None:
    importer = command_line_import(sandbox_thread, tmp_path)
    try:
        assert wait_until(lambda: holding(inhibitor, importer.pid) is not None
                          or importer.poll() is not None), "the import never started"
        process = holding(inhibitor, importer.pid)
        assert process is not None
        held = [process, *process.children()]
        importer.send_signal(signal.SIGKILL)  # no release: its end of the pipe closes
        importer.wait(timeout=10)
        # reaped by whoever adopts them, or left as zombies: either way no longer holding
        assert len(held) == 2 and wait_until(lambda: gone(held), 10)
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()


@on_linux
def test_an_inhibitor_that_fails_changes_nothing_and_is_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # as systemd-inhibit does without a logind to talk to: it ends at once, status 1
    monkeypatch.setattr(keep_awake, "INHIBIT_COMMAND",
                        [sys.executable, "-c", "raise SystemExit(1)"])
    awake = KeepAwake()
    with caplog.at_level(logging.INFO, logger="bulk_import"):
        for _ in range(2):
            before = set(psutil.Process().children())
            awake.hold()
            assert awake.held
            (child,) = set(psutil.Process().children()) - before  # ended or not
            assert wait_until(lambda child=child: child.status() == psutil.STATUS_ZOMBIE,
                              10)
            awake.release()  # raises nothing
            assert not awake.held and not child.is_running()  # reaped
    (record,) = [r for r in caplog.records if r.name == "bulk_import"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (f"Keeping the computer awake did not work as asked "
                                   f"(OSError: {sys.executable} ended early with exit "
                                   "status 1)")


@on_linux
def test_without_systemd_inhibit_nothing_is_held(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no systemd-inhibit
    before = {p.pid for p in psutil.Process().children()}
    with caplog.at_level(logging.INFO, logger="bulk_import"):
        for _ in range(2):
            with KeepAwake() as awake:
                assert not awake.held
                assert {p.pid for p in psutil.Process().children()} == before
    (record,) = [r for r in caplog.records if r.name == "bulk_import"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == ("systemd-inhibit not found: the computer may sleep "
                                   "during imports")


@pytest.mark.skipif(sys.platform not in ("win32", "darwin"),
                    reason="the system's own call: Windows and macOS")
def test_the_system_keeps_awake_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bulk_import"), KeepAwake() as awake:
        assert awake.held
        if sys.platform == "darwin":  # the assertion, as `pmset` lists it
            listed = subprocess.run(["pmset", "-g", "assertions"], capture_output=True,
                                    text=True, check=True).stdout
            assert "Importing customers" in listed
    assert not awake.held
    assert [r for r in caplog.records if r.name == "bulk_import"] == []
