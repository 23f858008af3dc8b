"""The one way the app runs work off the GUI thread.

    handle = run_task(Pool.JOURNAL, lambda: load_jobs(folder),
                      on_done=self._show_jobs, on_error=self._show_error, owner=self)

`work` runs on a thread of the named pool; `on_done(result)` or `on_error(exception)` is
then called on the GUI thread, unless the task was cancelled (`handle.cancel()`), or
`owner` (a QObject) was deleted meanwhile: a dialog closed while its workbook loads never
hears back and never waits. `to_main(callback, *args)` calls back on the GUI thread from
anywhere (progress, say). `run_async(pool, work)` is the same for a coroutine on the qasync
loop. Long work stops early by checking a `CancelToken` (`token.check()` raises
`Cancelled`, which answers nobody); both live in `app.util.cancel_token`, which needs no
Qt, so the readers and checks the command line shares with the window can take a token.

The pools are few, named for what they do and shared by the whole process, so the number
of threads the app runs is bounded whatever is open:

- `Pool.JOURNAL`: reading (and the few writes of) a results folder's import history: the
  History tab, deleting a job, retry files, what earlier jobs did with the listed files,
  the Failed Customers tab's pages. One thread: tasks run in the order asked (a delete,
  then the reload that follows it).
- `Pool.EXPORTS`: writing failures to a file the user chose. One thread, apart from the
  journal's: an export never waits behind a list still loading.
- `Pool.FILE_CHECKS`: counting the customers in the files on the Files tab. Two threads:
  they overlap the disk waits of many small files; more would only fight the GUI thread
  for Python's lock.
- `Pool.FOLDER_SEARCHES`: searching dropped folders, one at a time, in the order given.
- `Pool.SPREADSHEETS`: reading spreadsheets for the mapping step and the review before
  Start. One thread: a big workbook is loaded whole, two at once would double the memory.
- `Pool.IMPORT_EVENTS`: listening to an import run in a helper process, for as long as
  it runs: the thread waits on the process's pipe and hands each message to the GUI
  thread. One thread: one import runs at a time.

A pool is never cleared: that would drop other owners' queued work; an owner that no
longer wants an answer cancels its handle (a task cancelled before it starts never runs).
What a task holds (its work, its callbacks and through them their owner) is let go on the
GUI thread, never on the pool's: the last reference to a widget must not die there. Errors
cross to the GUI thread without their traceback, whose frames would keep the worker's
locals (and any Qt object among them) alive until the collector found them.
`wait_for_all` waits for every pool (at the end of the app, after each test).
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

from app.util.cancel_token import Cancelled, CancelToken

__all__ = ["THREADS", "CancelToken", "Cancelled", "Pool", "TaskHandle", "on_gui_thread",
           "run_async", "run_task", "thread_pool", "to_main", "wait_for_all"]

T = TypeVar("T")


class Pool(StrEnum):
    """The app's thread pools; the value is the pool's name (shown in thread dumps)."""

    JOURNAL = "journal"
    EXPORTS = "exports"
    FILE_CHECKS = "file_checks"
    FOLDER_SEARCHES = "folder_searches"
    SPREADSHEETS = "spreadsheets"
    IMPORT_EVENTS = "import_events"


THREADS: dict[Pool, int] = {
    Pool.JOURNAL: 1,
    Pool.EXPORTS: 1,
    Pool.FILE_CHECKS: 2,
    Pool.FOLDER_SEARCHES: 1,
    Pool.SPREADSHEETS: 1,
    Pool.IMPORT_EVENTS: 1,
}


class TaskHandle(Generic[T]):
    """A task given to `run_task`: cancel it, or ask whether its work is over."""

    def __init__(self, pool: Pool, token: CancelToken) -> None:
        self.pool = pool
        self.token = token
        self._finished = threading.Event()

    def cancel(self) -> None:
        """Its answer is dropped; work not started yet never runs; work that checks
        `token` stops early."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    @property
    def finished(self) -> bool:
        """The work has returned or raised (or was skipped, cancelled before it started);
        its answer, if any, is already posted to the GUI thread."""
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
                found = QThreadPool()  # no parent: it lives as long as the process
                found.setObjectName(pool.value)
                found.setMaxThreadCount(THREADS[pool])
                _pools[pool] = found
    return found


