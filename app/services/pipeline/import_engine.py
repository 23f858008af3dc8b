"""The import pipeline: files -> batches -> concurrent uploads -> outcomes and result files.

One producer reads batches on a worker thread into a bounded queue; `concurrency` workers
send them through one `aiohttp.ClientSession`. Every customer read ends either counted as
imported or as a `FailureRecord` (with its original data) in the failure store, the retry
files and `failed_customers.json`, whatever stops the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from app.models.failure_store import FailureStore
from app.models.records import Batch, FailureRecord, Result
from app.services.connection.auth import TokenProvider
from app.services.connection.redaction import SECRET_HEADER, Redactor
from app.services.pipeline.batch_sender import (
    BatchOutcome,
    BatchSender,
    FatalImportError,
    not_sent_failures,
)
from app.services.pipeline.batch_source import (
    BatchSource,
    ProcessBatchSource,
    SourceChunk,
    is_large_import,
    open_batch_source,
)
from app.services.pipeline.import_events import (
    ImportListener,
    ImportProgress,
    ImportSettings,
    ImportSummary,
)
from app.services.results.output_folder import ImportPresence
from app.services.results.result_files import ResultFilesReport, ResultFileWriter
from app.services.sources.file_search import find_customer_files

log = logging.getLogger("bulk_import")

PROGRESS_INTERVAL_S = 0.2
# Failure records live until the user clears them. Without freezing, every full garbage
# collection walks all of them again, pausing the window longer as failures pile up.
FREEZE_AFTER_FAILURES = 5000
RATE_WINDOW_S = 5.0


def _chosen(setting: bool | None, large_import: bool) -> bool:
    """A helper process when the setting asks for one, or when unset and the import is large."""
    return large_import if setting is None else setting


def load_uncertain_ids(paths: Sequence[str | Path]) -> set[str]:
    """Customer ids an earlier run sent with an unknown outcome (from its retry_summary.json)."""
    ids: set[str] = set()
    folders = {Path(p) if Path(p).is_dir() else Path(p).parent for p in paths}
    for folder in folders:
        summary = folder / "retry_summary.json"
        try:
            data = orjson.loads(summary.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(data, dict):
            ids.update(str(i) for i in data.get("uncertainCustomerIds") or [])
    return ids


class ImportEngine:
    """Runs one import. Create it, `await run()`; `pause()`, `resume()`, `cancel()` any time.

    Reports to an `ImportListener` (progress, problems, retry files, finished) on the event
    loop's thread, and appends failures to the `FailureStore` as batches finish.
    """

    def __init__(self, paths: Sequence[str | Path], settings: ImportSettings,
                 auth: TokenProvider, store: FailureStore | None = None,
                 listener: ImportListener | None = None,
                 expected_total: int | None = None) -> None:
        self.paths = list(paths)
        self.settings = settings
        self.auth = auth
        self.store = store if store is not None else FailureStore()
        self.listener = listener or ImportListener()
        self.expected_total = expected_total
        self.started_at = datetime.now()
        self.state = "starting"
        self.summary = ImportSummary(output_dir=Path(settings.output_dir))
        self._stop_event = asyncio.Event()
        self._resume_event = asyncio.Event()
        self._resume_event.set()
        self._stop_reason = ""
        self._fatal: str | None = None
        self._failed = 0
        self._failed_by_result: Counter[str] = Counter()
        self._failed_by_file: Counter[str] = Counter()
        self._failures_since_freeze = 0
        self._read = 0
        self._succeeded = 0
        self._in_flight_customers = 0
        self._t0 = time.monotonic()
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._source: BatchSource | ProcessBatchSource | None = None
        self._sender: BatchSender | None = None
        # result files: created once the files are known (a process for large imports)
        self._writer: ResultFileWriter | None = None
        self._write_jobs: set[asyncio.Future[Any]] = set()
        # what the writer was given, to give it again should its process die
        self._failure_batches: list[tuple[int, list[FailureRecord]]] = []
        self._uncertain_ids: set[str] = set()
        # ids read more than once in this import: a CONFLICT for them is no surprise
        self._duplicate_ids: set[str] = set()
        self._retry_paths_seen: set[Path] = set()
        self._abort_handle: asyncio.TimerHandle | None = None
        self._presence = ImportPresence(Path(settings.output_dir))
        # the import's own secrets, and every token fetched while it runs
        self.redactor = Redactor(auth.known_secrets())
        for name, value in settings.extra_headers.items():
            if SECRET_HEADER.search(name):
                self.redactor.add(value)
        auth.on_new_token = self.redactor.add

    @property
    def result_writer(self) -> ResultFileWriter | None:
        """What writes this import's result files (None until `run` found the files)."""
        return self._writer

    # -- control -------------------------------------------------------------------------

    def pause(self) -> None:
        """Send no new request until `resume()`; requests under way finish."""
        if self.state == "running":
            self._resume_event.clear()
            self.state = "paused"
            log.info("Import paused")
            self._report_progress()

    def resume(self) -> None:
        if self.state == "paused":
            self._resume_event.set()
            self.state = "running"
            log.info("Import resumed")
            self._report_progress()

    def cancel(self, reason: str = "the import was cancelled") -> None:
        """Stop: nothing new is sent; requests under way get `cancel_grace_s` to finish.

        Every customer not yet imported ends as NOT_SENT in the retry files.
        """
        if self._stop_event.is_set() or self.state in ("writing", "finished"):
            return  # nothing left to send; result files are always written to the end
        self._stop_reason = reason
        self._stop_event.set()
        self._resume_event.set()  # wake paused workers so they can stop
        self.state = "stopping"
        log.warning("Stopping: %s", reason)
        loop = asyncio.get_running_loop()
        self._abort_handle = loop.call_later(self.settings.cancel_grace_s, self._abort_requests)
        self._report_progress()

    def _abort_requests(self) -> None:
        if self._sender is not None and self._sender.in_flight:
            log.warning("Abandoning %d requests still under way", len(self._sender.in_flight))
            self._sender.abort_in_flight()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> ImportSummary:
        """Import everything; returns the summary once every result file is written."""
        self._t0 = time.monotonic()
        self.state = "running"
        others = await asyncio.to_thread(self._presence.enter)
        for other in others:
            self._note(f"{other[:1].upper()}{other[1:]} is writing into this results folder "
                       "too; both keep all their results")
        search = await asyncio.to_thread(find_customer_files, self.paths)
        files = search.files
        known_uncertain = await asyncio.to_thread(load_uncertain_ids, self.paths)
        self.summary.files = [str(f) for f in files]
        self.summary.skipped_files = [str(s) for s in search.skipped]
        if search.skipped:
            log.warning("Skipped %d file(s) this app wrote itself: %s", len(search.skipped),
                        "; ".join(str(s) for s in search.skipped[:10]))
        # one look at the file sizes decides both helper processes
        large = await asyncio.to_thread(is_large_import, files)
        # a writer process starts with the first failure (a few ms): a clean import never
        # pays for it
        self._start_writer(_chosen(self.settings.writer_process, large))
        for problem in search.problems:
            self._problem(str(problem))
        self._source = await asyncio.to_thread(
            open_batch_source, files, self.settings.batch_size,
            max(1, self.settings.concurrency), _chosen(self.settings.reader_process, large))
        log.info("Import of %d file(s) started: batch size %d, concurrency %d",
                 len(files), self.settings.batch_size, self.settings.concurrency)
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(
            maxsize=max(2, self.settings.concurrency * 2))
        progress_task = asyncio.create_task(self._progress_loop())
        try:
            async with self._make_session() as session:
                self._sender = BatchSender(session, self.settings, self.auth, self._stop_event,
                                           self._resume_event, known_uncertain,
                                           duplicate_ids=self._duplicate_ids,
                                           redactor=self.redactor)
                workers = [asyncio.create_task(self._worker(queue), name=f"upload-{i}")
                           for i in range(max(1, self.settings.concurrency))]
                producer = asyncio.create_task(self._produce(queue), name="read-batches")
                try:
                    await producer
                    await asyncio.gather(*workers)
                except BaseException:
                    for task in (producer, *workers):
                        task.cancel()
                    await asyncio.gather(producer, *workers, return_exceptions=True)
                    raise
        finally:
            if self._abort_handle is not None:
                self._abort_handle.cancel()
            if self._source is not None:
                await asyncio.to_thread(self._source.close)
            try:
                await self._finish()  # progress goes on while the result files are written
            finally:
                self._presence.leave()
                progress_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress_task
        return self.summary

    def _make_session(self) -> aiohttp.ClientSession:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=s.timeout_s, sock_connect=s.connect_timeout_s)
        connector = aiohttp.TCPConnector(limit=max(1, s.concurrency) + 2,
                                         ssl=None if s.verify_tls else False)
        return aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"User-Agent": "BulkCustomerImport/0.1"})

    async def _produce(self, queue: asyncio.Queue[Batch | None]) -> None:
        assert self._source is not None
        source = self._source
        max_batches = max(1, self.settings.concurrency)
        try:
            while True:
                chunk = await asyncio.to_thread(source.next_chunk, max_batches)
                self._take_chunk_records(chunk)
                for batch in chunk.batches:
                    if self._stop_event.is_set():
                        self._finish_batch(batch, BatchOutcome(
                            failures=not_sent_failures(batch, self._not_sent_reason())))
                    else:
                        await queue.put(batch)
                if chunk.exhausted:
                    break
        finally:
            for _ in range(max(1, self.settings.concurrency)):
                await queue.put(None)

    def _take_chunk_records(self, chunk: SourceChunk) -> None:
        self._read += chunk.records_read
        self._duplicate_ids |= chunk.new_duplicate_ids
        for note in chunk.notes:
            log.warning("%s", note)
        for problem in chunk.problems:
            self._problem(str(problem))
        if chunk.invalid:
            self._add_failures(chunk.invalid, batch_number=0)

    def _not_sent_reason(self) -> str:
        return f"not sent: {self._stop_reason}"

    async def _worker(self, queue: asyncio.Queue[Batch | None]) -> None:
        assert self._sender is not None
        while True:
            batch = await queue.get()
            if batch is None:
                return
            if self._stop_event.is_set():
                self._finish_batch(batch, BatchOutcome(
                    failures=not_sent_failures(batch, self._not_sent_reason())))
                continue
            await self._send_whole_batch(batch)

    async def _send_whole_batch(self, batch: Batch) -> None:
        """Send a batch and all parts it splits into; then file its failures together."""
        assert self._sender is not None
        pending = [batch]
        total = BatchOutcome()
        self._in_flight_customers += len(batch)
        try:
            while pending:
                part = pending.pop(0)
                try:
                    outcome = await self._sender.send(part)
                except FatalImportError as exc:
                    self._fatal_stop(str(exc))
                    outcome = self._sender.not_sent(part, f"not sent: {exc}")
                if outcome.note:
                    log.info(outcome.note)
                pending.extend(outcome.resend)
                total.succeeded += outcome.succeeded
                total.failures.extend(outcome.failures)
                if outcome.response_to_keep is not None:
                    self._keep_response(part, outcome)
                if self._stop_event.is_set() and pending:
                    for rest in pending:
                        total.failures.extend(not_sent_failures(rest, self._not_sent_reason()))
                    pending.clear()
        finally:
            self._in_flight_customers -= len(batch)
        if batch.uncertain_ids:
            self._uncertain_ids |= batch.uncertain_ids
            self._write_in_background("note_uncertain", set(batch.uncertain_ids))
        self._finish_batch(batch, total)

    def _fatal_stop(self, message: str) -> None:
        if self._fatal is None:
            self._fatal = message
            log.error("Import stopped: %s", message)
            self.cancel(message)

    def _finish_batch(self, batch: Batch, outcome: BatchOutcome) -> None:
        self._succeeded += outcome.succeeded
        if outcome.failures:
            self._add_failures(outcome.failures, batch.number)
            counts = Counter(f.result for f in outcome.failures)
            if counts.keys() - {Result.NOT_SENT}:
                log.info("%s: %d of %d customers failed (%s)", batch.label,
                            len(outcome.failures), len(batch),
                            ", ".join(f"{k} {v}" for k, v in counts.most_common()))

    def _add_failures(self, failures: list[FailureRecord], batch_number: int) -> None:
        self._failed += len(failures)
        self._failed_by_file.update(f.source_file for f in failures)
        self._failures_since_freeze += len(failures)
        if self._failures_since_freeze >= FREEZE_AFTER_FAILURES:
            self._failures_since_freeze = 0
            gc.freeze()
        self._failed_by_result.update(f.result for f in failures)
        self.store.extend(failures)
        self._failure_batches.append((batch_number, failures))
        # INVALID failures (batch 0) only go to the summary's notRetried list
        self._write_in_background("add_failures", batch_number, failures,
                                  on_done=self._retry_files_written)

    def _retry_files_written(self, paths: list[Path]) -> None:
        for path in paths:
            if path in self._retry_paths_seen:
                continue  # written again after the writer process was replaced
            self._retry_paths_seen.add(path)
            self.summary.retry_files.append(path)
            log.info("Retry file written: %s", path.name)
            self.listener.retry_file_written(path)

    def _keep_response(self, batch: Batch, outcome: BatchOutcome) -> None:
        attempt = outcome.response_to_keep
        if attempt is None or not self.settings.save_api_responses:
            return
        redact = self.redactor
        self._write_in_background(
            "add_response", batch_label=batch.label, batch_number=batch.number,
            status=attempt.status, headers=redact.headers(attempt.headers),
            body=redact.body(attempt.body), customer_ids=list(batch.ids),
            note=redact.text(attempt.error or f"{len(outcome.failures)} customers failed"))

    def _start_writer(self, use_process: bool, retry_folder: Path | None = None) -> None:
        self._writer = ResultFileWriter(
            Path(self.settings.output_dir), self.started_at,
            write_single_failures=self.settings.write_single_failures,
            use_process=use_process, retry_folder=retry_folder)

    def _write_in_background(self, method: str, *args: Any,
                             on_done: Callable[[Any], None] | None = None,
                             **kwargs: Any) -> None:
        """Call `ImportResultFiles.<method>` in the writer; `on_done(result)` then runs on
        the event loop."""
        if self._writer is None:
            self._start_writer(use_process=False)
        assert self._writer is not None
        try:
            job: Future[Any] = self._writer.submit(method, *args, **kwargs)
        except BrokenProcessPool:
            self._replace_broken_writer()
            return  # the replacement was given everything, this included
        future = asyncio.wrap_future(job)
        self._write_jobs.add(future)
        future.add_done_callback(lambda done: self._write_done(done, on_done))

    def _write_done(self, future: asyncio.Future[Any],
                    on_done: Callable[[Any], None] | None) -> None:
        self._write_jobs.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, BrokenProcessPool):
            self._replace_broken_writer()
        elif exc is not None:
            message = f"could not write a result file: {exc}"
            self.summary.write_errors.append(message)
            log.error(message)
        elif on_done is not None:
            on_done(future.result())

    def _replace_broken_writer(self) -> None:
        """The writer process died: write everything again from here, on a thread."""
        if self._writer is None or not self._writer.in_process:
            return  # replaced already; jobs of the dead process are covered
        message = ("the result file writer stopped unexpectedly; the result files of this "
                   "import were written again (API answers kept before that may be missing)")
        self.summary.write_errors.append(message)
        log.error(message)
        # the same retry folder, so the files already written are simply written again
        written = next(iter(self._retry_paths_seen), None)
        self._writer.shutdown()
        self._start_writer(use_process=False,
                           retry_folder=written.parent if written is not None else None)
        if self._uncertain_ids:
            self._write_in_background("note_uncertain", set(self._uncertain_ids))
        for batch_number, failures in self._failure_batches:
            self._write_in_background("add_failures", batch_number, failures,
                                      on_done=self._retry_files_written)

    def _note(self, message: str) -> None:
        """Something the user should know that is neither a failure nor a problem."""
        self.summary.notes.append(message)
        log.warning("%s", message)

    def _problem(self, message: str) -> None:
        self.summary.problems.append(message)
        self.listener.problem(message)  # first: a terminal clears its progress bar
        log.error("%s", message)

    # -- progress --------------------------------------------------------------------------

    def progress(self) -> ImportProgress:
        now = time.monotonic()
        done = self._succeeded + self._failed
        self._rate_samples.append((now, done))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > RATE_WINDOW_S:
            self._rate_samples.popleft()
        first_t, first_done = self._rate_samples[0]
        rate = (done - first_done) / (now - first_t) if now - first_t > 0.3 else 0.0
        if self.state in ("writing", "finished") and now > self._t0:
            rate = done / (now - self._t0)  # the final report shows the average
        source = self._source
        bytes_done = source.bytes_done if source else 0
        bytes_total = source.bytes_total if source else 0
        progress = ImportProgress(
            state=self.state, read=self._read, succeeded=self._succeeded,
            failed=self._failed, in_flight=self._in_flight_customers,
            bytes_done=bytes_done, bytes_total=bytes_total, elapsed_s=now - self._t0,
            rate=rate, current_file=source.current_file if source else "",
            expected_total=self.expected_total,
            retry_files=len(self.summary.retry_files), writes_pending=len(self._write_jobs),
            concurrency=self._sender.limit.current if self._sender else 0,
            concurrency_ceiling=max(1, self.settings.concurrency))
        progress.eta_s = self._eta(progress)
        return progress

    def _eta(self, p: ImportProgress) -> float | None:
        if p.state != "running" or p.rate <= 0:
            return None
        if p.expected_total:
            return max(0.0, (p.expected_total - p.done) / p.rate)
        if p.bytes_done and p.bytes_total:
            estimated_total = p.read * p.bytes_total / p.bytes_done
            return max(0.0, (estimated_total - p.done) / p.rate)
        return None

    def _report_progress(self) -> None:
        self.listener.progress(self.progress())

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            self._report_progress()

    # -- the end ---------------------------------------------------------------------------

    async def _finish(self) -> None:
        """Write everything still pending, then the summaries; report `finished`."""
        self.state = "writing"
        self._report_progress()
        s = self.summary
        s.total = self._read
        s.succeeded = self._succeeded
        s.failed = self._failed
        s.failed_by_result = Counter(self._failed_by_result)
        s.failed_by_file = Counter(self._failed_by_file)
        s.cancelled = self._stop_event.is_set() and self._fatal is None
        s.fatal_error = self._fatal
        totals = {"read": s.total, "succeeded": s.succeeded, "failed": s.failed,
                  "failedByResult": dict(s.failed_by_result)}
        report = await self._finish_writing(totals)
        self._retry_files_written(report.retry_files)
        s.write_errors.extend(report.errors)
        for message in report.errors:
            log.error(message)
        for note in report.notes:
            self._note(note)
        s.failed_file = report.failed_file
        s.single_failures_dir = report.single_failures_dir
        s.retry_dir = report.retry_dir
        s.retry_customers = report.retry_customers
        s.duration_s = time.monotonic() - self._t0
        self.state = "finished"
        log.info("Import finished in %.1f s: %d read, %d imported, %d failed", s.duration_s,
                 s.total, s.succeeded, s.failed)
        self._report_progress()
        self.listener.finished(s)

    async def _finish_writing(self, totals: dict[str, Any]) -> ResultFilesReport:
        """Wait for the writer's jobs, then have it write the summaries (once more on a
        thread if its process died meanwhile)."""
        for _attempt in range(2):
            while self._write_jobs:
                await asyncio.gather(*list(self._write_jobs), return_exceptions=True)
            if self._writer is None:
                self._start_writer(use_process=False)
            writer = self._writer
            assert writer is not None
            try:
                return await asyncio.wrap_future(
                    writer.submit("finish", totals, self.summary.files))
            except BrokenProcessPool:
                self._replace_broken_writer()
            finally:
                writer.shutdown()
        raise AssertionError("a thread writer cannot break")  # pragma: no cover
