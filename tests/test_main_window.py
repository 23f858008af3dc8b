"""The whole app driven as a user would: drops, clicks, prompts, against the sandbox API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QScrollArea

from app.services.pipeline.import_events import ImportProgress
from app.services.sandbox.demo import DemoEnvironment
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxThread
from app.services.session.import_options import import_settings
from app.views.main_window import MainWindow
from tests.conftest import wait_for_signal

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture
def sandbox_thread():
    with SandboxThread(SandboxConfig(static_token="gui-test-token", seed=5)) as thread:
        yield thread


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def open_window(qtbot, settings: QSettings, output_dir: Path, max_retries: int
                ) -> MainWindow:
    """The main window as a user sees it, its results going to `output_dir`."""
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.import_tab.set_run_settings({"output_dir": output_dir, "max_retries": max_retries})
    win.resize(1280, 820)
    win.show()
    return win


def stop_any_import(qloop, win: MainWindow) -> None:
    if win.runner.running:
        win.runner.cancel()
        qloop.run_until_complete(win.runner.wait())


@pytest.fixture
def window(qtbot, qloop, settings, tmp_path):
    win = open_window(qtbot, settings, tmp_path / "out", max_retries=1)
    yield win
    stop_any_import(qloop, win)


def connect_to(win: MainWindow, sandbox: SandboxThread) -> None:
    panel = win.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    panel.host_edit.setText(sandbox.base_url)
    panel.token_edit.setText(sandbox.server.static_token)


def drop_paths(widget, paths: list[Path]) -> None:
    """Drag files in from the desktop and drop them, as Explorer or Finder would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def import_and_wait(qtbot, qloop, win: MainWindow):
    async def click_and_wait():
        qtbot.mouseClick(win.import_tab.start_button, Qt.MouseButton.LeftButton)
        (summary,) = await wait_for_signal(win.runner.finished, 60)
        return summary

    return qloop.run_until_complete(click_and_wait())


def find_prompt(win: MainWindow, name: str) -> QMessageBox | None:
    return win.findChild(QMessageBox, name)


def test_import_through_the_window_then_retry_the_failures(qtbot, qloop, window,
                                                           sandbox_thread, tmp_path):
    files = tmp_path / "in"
    write_customer_file(files / "kunder.json", generate_customers(400, refused=4, invalid=2))
    write_customer_file(files / "övriga_kunder.jsonl", generate_customers(100, start_id=90000),
                        json_lines=True)
    drop_paths(window, [files])
    qtbot.waitUntil(lambda: len(window.files_tab.ready_files()) == 2
                    and not window.files_tab.is_counting(), timeout=10_000)
    assert window.files_tab.total_customers() == 500
    connect_to(window, sandbox_thread)
    # one request at a time, one retry: the first batch meets two 503s and fails for good
    window.import_tab.set_run_settings({"concurrency": 1, "max_retries": 1})
    sandbox_thread.server.config.fail_first_requests = 2
    summary = import_and_wait(qtbot, qloop, window)
    assert summary.total == 500 and summary.succeeded + summary.failed == 500
    assert summary.failed_by_result["HTTP_ERROR"] == 50
    assert window.import_tab.succeeded_value.text() == f"{summary.succeeded:,}"
    failed_tab = window.failed_tab
    qtbot.waitUntil(lambda: failed_tab.model.rowCount() == summary.failed, timeout=5000)
    assert window.tabs.tabText(2) == f"Failed &Customers ({summary.failed})"
    # the journal's word: kunder.json went in but for its 56 failures
    qtbot.waitUntil(lambda: {e.path.name: e.status for e in window.files_tab.model.entries()}
                    == {"kunder.json": "partly", "övriga_kunder.jsonl": "imported"},
                    timeout=5000)
    model = window.files_tab.model
    row = model.row_of(files / "kunder.json")
    assert model.data(model.index(row, model.STATUS)) == "Imported · 54 failed · 2 invalid"

    # the retry prompt offers what a retry can fix (the 50 the outage stopped) and names
    # the 4 the service refused for their data and the 2 refused before sending
    qtbot.waitUntil(lambda: find_prompt(window, "retry_prompt") is not None, timeout=5000)
    prompt = find_prompt(window, "retry_prompt")
    assert prompt is not None and not prompt.isModal()
    qtbot.waitUntil(prompt.isVisible, timeout=2000)
    assert "50 customers could not be imported for reasons a retry can fix" in prompt.text()
    assert "6 other customers failed for their data (4 FAILED, 2 INVALID)" in prompt.text()
    assert summary.retry_customers == 54  # the retry files of the import itself: all of them
    qtbot.mouseClick(prompt.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is window.files_tab, timeout=5000)
    qtbot.waitUntil(lambda: not window.files_tab.is_counting()
                    and window.files_tab.total_customers() == 50, timeout=10_000)
    loaded = window.files_tab.ready_files()
    assert len(loaded) >= 1 and all(p.parent.name.startswith("retry_batches_") for p in loaded)

    second = import_and_wait(qtbot, qloop, window)
    assert (second.total, second.succeeded, second.failed) == (50, 50, 0)
    # every customer sent reached the service once: the 4 it refused were not sent again
    # (498 of 500: the 2 invalid ones were never sent)
    attempts = sandbox_thread.server.create_attempts
    assert len(attempts) == 498 and max(attempts.values()) == 1
    # the list tells the truth: the 50 the retry brought in are gone, the 4 refused ones
    # and the 2 invalid ones stay
    qtbot.waitUntil(lambda: window.tabs.tabText(2) == "Failed &Customers (6)", timeout=5000)
    assert failed_tab.model.rowCount() == 6 == failed_tab.failure_count()
    assert sorted(r.result for r in failed_tab.model.records()) == \
        ["FAILED"] * 4 + ["INVALID"] * 2