def on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()


def _alive(owner: QObject | None) -> bool:
    return owner is None or shiboken6.isValid(owner)


def to_main(callback: Callable[..., Any], *args: Any, owner: QObject | None = None) -> None:
    """Call `callback(*args)` on the GUI thread: at once when already there, otherwise
    as soon as the GUI thread's event loop gets to it (calls keep their order). Not at
    all when `owner` was deleted by then."""
    if on_gui_thread():
        if _alive(owner):
            callback(*args)
        return

    def call() -> None:
        if _alive(owner):
            callback(*args)

    _the_dispatcher().posted.emit(call)


def _without_tracebacks(error: BaseException) -> BaseException:
    """`error` with no traceback, nor any on the errors it was raised from."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return error


def _reraise(error: BaseException) -> None:
    raise error


class _Task:
    """What one `run_task` holds. The worker only runs `work` and fills in the outcome;
    `settle` (on the GUI thread) answers and lets go of everything."""

    __slots__ = ("answered", "failed", "handle", "on_done", "on_error", "owner", "value",
                 "work")

    def __init__(self, handle: TaskHandle[Any], work: Callable[[], Any],
                 on_done: Callable[[Any], Any] | None,
                 on_error: Callable[[BaseException], Any] | None,
                 owner: QObject | None) -> None:
        self.handle = handle
        self.work: Callable[[], Any] | None = work
        self.on_done = on_done
        self.on_error = on_error
        self.owner = owner
        self.answered = False  # the work returned or raised (not Cancelled, not skipped)
        self.failed = False
        self.value: Any = None

    def run(self) -> None:
        """On a pool thread."""
        work = self.work
        try:
            if work is not None and not self.handle.cancelled:
                self.value = work()
                self.answered = True
        except Cancelled:
            pass
        except BaseException as error:  # whatever it is, the GUI thread hears of it
            self.value = _without_tracebacks(error)
            self.failed = self.answered = True
        finally:
            del work
            _the_dispatcher().posted.emit(self.settle)
            self.handle._finished.set()

    def settle(self) -> None:
        """On the GUI thread."""
        on_done, on_error, owner = self.on_done, self.on_error, self.owner
        answered, failed, value = self.answered, self.failed, self.value
        self.work = self.on_done = self.on_error = self.owner = self.value = None
        if not answered or self.handle.cancelled or not _alive(owner):
            return
        if failed:
            (on_error or _reraise)(value)
        elif on_done is not None:
            on_done(value)


def run_task(pool: Pool, work: Callable[[], T], *,
             on_done: Callable[[T], Any] | None = None,
             on_error: Callable[[BaseException], Any] | None = None,
             owner: QObject | None = None,
             token: CancelToken | None = None) -> TaskHandle[T]:
    """Run `work()` on a thread of `pool`; its result goes to `on_done`, an exception it
    raised to `on_error` (`Cancelled` to neither), both called on the GUI thread, unless
    the handle (or `token`, which the handle shares) was cancelled or `owner` deleted
    first. Without `on_error` an exception is raised again on the GUI thread (where Qt's
    message handler reports it). Call it from the GUI thread."""
    handle: TaskHandle[T] = TaskHandle(pool, token or CancelToken())
    _the_dispatcher()  # created on the GUI thread, before any worker needs it
    task = _Task(handle, work, on_done, on_error, owner)
    thread_pool(pool).start(task.run)
    return handle


async def run_async(pool: Pool, work: Callable[[], T], *,
                    token: CancelToken | None = None) -> T:
    """`await` the result of `work()` run on a thread of `pool` (from the qasync loop).

    Should the awaiting coroutine be cancelled, `token` is cancelled too (work that checks
    it stops early)."""
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
        except BaseException as raised:  # handed to the awaiting coroutine
            result, error = None, _without_tracebacks(raised)
        with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    thread_pool(pool).start(run)
    try:
        return await future
    except asyncio.CancelledError:
        if token is not None:
            token.cancel()
        raise


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
