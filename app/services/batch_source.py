"""Forms request batches from customer files, on a worker thread or in a reader process.

Reading, checking and serialising are CPU work. For small imports a worker thread does it;
for large ones a separate process does, so parsing never competes with the uploads (or the
window) for Python's global lock, and the 2nd core does useful work.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.models.records import Batch, CustomerRecord, RecordKind
from app.services.customer_reader import FileReader, InvalidEntry, ReadProblem

#: Imports larger than this read their files in a separate process.
PROCESS_READER_MIN_BYTES = 8 * 1024 * 1024
_CHUNK_QUEUE_SIZE = 4


@dataclass(slots=True)
class SourceChunk:
    """What one call to `next_chunk` produced."""

    batches: list[Batch] = field(default_factory=list)
    invalid: list[InvalidEntry] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    records_read: int = 0
    exhausted: bool = False
    bytes_done: int = 0
    current_file: str = ""


class BatchSource:
    """Streams batches of valid entries out of a list of files.

    Batches never span files: a small file (such as one retry file) stays one batch, and
    every batch belongs to exactly one endpoint kind. One caller at a time.
    """

    def __init__(self, files: list[Path], batch_size: int, *, keep_records: bool = True
                 ) -> None:
        self.files = list(files)
        self.batch_size = max(1, batch_size)
        self.bytes_total = sum(_size(f) for f in self.files)
        self.keep_records = keep_records
        self._bytes_of_finished_files = 0
        self._reader: FileReader | None = None
        self._next_number = 1
        self._items = self._iterate()
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
        batch = Batch.from_records(self._next_number, kind, records,
                                   keep_records=self.keep_records)
        self._next_number += 1
        return batch

    def next_chunk(self, max_batches: int) -> SourceChunk:
        """Read on until `max_batches` batches are formed or the files are exhausted."""
        chunk = SourceChunk()
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
        chunk.bytes_done = self.bytes_done
        chunk.current_file = self.current_file
        return chunk

    def close(self) -> None:
        """Nothing to release for the in-thread reader."""


def _read_in_process(files: list[Path], batch_size: int, max_batches: int,
                     out: Any, stop: Any) -> None:
    """Entry point of the reader process: puts SourceChunks on `out` until done."""
    # Parsing allocates millions of short-lived containers that reference counting frees;
    # the cyclic collector would walk them again and again for nothing.
    gc.set_threshold(100_000, 50, 1000)
    source = BatchSource(files, batch_size, keep_records=False)
    try:
        while not stop.is_set():
            chunk = source.next_chunk(max_batches)
            while not stop.is_set():
                try:
                    out.put(chunk, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if chunk.exhausted:
                return
    except Exception as exc:  # report, never die silently: the import must account for it
        out.put(SourceChunk(problems=[ReadProblem(
            source.current_file, f"the file reader failed ({type(exc).__name__}: {exc})",
            fatal_for_file=True)], exhausted=True))


class ProcessBatchSource:
    """The same interface as `BatchSource`, reading in a separate process.

    `next_chunk` blocks (call it from a worker thread). Chunks come through a bounded queue,
    so the reader never runs more than a few chunks ahead of the uploads.
    """

    def __init__(self, files: list[Path], batch_size: int, max_batches: int) -> None:
        self.files = list(files)
        self.bytes_total = sum(_size(f) for f in self.files)
        self.bytes_done = 0
        self.current_file = ""
        context = multiprocessing.get_context("spawn")  # safe beside Qt's threads everywhere
        self._queue = context.Queue(maxsize=_CHUNK_QUEUE_SIZE)
        self._stop = context.Event()
        self._process = context.Process(
            target=_read_in_process, name="customer-file-reader", daemon=True,
            args=(self.files, batch_size, max_batches, self._queue, self._stop))
        self._process.start()
        self._exhausted = False

    def next_chunk(self, max_batches: int) -> SourceChunk:
        if self._exhausted:
            return SourceChunk(exhausted=True)
        while True:
            try:
                chunk: SourceChunk = self._queue.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._process.is_alive():
                    self._exhausted = True
                    return SourceChunk(problems=[ReadProblem(
                        self.current_file, "the file reader stopped unexpectedly; the rest of "
                        "the files was not read", fatal_for_file=True)], exhausted=True)
        self.bytes_done = chunk.bytes_done
        self.current_file = chunk.current_file
        self._exhausted = chunk.exhausted
        return chunk

    def close(self) -> None:
        self._stop.set()
        # drain so the process is not stuck on a full queue, then let it go
        while self._process.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                self._process.join(timeout=0.5)
        self._process.join(timeout=2)
        self._queue.close()
        self._queue.join_thread()


def open_batch_source(files: list[Path], batch_size: int, max_batches: int,
                      use_process: bool | None = None) -> BatchSource | ProcessBatchSource:
    """A reader fit for the import's size: a thread for small imports, a process for large."""
    if use_process is None:
        use_process = is_large_import(files)
    if use_process:
        return ProcessBatchSource(files, batch_size, max_batches)
    return BatchSource(files, batch_size)


def is_large_import(files: list[Path]) -> bool:
    """Whether the files are big enough to be worth a separate process (reader, writer)."""
    return sum(_size(f) for f in files) >= PROCESS_READER_MIN_BYTES


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