def test_start_explains_what_is_missing(qtbot, window, tmp_path):
    qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
    assert "add customer files" in window.import_tab.state_label.text()
    assert window.tabs.currentWidget() is window.files_tab
    write_customer_file(tmp_path / "a.json", generate_customers(3))
    window.files_tab.add_paths([tmp_path / "a.json"])
    qtbot.waitUntil(lambda: bool(window.files_tab.ready_files()), timeout=5000)
    window.import_tab.connection.token_edit.clear()
    qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
    assert "bearer token" in window.import_tab.state_label.text()
    assert not window.runner.running


def test_cancel_asks_first_and_closing_during_an_import_stops_it_cleanly(
        qtbot, qloop, window, sandbox_thread, tmp_path):
    write_customer_file(tmp_path / "many.json", generate_customers(3000))
    window.files_tab.add_paths([tmp_path / "many.json"])
    qtbot.waitUntil(lambda: bool(window.files_tab.ready_files()), timeout=5000)
    connect_to(window, sandbox_thread)
    sandbox_thread.server.config.latency_ms = 30

    async def scenario():
        window.start_import()
        await wait_for_signal(window.runner.progressChanged, 10)
        window.cancel_action.trigger()
        prompt = find_prompt(window, "cancel_prompt")
        prompt.button(QMessageBox.StandardButton.No).click()
        assert window.runner.running
        window.close()
        close_prompt = find_prompt(window, "close_prompt")
        assert close_prompt is not None and window.isVisible()
        close_prompt.button(QMessageBox.StandardButton.Yes).click()
        (summary,) = await wait_for_signal(window.runner.finished, 30)
        return summary

    summary = qloop.run_until_complete(scenario())
    assert summary.cancelled
    assert summary.succeeded + summary.failed == 3000
    assert summary.failed == summary.failed_by_result["NOT_SENT"] > 0
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)


def test_progress_says_how_much_is_left_to_write(window):
    window.import_tab.show_progress(ImportProgress(state="writing", succeeded=900, failed=120,
                                                   writes_pending=1234))
    assert window.import_tab.state_label.text() == (
        "Writing the result files… (1,234 batches of failures left)")
    window.import_tab.show_progress(ImportProgress(state="writing", failed=120))
    assert window.import_tab.state_label.text() == "Writing the result files…"


def test_progress_shows_how_many_requests_are_under_way(window):
    window.import_tab.show_progress(ImportProgress(state="running", succeeded=400,
                                                   concurrency=2, concurrency_ceiling=8))
    assert window.import_tab.at_once_value.text() == "2 of 8"
    window.import_tab.show_progress(ImportProgress(state="finished", succeeded=400))
    assert window.import_tab.at_once_value.text() == "–"


