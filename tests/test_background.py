"""The one way background work runs: named pools, answers on the GUI thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
import shiboken6
from PySide6.QtCore import QObject, QThread
from PySide6.QtWidgets import QApplication

from app.util.background import (
    Cancelled,
    CancelToken,
    Pool,
    run_async,
    run_task,
    thread_pool,
    to_main,
    wait_for_all,
)


def test_work_runs_on_a_pool_thread_and_the_answer_on_the_gui_thread(qtbot):
    seen: dict[str, object] = {}

    def work() -> int:
        seen["work_thread"] = QThread.currentThread()
        return 42

    def done(value: int) -> None:
        seen["value"] = value
        seen["done_thread"] = QThread.currentThread()

    run_task(Pool.JOURNAL, work, on_done=done)
    qtbot.waitUntil(lambda: "value" in seen)
    gui = QApplication.instance().thread()
    assert seen["value"] == 42
    assert seen["work_thread"] is not gui
    assert seen["done_thread"] is gui


def test_an_error_arrives_without_its_traceback(qtbot):
    errors: list[BaseException] = []

    def work() -> None:
        raise ValueError("Åsa's file is broken")

    run_task(Pool.EXPORTS, work, on_done=lambda _: pytest.fail("no result"),
             on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors))
    assert len(errors) == 1
    assert isinstance(errors[0], ValueError)
    assert str(errors[0]) == "Åsa's file is broken"
    assert errors[0].__traceback__ is None


def test_a_cancelled_task_never_answers(qtbot):
    started = threading.Event()
    release = threading.Event()
    answers: list[object] = []

    def work() -> str:
        started.set()
        release.wait(10)
        return "late"

    handle = run_task(Pool.SPREADSHEETS, work, on_done=answers.append,
                      on_error=answers.append)
    assert started.wait(10)
    handle.cancel()
    release.set()
    qtbot.waitUntil(lambda: handle.finished)
    # the answer, had it been posted, would be delivered by the next round of events
    follow_up: list[str] = []
    run_task(Pool.SPREADSHEETS, lambda: "next", on_done=follow_up.append)
    qtbot.waitUntil(lambda: bool(follow_up))
    assert answers == []
    assert handle.cancelled


def test_work_that_checks_its_token_stops_and_answers_nobody(qtbot):
    token = CancelToken()
    steps: list[int] = []
    answers: list[object] = []

    def work() -> None:
        for step in range(1000):
            if step == 3:
                token.cancel()
            token.check()
            steps.append(step)

    handle = run_task(Pool.FILE_CHECKS, work, on_done=answers.append,
                      on_error=answers.append, token=token)
    qtbot.waitUntil(lambda: handle.finished)
    assert steps == [0, 1, 2]
    wait_for_all()
    QApplication.processEvents()
    assert answers == []
    with pytest.raises(Cancelled):
        token.check()


def test_an_owner_deleted_before_the_answer_hears_nothing(qtbot):
    owner = QObject()
    release = threading.Event()
    answers: list[object] = []
    handle = run_task(Pool.FOLDER_SEARCHES, lambda: release.wait(10), on_done=answers.append,
                      owner=owner)
    owner.deleteLater()
    QApplication.processEvents()
    release.set()
    qtbot.waitUntil(lambda: handle.finished)
    follow_up: list[bool] = []
    run_task(Pool.FOLDER_SEARCHES, lambda: True, on_done=follow_up.append)
    qtbot.waitUntil(lambda: bool(follow_up))
    assert answers == []


def test_to_main_calls_on_the_gui_thread_in_order(qtbot):
    calls: list[tuple[int, bool]] = []
    gui = QApplication.instance().thread()

    def record(n: int) -> None:
        calls.append((n, QThread.currentThread() is gui))

    def post_from_a_thread() -> None:
        for n in range(5):
            to_main(record, n)

    thread = threading.Thread(target=post_from_a_thread)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(calls) == 5)
    assert calls == [(n, True) for n in range(5)]


def test_pools_are_shared_and_bounded():
    assert thread_pool(Pool.JOURNAL) is thread_pool(Pool.JOURNAL)
    assert thread_pool(Pool.JOURNAL).maxThreadCount() == 1
    assert thread_pool(Pool.FILE_CHECKS).maxThreadCount() == 2
    assert thread_pool(Pool.JOURNAL).objectName() == "journal"


def test_run_async_awaits_the_result_and_the_error(qloop):
    def fail() -> None:
        raise OSError("disk full")

    async def both() -> tuple[str, BaseException | None]:
        name = await run_async(Pool.JOURNAL, lambda: "Ørjan")
        try:
            await run_async(Pool.JOURNAL, fail)
        except OSError as error:
            return name, error
        return name, None

    name, error = qloop.run_until_complete(both())
    assert name == "Ørjan"
    assert isinstance(error, OSError)
    assert str(error) == "disk full"


def test_a_task_cancelled_before_it_starts_never_runs(qtbot):
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    first = run_task(Pool.SPREADSHEETS, lambda: (started.set(), release.wait(10)))
    assert started.wait(10)  # the pool's one thread is busy: the next one waits in line
    second = run_task(Pool.SPREADSHEETS, lambda: ran.append("second"),
                      on_done=lambda _: ran.append("answered"))
    second.cancel()
    release.set()
    qtbot.waitUntil(lambda: first.finished and second.finished)
    follow_up: list[str] = []
    run_task(Pool.SPREADSHEETS, lambda: "next", on_done=follow_up.append)
    qtbot.waitUntil(lambda: bool(follow_up))
    assert ran == []


class _Witness:
    """Records the thread it dies on."""

    def __init__(self, deaths: list[bool]) -> None:
        self._deaths = deaths

    def __del__(self) -> None:
        self._deaths.append(threading.current_thread() is threading.main_thread())


@pytest.mark.parametrize("cancel", [False, True])
def test_what_a_task_holds_dies_on_the_gui_thread(qtbot, cancel: bool):
    # were it a widget, dying on a pool thread would crash the app
    deaths: list[bool] = []
    started, release = threading.Event(), threading.Event()
    witness = _Witness(deaths)

    def work() -> int:
        started.set()
        release.wait(10)
        return 1

    handle = run_task(Pool.FOLDER_SEARCHES, work, on_done=lambda _, w=witness: None)
    del witness  # the task holds the only reference now
    assert started.wait(10)
    if cancel:
        handle.cancel()
    release.set()
    qtbot.waitUntil(lambda: bool(deaths))
    assert deaths == [True]


def test_to_main_calls_nobody_once_the_owner_is_deleted(qtbot):
    owner = QObject()
    calls: list[int] = []
    thread = threading.Thread(target=lambda: to_main(calls.append, 1, owner=owner))
    thread.start()
    thread.join()
    shiboken6.delete(owner)  # before the GUI thread got to the posted call
    to_main(calls.append, 2)
    QApplication.processEvents()
    assert calls == [2]


def test_a_cancelled_await_cancels_the_work(qloop):
    token = CancelToken()
    stopped: list[bool] = []

    async def cancel_it() -> bool:
        loop, started = asyncio.get_running_loop(), asyncio.Event()

        def work() -> None:
            loop.call_soon_threadsafe(started.set)
            stopped.append(token.wait(10))  # stops as soon as it is cancelled

        task = asyncio.ensure_future(run_async(Pool.JOURNAL, work, token=token))
        await started.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert qloop.run_until_complete(cancel_it())
    assert wait_for_all(10_000)
    assert stopped == [True]
