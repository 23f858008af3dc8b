"""Python's cyclic garbage collection, moved onto the GUI thread."""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

DEFAULT_INTERVAL_MS = 250


class MainThreadGarbageCollector(QObject):
    """Turns off automatic garbage collection and collects on a timer on the GUI thread.

    Python collects reference cycles in whichever thread happens to allocate at the time:
    a file reader, the result writer, a worker of the event loop. When such a cycle holds a
    Qt object (a model, a timer, a dialog's helper), Qt destroys it in that thread; its
    timers can then not be unregistered and fire later into a deleted object, which crashes
    the app. Collecting only here makes every such destruction happen on the GUI thread.

    Generations are collected when their counts pass the thresholds, as Python itself does,
    with its rule for the oldest: a full collection only once the objects that lived
    through the younger collections since the last one are a quarter of those it kept.
    Without that rule a window holding 100,000 failures would walk them all every few
    seconds.

    `freeze_startup_objects` (called once the window is up) takes what the app built at
    start-up, and keeps for its whole life, out of every later collection: the modules,
    classes and functions of Qt, aiohttp and the app are most of what a full collection
    walks (about 75,000 objects), and walking them cost a full collection 85–150 ms with
    100,000 failures listed, against 25–50 ms without them.
    """

    def __init__(self, parent: QObject | None = None,
                 interval_ms: int = DEFAULT_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._long_lived = len(gc.get_objects(generation=2))  # after the last full one
        self.full_collections = 0
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start()
        self._froze = False

    def freeze_startup_objects(self) -> int:
        """Collect once, then leave every object alive now out of later collections (they
        live as long as the app). Returns how many objects that is."""
        gc.collect()
        gc.freeze()
        self._froze = True
        self._long_lived = len(gc.get_objects(generation=2))
        return gc.get_freeze_count()

    def collect_if_due(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        young, middle, old = gc.get_count()
        if young <= self._thresholds[0]:
            return
        generation = 0
        if middle > self._thresholds[1]:
            generation = 1
            if old > self._thresholds[2] and self._full_collection_due():
                generation = 2
        gc.collect(generation)
        if generation == 2:
            self.full_collections += 1
            self._long_lived = len(gc.get_objects(generation=2))

    def _full_collection_due(self) -> bool:
        pending = len(gc.get_objects(generation=2)) - self._long_lived
        return pending > self._long_lived / 4

    def stop(self) -> None:
        """Give collection back to Python (as it was before)."""
        self._timer.stop()
        if self._froze:
            gc.unfreeze()
            self._froze = False
        if self._was_enabled:
            gc.enable()
