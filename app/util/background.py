"""The one way the app runs work off the GUI thread.

    handle = run_task(Pool.JOURNAL, lambda: load_jobs(folder),
                      on_done=self._show_jobs, on_error=self._show_error, owner=self)

`work` runs on a thread of the named pool; `on_done(result)` or `on_error(exception)` is
then called on the GUI thread, unless the task was cancelled (`handle.cancel()`), or
`owner` (a QObject) was deleted meanwhile: a dialog closed while its workbook loads never
hears back and never waits. `to_main(callback, *args)` calls back on the GUI thread from
anywhere. `run_async(pool, work)` is the same for a coroutine on the qasync loop.

The pools are few, named for what they do and shared by the whole process, so the number
of threads the app runs is bounded whatever is open:

- `Pool.JOURNAL`: reading (and the few writes of) a results folder's import history: the
  History tab, deleting a job, retry files, what earlier jobs did with the listed files,
  the Failed Customers tab's pages. One thread: tasks run in the order asked (a delete,
  then the reload that follows it).
- `Pool.EXPORTS`: writing failures to a file the user chose. One thread, apart from the
  journal's: an export never waits behind a list still loading.
- `Pool.FILE_CHECKS`: counting the customers in the files on the Files tab. Two threads.
- `Pool.FOLDER_SEARCHES`: searching dropped folders, one at a time, in the order given.
- `Pool.SPREADSHEETS`: reading spreadsheets for the mapping step and the review before
  Start. One thread: a big workbook is loaded whole, two at once would double the memory.

A pool is never cleared: that would drop other owners' queued work; an owner that no
longer wants an answer cancels its handle. Errors cross to the GUI thread without their
traceback, whose frames would keep the worker's locals (and any Qt object among them)
alive until the collector found them. `wait_for_all` waits for every pool (at the end of
the app, after each test).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QThread, QThreadPool, Signal, Slot

T = TypeVar("T")


class Pool(StrEnum):
    """The app's thread pools; the value is the pool's name (shown in thread dumps)."""

    JOURNAL = "journal"
    EXPORTS = "exports"
    FILE_CHECKS = "file_checks"
    FOLDER_SEARCHES = "folder_searches"
    SPREADSHEETS = "spreadsheets"


THREADS: dict[Pool, int] = {
    Pool.JOURNAL: 1,
    Pool.EXPORTS: 1,
    Pool.FILE_CHECKS: 2,
    Pool.FOLDER_SEARCHES: 1,
    Pool.SPREADSHEETS: 1,
}


class Cancelled(Exception):
    """Raised inside work that checks its token (`token.check()`) once it was cancelled."""


class CancelToken:
    """Set once, read from any thread: long work checks it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise `Cancelled` once cancelled (call it between steps of long work)."""
        if self._event.is_set():
            raise Cancelled


class TaskHandle(Generic[T]):
    """A task given to `run_task`: cancel it, or ask whether it is still to answer."""

    def __init__(self, pool: Pool, token: CancelToken) -> None:
        self.pool = pool
        self.token = token
        self._finished = threading.Event()

    def cancel(self) -> None:
        """Its answer is dropped; work that checks `token` stops early."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    @property
    def finished(self) -> bool:
        """The work has returned or raised (its answer may still be on its way)."""
        return self._finished.is_set()


class _Dispatcher(QObject):
    """Lives on the GUI thread; calls what other threads post to it, in their order."""

    posted = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.posted.connect(self._call)

    @Slot(object)
    def _call(self, call: Callable[[], None]) -> None:
        call()


_lock = threading.Lock()
_pools: dict[Pool, QThreadPool] = {}
_dispatcher: _Dispatcher | None = None


def _the_dispatcher() -> _Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        app = QCoreApplication.instance()
        if app is None:
            raise RuntimeError("background work needs a QApplication")
        with _lock:
            if _dispatcher is None:
                dispatcher = _Dispatcher()
                if dispatcher.thread() is not app.thread():
                    dispatcher.moveToThread(app.thread())
                _dispatcher = dispatcher
    return _dispatcher


def thread_pool(pool: Pool) -> QThreadPool:
    """The QThreadPool behind `pool` (created on first use, lives as long as the process)."""
    found = _pools.get(pool)
    if found is None:
        with _lock:
            found = _pools.get(pool)
            if found is None:
                found = QThreadPool()
                found.setObjectName(pool.value)
                found.setMaxThreadCount(THREADS[pool])
                _pools[pool] = found
    return found


def on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()


def to_main(callback: Callable[..., Any], *args: Any) -> None:
    """Call `callback(*args)` on the GUI thread: at once when already there, otherwise
    as soon as the GUI thread's event loop gets to it (calls keep their order)."""
    if on_gui_thread():
        callback(*args)
        return
    _the_dispatcher().posted.emit(lambda: callback(*args))


def _alive(owner: QObject | None) -> bool:
    return owner is None or shiboken6.isValid(owner)


def run_task(pool: Pool, work: Callable[[], T], *,
             on_done: Callable[[T], Any] | None = None,
             on_error: Callable[[BaseException], Any] | None = None,
             owner: QObject | None = None,
             token: CancelToken | None = None) -> TaskHandle[T]:
    """Run `work()` on a thread of `pool`; its result goes to `on_done`, an exception it
    raised to `on_error` (`Cancelled` to neither), both called on the GUI thread, unless
    the handle was cancelled or `owner` deleted first. Without `on_error` an exception is
    raised again on the GUI thread (where Qt's message handler reports it)."""
    handle: TaskHandle[T] = TaskHandle(pool, token or CancelToken())
    dispatcher = _the_dispatcher()

    def deliver(callback: Callable[[Any], Any] | None, value: Any) -> None:
        if handle.cancelled or not _alive(owner) or callback is None:
            return
        callback(value)

    def reraise(error: BaseException) -> None:
        raise error

    def run() -> None:
        if handle.cancelled:
            handle._finished.set()
            return
        try:
            result = work()
        except Cancelled:
            handle._finished.set()
            return
        except BaseException as error:  # noqa: BLE001 - handed to the GUI thread
            error = error.with_traceback(None)
            handle._finished.set()
            dispatcher.posted.emit(lambda: deliver(on_error or reraise, error))
            return
        handle._finished.set()
        dispatcher.posted.emit(lambda: deliver(on_done, result))

    thread_pool(pool).start(run)
    return handle


async def run_async(pool: Pool, work: Callable[[], T]) -> T:
    """`await` the result of `work()` run on a thread of `pool` (from the qasync loop)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result: T | None = work()
            error: BaseException | None = None
        except BaseException as raised:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, raised.with_traceback(None)
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    thread_pool(pool).start(run)
    return await future


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