def test_settings_persist_without_secrets(qtbot, qloop, settings, tmp_path):
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    panel = first.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("c4r"))
    panel.host_edit.setText("https://retail.example.com")
    panel.tenant_edit.setText("butik_åre")
    panel.user_edit.setText("märta")
    panel.password_edit.setText("hemligt-lösen")
    first.import_tab.batch_spin.setValue(80)
    first.tabs.setCurrentIndex(2)
    first.close()
    stored = Path(settings.fileName()).read_text("utf-8")
    assert "hemligt" not in stored
    second = MainWindow(settings=QSettings(settings.fileName(), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    restored = second.import_tab.connection.settings()
    assert (restored.profile, restored.host, restored.tenant, restored.username) == (
        "c4r", "https://retail.example.com", "butik_åre", "märta")
    assert second.import_tab.batch_spin.value() == 80
    assert second.tabs.currentIndex() == 2
    assert second.import_tab.connection.households_label.text().endswith(
        "/customers-import/v1/households")


def test_demo_import_and_screenshots_of_every_tab(qtbot, qloop, settings, tmp_path):
    demo = DemoEnvironment()
    demo.start(tmp_path / "demo")
    try:
        win = MainWindow(demo=demo, settings=settings)
        qtbot.addWidget(win)
        win.import_tab.set_run_settings({"output_dir": tmp_path / "out"})
        win.resize(1280, 820)
        win.show()
        qtbot.waitUntil(lambda: len(win.files_tab.ready_files()) == 3
                        and not win.files_tab.is_counting(), timeout=10_000)
        summary = import_and_wait(qtbot, qloop, win)
        assert summary.total == 2400
        for result in ("CONFLICT", "FAILED", "INVALID", "HTTP_ERROR"):
            assert summary.failed_by_result[result] > 0, result
        qtbot.waitUntil(lambda: win.failed_tab.model.rowCount() == summary.failed)
        SCREENSHOTS.mkdir(exist_ok=True)
        qtbot.waitUntil(lambda: win.history_tab.model.rowCount() == 1, timeout=5000)
        for index, name in enumerate(("files", "import", "failed_customers", "history")):
            win.tabs.setCurrentIndex(index)
            path = SCREENSHOTS / f"{name}_tab.png"
            assert win.grab().save(str(path))
            assert path.stat().st_size > 10_000
        prompt = find_prompt(win, "retry_prompt")
        assert prompt is not None
        assert prompt.grab().save(str(SCREENSHOTS / "retry_prompt.png"))
        saved = json.loads((tmp_path / "out" / "failed_customers" /
                            "failed_customers.json").read_text("utf-8"))
        assert len(saved) == summary.failed
    finally:
        demo.stop()
        asyncio.set_event_loop(qloop)


@pytest.mark.parametrize(("token", "ok", "words"), [
    ("gui-test-token", True, "Connected"),
    ("wrong-token", False, "refused the credentials"),
])
def test_test_connection_reports_what_works(qtbot, qloop, window, sandbox_thread, token, ok,
                                            words):
    connect_to(window, sandbox_thread)
    panel = window.import_tab.connection
    panel.token_edit.setText(token)

    async def click_and_wait():
        qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
        return await wait_for_signal(panel.tested, 15)

    result_ok, message = qloop.run_until_complete(click_and_wait())
    assert result_ok is ok and words in message
    assert words in panel.test_result.text() and panel.test_button.isEnabled()
    assert len(sandbox_thread.server.customers) == 0  # the test imports nobody


def test_c4r_sign_in_from_the_window(qtbot, qloop, window, sandbox_thread):
    panel = window.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("c4r"))
    panel.host_edit.setText(sandbox_thread.base_url)
    panel.tenant_edit.setText("demo")
    assert not panel.token_edit.isVisibleTo(panel) and panel.password_edit.isVisibleTo(panel)
    panel.user_edit.setText("demo")
    panel.password_edit.setText("demo")
    assert any(p.startswith("enter the client id") for p in panel.problems())
    panel.client_id_edit.setText("bulk-import")
    panel.client_secret_edit.setText("sandbox-secret")

    async def click_and_wait():
        qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
        return await wait_for_signal(panel.tested, 15)

    result_ok, message = qloop.run_until_complete(click_and_wait())
    assert result_ok, message
    assert panel.password_edit.echoMode() == panel.password_edit.EchoMode.Password


def test_secrets_typed_for_one_profile_survive_switching_profiles(qtbot, window):
    panel = window.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    panel.token_edit.setText("sandbox-token-åäö")
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("c4r"))
    assert panel.token_edit.text() == ""  # C4R has its own secrets
    panel.client_secret_edit.setText("c4r-secret")
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    assert panel.token_edit.text() == "sandbox-token-åäö"
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("c4r"))
    assert panel.client_secret_edit.text() == "c4r-secret"
    assert not panel.secret_store.available  # tests never reach a real keychain


