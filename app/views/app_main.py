"""Starts the desktop app: QApplication, the qasync event loop, the main window, the demo."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication

from app.services.sandbox.demo import DemoEnvironment
from app.util import background
from app.util.event_loop import GuiEventLoop
from app.views.main_window import APP_TITLE, MainWindow, app_icon
from app.views.smoke_run import SmokeRun, smoke_run_requested


def run_gui(demo: bool = False) -> int:
    """Open the window and run until it closes; `demo` starts the local sandbox first."""
    QCoreApplication.setOrganizationName(APP_TITLE)
    QCoreApplication.setApplicationName(APP_TITLE)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    current = QApplication.instance()  # typed as QCoreApplication
    app = current if isinstance(current, QApplication) else QApplication(sys.argv)
    app.setWindowIcon(app_icon())
    loop = GuiEventLoop(app)
    asyncio.set_event_loop(loop)
    environment = DemoEnvironment() if demo else None
    if environment is not None:
        environment.start()
    window = MainWindow(demo=environment)
    # smoke tests of built packages: the window runs itself, see smoke_run.py
    smoke_run = SmokeRun(window) if smoke_run_requested() else None
    window.show()
    closed = asyncio.Event()
    app.lastWindowClosed.connect(closed.set)
    try:
        with loop:
            loop.run_until_complete(closed.wait())
    finally:
        # the window's background work ends before the app does (queued tasks still run:
        # a job deleted from the history just before closing is deleted)
        background.wait_for_all()
        if environment is not None:
            environment.stop()
        with contextlib.suppress(RuntimeError):
            asyncio.set_event_loop(None)
    return smoke_run.exit_code if smoke_run is not None else 0
