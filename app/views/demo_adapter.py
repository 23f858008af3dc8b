"""The built-in demo in the window: its sandbox connection, sample files, and staged outage."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.services.connection.auth import Secret
from app.services.sandbox.demo import DEMO_TOKEN, DemoEnvironment, demo_results_folder
from app.services.session.import_options import ConnectionOptions
from app.services.session.import_session import ImportStart
from app.views.desktop_look import START_IMPORT_KEYS, shortcut_text

if TYPE_CHECKING:
    from app.views.main_window import MainWindow

# two retries keep the staged outage short: a few seconds, not half a minute
DEMO_RETRIES = 2


class DemoAdapter(QObject):
    """Sets the window up for the demo: its title, the sandbox connection, a results folder
    per launch, the sample files; and stages the demo's one outage around the session's
    imports (`importStarting`, `importEnded`).

    The connection is the session's for this launch only (`fixed_connection`): the
    sandbox's address changes every start, so it is neither saved nor replaced by a resumed
    job's. It keeps no reference to the window (a child of it, it goes with it).
    """

    def __init__(self, window: MainWindow, environment: DemoEnvironment) -> None:
        super().__init__(window)
        self.environment = environment
        session, import_tab = window.session, window.import_tab
        session.fixed_connection = True
        session.importStarting.connect(self._before_import)
        session.importEnded.connect(environment.after_import)
        window.setWindowTitle(f"{window.windowTitle()} – demo")
        import_tab.set_connection_options(
            ConnectionOptions(profile="sandbox", host=environment.base_url, tenant="demo",
                              token=Secret(DEMO_TOKEN)), remember_secrets=False)
        # a results folder per launch: each launch's sandbox starts empty (an earlier
        # demo's history would skip customers this sandbox never saw)
        run = import_tab.run_options()
        import_tab.set_run_options(replace(run, output_dir=demo_results_folder(run.output_dir),
                                           max_retries=DEMO_RETRIES))
        window.files_tab.add_paths(environment.files)
        window.tabs.setCurrentWidget(window.files_tab)
        window.statusBar().showMessage("Demo: sample customers are loaded and the local "
                                       "sandbox API is selected. Press "
                                       f"{shortcut_text(START_IMPORT_KEYS)} to import.", 15000)

    def _before_import(self, start: ImportStart) -> None:
        self.environment.before_import(start.settings.max_retries, start.settings.concurrency)
