"""The app's background threads: a few named thread pools, shared by the whole process.

Work the window hands to a thread goes to the pool named for what it does, never to a
pool of its own:

- `journal_reads()`: reading (and the few writes of) a results folder's import history,
  the SQLite journal: the History tab's job list, deleting a job, a job's retry files,
  what earlier jobs did with the listed files, and the Failed Customers tab's failure
  list. One thread: tasks run in the order asked (a delete, then the reload that follows
  it), and the journal is never read by two of the window's workers at once.
- `file_exports()`: writing failures to a file the user chose (Export). One thread,
  apart from the journal's: an export never waits behind a failure list still loading.
- `file_checks()`: counting the customers in the files on the Files tab. Two threads (see
  file_checker.INSPECT_THREADS: more would only fight the GUI thread for Python's lock).
- `folder_searches()`: searching dropped folders for customer files. One thread: folders
  are searched in the order they were given, so their files appear in that order.
- `spreadsheets()`: reading spreadsheets for the mapping step (columns, samples, preview)
  and the review before Start (every row checked). One thread: a big workbook is loaded
  whole, so two at once would only double the memory.

Why named and shared, not one pool per dialog or tab: the threads outlive the object that
asked (a dialog closed while its workbook is still loading never waits for it: the late
answer finds nobody, by generation numbers and the RuntimeError of a deleted bridge), and
the number of threads the app runs is bounded process-wide, whatever is open. Pools are
created on first use. A shared pool is never `clear()`ed: that would drop other owners'
queued work; an owner that no longer wants its results drops them itself (cancel tokens,
generation numbers). `wait_for_all` waits for every pool (the end of the app, tests).
"""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QThreadPool

JOURNAL_READ_THREADS = 1
FILE_EXPORT_THREADS = 1
FILE_CHECK_THREADS = 2
FOLDER_SEARCH_THREADS = 1
SPREADSHEET_THREADS = 1

_lock = threading.Lock()
_pools: dict[str, QThreadPool] = {}


def _pool(name: str, threads: int) -> QThreadPool:
    pool = _pools.get(name)
    if pool is None:
        with _lock:
            pool = _pools.get(name)
            if pool is None:
                pool = QThreadPool()  # no parent: it lives as long as the process
                pool.setObjectName(name)
                pool.setMaxThreadCount(threads)
                _pools[name] = pool
    return pool


def journal_reads() -> QThreadPool:
    """Reads of a results folder's import history (history, failure list, file history)."""
    return _pool("journal_reads", JOURNAL_READ_THREADS)


def file_exports() -> QThreadPool:
    """Writing failures to a file the user chose."""
    return _pool("file_exports", FILE_EXPORT_THREADS)


def file_checks() -> QThreadPool:
    """Counting the customers in customer files."""
    return _pool("file_checks", FILE_CHECK_THREADS)


def folder_searches() -> QThreadPool:
    """Searching folders for customer files, in the order asked."""
    return _pool("folder_searches", FOLDER_SEARCH_THREADS)


def spreadsheets() -> QThreadPool:
    """Reading spreadsheets: the mapping step and the review before Start."""
    return _pool("spreadsheets", SPREADSHEET_THREADS)


def wait_for_all(timeout_ms: int = -1) -> bool:
    """Wait until every pool created so far is idle, at most `timeout_ms` in all (-1: as
    long as it takes); False when time ran out. Queued tasks still run (none is dropped)."""
    deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
    with _lock:
        pools = list(_pools.values())
    done = True
    for pool in pools:
        if deadline is None:
            done = pool.waitForDone(-1) and done
        else:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            done = pool.waitForDone(left) and done
    return done
