"""Thread-safe, append-only store of failure records, persisted to failed_customers.json."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import orjson

from app.models.records import FailureRecord

FAILED_CUSTOMERS_FILE = Path("failed_customers") / "failed_customers.json"

FailureListener = Callable[[int], None]
_ONE_RECORD = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


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
        """Records saved in a failed_customers.json; [] when the file does not exist.

        Raises ValueError when the file is not a list of records.
        """
        from app.services.sources.customer_reader import iter_json_array

        try:
            return [FailureRecord.from_dict(item) for item in iter_json_array(path)
                    if isinstance(item, dict)]
        except FileNotFoundError:
            return []
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{Path(path).name} is not valid JSON ({exc})") from None

    def load(self, path: Path) -> int:
        """Merge the records saved at `path` into memory; returns how many were new."""
        return self.extend(self.load_file(path))


def save_failures(path: Path, new_records: Iterable[FailureRecord],
                  pace: Callable[[], None] | None = None) -> int:
    """Add `new_records` to the saved file (kept across runs), atomically. Returns the total.

    Records are written one by one (and the old file read in slices), so a background
    thread saving 100,000 failures never holds Python's global lock for long; `pace` is
    called after each record (see `BackgroundPacer`).
    """
    from app.services.results.atomic_files import atomic_write
    from app.services.sources.customer_reader import iter_json_array

    path = Path(path)
    new = list(new_records)

    def write(handle: IO[bytes], keep_existing: bool) -> int:
        keys: set[tuple] = set()
        count = 0

        def put(item: dict) -> None:
            nonlocal count
            handle.write((b",\n" if count else b"\n") + orjson.dumps(item, option=_ONE_RECORD))
            count += 1
            if pace is not None:
                pace()

        handle.write(b"[")
        if keep_existing and path.exists():
            for item in iter_json_array(path):
                if isinstance(item, dict):
                    keys.add(FailureRecord.from_dict(item).key())
                    put(item)
        for record in new:
            if record.key() not in keys:
                keys.add(record.key())
                put(record.to_dict())
        handle.write(b"\n]\n")
        return count

    total = 0

    def write_all(handle: IO[bytes], keep_existing: bool = True) -> None:
        nonlocal total
        total = write(handle, keep_existing)

    try:
        atomic_write(path, write_all)
    except (ValueError, orjson.JSONDecodeError):
        # never destroy a file we cannot read: keep it aside and start a new one
        path.replace(path.with_suffix(".unreadable.json"))
        atomic_write(path, lambda handle: write_all(handle, keep_existing=False))
    return total
