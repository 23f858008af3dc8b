"""Counts what a customer file holds, for the Files tab, without loading the file whole.

Plain synchronous code meant for worker threads: the file is streamed through `FileReader`,
so a 200,000-customer file costs a read of the file, never its size in memory. Counting is
pure Python work (3-4 s for 200,000 customers); `inspect_file_in_helper` does it in a
helper process, where it never holds the window's Python lock.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
from pathlib import Path
from typing import Any

from app.models.file_inspection import FileInspection, FileKind
from app.models.records import RecordKind
from app.services.sources.customer_reader import FileReader, InvalidEntry, ReadProblem
from app.services.sources.file_fingerprint import fingerprint
from app.services.sources.mapping import Mapping, MappingError
from app.services.sources.spreadsheet_reader import SpreadsheetReader
from app.services.sources.table_source import is_spreadsheet
from app.util.cancel_token import Cancelled, CancelToken
from app.util.helper_processes import begin_helper_process

NO_CUSTOMERS_FOUND = "no customers found"

# How often (in entries, ~1 ms of work) a long inspection checks its token: often enough
# to stop at once, rarely enough to cost nothing.
_CANCEL_CHECK_EVERY = 64
# How often the thread waiting for a helper process looks at its token.
_HELPER_CANCEL_CHECK_S = 0.05


class _Unusable(Exception):
    """The file cannot be read as asked; the message says why."""


def _kind_of(kinds: set[RecordKind]) -> FileKind:
    if len(kinds) > 1:
        return "mixed"
    if RecordKind.HOUSEHOLDS in kinds:
        return "households"
    if RecordKind.CUSTOMERS in kinds:
        return "customers"
    return ""


def inspect_file(path: Path, *, token: CancelToken | None = None,
                 mapping: dict[str, Any] | None = None, sheet: str | None = None
                 ) -> FileInspection:
    """Stream through `path` and count its entries; never raises for a bad file.

    Once `token` is cancelled the read stops with `Cancelled` (the user removed files that
    were still being counted).
    A spreadsheet is read with `mapping` (file format; None: from its header) and `sheet`,
    and its rows are checked as an import checks them.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # FileReader reports why the file cannot be opened
    kinds: set[RecordKind] = set()
    customers = invalid = 0
    problem: str | None = None
    first_invalid = ""
    try:
        reader: FileReader | SpreadsheetReader
        if is_spreadsheet(path):
            try:
                chosen = Mapping.from_dict(mapping) if mapping else None
            except MappingError as exc:
                raise _Unusable(f"the mapping cannot be used: {exc}") from None
            reader = SpreadsheetReader(path, chosen, sheet=sheet)
        else:
            reader = FileReader(path)
        for item in reader:
            if isinstance(item, InvalidEntry):
                customers += 1
                invalid += 1
                kinds.add(item.record.kind)
                first_invalid = first_invalid or str(item.problem)
            elif isinstance(item, ReadProblem):
                if item.fatal_for_file:
                    problem = item.message
                    break
                # a non-fatal problem without an entry is not a customer: nothing to count
            else:
                customers += 1
                kinds.add(item.kind)
            if token is not None and customers % _CANCEL_CHECK_EVERY == 0:
                token.check()
    except Cancelled:
        raise
    except _Unusable as exc:
        problem = str(exc)
    except Exception as exc:  # a reader bug must not take a worker thread down with it
        problem = f"the file could not be read ({type(exc).__name__}: {exc})"
    if problem is None and customers == 0:
        problem = NO_CUSTOMERS_FOUND
    sha256 = ""
    if problem is None:
        # changed under us: the import reads (and fingerprints) it again anyway
        with contextlib.suppress(OSError):
            sha256 = fingerprint(path).sha256  # the page cache holds it now: a quick read
    return FileInspection(path=path, kind=_kind_of(kinds), customers=customers,
                          invalid=invalid, size_bytes=size, problem=problem,
                          first_invalid=first_invalid, sha256=sha256)


def inspect_file_in_helper(path: Path, *, token: CancelToken | None = None) -> FileInspection:
    """`inspect_file(path)` run in a helper process of its own; blocks until it answers.

    In a thread, counting a big file holds Python's lock for seconds, a few milliseconds
    at a time, and the window waits that long at each of its calls into Python while it
    paints (a table repaint makes hundreds). Here the calling thread only waits for the
    answer, its lock released. Starting the process costs ~0.2 s: for big files only.
    Once `token` is cancelled the process is ended and `Cancelled` raised.
    """
    path = Path(path)
    if token is not None:
        token.check()
    context = multiprocessing.get_context("spawn")  # safe beside Qt's threads
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=_inspect_and_send, args=(path, sending),
                              name="file-counter", daemon=True)
    process.start()
    sending.close()  # the process holds the only sending end: its death ends the wait
    try:
        while True:
            ready = multiprocessing.connection.wait([receiving, process.sentinel],
                                                    _HELPER_CANCEL_CHECK_S)
            if token is not None:
                token.check()
            if receiving in ready:
                try:
                    answer: FileInspection = receiving.recv()
                    return answer
                except (EOFError, OSError):
                    pass  # it died before it answered
            elif process.sentinel not in ready:
                continue
            process.join()
            return FileInspection(path, size_bytes=_size(path), problem=(
                "the file could not be read (the counting process stopped, "
                f"exit code {process.exitcode})"))
    finally:
        receiving.close()
        if process.is_alive():
            process.kill()
        process.join()


def _inspect_and_send(path: Path, connection: Any) -> None:
    """Entry point of the helper process of `inspect_file_in_helper`."""
    begin_helper_process()
    connection.send(inspect_file(path))
    connection.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
