"""Standard output and error for a process that has none.

A Windows app built without a console (the packaged `Bulk Customer Import.exe`, or
`pythonw.exe`) starts with `sys.stdout` and `sys.stderr` set to None, and so do its helper
processes. The command line's progress line, its `--json` summary and Python's own error
reports write to them and would fail. Such a process writes them to a log file instead.

Kept free of the app's other modules: main.py runs this before anything else is imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal, TextIO

LOG_NAME = "console.log"
LOG_LIMIT_BYTES = 1024 * 1024


def default_log_folder() -> Path:
    """The user's log folder for the app (…\\AppData\\Local\\Bulk Customer Import\\Logs)."""
    from platformdirs import user_log_path

    return user_log_path("Bulk Customer Import", appauthor=False)


def ensure_standard_streams(log_folder: Path | None = None) -> Path | None:
    """Give a missing sys.stdout or sys.stderr a home; returns the log file used, if any.

    Both go to `console.log` in `log_folder` (the user's log folder by default), appended to
    so that helper processes add to it rather than overwrite it; a log over 1 MB is started
    anew. Where even that folder cannot be written, output is dropped.
    """
    if sys.stdout is not None and sys.stderr is not None:
        return None
    stream: TextIO
    log_file: Path | None = None
    try:
        folder = default_log_folder() if log_folder is None else log_folder
        folder.mkdir(parents=True, exist_ok=True)
        log_file = folder / LOG_NAME
        mode: Literal["a", "w"] = "a"
        try:
            if log_file.stat().st_size > LOG_LIMIT_BYTES:
                mode = "w"
        except OSError:
            pass  # no log yet
        # line buffered: what a helper or a crash leaves is in the file, not in a buffer
        stream = open(log_file, mode, encoding="utf-8", errors="replace",  # noqa: SIM115
                      buffering=1)
    except OSError:
        stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        log_file = None
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream
    return log_file
