"""Qt for Python runtime guards: reference leaks (6.12.0 crashed long imports) and where
garbage cycles holding Qt objects are freed."""

from __future__ import annotations

import gc
import sys
import threading
import weakref

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


class _Cycle(QObject):
    """A Qt object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        super().__init__()
        self.me = self
        self.timer = QTimer(self)
        self.timer.start(1000)


def test_garbage_cycles_with_qt_objects_are_freed_on_the_gui_thread(qtbot,
        collect_garbage_on_the_gui_thread):
    assert not gc.isenabled()
    freed_in: list[str] = []
    cycle = _Cycle()
    cycle.destroyed.connect(lambda *_: freed_in.append(threading.current_thread().name))
    alive = weakref.ref(cycle)
    del cycle

    kept: list[list[list[int]]] = []

    def allocate_a_lot() -> None:  # would have triggered a collection in this thread
        kept.append([[] for _ in range(50_000)])

    worker = threading.Thread(target=allocate_a_lot, name="worker")
    worker.start()
    worker.join()
    assert alive() is not None  # nothing collected in the worker
    qtbot.waitUntil(lambda: alive() is None, timeout=5000)
    assert freed_in in ([], [threading.main_thread().name])


def test_full_collections_wait_until_the_old_objects_have_grown_by_a_quarter(qapp):
    from app.views.main_thread_gc import MainThreadGarbageCollector

    collector = MainThreadGarbageCollector()
    collector._timer.stop()  # driven by hand here
    try:
        kept = [[i] for i in range(200_000)]  # a large heap that stays: 100,000 failures
        gc.collect()
        collector._long_lived = len(gc.get_objects(generation=2))
        full_before = collector.full_collections

        def churn(rounds: int) -> None:
            # cycles only a collection frees: every generation's count passes its threshold
            for _ in range(rounds):
                for _ in range(1_000):
                    cycle: list[object] = []
                    cycle.append(cycle)
                del cycle
                collector.collect_if_due()

        churn(400)
        assert gc.get_count()[2] > gc.get_threshold()[2] or collector.full_collections > 0
        assert collector.full_collections == full_before  # the heap did not grow
        # it grows by more than a quarter of what the process held (which depends on the
        # tests that ran before in the same process)
        kept.extend([i] for i in range(collector._long_lived // 3))
        churn(400)
        assert collector.full_collections > full_before
    finally:
        collector.stop()
        collector.deleteLater()


def test_frozen_start_up_objects_are_left_out_of_later_collections(qapp):
    from app.views.main_thread_gc import MainThreadGarbageCollector

    collector = MainThreadGarbageCollector()
    collector._timer.stop()
    try:
        before = len(gc.get_objects())
        frozen = collector.freeze_startup_objects()
        assert frozen > 1_000 and gc.get_freeze_count() == frozen
        # what a full collection walks now: only what came after the freeze
        assert len(gc.get_objects()) < before - frozen // 2
        # objects made later are still collected, cycles included
        cycle: list[object] = []
        cycle.append(cycle)
        ref = weakref.ref(cycle_holder := type("Holder", (), {})())
        cycle.append(cycle_holder)
        del cycle, cycle_holder
        gc.collect()
        assert ref() is None
    finally:
        collector.stop()  # gives the frozen objects back to the collector
        collector.deleteLater()
    assert gc.get_freeze_count() == 0
