"""The app's one way to stop long work: a `CancelToken` the work checks between steps.

Kept apart from `app.util.background` (which re-exports both names) because it needs no Qt:
the command line's dry run and the helper processes use the same readers and checks.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside work that checks its token (`token.check()`) once it was cancelled."""


class CancelToken:
    """Set once, read from any thread: long work checks it between steps."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until cancelled, at most `timeout_s`; True when cancelled."""
        return self._event.wait(timeout_s)

    def check(self) -> None:
        """Raise `Cancelled` once cancelled (call it between steps of long work)."""
        if self._event.is_set():
            raise Cancelled
