"""The asyncio event loop the window runs on: qasync's, with timers that go when cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import Context
from typing import Any

import qasync
from PySide6.QtCore import QObject, QTimerEvent


class _Timers(QObject):
    """One Qt timer per pending `call_later`, killed as soon as its handle is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self._handles: dict[int, asyncio.TimerHandle] = {}  # Qt timer id -> handle
        self._timer_ids: dict[int, int] = {}  # id(handle) -> Qt timer id
        self._stopped = False

    def __len__(self) -> int:
        return len(self._handles)

    def add(self, handle: asyncio.TimerHandle, delay: float) -> None:
        timer_id = self.startTimer(max(0, int(delay * 1000)))
        self._handles[timer_id] = handle
        self._timer_ids[id(handle)] = timer_id

    def cancel(self, handle: asyncio.TimerHandle) -> None:
        timer_id = self._timer_ids.pop(id(handle), None)
        if timer_id is not None:
            self.killTimer(timer_id)
            del self._handles[timer_id]

    def stop(self) -> None:
        """Kill every timer; nothing scheduled runs any more."""
        self._stopped = True
        for timer_id in self._handles:
            self.killTimer(timer_id)
        self._handles.clear()
        self._timer_ids.clear()

    def timerEvent(self, event: QTimerEvent) -> None:
        timer_id = event.timerId()
        self.killTimer(timer_id)
        handle = self._handles.pop(timer_id, None)
        if handle is None:
            return
        del self._timer_ids[id(handle)]
        if not self._stopped and not handle.cancelled():
            handle._run()  # as every asyncio loop runs its handles


class GuiEventLoop(qasync.QEventLoop):
    """qasync's event loop, whose `call_later`/`call_at` timers go when they are cancelled.

    qasync keeps a cancelled callback, with its context, and its Qt timer until the time it
    was due: every request's timeout (60 s) stays behind that long, thousands of them in a
    big import, each a Qt timer the event loop walks and objects the garbage collector
    walks. Here a cancelled timer is killed and let go at once (asyncio tells the loop of
    every `TimerHandle` cancelled).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timers = _Timers()

    @property
    def pending_timers(self) -> int:
        """Callbacks scheduled and neither run nor cancelled yet."""
        return len(self._timers)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any,
                   context: Context | None = None) -> asyncio.TimerHandle:
        if not callable(callback):
            raise TypeError(f"callback must be callable: {type(callback).__name__}")
        handle = asyncio.TimerHandle(self.time() + delay, callback, args, self, context)
        self._timers.add(handle, delay)
        return handle

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,
                context: Context | None = None) -> asyncio.TimerHandle:
        return self.call_later(when - self.time(), callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self._timers.cancel(handle)

    def close(self) -> None:
        self._timers.stop()
        super().close()