def test_every_control_has_an_accessible_name(window):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QTableView,
    )

    unnamed, checked = [], 0
    for tab in range(window.tabs.count()):
        window.tabs.setCurrentIndex(tab)
        page = window.tabs.currentWidget()
        for kind in (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QTableView):
            for widget in page.findChildren(kind):
                parent = widget.parentWidget()
                if isinstance(parent, QAbstractSpinBox | QComboBox) or \
                        not widget.isVisibleTo(page):
                    continue  # a spin box's or combo box's own editor, or a hidden row
                checked += 1
                if not widget.accessibleName():
                    unnamed.append(f"{type(widget).__name__} on tab {tab}")
    assert checked > 30 and unnamed == []


# -- spreadsheets: mapping, review before Start, customer options -------------------------------


def write_swedish_csv(path: Path, rows: list[str]) -> Path:
    header = "Kundnummer;Förnamn;Efternamn;Födelsedatum;Butik"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([header, *rows]) + "\r\n").encode())
    return path


@pytest.fixture
def no_saved_mappings(tmp_path, monkeypatch):
    from app.services.sources import mapping_profiles
    monkeypatch.setattr(mapping_profiles, "profiles_folder", lambda: tmp_path / "profiles")


def test_spreadsheet_import_is_reviewed_before_it_starts(qtbot, qloop, window, sandbox_thread,
                                                         tmp_path, no_saved_mappings):
    path = write_swedish_csv(tmp_path / "in" / "kunder.csv", [
        "7001;Åsa;Öberg;01.05.1966;S01", "7002;Örjan;Åkesson;24.12.1975;S02",
        "7003;Émile;Ängström;31.02.1980;S01"])
    drop_paths(window, [path])
    files = window.files_tab
    qtbot.waitUntil(lambda: files.mapping_dialog() is not None
                    and bool(files.mapping_dialog().preview_rows()), timeout=30_000)
    dialog = files.mapping_dialog()
    with qtbot.waitSignal(dialog.previewUpdated, timeout=10_000):
        dialog.set_target("Butik", "person.homeStore")
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: files.mapping_dialog() is None)
    assert files.ready_files() == [path]
    assert "rows of 1 spreadsheet are checked when you start" in \
        window.import_tab.files_label.text()
    connect_to(window, sandbox_thread)
    window.import_tab.on_existing_combo.setCurrentIndex(
        window.import_tab.on_existing_combo.findData("skip"))
    request = window.session.inputs.request()
    settings = import_settings(request.connection, request.run, request.sources)
    assert settings.file_mappings[str(path)]["fields"]["person.homeStore"] == "Butik"
    assert settings.on_existing == "skip" and settings.assignment == {}

    qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
    review = window.review_dialog
    assert review is not None and not window.runner.running
    qtbot.waitUntil(lambda: review.validation_result() is not None, timeout=30_000)
    assert review.summary_label.text() == "2 valid, 1 invalid"
    report = tmp_path / "out" / ".review" / "error_report_review.csv"
    assert review.error_report() == report

    async def accept_and_wait():
        review.import_button.click()
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    summary = qloop.run_until_complete(accept_and_wait())
    assert window.review_dialog is None
    assert summary.succeeded == 2 and summary.failed == 1
    stores = {key: person.get("homeStore")
              for key, person in sandbox_thread.server.customers.items()}
    assert stores == {"7001": "S01", "7002": "S02"}


