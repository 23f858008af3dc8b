"""Writers of an import's result files: retry batches, single-failure files, API responses.

Layout inside the output folder (the seeds' layout, which users already rely on):

    retry_batches_YYYYMMDD_HHMMSS/     one folder per import run with failures
        retry_batch_NN_failed.json     failed/unsent customers of one original batch, API format
        retry_summary.json             errors, counts, which file holds which batch
        RETRY_INSTRUCTIONS.md
    failed_customers/
        failed_customers.json          every failure record, kept across runs
        single_failures/<RESULT>/customer_<ID>_<USERNAME>.json   {"data": [original]}
                                       (shortened to fit a deep folder: see file_names)
        single_failures/<RESULT>/_SUMMARY_<RESULT>.json
        single_failures/README.md
    api_responses/                     answers to failing batches, secrets redacted

All writers are plain synchronous code; `result_files.ResultFileWriter` runs them on a
background thread or in a separate process, so the event loop never waits on the disk.
A single-failure file that cannot be written is counted (`SingleFailureWriter.unwritten`)
and the others still go; only a full disk stops the writer, as it stops the import.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from app.models.records import (
    ROW_ATTEMPTS,
    ROW_ERROR,
    ROW_ID,
    ROW_KIND,
    ROW_ORIGINAL,
    ROW_RECORD,
    ROW_RESULT,
    ROW_SOURCE_FILE,
    ROW_TIMESTAMP,
    ROW_USERNAME,
    ROW_WHOLE_BATCH,
    FailureRecord,
    FailureRow,
    RecordKind,
    Result,
)
from app.services.connection.redaction import GENERIC
from app.services.results.disk_space import is_disk_full
from app.util.atomic_files import (
    PRIVATE_FOLDER_MODE,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    make_private_folder,
    replace_file,
)
from app.util.file_names import (
    name_budget,
    name_length,
    safe_name_part,
    single_failure_file_name,
)

NOT_SENT_FILE_CUSTOMERS = 1000  # unsent customers are grouped into files of about this size
MAX_ERRORS_PER_FILE = 20
MAX_API_RESPONSE_FILES = 1000


def new_unique_file(parent: Path, stem: str, suffix: str) -> Path:
    """Create the empty file `parent/stem+suffix`, or `stem_2+suffix`, ... if it exists:
    reserved, so two imports writing in the same second never share (then overwrite) one.
    """
    make_private_folder(parent)
    counter = 1
    while True:
        candidate = parent / f"{stem if counter == 1 else f'{stem}_{counter}'}{suffix}"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            counter += 1
            continue
        return candidate


def new_unique_folder(parent: Path, name: str) -> Path:
    """Create `parent/name`, or `parent/name_2`, ... if that exists already.

    Created, not just chosen: two imports starting in the same second each get their own.
    """
    make_private_folder(parent)
    counter = 1
    while True:
        candidate = parent / (name if counter == 1 else f"{name}_{counter}")
        try:
            candidate.mkdir(mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:
            counter += 1
            continue
        return candidate


class RetryFolderWriter:
    """Writes `retry_batches_<stamp>/`: one retry file per failed original batch."""

    def __init__(self, output_dir: Path, started_at: datetime,
                 folder: Path | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.started_at = started_at
        # None: a new retry_batches_<stamp> folder once something fails; a folder given
        # here is carried on (the files are numbered from 01 again, written anew)
        self.folder: Path | None = folder
        self._carried = folder is not None
        self.files: list[dict[str, Any]] = []
        # as tuples until the summary is written: a dict per customer would be 100,000
        # objects for Python's garbage collector to walk again and again
        self._not_retried: list[tuple[Any, ...]] = []
        self.uncertain_ids: set[str] = set()
        self._unsent: list[tuple[int, FailureRecord]] = []
        self.customers_written = 0

    def _ensure_folder(self) -> Path:
        if self.folder is None:
            self.folder = new_unique_folder(
                self.output_dir, f"retry_batches_{self.started_at:%Y%m%d_%H%M%S}")
        return self.folder

    def add_batch(self, batch_number: int, failures: list[FailureRecord]) -> list[Path]:
        """File the failures of one finished original batch; returns retry files written."""
        retriable: list[FailureRecord] = []
        for failure in failures:
            if not failure.retriable or not failure.original_is_entry:
                self._not_retried.append(_summary_fields(failure))
            elif failure.result == Result.NOT_SENT:
                self._unsent.append((batch_number, failure))
            else:
                retriable.append(failure)
        written: list[Path] = []
        if retriable:
            written.extend(self._write(retriable, [batch_number]))
        if len(self._unsent) >= NOT_SENT_FILE_CUSTOMERS:
            written.extend(self._flush_unsent())
        return written

    def note_uncertain(self, ids: set[str]) -> None:
        self.uncertain_ids |= ids

    def _flush_unsent(self) -> list[Path]:
        written: list[Path] = []
        for kind in RecordKind:
            group = [(n, f) for n, f in self._unsent if f.kind is kind]
            if group:
                batches = sorted({n for n, _ in group})
                written.extend(self._write([f for _, f in group], batches))
                # per kind: should the next kind's write fail (a full disk), this one is
                # not written twice
                self._unsent = [(n, f) for n, f in self._unsent if f.kind is not kind]
        return written

    def _write(self, failures: list[FailureRecord], batches: list[int]) -> list[Path]:
        folder = self._ensure_folder()
        paths = []
        for kind in RecordKind:
            of_kind = [f for f in failures if f.kind is kind]
            if not of_kind:
                continue
            index = len(self.files) + 1
            name = f"retry_batch_{index:02d}_failed.json"
            path = folder / name
            # no fsync per file: hundreds may be written; the summary at the end is durable
            atomic_write_json(path, {kind.body_key: [f.original_fragment for f in of_kind]},
                              durable=False)
            errors = list(dict.fromkeys(f"{f.result}: {f.error}" for f in of_kind))
            self.files.append({
                "file": name,
                "kind": kind.value,
                "originalBatches": batches,
                "customers": len(of_kind),
                "results": dict(Counter(f.result for f in of_kind)),
                "httpStatus": sorted({f.http_status for f in of_kind if f.http_status}),
                "sourceFiles": sorted({Path(f.source_file).name for f in of_kind}),
                "errors": errors[:MAX_ERRORS_PER_FILE],
                "moreErrors": max(0, len(errors) - MAX_ERRORS_PER_FILE),
            })
            self.customers_written += len(of_kind)
            paths.append(path)
        return paths

    def finish(self, totals: dict[str, Any], source_files: list[str]) -> list[Path]:
        """Write what is still pending, the summary and the instructions (if anything failed)."""
        written = self._flush_unsent() if self._unsent else []
        if self.folder is None and not self._not_retried:
            return written
        folder = self._ensure_folder()
        atomic_write_json(folder / "retry_summary.json", {
            "createdAt": datetime.now().isoformat(timespec="seconds"),
            "importStartedAt": self.started_at.isoformat(timespec="seconds"),
            "sourceFiles": source_files,
            "totals": {**totals, "retryFiles": len(self.files),
                       "retryCustomers": self.customers_written},
            "files": self.files,
            "notRetried": self.not_retried,
            "uncertainCustomerIds": sorted(self.uncertain_ids),
            # a retry of these files treats existing customers the same way
            "onExisting": totals.get("onExisting", "create"),
        })
        atomic_write_text(folder / "RETRY_INSTRUCTIONS.md", _retry_instructions(
            folder.name, self.files, len(self._not_retried), len(self.uncertain_ids)))
        if self._carried:
            self._remove_strays(folder)
        return written

    def _remove_strays(self, folder: Path) -> None:
        """Retry files of this folder that the summary does not list: left by a writer of
        this same import that stopped half-way (a full disk, a dead process), before
        this one wrote everything again. Kept, they would be imported twice."""
        listed = {entry["file"] for entry in self.files}
        for path in folder.glob("retry_batch_*_failed.json"):
            if path.name not in listed:
                with contextlib.suppress(OSError):
                    path.unlink()

    @property
    def not_retried(self) -> list[dict[str, Any]]:
        """The customers no retry file holds, as the summary lists them."""
        return [dict(zip(_SUMMARY_KEYS, fields, strict=True)) for fields in self._not_retried]


_SUMMARY_KEYS = ("customerId", "username", "result", "error", "timestamp", "sourceFile",
                 "recordNumber")


def _summary_fields(failure: FailureRecord) -> tuple[Any, ...]:
    return (failure.customer_id, failure.username, failure.result, failure.error,
            failure.timestamp, failure.source_file, failure.record_number)


def _retry_instructions(folder: str, files: list[dict[str, Any]], not_retried: int,
                        uncertain: int) -> str:
    lines = [
        f"# Retry files: {folder}",
        "",
        "The files in this folder hold only the customers that were **not** imported, in the",
        "exact format the Customer Profile API expects. They can be imported again as they are.",
        "",
        "## How to import them again",
        "",
        '1. **In the app:** answer "Yes" when it offers to load the retry files, or choose',
        "   *File → Load retry files…* and pick this folder. Check the connection, then Start.",
        "2. **Add Directory:** on the Files tab, *Add Directory* and choose this folder.",
        "3. **Single files:** *Add Files* and pick only the `retry_batch_NN_failed.json` you need.",
        "4. **Command line:** `python main.py import \"<this folder>\" --url <customers URL>`",
        "",
        "`retry_summary.json` and this file are skipped when the folder is loaded.",
        "",
        "## What failed",
        "",
        "| file | customers | results | first error |",
        "| --- | --- | --- | --- |",
    ]
    for entry in files:
        results = ", ".join(f"{k} {v}" for k, v in entry["results"].items())
        first = (entry["errors"][0] if entry["errors"] else "").replace("|", "\\|")[:120]
        lines.append(f"| {entry['file']} | {entry['customers']} | {results} | {first} |")
    lines += [
        "",
        "## Before you retry",
        "",
        "- **NOT_SENT**: the import stopped before these were sent; retry as they are.",
        "- **HTTP_ERROR, TIMEOUT, CONNECTION_ERROR**: the service or network failed; retry later,",
        "  perhaps with a lower concurrency.",
        "- **FAILED, REJECTED, CONFLICT**: the service refused the data; correct it first (see the",
        "  error), or the same error will come back.",
        "- **Authentication**: fix the credentials, then retry with the same files.",
    ]
    if not_retried:
        lines += ["", f"{not_retried} customers are listed under `notRetried` in "
                  "retry_summary.json and are not in these files: INVALID ones must be "
                  "corrected first, ALREADY_EXISTS ones were most probably created by an "
                  "earlier attempt whose answer was lost (check them in the service)."]
    if uncertain:
        lines += ["", f"{uncertain} customers were sent in a request whose outcome is unknown "
                  "(timeout or server error after sending). If the service answers CONFLICT "
                  "for them when you retry, they are reported as ALREADY_EXISTS."]
    return "\n".join(lines) + "\n"


class SingleFailureWriter:
    """One re-importable file per customer judged on their own, by result, with summaries.

    Judged on their own: the API's per-customer results (CONFLICT, FAILED, ...) and entries
    refused before sending (INVALID). Customers of a batch that failed as a whole (an
    outage, a timeout) are in the retry files only: an outage must not write 100,000 small
    files. `finish` writes each result's summary of the open failures and moves the files
    of customers a later import resolved to `failed_customers/resolved/<RESULT>/`.

    Names are shortened to the room the folder leaves (`file_names.name_budget`). A file
    that still cannot be written (a name the system refuses, a file held by another
    program) is counted in `unwritten`, by cause, and the others go on; a full disk raises.
    """

    def __init__(self, output_dir: Path) -> None:
        self.root = Path(output_dir) / "failed_customers" / "single_failures"
        self.resolved_root = Path(output_dir) / "failed_customers" / "resolved"
        self.files_written = 0
        self.unwritten: Counter[str] = Counter()  # files not written, by cause (no names)
        self.unmoved: Counter[str] = Counter()  # resolved files not moved, by cause
        self._unwritten_paths: set[Path] = set()
        self._budgets: dict[Path, int] = {}  # folder: longest name it allows

    def add(self, failure: FailureRecord) -> Path | None:
        """Write the customer's file; None when there is none to write or it failed."""
        if failure.whole_batch or not failure.original_is_entry:
            return None  # in the retry files; raw text (a broken line) has no API form
        path = self.path_for(failure.result, failure.customer_id, failure.username,
                             failure.kind.value, failure.source_file, failure.record_number)
        try:
            if name_length(path.name) > self._budget(path.parent):
                raise OSError(errno.ENAMETOOLONG, "the results folder leaves no room for "
                              "the file's name (path too long)")
            atomic_write_json(path, {failure.kind.body_key: [failure.original_fragment]},
                              durable=False)
        except OSError as exc:
            if is_disk_full(exc):
                raise  # every other file fails too: the import pauses and writes again
            # the cause only: the file's name holds the customer's id and name
            self.unwritten[exc.strerror or type(exc).__name__] += 1
            self._unwritten_paths.add(path)
            return None
        self._unwritten_paths.discard(path)
        self.files_written += 1
        return path

    def path_for(self, result: str, customer_id: str, username: str, kind: str,
                 source_file: str, record_number: int, *, resolved: bool = False) -> Path:
        root = self.resolved_root if resolved else self.root
        folder = root / safe_name_part(result, fallback="UNKNOWN")
        name = single_failure_file_name(customer_id, username, kind=kind,
                                        fallback_key=f"{source_file}#{record_number}",
                                        max_length=self._budget(folder))
        return folder / name

    def _budget(self, folder: Path) -> int:
        """`name_budget` of `folder`, worked out once per writer."""
        budget = self._budgets.get(folder)
        if budget is None:
            budget = self._budgets[folder] = name_budget(folder)
        return budget

    def finish(self, open_rows: Iterable[FailureRow], resolved_rows: Iterable[FailureRow]
               ) -> int:
        """Summaries of the open failures, by result; resolved files moved aside.

        Returns how many files were moved.
        """
        entries: dict[str, list[dict[str, Any]]] = {}
        for row in open_rows:
            if row[ROW_WHOLE_BATCH] or row[ROW_ORIGINAL][:1] != b"{":
                continue
            path = self._path_of(row)
            entries.setdefault(path.parent.name, []).append(
                _row_entry(row, None if path in self._unwritten_paths else path.name))
        moved = 0
        for row in resolved_rows:
            if row[ROW_WHOLE_BATCH]:
                continue
            source = self._path_of(row)
            if source.exists():
                target = self._path_of(row, resolved=True)
                try:
                    make_private_folder(target.parent)
                    replace_file(source, target)
                except OSError as exc:
                    if is_disk_full(exc):
                        raise
                    self.unmoved[exc.strerror or type(exc).__name__] += 1  # left where it is
                    continue
                moved += 1
        if not entries and not self.root.exists():
            return moved
        stamp = datetime.now().isoformat(timespec="seconds")
        results = set(entries) | {p.name for p in self.root.glob("*") if p.is_dir()}
        for result in sorted(results):
            listed = entries.get(result, [])
            fields = {"result": result, "count": len(listed), "updatedAt": stamp}
            atomic_write(self.root / result / f"_SUMMARY_{result}.json",
                         partial(write_json_object, fields=fields, list_key="customers",
                                 items=listed))
        atomic_write_text(self.root / "README.md", _SINGLE_FAILURES_README)
        return moved

    def _path_of(self, row: FailureRow, resolved: bool = False) -> Path:
        return self.path_for(row[ROW_RESULT], row[ROW_ID], row[ROW_USERNAME], row[ROW_KIND],
                             row[ROW_SOURCE_FILE], row[ROW_RECORD], resolved=resolved)


