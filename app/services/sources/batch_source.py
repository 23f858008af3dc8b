"""Forms request batches from customer files, on a worker thread or in a reader process.

Reading, checking and serialising are CPU work. For small imports a worker thread does it;
for large ones a separate process does, so parsing never competes with the uploads (or the
window) for Python's global lock, and the 2nd core does useful work.

Nothing read is lost on the way: an entry that cannot be sent becomes an INVALID failure,
a reader error costs the rest of one file (named, with the record it stopped at), and a
reader process that dies is started again where it stopped.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.models.display_text import printable_path
from app.models.entry_json import find_unsendable
from app.models.record_ranges import RecordRanges
from app.models.records import Batch, CustomerRecord, FailureRecord, RecordKind, Result
from app.services.sources.assignment_rule import AssignmentRule
from app.services.sources.customer_reader import FileReader, InvalidEntry, ReadProblem
from app.services.sources.error_report import ErrorLine, error_lines
from app.services.sources.mapping import MappingError
from app.services.sources.row_validation import ImportValidator
from app.services.sources.source_options import SourceOptions
from app.services.sources.spreadsheet_reader import InvalidRow, SpreadsheetReader
from app.services.sources.table_source import is_spreadsheet
from app.util.helper_processes import begin_helper_process

log = logging.getLogger("bulk_import")

#: Imports larger than this read their files in a separate process.
PROCESS_READER_MIN_BYTES = 8 * 1024 * 1024
_CHUNKS_AHEAD = 3  # chunks the reader process keeps ready
_MAX_INVALID_PER_CHUNK = 1000
#: A reader process that dies twice at the same place gives up the rest of that file.
_CRASHES_BEFORE_GIVING_UP = 2


@dataclass(slots=True, frozen=True)
class ReadPosition:
    """Where reading stands, so that another reader can carry on without a gap or a repeat.

    Every record of `files[file_index]` up to `record` is delivered, except those in
    `waiting` (read, but in a batch not yet complete: at most a batch per endpoint).
    """

    file_index: int = 0
    record: int = 0
    waiting: frozenset[int] = frozenset()
    next_batch: int = 1  # the number the next batch gets
    # customers given an assignment value before this file: round robin goes on from here
    assigned_before_file: int = 0

    def delivered(self, record_number: int) -> bool:
        return record_number <= self.record and record_number not in self.waiting


@dataclass(slots=True)
class SourceChunk:
    """What one call to `next_chunk` produced."""

    batches: list[Batch] = field(default_factory=list)
    invalid: list[FailureRecord] = field(default_factory=list)  # refused before sending
    error_lines: list[ErrorLine] = field(default_factory=list)  # the error report's lines
    problems: list[ReadProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth a log line, not a problem
    new_duplicate_ids: set[str] = field(default_factory=set)  # ids now seen twice or more
    records_read: int = 0
    skipped: int = 0  # records left out: imported before, or handled by the resumed job
    files_read: list[tuple[int, int]] = field(default_factory=list)  # (file index, records)
    exhausted: bool = False
    bytes_done: int = 0
    current_file: str = ""
    position: ReadPosition = field(default_factory=ReadPosition)


def invalid_failure(entry: InvalidEntry) -> FailureRecord:
    """The failure record of an entry refused before sending (file, record, field named)."""
    row = entry if isinstance(entry, InvalidRow) else None  # a spreadsheet row
    failure = FailureRecord.for_record(entry.record, result=Result.INVALID,
                                       error=str(entry.problem),
                                       batch_info="Refused before sending (file check)",
                                       username=row.display_name if row else "")
    if row is not None and row.customer_id and not failure.customer_id:
        failure.customer_id = row.customer_id  # from the row's mapped column
    return failure


@dataclass(slots=True, frozen=True)
class SkipPlan:
    """Records of one file not to send (`skip`) and those whose earlier outcome is unknown
    (`maybe_sent`: sent again, their customers marked uncertain)."""

    skip: RecordRanges = field(default_factory=RecordRanges)
    maybe_sent: RecordRanges = field(default_factory=RecordRanges)


class BatchSource:
    """Streams batches of valid entries out of a list of files.

    Batches never span files: a small file (such as one retry file) stays one batch, and
    every batch belongs to exactly one endpoint kind. One caller at a time. `start` picks
    up where an earlier reader stopped (a file index, the records of it already delivered);
    `plans` (by file index) leave records out or mark them uncertain.
    """

    def __init__(self, files: list[Path], batch_size: int, *, keep_records: bool = True,
                 start: ReadPosition | None = None,
                 plans: dict[int, SkipPlan] | None = None,
                 options: SourceOptions | None = None) -> None:
        self.files = list(files)
        self.plans = plans or {}
        self.options = options or SourceOptions()
        # one for the whole import: a customer id repeated in another file is caught too
        self._validator = ImportValidator()
        self._assign = AssignmentRule(self.options.assignment_rule())
        self._assigned_before_file = 0
        self._error_lines: list[ErrorLine] = []
        # spreadsheet -> the columns its mapping leaves out (for the review)
        self.unmapped_columns: dict[str, list[str]] = {}
        self._skipped = 0
        self._files_read: list[tuple[int, int]] = []
        self.batch_size = max(1, batch_size)
        self.bytes_total = sum(_size(f) for f in self.files)
        self.keep_records = keep_records
        start = start or ReadPosition()
        self._start = start
        self._first_file = start.file_index
        self._bytes_of_finished_files = sum(_size(f) for f in self.files[:start.file_index])
        self._reader: _FileReading | None = None
        self._file_index = start.file_index
        self._next_number = start.next_batch
        self._open_batches: dict[RecordKind, list[CustomerRecord]] = {}
        # ids read so far, by endpoint; an id read twice may well CONFLICT with itself
        self._ids_seen: dict[RecordKind, set[str]] = {kind: set() for kind in RecordKind}
        self._new_duplicates: set[str] = set()
        self._items = self._iterate()
        self.current_file = ""

    @property
    def bytes_done(self) -> int:
        reader = self._reader
        return self._bytes_of_finished_files + (reader.bytes_read if reader else 0)

    def position(self) -> ReadPosition:
        """Where a new reader would have to start so that nothing is read twice or lost."""
        reader = self._reader
        if reader is None:
            return ReadPosition(self._file_index, next_batch=self._next_number,
                                assigned_before_file=self._assigned_before_file)
        waiting = frozenset(record.record_number for group in self._open_batches.values()
                            for record in group)
        return ReadPosition(self._file_index, _last_record(reader), waiting, self._next_number,
                            self._assigned_before_file)

    def _iterate(self) -> Iterator[Batch | InvalidEntry | ReadProblem]:
        for index in range(self._first_file, len(self.files)):
            path = self.files[index]
            self._file_index = index
            resumed = self._start if index == self._first_file else ReadPosition()
            plan = self.plans.get(index)
            skip = plan.skip if plan is not None and plan.skip else None
            self._assigned_before_file = resumed.assigned_before_file if (
                index == self._first_file) else self._assigned_before_file
            assign = self._assign.for_file(
                self._assigned_before_file, spreadsheet=is_spreadsheet(path),
                exempt=str(path) in self.options.unassigned_files)
            self._reader = reader = self._open_reader(path)
            self.current_file = str(path)
            open_batches: dict[RecordKind, list[CustomerRecord]] = {}
            self._open_batches = open_batches
            try:
                for item in reader:
                    if assign is not None and isinstance(item, CustomerRecord):
                        assign(item)  # in file order, delivered before or not
                    number = (item.record if isinstance(item, InvalidEntry) else item
                              ).record_number
                    if number is not None and resumed.delivered(number):
                        continue  # delivered by the reader before this one
                    if isinstance(item, CustomerRecord):
                        self._note_id(item)  # skipped or not: a repeated id is one
                    if skip is not None and number is not None and number in skip:
                        self._skipped += 1
                        continue
                    if isinstance(item, CustomerRecord):
                        group = open_batches.setdefault(item.kind, [])
                        group.append(item)
                        if len(group) >= self.batch_size:
                            open_batches[item.kind] = []
                            yield from self._make_batches(item.kind, group)
                    else:
                        # reported once: a reader started again does not report it again
                        self._error_lines.extend(error_lines(item))
                        yield item
            except Exception as exc:  # a reader bug costs the rest of one file, named
                log.exception("Reading %s failed", path)
                last = _last_record(reader)
                problem = ReadProblem(
                    str(path), f"reading stopped after record {last} "
                    f"({type(exc).__name__}: {exc}); the rest of this file was not read",
                    record_number=last + 1, fatal_for_file=True)
                self._error_lines.extend(error_lines(problem))
                yield problem
            for kind, group in list(open_batches.items()):
                if group:
                    open_batches[kind] = []
                    yield from self._make_batches(kind, group)
            if isinstance(reader, SpreadsheetReader) and reader.unmapped_columns:
                self.unmapped_columns[str(path)] = list(reader.unmapped_columns)
            self._files_read.append((index, reader.records_read))
            self._bytes_of_finished_files += _size(path)
            self._assigned_before_file += self._assign.count_in_file
            self._reader = None
            self._file_index = index + 1

    def _open_reader(self, path: Path) -> _FileReading:
        if not is_spreadsheet(path):
            return FileReader(path)
        options = self.options
        try:
            mapping = options.mapping_for(path)
        except MappingError as exc:
            return _RefusedFile(path, f"the mapping for this file cannot be used: {exc}")
        return SpreadsheetReader(path, mapping, sheet=options.sheet_for(path),
                                 validator=self._validator,
                                 extra_mapping=options.with_assignment_column)

    def _note_id(self, record: CustomerRecord) -> None:
        record_id = record.record_id
        if record_id:
            seen = self._ids_seen[record.kind]
            if record_id in seen:
                self._new_duplicates.add(record_id)
            else:
                seen.add(record_id)

    def _make_batches(self, kind: RecordKind, records: list[CustomerRecord]
                      ) -> Iterator[Batch | InvalidEntry]:
        try:
            body: bytes | None = orjson.dumps({kind.body_key: [r.data for r in records]})
        except TypeError:
            # something orjson cannot write as it is: refuse what cannot be sent at all,
            # the rest (long integers, say) goes out written exactly
            body = None
            sendable = []
            for record in records:
                found = find_unsendable(record.data)
                if found is None:
                    sendable.append(record)
                else:
                    field_name, reason = found
                    yield InvalidEntry(record, ReadProblem(record.source_file, reason,
                                                           record.record_number, field_name))
            records = sendable
        if not records:
            return
        batch = Batch.from_records(self._next_number, kind, records, body=body,
                                   keep_records=self.keep_records, file_index=self._file_index)
        plan = self.plans.get(self._file_index)
        if plan is not None and plan.maybe_sent:
            # under way when the job stopped: a CONFLICT now means that attempt created it
            batch.resumed_ids.update(r.record_id for r in records
                                     if r.record_number in plan.maybe_sent and r.record_id)
        self._next_number += 1
        yield batch

    def next_chunk(self, max_batches: int) -> SourceChunk:
        """Read on until `max_batches` batches are formed or the files are exhausted."""
        chunk = SourceChunk()
        invalid: list[InvalidEntry] = []
        for item in self._items:
            if isinstance(item, Batch):
                chunk.batches.append(item)
                if len(chunk.batches) >= max_batches:
                    break
            elif isinstance(item, InvalidEntry):
                invalid.append(item)
                if len(invalid) >= _MAX_INVALID_PER_CHUNK:
                    break
            else:
                chunk.problems.append(item)
        else:
            chunk.exhausted = True
        # made here, so that a chunk crossing to another process holds no deep structures
        chunk.invalid = [invalid_failure(entry) for entry in invalid]
        # a record counts as read once it is in a batch or found invalid
        chunk.records_read = sum(len(b) for b in chunk.batches) + len(chunk.invalid)
        chunk.bytes_done = self.bytes_done
        chunk.current_file = self.current_file
        chunk.position = self.position()
        chunk.new_duplicate_ids, self._new_duplicates = self._new_duplicates, set()
        chunk.skipped, self._skipped = self._skipped, 0
        chunk.files_read, self._files_read = self._files_read, []
        chunk.error_lines, self._error_lines = self._error_lines, []
        return chunk

    def close(self) -> None:
        """Nothing to release for the in-thread reader."""


def _read_in_process(files: list[Path], batch_size: int, max_batches: int,
                     start: ReadPosition, plans: dict[int, SkipPlan],
                     options: SourceOptions, connection: Any) -> None:
    """Entry point of the reader process: sends SourceChunks through `connection`.

    A sending thread keeps a few chunks ready while the next ones are read. When the
    import no longer wants chunks it closes its end, and sending fails: time to stop.
    """
    begin_helper_process()
    ready: queue.Queue[SourceChunk] = queue.Queue(maxsize=_CHUNKS_AHEAD)
    unwanted = threading.Event()

    def send() -> None:
        try:
            while True:
                chunk = ready.get()
                connection.send(chunk)
                if chunk.exhausted:
                    return
        except OSError:  # BrokenPipeError, ...: the import closed its end
            unwanted.set()

    sender = threading.Thread(target=send, name="send-chunks", daemon=True)
    sender.start()
    source = BatchSource(files, batch_size, keep_records=False, start=start, plans=plans,
                         options=options)
    while not unwanted.is_set():
        chunk = source.next_chunk(max_batches)
        while not unwanted.is_set():
            try:
                ready.put(chunk, timeout=0.5)
                break
            except queue.Full:
                continue
        if chunk.exhausted:
            break
    sender.join()
    connection.close()


class ProcessBatchSource:
    """The same interface as `BatchSource`, reading in a separate process.

    `next_chunk` blocks (call it from a worker thread). Chunks come through a pipe whose
    sending end only the reader process holds: should that process die, even in the middle
    of a chunk, reading ends at once instead of waiting for the rest. A new process then
    carries on from the last record delivered; one that dies twice at the same place gives
    up the rest of that file, naming it.
    """

    def __init__(self, files: list[Path], batch_size: int, max_batches: int,
                 plans: dict[int, SkipPlan] | None = None, first_batch: int = 1,
                 options: SourceOptions | None = None) -> None:
        self.files = list(files)
        self.plans = plans or {}
        self.options = options or SourceOptions()
        self.bytes_total = sum(_size(f) for f in self.files)
        self.bytes_done = 0
        self.current_file = ""
        self._batch_size = batch_size
        self._max_batches = max_batches
        self._context = multiprocessing.get_context("spawn")  # safe beside Qt's threads
        self._position = ReadPosition(next_batch=first_batch)
        self._crashes_here = 0
        self._exhausted = False
        self._start_process()

    def _start_process(self) -> None:
        receiving, sending = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_read_in_process, name="customer-file-reader", daemon=True,
            args=(self.files, self._batch_size, self._max_batches, self._position,
                  self.plans, self.options, sending))
        self._process.start()
        sending.close()  # the process holds the only sending end now
        self._connection = receiving
        self._started_at = self._position

    @property
    def process(self) -> Any:
        """The reader process now running (for tests and diagnostics)."""
        return self._process

    def next_chunk(self, max_batches: int) -> SourceChunk:
        if self._exhausted:
            return SourceChunk(exhausted=True)
        try:
            chunk: SourceChunk = self._connection.recv()
        except (EOFError, OSError):
            return self._carry_on_after_crash()
        self.bytes_done = chunk.bytes_done
        self.current_file = chunk.current_file
        self._position = chunk.position
        self._exhausted = chunk.exhausted
        return chunk

    def _carry_on_after_crash(self) -> SourceChunk:
        """The process died: start another where it stopped (or after the file it dies on)."""
        chunk = SourceChunk(position=self._position)
        position = self._position
        self._stop_process()
        exit_code = self._process.exitcode
        if position == self._started_at:
            self._crashes_here += 1
        else:
            self._crashes_here = 1
        name = str(self.files[position.file_index]) if position.file_index < len(
            self.files) else ""
        if self._crashes_here >= _CRASHES_BEFORE_GIVING_UP and name:
            chunk.problems.append(ReadProblem(
                name, f"the file reader stopped {self._crashes_here} times at record "
                f"{position.record + 1} of this file (exit code {exit_code}); records from "
                f"{position.record + 1} on were not read", record_number=position.record + 1,
                fatal_for_file=True))
            position = ReadPosition(position.file_index + 1, next_batch=position.next_batch,
                                    assigned_before_file=position.assigned_before_file)
            self._crashes_here = 0
        else:
            chunk.notes.append(f"the file reader stopped unexpectedly (exit code {exit_code}); "
                               f"a new one goes on from record {position.record + 1} of "
                               f"{printable_path(Path(name).name)}")
        self._position = position
        if position.file_index >= len(self.files):
            self._exhausted = chunk.exhausted = True
            return chunk
        self._start_process()
        return chunk

    def _stop_process(self) -> None:
        self._connection.close()  # its next send fails, and it ends
        self._process.join(timeout=5)
        if self._process.is_alive():  # busy reading a huge entry: no need to wait
            self._process.terminate()
            self._process.join(timeout=5)

    def close(self) -> None:
        self._stop_process()


def open_batch_source(files: list[Path], batch_size: int, max_batches: int,
                      use_process: bool | None = None,
                      plans: dict[int, SkipPlan] | None = None, first_batch: int = 1,
                      options: SourceOptions | None = None
                      ) -> BatchSource | ProcessBatchSource:
    """A reader fit for the import's size: a thread for small imports, a process for large.

    `first_batch`: the number the first batch gets (a resumed job numbers on).
    """
    if use_process is None:
        use_process = is_large_import(files)
    if use_process:
        return ProcessBatchSource(files, batch_size, max_batches, plans, first_batch, options)
    return BatchSource(files, batch_size, plans=plans,
                       start=ReadPosition(next_batch=first_batch), options=options)


def is_large_import(files: list[Path]) -> bool:
    """Whether the files are big enough to be worth a separate process (reader, writer)."""
    return sum(_size(f) * _work_per_byte(f) for f in files) >= PROCESS_READER_MIN_BYTES


def _work_per_byte(path: Path) -> int:
    """How much reading a byte costs, against a byte of JSON: a CSV holds about three times
    as many customers per byte, a workbook (compressed) about ten times."""
    suffix = Path(path).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return 10
    return 3 if is_spreadsheet(path) else 1


def _last_record(reader: _FileReading) -> int:
    """The number of the last record the reader yielded (a spreadsheet's numbers are its
    row numbers, which skip the header and empty rows)."""
    return getattr(reader, "last_record_number", reader.records_read)


class _RefusedFile:
    """A file not to read at all (its mapping is broken): one problem, no records."""

    def __init__(self, path: Path, message: str) -> None:
        self.name = str(path)
        self.message = message
        self.records_read = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[ReadProblem]:
        yield ReadProblem(self.name, self.message, fatal_for_file=True)


_FileReading = FileReader | SpreadsheetReader | _RefusedFile


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