def test_back_from_the_review_does_not_start(qtbot, window, tmp_path, sandbox_thread,
                                             no_saved_mappings):
    path = write_swedish_csv(tmp_path / "in" / "k.csv", ["7101;Åsa;Öberg;01.05.1966;S01"])
    window.files_tab.add_paths([path])
    qtbot.waitUntil(lambda: window.files_tab.mapping_dialog() is not None, timeout=30_000)
    dialog = window.files_tab.mapping_dialog()
    qtbot.waitUntil(dialog.ok_button.isEnabled, timeout=30_000)
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: window.files_tab.mapping_dialog() is None, timeout=10_000)
    connect_to(window, sandbox_thread)
    window.start_import()
    review = window.review_dialog
    assert review is not None
    qtbot.waitUntil(lambda: review.validation_result() is not None, timeout=30_000)
    assert review.summary_label.text() == "The row is valid and ready to import."
    assert review.import_button.text() == "Start Import"
    review.back_button.click()
    assert window.review_dialog is None and not window.runner.running
    assert window.tabs.currentWidget() is window.files_tab


def test_json_only_import_starts_without_review(qtbot, qloop, window, sandbox_thread,
                                                tmp_path):
    write_customer_file(tmp_path / "in" / "kunder.json", generate_customers(5))
    window.files_tab.add_paths([tmp_path / "in" / "kunder.json"])
    qtbot.waitUntil(lambda: len(window.files_tab.ready_files()) == 1
                    and not window.files_tab.is_counting(), timeout=10_000)
    connect_to(window, sandbox_thread)
    summary = import_and_wait(qtbot, qloop, window)
    assert window.review_dialog is None
    assert summary.succeeded == 5


def test_invalid_assignment_is_shown_and_blocks_start(qtbot, window, tmp_path,
                                                      sandbox_thread):
    tab = window.import_tab
    write_customer_file(tmp_path / "in" / "kunder.json", generate_customers(2))
    window.files_tab.add_paths([tmp_path / "in" / "kunder.json"])
    qtbot.waitUntil(lambda: len(window.files_tab.ready_files()) == 1, timeout=10_000)
    connect_to(window, sandbox_thread)
    tab.assign_mode_combo.setCurrentIndex(tab.assign_mode_combo.findData("round-robin"))
    assert tab.assign_value_edit.isVisibleTo(tab) and not tab.assign_column_edit.isVisibleTo(tab)
    tab.assign_target_edit.setText("person.homeStore")
    assert tab.options_error.isVisibleTo(tab)
    assert "round-robin assignment needs at least one value" in tab.options_error.text()
    window.start_import()
    assert not window.runner.running and window.review_dialog is None
    assert tab.state_label.text().startswith("Cannot start: Assignment:")
    tab.assign_value_edit.setText("S01, S02 ,S03")
    assert not tab.options_error.isVisibleTo(tab)
    assert tab.assignment_settings() == {"mode": "round-robin", "target": "person.homeStore",
                                         "values": ["S01", "S02", "S03"]}
    tab.assign_target_edit.setText("person..homeStore")
    assert tab.options_problem() is not None and tab.options_error.isVisibleTo(tab)
    tab.assign_mode_combo.setCurrentIndex(tab.assign_mode_combo.findData("column"))
    assert tab.assign_column_edit.isVisibleTo(tab) and not tab.assign_value_edit.isVisibleTo(tab)