def _row_entry(row: FailureRow, file_name: str | None) -> dict[str, Any]:
    return {
        "customerId": row[ROW_ID],
        "username": row[ROW_USERNAME],
        "result": row[ROW_RESULT],
        "error": row[ROW_ERROR],
        "timestamp": row[ROW_TIMESTAMP],
        "sourceFile": row[ROW_SOURCE_FILE],
        "recordNumber": row[ROW_RECORD],
        "attempts": row[ROW_ATTEMPTS],
        "file": file_name,
    }


def write_json_object(handle: IO[bytes], fields: dict[str, Any], list_key: str,
                      items: Iterable[Any]) -> None:
    """`{fields..., list_key: [items...]}`, one item per call to the encoder.

    One encoder call over a huge list would hold Python's global lock for its whole length
    and freeze the window while a background thread writes.
    """
    handle.write(b"{\n")
    for key, value in fields.items():
        handle.write(b"  " + orjson.dumps(key) + b": " + orjson.dumps(value) + b",\n")
    handle.write(b"  " + orjson.dumps(list_key) + b": [")
    for count, item in enumerate(items):
        handle.write((b",\n    " if count else b"\n    ") + orjson.dumps(item))
    handle.write(b"\n  ]\n}\n")


_SINGLE_FAILURES_README = """# Single failures

One file per customer the service refused on their own (CONFLICT, FAILED, ...) or that was
refused before sending (INVALID), sorted into a folder per result. Customers of a batch
that failed as a whole (an outage, a timeout) are in the retry files instead.
Each `customer_<ID>_<NAME>.json` holds that customer's complete original data in the API
format (`{"data": [ ... ]}`), so it can be corrected and imported on its own: drop it on the
app's window, or add the whole result folder to retry everyone who failed the same way.

`_SUMMARY_<RESULT>.json` lists the customers of its folder whose failure is still open, with
the error, the source file, the record number, how many attempts failed and the name of
their file (`null` where it could not be written). A customer who fails again replaces
their earlier file; once a later import brings a customer in, their file moves to
`failed_customers/resolved/<RESULT>/`.

In a deep folder (the full path of a file may have 259 characters on Windows, unless long
paths are enabled there), names are shortened to fit: the name part first, then the id,
which is then followed by `~` and a fingerprint of the exact id, as in
`customer_50000001~1a2b3c4d.json`. Each customer still has a file of their own.
"""

class ApiResponseWriter:
    """Keeps the answers to failing batches, redacted, for troubleshooting."""

    def __init__(self, output_dir: Path) -> None:
        self.folder = Path(output_dir) / "api_responses"
        self.written = 0
        self.skipped = 0

    def add(self, *, batch_label: str, batch_number: int, status: int | None,
            headers: dict[str, str], body: bytes, customer_ids: list[str],
            note: str) -> Path | None:
        if self.written >= MAX_API_RESPONSE_FILES:
            self.skipped += 1
            return None
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        status_text = f"HTTP{status}" if status else "no-answer"
        path = self.folder / f"{stamp}_batch_{batch_number:04d}_{status_text}.json"
        # the engine redacted it with the import's own secrets; this catches the rest
        text = GENERIC.body(body).decode("utf-8", "replace")
        try:
            parsed: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        atomic_write_json(path, {
            "timestamp": datetime.now().isoformat(timespec="milliseconds"),
            "batch": batch_label,
            "status": status,
            "note": note,
            "headers": GENERIC.headers(headers),
            "customerIds": customer_ids,
            "body": parsed if parsed is not None else text,
        }, durable=False)
        self.written += 1
        return path
