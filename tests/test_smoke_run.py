"""BULK_IMPORT_SMOKE_RUN: the window runs itself, for smoke tests of built packages."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QSettings

from app.services.sandbox.demo import DemoEnvironment
from app.views.main_window import MainWindow
from app.views.smoke_run import SmokeRun
from tests.conftest import ROOT, wait_for_signal


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_smoke_run_imports_the_demo_retries_and_closes(qtbot, qloop, settings, tmp_path):
    demo = DemoEnvironment()
    demo.start(tmp_path / "demo")
    try:
        window = MainWindow(demo=demo, settings=settings)
        qtbot.addWidget(window)
        window.import_tab.set_run_settings({"output_dir": tmp_path / "out"})
        smoke = SmokeRun(window)

        async def run():
            window.show()
            (exit_code,) = await wait_for_signal(smoke.finished, 120)
            return exit_code

        assert qloop.run_until_complete(run()) == 0
        assert not window.isVisible()
        assert len(list((tmp_path / "out").glob("retry_batches_*"))) == 2
    finally:
        demo.stop()
        asyncio.set_event_loop(qloop)


def test_smoke_run_without_demo_closes_after_the_first_paint(qtbot, qloop, settings):
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    smoke = SmokeRun(window)

    async def run():
        window.show()
        (exit_code,) = await wait_for_signal(smoke.finished, 30)
        return exit_code

    assert qloop.run_until_complete(run()) == 0
    assert not window.isVisible()


def test_readme_mentions_the_smoke_run_variable():
    assert "BULK_IMPORT_SMOKE_RUN" in (ROOT / "README.md").read_text(encoding="utf-8")