def test_customer_options_persist_and_screenshot(qtbot, settings, tmp_path):
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    tab = first.import_tab
    tab.on_existing_combo.setCurrentIndex(tab.on_existing_combo.findData("update"))
    tab.assign_mode_combo.setCurrentIndex(tab.assign_mode_combo.findData("single"))
    tab.assign_target_edit.setText("person.customerGroup")
    tab.assign_value_edit.setText("Stamkund Åre")
    first.resize(1280, 820)
    first.tabs.setCurrentWidget(tab)
    first.show()
    qtbot.waitExposed(first)
    SCREENSHOTS.mkdir(exist_ok=True)
    scroll = tab.findChild(QScrollArea)
    scroll.ensureWidgetVisible(tab.options_group)
    assert tab.grab().save(str(SCREENSHOTS / "import_tab_options.png"))
    first.close()
    second = MainWindow(settings=QSettings(settings.fileName(), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    assert second.import_tab.run_options().on_existing == "update"
    assert second.import_tab.assignment_settings() == {
        "mode": "single", "target": "person.customerGroup", "values": ["Stamkund Åre"]}
    assert second.import_tab.assign_value_edit.text() == "Stamkund Åre"


def test_loading_a_retry_folder_takes_its_import_s_strategy(qtbot, window, tmp_path):
    folder = tmp_path / "retry_batches_20261130_101500"
    folder.mkdir()
    (folder / "retry_batch_001.json").write_text(
        '{"data": [{"changeType": "CREATE", "type": "PERSON", "person": '
        '{"customerId": "1001", "firstName": "Åsa", "lastName": "Öberg"}}]}', "utf-8")
    (folder / "retry_summary.json").write_text(
        '{"importStartedAt": "2026-11-30T10:15:00", "onExisting": "update", "files": []}',
        "utf-8")
    assert window.import_tab.run_options().on_existing == "create"
    window.load_retry_files(folder)
    assert window.import_tab.run_options().on_existing == "update"
    assert "update existing customers" in window.statusBar().currentMessage()


def test_each_demo_launch_has_results_of_its_own(tmp_path):
    from app.services.sandbox.demo import demo_results_folder
    first = demo_results_folder(tmp_path)
    assert first.parent == tmp_path / "Demo"
    # started again from a setting that is itself a demo folder: not nested deeper
    assert demo_results_folder(first).parent == tmp_path / "Demo"
    assert demo_results_folder(tmp_path / "Demo").parent == tmp_path / "Demo"
    first.mkdir(parents=True)
    second = demo_results_folder(tmp_path)
    assert second != first and second.parent == tmp_path / "Demo"


@pytest.mark.parametrize(("answer", "runs"), [(QMessageBox.StandardButton.Yes, 1),
                                              (QMessageBox.StandardButton.No, 0)])
def test_a_yes_runs_the_action_once(qtbot, answer, runs):
    from app.views.widget_setup import when_yes
    box = QMessageBox(QMessageBox.Icon.Question, "Replace?", "Replace it?",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    qtbot.addWidget(box)
    calls: list[int] = []
    when_yes(box, lambda: calls.append(1))
    box.open()
    with qtbot.waitSignal(box.finished):
        box.button(answer).click()
    assert len(calls) == runs  # Qt itself may also report a Yes as accepted: still once


def test_test_connection_through_the_proxy_field_says_so(qtbot, qloop, window,
                                                         sandbox_thread):
    from tests.local_proxy import LocalProxy

    connect_to(window, sandbox_thread)
    panel = window.import_tab.connection
    proxy = LocalProxy(credentials=("kontor", "p@ss"))
    qloop.run_until_complete(proxy.start())
    port = proxy.url.rsplit(":", 1)[1]
    panel.proxy_edit.setText(f"http://kontor:p%40ss@127.0.0.1:{port}")

    async def click_and_wait():
        qtbot.mouseClick(panel.test_button, Qt.MouseButton.LeftButton)
        return await wait_for_signal(panel.tested, 15)

    try:
        result_ok, message = qloop.run_until_complete(click_and_wait())
        panel.proxy_edit.setText(f"http://kontor:fel@127.0.0.1:{port}")
        refused_ok, refused = qloop.run_until_complete(click_and_wait())
    finally:
        qloop.run_until_complete(proxy.stop())
    assert result_ok, message
    assert f"through the proxy http://127.0.0.1:{port} (set in the connection settings)" \
        in message
    assert len(proxy.counts.forwarded) == 1 and "p@ss" not in message
    assert not refused_ok and "407" in refused
    # the proxy address (it may hold a password) is kept with the secrets
    settings, secrets = panel.settings(), panel.secrets()
    assert "kontor" not in json.dumps(settings.to_dict())
    assert secrets.proxy.reveal().startswith("http://kontor:")


def test_plain_http_to_another_machine_is_flagged_under_the_url(qtbot, window):
    panel = window.import_tab.connection
    window.tabs.setCurrentIndex(1)
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("custom"))
    panel.url_edit.setText("http://crm.example.com/customers-import/v1/customers")
    assert panel.url_warning.isVisibleTo(panel)
    assert "crm.example.com is reached over plain http://" in panel.url_warning.text()
    SCREENSHOTS.mkdir(exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "plain_http_warning.png"))
    panel.url_edit.setText("https://crm.example.com/customers-import/v1/customers")
    assert not panel.url_warning.isVisibleTo(panel)
