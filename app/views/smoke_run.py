"""A window that runs itself, for smoke tests of a built package: BULK_IMPORT_SMOKE_RUN=1.

Nobody clicks in a build machine's window, so with this variable set the app

- prints `smoke-run: first window painted` when the main window is first painted (the
  test times the launch by it), and checks that the window has its icon;
- with `--demo`: starts the import once the sample files are counted, answers Yes to the
  retry prompt (`retry_prompt`), imports what it offered (the customers the demo's outage
  stopped), and checks that they were imported and that no other customer failed. Both
  imports run in the import's own helper process, as a big import does (the demo's would
  run in the window's): a build that cannot start that process fails here;
- then closes the window: the app's exit status is 0 when all went as expected, 1 if not.

Each step follows a Qt signal (a paint, `countingFinished`, the runner's `finished`); there
are no timers to wait on. Not meant for people: it is read only by `run_gui`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox

from app.services.pipeline.import_events import ImportSummary
from app.services.session.import_session import RetryOffer
from app.views.main_window import MainWindow

ENV_VARIABLE = "BULK_IMPORT_SMOKE_RUN"
# the demo's customers that fail on every try: their data is refused (see demo.DEMO_FILES)
BAD_DATA_RESULTS = {"CONFLICT", "FAILED"}


def smoke_run_requested() -> bool:
    return os.environ.get(ENV_VARIABLE, "") not in ("", "0")


class SmokeRun(QObject):
    """Drives `window` as described in the module's docstring; `exit_code` is the verdict.

    Signals: finished(int): the run is over (with the exit code); the window is closing.
    """

    finished = Signal(int)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.exit_code = 1
        self._painted = False
        self._imports: list[ImportSummary] = []
        window.installEventFilter(self)
        window.runner.use_process = True
        window.runner.finished.connect(self._import_finished)
        # the window shows its prompt first (connected earlier)
        window.session.retryOffered.connect(self._accept_retry_prompt)
        self._offer: RetryOffer | None = None
        window.runner.crashed.connect(lambda message: self._fail(f"import crashed: {message}"))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self._say("first window painted")
            # after this paint has finished, not inside it
            QTimer.singleShot(0, self._begin)
        return False

    def _say(self, text: str) -> None:
        print(f"smoke-run: {text}", file=sys.stdout, flush=True)

    def _begin(self) -> None:
        # a package that lost the SVG or Qt's SVG plugins shows no icon, and says nothing
        if self.window.windowIcon().pixmap(32, 32).isNull():
            self._fail("the window has no icon")
        elif self.window.demo is None:
            self._finish(0)
        else:
            self._when_files_counted(self._start_import)

    def _when_files_counted(self, then: Callable[[], None]) -> None:
        files_tab = self.window.files_tab
        if files_tab.ready_files() and not files_tab.is_counting():
            then()
            return

        def counted() -> None:
            files_tab.countingFinished.disconnect(counted)
            then()

        files_tab.countingFinished.connect(counted)

    def _start_import(self) -> None:
        self._say(f"importing {self.window.files_tab.ready_customers():,} customers")
        self.window.start_import()
        if not self.window.runner.running:
            self._fail("the import did not start: "
                       + self.window.import_tab.state_label.text())

    def _import_finished(self, summary: ImportSummary) -> None:
        self._imports.append(summary)
        failed = dict(summary.failed_by_result)
        self._say(f"import {len(self._imports)} finished: {summary.total:,} read, "
                  f"{summary.succeeded:,} imported, failed {failed}")
        if summary.fatal_error or summary.cancelled:
            self._fail(f"import stopped: {summary.fatal_error or 'cancelled'}")
        elif len(self._imports) == 1:
            if not summary.failed:
                self._fail("no failures after the demo's outage")
            # else: the retry prompt follows, once the history was read
        elif self._offer is None or summary.total != self._offer.customers:
            offered = self._offer.customers if self._offer is not None else 0
            self._fail(f"the retry read {summary.total:,} customers, not {offered:,}")
        elif not set(failed) <= BAD_DATA_RESULTS or not summary.succeeded:
            self._fail("the retry did not import the customers the outage had stopped")
        else:
            self._finish(0)

    def _accept_retry_prompt(self, offer: RetryOffer) -> None:
        prompt = self.window.findChild(QMessageBox, "retry_prompt")
        if prompt is None or not offer.customers:
            self._fail("no retry prompt after the demo's outage")
            return
        self._offer = offer
        self._say(f"retry prompt: {offer.customers:,} customers; answering Yes")
        session = self.window.session

        def loaded(_folder: object, _strategy: str) -> None:
            session.retryFilesChosen.disconnect(loaded)
            self._when_files_counted(self._start_import)

        session.retryFilesChosen.connect(loaded)  # written from the history, then loaded
        prompt.button(QMessageBox.StandardButton.Yes).click()

    def _fail(self, reason: str) -> None:
        self._say(f"FAILED: {reason}")
        self._finish(1)

    def _finish(self, exit_code: int) -> None:
        self.exit_code = exit_code
        if exit_code == 0:
            self._say("passed")
        for box in self.window.findChildren(QMessageBox):
            box.reject()  # a prompt left open would keep the app running
        self.finished.emit(exit_code)
        self.window.close()
