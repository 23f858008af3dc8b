"""Thread-safe, append-only store of failure records, persisted to failed_customers.json."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson

from app.models.records import FailureRecord

FAILED_CUSTOMERS_FILE = Path("failed_customers") / "failed_customers.json"

FailureListener = Callable[[int], None]


class FailureStore:
    """Holds every failure of the running session; the GUI's failure table reads it while it grows.

    Appends happen under a lock from any thread; readers take cheap snapshots by index
    (`records_from(start)`), so a view can fetch only what is new. Listeners are called
    with the new length after each append, from the appending thread: a GUI bridges that
    to a queued Qt signal rather than touching widgets here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[FailureRecord] = []
        self._keys: set[tuple] = set()
        self._listeners: list[FailureListener] = []
        self._generation = 0  # bumped by clear(), so readers know their indices are stale

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def generation(self) -> int:
        return self._generation

    def add_listener(self, listener: FailureListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: FailureListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def extend(self, records: Iterable[FailureRecord]) -> int:
        """Append records not already present; returns how many were new."""
        added = 0
        with self._lock:
            for record in records:
                key = record.key()
                if key in self._keys:
                    continue
                self._keys.add(key)
                self._records.append(record)
                added += 1
            size = len(self._records)
        if added:
            for listener in list(self._listeners):
                listener(size)
        return added

    def append(self, record: FailureRecord) -> bool:
        return self.extend((record,)) == 1

    def records_from(self, start: int = 0) -> list[FailureRecord]:
        """A copy of the records from index `start` on."""
        with self._lock:
            return self._records[start:]

    def snapshot(self) -> list[FailureRecord]:
        return self.records_from(0)

    def clear(self) -> None:
        """Forget the records in memory; files on disk are left alone."""
        with self._lock:
            self._records.clear()
            self._keys.clear()
            self._generation += 1
        for listener in list(self._listeners):
            listener(0)

    # -- persistence -----------------------------------------------------------------------

    @staticmethod
    def load_file(path: Path) -> list[FailureRecord]:
        """Records saved in a failed_customers.json; [] when the file does not exist."""
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            return []
        data = orjson.loads(raw) if raw.strip() else []
        if isinstance(data, dict):
            data = data.get("failedCustomers") or data.get("data") or []
        return [FailureRecord.from_dict(item) for item in data if isinstance(item, dict)]

    def load(self, path: Path) -> int:
        """Merge the records saved at `path` into memory; returns how many were new."""
        return self.extend(self.load_file(path))


def save_failures(path: Path, new_records: Iterable[FailureRecord]) -> int:
    """Add `new_records` to the saved file (kept across runs), atomically. Returns the total."""
    from app.services.atomic_files import atomic_write_json

    path = Path(path)
    try:
        existing = FailureStore.load_file(path)
    except orjson.JSONDecodeError:
        # never destroy a file we cannot read: keep it aside and start a new one
        path.replace(path.with_suffix(".unreadable.json"))
        existing = []
    keys = {r.key() for r in existing}
    merged = [r.to_dict() for r in existing]
    for record in new_records:
        if record.key() not in keys:
            keys.add(record.key())
            merged.append(record.to_dict())
    atomic_write_json(path, merged)
    return len(merged)
