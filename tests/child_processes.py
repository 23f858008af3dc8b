"""Which process runs Python when a test starts `sys.executable` as a child process.

On Windows, a virtual environment's python.exe is a launcher: it starts the base
installation's python.exe as a child of its own and waits for it, so the pid that Popen
gives is the launcher's. On Linux and macOS the pid is the interpreter's (a symlink, or the
macOS framework stub that execs Python.app, keeps it).
"""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

from tests.test_helper_processes import wait_until


def runs_through_launcher() -> bool:
    """Whether `sys.executable` is a launcher that starts the interpreter as its child: this
    process (started the same way) then runs an executable other than sys.executable."""
    if sys.platform != "win32":
        return False
    running = os.path.normcase(os.path.realpath(psutil.Process().exe()))
    return running != os.path.normcase(os.path.realpath(sys.executable))


def interpreter_process(child: subprocess.Popen, timeout: float = 30.0) -> psutil.Process:
    """The process that runs Python for `child`, started as `sys.executable ...`: `child`
    itself, or the interpreter its launcher started."""
    process = psutil.Process(child.pid)
    if not runs_through_launcher():
        return process

    def launched() -> list[psutil.Process]:
        try:
            return process.children()
        except psutil.NoSuchProcess:
            return []

    assert wait_until(lambda: bool(launched()) or child.poll() is not None, timeout), \
        f"the launcher {child.pid} started no interpreter"
    interpreters = launched()
    assert len(interpreters) == 1, f"the launcher {child.pid} started {interpreters}"
    return interpreters[0]
