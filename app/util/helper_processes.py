"""What every helper process (file reader, result writer) does first: die with its parent.

A helper left behind by a killed import (kill -9, a crash, Task Manager's "End task")
would keep a customer file open (on Windows that blocks deleting or replacing it) and hold
the parent's standard output, so a script reading the command's output would wait forever.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading


def exit_when_parent_dies() -> None:
    """In a helper process: end this process as soon as the one that started it is gone.

    multiprocessing gives each child a sentinel of its parent (a pipe on macOS and Linux
    whose other end only the parent holds; the parent's process handle on Windows), which
    becomes ready when the parent ends, however it ends. A daemon thread waits on it.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return  # not a helper: nothing to watch

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)  # nobody is left to read what this process would still produce

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
