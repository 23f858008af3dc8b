"""Results folders inside OneDrive, iCloud Drive, Dropbox or Google Drive are recognised."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.services.results.cloud_folders import cloud_folder_note, cloud_sync_service
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxThread
from app.views.main_window import MainWindow
from tests.conftest import run_cli, wait_for_signal

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize(("folder", "service"), [
    # Windows: OneDrive backup moves Documents; work accounts are "OneDrive - Company"
    (r"C:\Users\anna\OneDrive\Documents\Bulk Customer Import", "OneDrive"),
    (r"C:\Users\anna\OneDrive - Contoso AB\Dokument\Bulk Customer Import", "OneDrive"),
    (r"c:\users\anna\onedrive\documents", "OneDrive"),
    (r"D:\Dropbox\imports", "Dropbox"),
    (r"C:\Users\anna\Dropbox (Contoso)\Bulk Customer Import", "Dropbox"),
    (r"G:\My Drive\Bulk Customer Import", "Google Drive"),
    (r"G:\Shared drives\Retail\results", "Google Drive"),
    (r"C:\Users\anna\iCloudDrive\results", "iCloud Drive"),
    (r"C:\Users\anna\Documents\Bulk Customer Import", None),
    (r"C:\Users\anna\Documents\My Drive notes", None),
    (r"C:\Users\anna\OneDriveBackup\results", None),
])
def test_windows_paths(folder, service):
    assert cloud_sync_service(PureWindowsPath(folder), env=NO_ENV) == service


@pytest.mark.parametrize(("folder", "service"), [
    ("/Users/anna/Library/Mobile Documents/com~apple~CloudDocs/Bulk Customer Import",
     "iCloud Drive"),
    ("/Users/anna/Library/CloudStorage/OneDrive-Contoso/Documents", "OneDrive"),
    ("/Users/anna/Library/CloudStorage/OneDrive-Personal", "OneDrive"),
    ("/Users/anna/Library/CloudStorage/Dropbox/results", "Dropbox"),
    ("/Users/anna/Library/CloudStorage/GoogleDrive-anna@example.com/My Drive/x",
     "Google Drive"),
    ("/Users/anna/Library/CloudStorage/Box-Box/results", "Box"),
    ("/Users/anna/Google Drive/results", "Google Drive"),
    ("/home/anna/Dropbox/results", "Dropbox"),
    ("/home/anna/Documents/Bulk Customer Import", None),
    ("/home/anna/Mobile Documents/results", None),
])
def test_macos_and_linux_paths(folder, service):
    assert cloud_sync_service(PurePosixPath(folder), env=NO_ENV) == service


def test_onedrive_variables_name_renamed_folders():
    env = {"OneDriveCommercial": r"C:\Users\anna\Contoso Files"}
    assert cloud_sync_service(PureWindowsPath(r"C:\Users\anna\Contoso Files\results"),
                              env=env) == "OneDrive"
    assert cloud_sync_service(PureWindowsPath(r"c:\users\ANNA\contoso files"),
                              env=env) == "OneDrive"
    assert cloud_sync_service(PureWindowsPath(r"C:\Users\anna\Contoso"), env=env) is None
    assert cloud_sync_service(PureWindowsPath(r"C:\x"), env={"OneDrive": ""}) is None


def test_dropbox_folder_named_in_its_info_file(tmp_path):
    home = tmp_path / "home"
    synced = tmp_path / "Work files"
    (home / ".dropbox").mkdir(parents=True)
    (home / ".dropbox" / "info.json").write_text(json.dumps(
        {"business": {"path": str(synced), "host": 1}}), encoding="utf-8")
    assert cloud_sync_service(synced / "results", env=NO_ENV, home=home) == "Dropbox"
    assert cloud_sync_service(tmp_path / "elsewhere", env=NO_ENV, home=home) is None


def test_unreadable_dropbox_info_is_ignored(tmp_path):
    (tmp_path / ".dropbox").mkdir()
    (tmp_path / ".dropbox" / "info.json").write_text("{not json", encoding="utf-8")
    assert cloud_sync_service(tmp_path / "results", env=NO_ENV, home=tmp_path) is None


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt",
                    reason="symbolic links need extra rights on Windows")
def test_a_link_into_a_synced_folder_counts(tmp_path):
    synced = tmp_path / "OneDrive" / "Documents"
    synced.mkdir(parents=True)
    link = tmp_path / "Documents"
    link.symlink_to(synced, target_is_directory=True)
    assert cloud_sync_service(link / "Bulk Customer Import", env=NO_ENV,
                              home=tmp_path) == "OneDrive"
    assert cloud_sync_service(tmp_path / "plain", env=NO_ENV, home=tmp_path) is None


def test_note_names_the_folder_and_the_service():
    note = cloud_folder_note(Path("/x/OneDrive/results"), "OneDrive")
    assert str(Path("/x/OneDrive/results")) in note and "OneDrive" in note
    assert "one file per failed customer" in note


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def sandbox_thread():
    with SandboxThread(SandboxConfig(static_token="identity-test-token", seed=5)) as thread:
        yield thread


def test_command_line_notes_a_cloud_synced_results_folder(sandbox_thread, tmp_path):
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(20))
    out = tmp_path / "Dropbox" / "imports"
    done = run_cli("import", str(source), "--url", sandbox_thread.server.customers_url("c4r"),
                   "--token", "identity-test-token", "--output-dir", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert f"note: The results folder {out} is inside Dropbox" in done.stderr
    assert "--no-single-files" in done.stderr
    others = tmp_path / "andra_kunder.json"  # new customers: the sandbox remembers the first
    write_customer_file(others, generate_customers(20, start_id=5000))
    plain = run_cli("import", str(others), "--url", sandbox_thread.server.customers_url("c4r"),
                    "--token", "identity-test-token", "--output-dir", str(tmp_path / "out"))
    assert plain.returncode == 0 and "note:" not in plain.stderr


def test_window_warns_once_about_a_cloud_synced_results_folder(qtbot, qloop, settings,
                                                               sandbox_thread, tmp_path):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    out = tmp_path / "OneDrive - Contoso" / "results"
    window.import_tab.set_run_settings({"output_dir": out})
    panel = window.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    panel.host_edit.setText(sandbox_thread.base_url)
    panel.token_edit.setText("identity-test-token")
    window.show()

    def import_new_customers(name: str, start_id: int):
        source = tmp_path / name
        write_customer_file(source, generate_customers(30, start_id=start_id))
        window.files_tab.add_paths([source])
        qtbot.waitUntil(lambda: source in window.files_tab.ready_files()
                        and not window.files_tab.is_counting(), timeout=10_000)

        async def import_once():
            window.start_import()
            (summary,) = await wait_for_signal(window.runner.finished, 60)
            return summary

        return qloop.run_until_complete(import_once())

    summary = import_new_customers("kunder.json", 1000)
    assert summary.succeeded == 30  # the warning does not hold the import up
    box = window.findChild(QMessageBox, "cloud_folder_warning")
    assert box is not None and box.isVisible() and not box.isModal()
    assert "inside OneDrive" in box.text() and str(out) in box.text()
    assert "inside OneDrive" in window.import_tab.log_view.toPlainText()
    box.close()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "cloud_folder_warning") is None)
    assert import_new_customers("fler_kunder.json", 2000).succeeded == 30
    assert window.findChild(QMessageBox, "cloud_folder_warning") is None  # said once
