"""Forms request batches from customer files; meant to run on a worker thread.

Reading, checking and serialising are CPU work; doing them off the event loop keeps a GUI
responsive and lets parsing overlap with network waits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from app.models.records import Batch, CustomerRecord, RecordKind
from app.services.customer_reader import FileReader, InvalidEntry, ReadProblem


@dataclass(slots=True)
class SourceChunk:
    """What one call to `BatchSource.next_chunk` produced."""

    batches: list[Batch] = field(default_factory=list)
    invalid: list[InvalidEntry] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    records_read: int = 0
    exhausted: bool = False


class BatchSource:
    """Streams batches of valid entries out of a list of files.

    Batches never span files: a small file (such as one retry file) stays one batch, and
    every batch belongs to exactly one endpoint kind. Not thread-safe: one caller at a time.
    """

    def __init__(self, files: list[Path], batch_size: int) -> None:
        self.files = list(files)
        self.batch_size = max(1, batch_size)
        self.bytes_total = sum(_size(f) for f in self.files)
        self._bytes_of_finished_files = 0
        self._reader: FileReader | None = None
        self._next_number = 1
        self._items = self._iterate()
        self._lock = threading.Lock()
        self.records_read = 0
        self.current_file = ""

    @property
    def bytes_done(self) -> int:
        reader = self._reader
        return self._bytes_of_finished_files + (reader.bytes_read if reader else 0)

    def _iterate(self) -> Iterator[Batch | InvalidEntry | ReadProblem]:
        for path in self.files:
            self._reader = reader = FileReader(path)
            self.current_file = str(path)
            open_batches: dict[RecordKind, list[CustomerRecord]] = {}
            for item in reader:
                if isinstance(item, CustomerRecord):
                    group = open_batches.setdefault(item.kind, [])
                    group.append(item)
                    if len(group) >= self.batch_size:
                        yield self._make_batch(item.kind, group)
                        open_batches[item.kind] = []
                else:
                    yield item
            for kind, group in open_batches.items():
                if group:
                    yield self._make_batch(kind, group)
            self._bytes_of_finished_files += _size(path)
            self._reader = None

    def _make_batch(self, kind: RecordKind, records: list[CustomerRecord]) -> Batch:
        batch = Batch(self._next_number, kind, records)
        batch.body = serialise_batch(kind, records)
        self._next_number += 1
        return batch

    def next_chunk(self, max_batches: int) -> SourceChunk:
        """Read on until `max_batches` batches are formed or the files are exhausted."""
        chunk = SourceChunk()
        with self._lock:
            for item in self._items:
                if isinstance(item, Batch):
                    chunk.batches.append(item)
                    if len(chunk.batches) >= max_batches:
                        break
                elif isinstance(item, InvalidEntry):
                    chunk.invalid.append(item)
                    if len(chunk.invalid) >= 1000:
                        break
                else:
                    chunk.problems.append(item)
            else:
                chunk.exhausted = True
            # a record counts as read once it is in a batch or found invalid
            chunk.records_read = sum(len(b) for b in chunk.batches) + len(chunk.invalid)
            self.records_read += chunk.records_read
        return chunk


def serialise_batch(kind: RecordKind, records: list[CustomerRecord]) -> bytes:
    """The request body for a batch: exactly the API's format, UTF-8."""
    return orjson.dumps({kind.body_key: [r.data for r in records]})


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
