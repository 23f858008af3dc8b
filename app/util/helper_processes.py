"""What every helper process (an import, its file reader and result writer, a file
counter) does first: die with its parent, and give way to it.

A helper left behind by a killed import (kill -9, a crash, Task Manager's "End task")
would keep a customer file open (on Windows that blocks deleting or replacing it) and hold
the parent's standard output, so a script reading the command's output would wait forever.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import threading

import psutil

HELPER_NICENESS = 5  # POSIX: 0 is normal, 19 the lowest


def begin_helper_process() -> None:
    """What a helper process does first: `exit_when_parent_dies`, `give_way_to_the_window`."""
    exit_when_parent_dies()
    give_way_to_the_window()


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


def give_way_to_the_window() -> None:
    """In a helper process: run below normal priority. The import keeps every core busy
    (sending, reading, writing); the window, at normal priority, still gets a core as
    soon as it has something to draw, instead of waiting its turn behind the helpers. A
    machine with a core to spare runs the helpers as fast as before."""
    try:
        if sys.platform == "win32":
            psutil.Process().nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            psutil.Process().nice(HELPER_NICENESS)
    except (psutil.Error, OSError):
        pass  # a system that refuses leaves it at normal priority: slower windows, no harm
