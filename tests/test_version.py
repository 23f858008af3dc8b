"""The version a package reports: from the package metadata, in --version and Help → About;
and --help names the program the way it was started (main.py, or the executable)."""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata

import pytest
from PySide6.QtCore import QSettings, qVersion
from PySide6.QtWidgets import QMessageBox

from app.cli import program_name
from app.version import app_version, version_text
from app.views.main_window import MainWindow
from tests.conftest import ROOT, run_cli


def pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def test_version_is_the_package_metadata_version():
    assert app_version() == metadata.version("bulk-customer-import") == pyproject_version()


def test_version_option_prints_app_qt_and_python_versions():
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == f"Bulk Customer Import {pyproject_version()}"
    assert f"Qt {qVersion()}" in second and f"Python {platform.python_version()}" in second


def test_help_names_the_program_the_way_it_was_started(tmp_path):
    assert run_cli("--help").stdout.startswith("usage: main.py ")
    # the packaged executable, as this system writes its path: its name, without ".exe"
    folder = tmp_path / "Program Files" / "Bulk"
    assert program_name(str(folder / "bulk-customer-import.exe")) == "bulk-customer-import"
    assert program_name(str(folder / "Bulk-Customer-Import.EXE")) == "Bulk-Customer-Import"
    assert program_name(str(folder / "bulk-customer-import")) == "bulk-customer-import"
    assert program_name("/opt/bulk-customer-import/bulk-customer-import") == \
        "bulk-customer-import"
    assert program_name("") == "bulk-customer-import"


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_about_box_shows_app_qt_and_python_versions(qtbot, settings):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show_about()
    box = window.findChild(QMessageBox, "about_box")
    assert box is not None
    for version in (app_version(), qVersion(), platform.python_version()):
        assert version in box.text()
    assert version_text().splitlines()[1] in box.text()
    box.close()


def test_version_falls_back_to_pyproject_when_not_installed(monkeypatch):
    import app.version

    monkeypatch.setattr(app.version, "DISTRIBUTION", "not-an-installed-distribution")
    assert app.version.app_version() == pyproject_version()
