"""What the import session reads from the window's tabs."""

from __future__ import annotations

from dataclasses import replace

from app.services.connection.connection_profiles import ConnectionSettings
from app.services.session.import_options import RunOptions
from app.services.session.import_session import ImportRequest
from app.views.files_tab import FilesTab
from app.views.import_tab import ImportTab


class TabInputs:
    """The session's `ImportInputs` from the tabs: options and files as set there, and a
    resumed job's options shown there. Holds the tabs, never the window."""

    def __init__(self, files_tab: FilesTab, import_tab: ImportTab) -> None:
        self.files_tab, self.import_tab = files_tab, import_tab

    def request(self) -> ImportRequest:
        tab = self.import_tab
        sources = replace(self.files_tab.source_options(),
                          assignment=tab.assignment_settings())
        return ImportRequest(tab.connection_options(), tab.run_options(), sources,
                             self.files_tab.file_choice())

    def restore(self, connection: ConnectionSettings | None, run: RunOptions) -> None:
        if connection is not None:
            self.import_tab.set_connection_settings(connection)
        self.import_tab.set_run_options(run)
