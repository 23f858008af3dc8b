"""Keeps the window responsive while a worker thread runs Python code.

Python runs one thread at a time. A worker busy in Python code holds the lock until the
interpreter's switch interval (5 ms) makes it let go, and a repaint calls into Python for
every cell (each `model.data()`), waiting that long each time: a repaint that takes 15 ms
alone took 150-400 ms beside a worker reading the journal or counting a file. A worker
that naps briefly every few milliseconds hands the lock over at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

#: A worker naps NAP_S after every NAP_EVERY_S of work: the GUI thread then gets the lock
#: within ~2 ms. Costs the worker about 10 %.
NAP_EVERY_S = 0.002
NAP_S = 0.0002

T = TypeVar("T")


class GilPacer:
    """Call it often from a worker's loop (it is cheap); now and then it naps."""

    def __init__(self) -> None:
        self._last_nap = time.perf_counter()

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._last_nap >= NAP_EVERY_S:
            time.sleep(NAP_S)  # a real sleep: sleep(0) gives the lock straight back to us
            self._last_nap = time.perf_counter()


def no_pacing() -> None:
    """For code that runs where nobody waits for the lock (the command line, a helper)."""


def paced(items: Iterable[T], pace: Callable[[], None], every: int = 64) -> Iterator[T]:
    """`items`, pacing every `every` items."""
    for count, item in enumerate(items):
        if not count % every:
            pace()
        yield item
