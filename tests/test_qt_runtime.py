"""Qt for Python runtime guards: reference leaks (6.12.0 crashed long imports)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal


class _Emitter(QObject):
    ticked = Signal(int)


def test_signals_and_none_returning_calls_keep_reference_counts(qapp):
    emitter = _Emitter()
    received: list[int] = []
    emitter.ticked.connect(received.append)
    timer = QTimer()
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(2000):
        emitter.ticked.emit(i)
        timer.setInterval(i % 50 + 1)  # returns None
    assert len(received) == 2000
    assert abs(sys.getrefcount(True) - true_before) < 50
    assert abs(sys.getrefcount(None) - none_before) < 50
