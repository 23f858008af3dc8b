"""Thread-safe store of failures: one row per customer, open or resolved."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from app.models.records import (
    ROW_ATTEMPTS,
    ROW_KEY,
    ROW_RESOLVED_AT,
    ROW_RESOLVED_JOB,
    FailureRecord,
    FailureRow,
)

FAILED_CUSTOMERS_FILE = Path("failed_customers") / "failed_customers.json"

FailureListener = Callable[[int], None]


class FailureStore:
    """The failures the window shows: one row per customer (see `customer_key`).

    Rows are compact tuples (see `FailureRecord.to_row`), which Python's garbage collector
    leaves alone however many there are. A customer who fails again replaces their row
    (attempts counted); one imported later is marked resolved in place, so a table can
    grey it out until the next reload. Appends and changes happen under a lock from any
    thread; readers take cheap copies by position (`rows_from`) and ask which earlier
    positions changed (`take_changed`). Listeners are called with the new length after
    each change, from the changing thread: a GUI bridges that to its own thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[FailureRow] = []
        self._positions: dict[str, int] = {}
        self._changed: set[int] = set()
        self._open = 0
        self._listeners: list[FailureListener] = []
        self._generation = 0  # bumped when all rows are replaced: positions are stale

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def open_count(self) -> int:
        """Customers whose failure is still open."""
        return self._open

    def add_listener(self, listener: FailureListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: FailureListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, size: int) -> None:
        for listener in list(self._listeners):
            listener(size)

    # -- changes ----------------------------------------------------------------------------

    def upsert(self, records: Iterable[FailureRecord]) -> int:
        """Add failures; one for a customer already listed replaces it. Returns how many
        rows were added (rather than replaced)."""
        added = changed = 0
        with self._lock:
            for record in records:
                row = record.to_row()
                key = row[ROW_KEY]
                position = self._positions.get(key)
                if position is None:
                    self._positions[key] = len(self._rows)
                    self._rows.append(row)
                    self._open += 1
                    added += 1
                    continue
                old = self._rows[position]
                if old[ROW_RESOLVED_JOB] is not None:
                    self._open += 1  # failing again reopens it
                attempts = old[ROW_ATTEMPTS] + row[ROW_ATTEMPTS]
                self._rows[position] = (*row[:ROW_ATTEMPTS], attempts, *row[ROW_ATTEMPTS + 1:])
                self._changed.add(position)
                changed += 1
            size = len(self._rows)
        if added or changed:
            self._notify(size)
        return added

    def resolve(self, keys: Iterable[str], job: int, when: str) -> int:
        """Mark the open failures of these customers resolved by `job`; returns how many."""
        resolved = 0
        with self._lock:
            for key in keys:
                position = self._positions.get(key)
                if position is None:
                    continue
                row = self._rows[position]
                if row[ROW_RESOLVED_JOB] is not None:
                    continue
                self._rows[position] = (*row[:ROW_RESOLVED_JOB], job, when,
                                        *row[ROW_RESOLVED_AT + 1:])
                self._changed.add(position)
                self._open -= 1
                resolved += 1
            size = len(self._rows)
        if resolved:
            self._notify(size)
        return resolved

    def replace_all(self, rows: Iterable[FailureRow]) -> int:
        """Hold exactly `rows`; returns how many. Positions start over (`generation`)."""
        new_rows = list(rows)
        with self._lock:
            self._rows = new_rows
            self._positions = {row[ROW_KEY]: i for i, row in enumerate(new_rows)}
            self._changed.clear()
            self._open = sum(1 for row in new_rows if row[ROW_RESOLVED_JOB] is None)
            self._generation += 1
        self._notify(len(new_rows))
        return len(new_rows)

    def reload(self, read_rows: Callable[[], Iterable[FailureRow]]) -> int:
        """Hold exactly the rows `read_rows()` gives (the journal's); returns how many.

        Meant for a worker thread. When every customer held now is among them (the
        reload after an import), rows keep their positions: changed ones are updated in
        place, the others added at the end, so a table takes in a few changes instead of
        starting over and keeps its selection. The rows are compared as they are read and
        only changed or new ones kept: 100,000 fresh tuples alive at once would make the
        next garbage collection on the GUI thread a long one. Otherwise (another folder,
        a job's failures) the rows replace all others, read once more.
        """
        with self._lock:
            generation = self._generation
            positions = dict(self._positions)
            held = list(self._rows)
        if not held or len(positions) != len(held):
            return self.replace_all(read_rows())
        seen = bytearray(len(held))
        changed: dict[int, FailureRow] = {}
        added: dict[str, FailureRow] = {}
        for row in read_rows():
            position = positions.get(row[ROW_KEY])
            if position is None:
                added[row[ROW_KEY]] = row
            elif seen[position]:
                return self.replace_all(read_rows())  # a customer twice: no merging that
            else:
                seen[position] = 1
                if row != held[position]:
                    changed[position] = row
        if seen.count(1) != len(held):
            return self.replace_all(read_rows())  # some customer is not among them
        with self._lock:
            if self._generation != generation:
                replaced = True
            else:
                replaced = False
                for position, row in changed.items():
                    self._rows[position] = row
                    self._changed.add(position)
                for key, row in added.items():
                    if key not in self._positions:  # unless it arrived meanwhile
                        self._positions[key] = len(self._rows)
                        self._rows.append(row)
                self._open = sum(1 for row in self._rows if row[ROW_RESOLVED_JOB] is None)
                size = len(self._rows)
        if replaced:
            return self.replace_all(read_rows())
        if changed or added:
            self._notify(size)
        return size

    def clear(self) -> None:
        """Forget the rows in memory; files and the journal are left alone."""
        self.replace_all(())

    # -- reading ----------------------------------------------------------------------------

    def rows_from(self, start: int = 0) -> list[FailureRow]:
        """A copy of the rows from position `start` on."""
        with self._lock:
            return self._rows[start:]

    def snapshot(self) -> list[FailureRow]:
        return self.rows_from(0)

    def rows_at(self, positions: Iterable[int]) -> dict[int, FailureRow]:
        with self._lock:
            return {p: self._rows[p] for p in positions if p < len(self._rows)}

    def take_changed(self, below: int) -> list[int]:
        """Positions under `below` whose rows changed since the last call (sorted)."""
        with self._lock:
            taken = sorted(p for p in self._changed if p < below)
            self._changed.difference_update(taken)
        return taken

    def records(self, *, open_only: bool = True) -> list[FailureRecord]:
        """The failures as records (made on demand: for exports and summaries)."""
        rows = self.snapshot()
        return [FailureRecord.from_row(row) for row in rows
                if not open_only or row[ROW_RESOLVED_JOB] is None]
