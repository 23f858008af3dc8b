"""The import pipeline: files -> batches -> concurrent uploads -> outcomes and result files.

Every import is a job in the results folder's journal (see app.services.jobs): before
anything is sent, the job's files are fingerprinted and what earlier jobs imported is left
out; a resumed job sends only what it had not finished. One producer reads batches on a
worker thread into a bounded queue; the journal holds each batch before it is sent;
`concurrency` workers send them through one `aiohttp.ClientSession`. Every customer read
ends either counted as imported (resolving an earlier failure of theirs) or as a
`FailureRecord` (with its original data) in the journal, the listener's `failures_found`,
the retry files and `failed_customers.json`, whatever stops the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

from app.models.records import Batch, FailureRecord, FailureRow, Result
from app.services.connection.auth import TokenProvider, households_url_for
from app.services.connection.network import Network
from app.services.connection.redaction import SECRET_HEADER, Redactor
from app.services.jobs.job_plan import (
    JobPlan,
    JobRefused,
    PlannedFile,
    Repeat,
    plan_new_job,
    plan_resumed_job,
)
from app.services.jobs.job_recorder import JobRecorder
from app.services.jobs.journal import (
    FileFingerprint,
    JobState,
    Journal,
    JournalBusy,
    JournalError,
    JournalTooNew,
    is_busy,
    journal_path,
    now_text,
)
from app.services.jobs.journal_writer import ATTEMPT_BUSY_S, JournalTrouble
from app.services.jobs.result_files import ResultFilesReport, ResultFileWriter
from app.services.pipeline.batch_sender import (
    BatchOutcome,
    BatchSender,
    FatalImportError,
    not_sent_failures,
)
from app.services.pipeline.import_events import (
    ImportListener,
    ImportProgress,
    ImportSettings,
    ImportState,
    ImportSummary,
)
from app.services.results.cloud_folders import cloud_sync_service
from app.services.results.disk_space import (
    SpaceReserve,
    describe_write_problem,
    folder_write_problem,
    is_disk_problem,
    reserve_bytes,
    space_note,
)
from app.services.results.output_folder import ImportPresence
from app.services.results.result_writers import new_unique_file
from app.services.sources.batch_source import (
    BatchSource,
    ProcessBatchSource,
    SkipPlan,
    SourceChunk,
    is_large_import,
    open_batch_source,
)
from app.services.sources.error_report import ErrorLineSpool
from app.services.sources.file_fingerprint import fingerprint
from app.services.sources.file_search import find_customer_files, own_result_file
from app.services.sources.source_options import OnExisting, SourceOptions

log = logging.getLogger("bulk_import")

_T = TypeVar("_T")

PROGRESS_INTERVAL_S = 0.2
RATE_WINDOW_S = 5.0
JOURNAL_COUNTS_INTERVAL_S = 1.0
WRITER_GROUP_FAILURES = 2_000  # failures handed to the result writer in one job
WRITER_GROUP_S = 0.25  # or after this long, whichever comes first
# nothing is sent any more: the result files are written, or written already
_WRITING_OR_FINISHED = frozenset({ImportState.WRITING, ImportState.FINISHED})


def _chosen(setting: bool | None, large_import: bool) -> bool:
    """A helper process when the setting asks for one, or when unset and the import is large."""
    return large_import if setting is None else setting


def retry_folder_strategy(paths: Sequence[str | Path]) -> str | None:
    """The duplicate strategy of the import whose retry files `paths` are (from the
    retry_summary.json beside them), None when they are not retry files."""
    folders = {Path(p) if Path(p).is_dir() else Path(p).parent for p in paths}
    for folder in sorted(folders):
        try:
            data = orjson.loads((folder / "retry_summary.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("onExisting") in {s.value for s in OnExisting}:
            return str(data["onExisting"])
    return None


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
    loop's thread, failures too as batches finish (`failures_found`; `failures_resolved`
    for failures of earlier jobs this import brought in). `resume_job` continues an
    interrupted or cancelled job (its files and settings; `paths` are then ignored);
    `repeat` says what to do with customers an earlier job imported already.
    """

    def __init__(self, paths: Sequence[str | Path], settings: ImportSettings,
                 auth: TokenProvider, listener: ImportListener | None = None,
                 expected_total: int | None = None, *, resume_job: int | None = None,
                 repeat: Repeat = Repeat.REST, job_kind: str = "import") -> None:
        self.paths = list(paths)
        self.resume_job = resume_job
        self.repeat = repeat
        self.job_kind = job_kind
        self.settings = settings
        self.auth = auth
        self.listener = listener or ImportListener()
        self.expected_total = expected_total
        self.started_at = datetime.now()
        self.state: ImportState = ImportState.STARTING
        self.summary = ImportSummary(output_dir=Path(settings.output_dir),
                                     on_existing=OnExisting(settings.on_existing).value)
        self._stop_event = asyncio.Event()
        self._resume_event = asyncio.Event()
        self._resume_event.set()
        self._stop_reason = ""
        self._fatal: str | None = None
        # counted once, in the summary's counts (a resumed job's summary gets the whole
        # job's counts at the end; this run's stay here, for its progress)
        self._counts = self.summary.counts
        self._plan: JobPlan | None = None
        self._recorder: JobRecorder | None = None
        self._refused: str | None = None  # the job could not start (journal, resume)
        self._counts_written_at = 0.0
        # the error report's lines, on disk as they are found; the report is made at the end
        self._error_lines = ErrorLineSpool(Path(settings.output_dir), settings.csv_delimiter)
        self._in_flight_customers = 0
        self._t0 = time.monotonic()
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._source: BatchSource | ProcessBatchSource | None = None
        self._sender: BatchSender | None = None
        # result files: created once the files are known (a process for large imports)
        self._writer: ResultFileWriter | None = None
        self._write_jobs: set[asyncio.Future[Any]] = set()
        # what the writer was given (as rows), to give it again should its process die
        self._failure_batches: list[tuple[int, list[FailureRow]]] = []
        self._unwritten_failures: list[tuple[int, list[FailureRow]]] = []  # not yet handed
        self._unwritten_count = 0
        self._writer_flush: asyncio.TimerHandle | None = None
        self._uncertain_ids: set[str] = set()
        # ids an earlier run sent with an unknown outcome (its retry_summary.json)
        self._known_uncertain: set[str] = set()
        # ids read more than once in this import: a CONFLICT for them is no surprise
        self._duplicate_ids: set[str] = set()
        self._retry_paths_seen: set[Path] = set()
        self._abort_handle: asyncio.TimerHandle | None = None
        self._presence = ImportPresence(Path(settings.output_dir))
        # Paused by the import itself (a full disk, the history unavailable): why. A cancel
        # meanwhile makes it the summary's error, and leaves the unread rest for a resume.
        self._halt: str | None = None
        self._halt_for_busy_journal = False  # over by itself once the history is free
        self._journal_told: str | None = None
        # a result write failed: the result files are all written again (the failures
        # are kept in _failure_batches), in the meantime nothing new goes to the writer
        self._results_lost = False
        self._rewrite: asyncio.Task[None] | None = None
        self._results_dir = Path(settings.output_dir)  # another may be chosen mid-import
        self._reserve: SpaceReserve | None = None  # room kept for the history
        self._prints: list[FileFingerprint] | None = None  # fingerprinted once, planned again
        self._loop: asyncio.AbstractEventLoop | None = None
        # the import's own secrets, and every token fetched while it runs
        self.redactor = Redactor(auth.known_secrets())
        for name, value in settings.extra_headers.items():
            if SECRET_HEADER.search(name):
                self.redactor.add(value)
        auth.on_new_token = self.redactor.add
        # trust store, proxy, no redirects: for the import's requests and its sign-in alike
        self.network = Network(verify_tls=settings.verify_tls, proxy=settings.proxy or None)
        auth.network = self.network

    @property
    def result_writer(self) -> ResultFileWriter | None:
        """What writes this import's result files (None until `run` found the files)."""
        return self._writer

    # -- control -------------------------------------------------------------------------

    def pause(self) -> None:
        """Send no new request until `resume()`; requests under way finish."""
        if self.state == ImportState.RUNNING:
            self._resume_event.clear()
            self.state = ImportState.PAUSED
            if self._recorder is not None:
                self._recorder.state(JobState.PAUSED)
            log.info("Import paused")
            self._report_progress()

    def resume(self) -> None:
        """Send again after `pause()`, or after the import paused itself (the result files
        are then written again first, all of them)."""
        self._schedule_rewrite()
        if self.state == ImportState.PAUSED:
            self._halt = None
            self._halt_for_busy_journal = False
            self._resume_event.set()
            self.state = ImportState.RUNNING
            if self._recorder is not None:
                self._recorder.state(JobState.RUNNING)
            log.info("Import resumed")
            self._report_progress()

    def cancel(self, reason: str = "the import was cancelled") -> None:
        """Stop: nothing new is sent; requests under way get `cancel_grace_s` to finish.

        Every customer not yet imported ends as NOT_SENT in the retry files.
        """
        if self._stop_event.is_set() or self.state in _WRITING_OR_FINISHED:
            return  # nothing left to send; result files are always written to the end
        self._stop_reason = reason
        self._stop_event.set()
        self._resume_event.set()  # wake paused workers so they can stop
        self.state = ImportState.STOPPING
        log.warning("Stopping: %s", reason)
        loop = asyncio.get_running_loop()
        self._abort_handle = loop.call_later(self.settings.cancel_grace_s, self._abort_requests)
        self._report_progress()

    def move_results(self, folder: Path) -> str | None:
        """Write this import's result files into `folder` from now on (all of them, again;
        the import history stays where it is), and resume. Returns why `folder` cannot be
        used (nothing changes then), None when it is used."""
        if self.state in _WRITING_OR_FINISHED:
            # its last files are being written where they were: moving now would leave
            # them half here, half there
            return (f"the import is writing its last result files in {self._results_dir}; "
                    "they stay there")
        problem = folder_write_problem(Path(folder))
        if problem is not None:
            return problem
        self._results_dir = Path(folder)
        self._results_lost = True
        self.resume()
        return None

    def _pause_for(self, reason: str, *, busy_journal: bool = False) -> None:
        """Pause on the import's own account: what it would send could not be recorded."""
        if self._halt is not None:
            return  # paused already: the first cause is the one to fix
        self._halt = reason
        # it goes on by itself only where it paused itself: a user's Pause stays
        self._halt_for_busy_journal = busy_journal and self.state == ImportState.RUNNING
        if self.state == ImportState.RUNNING:
            self.pause()
        if self.state == ImportState.PAUSED:
            log.warning("Sending paused: %s", reason)
            self.listener.paused(reason)
            self._report_progress()

    def _abort_requests(self) -> None:
        if self._sender is not None and self._sender.in_flight:
            log.warning("Abandoning %d requests still under way", len(self._sender.in_flight))
            self._sender.abort_in_flight()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> ImportSummary:
        """Import everything; returns the summary once every result file is written."""
        self._t0 = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self.state = ImportState.RUNNING
        others = await asyncio.to_thread(self._presence.enter)
        for other in others:
            self._note(f"{other[:1].upper()}{other[1:]} is writing into this results folder "
                       "too; both keep all their results")
        progress_task: asyncio.Task[None] | None = None
        try:
            # before anything is sent: a folder where results cannot be written is refused
            unwritable = await asyncio.to_thread(folder_write_problem, self._results_dir)
            if unwritable is not None:
                self.summary.error = self._refused = unwritable
                return await self._refusal()
            reading = await self._plan_job()
            if reading is None:
                return await self._refusal()
            files = [planned.path for planned in reading]
            # one look at the file sizes decides both helper processes
            large = await asyncio.to_thread(is_large_import, files)
            short = await asyncio.to_thread(self._check_space, files)
            if short is not None:
                self._tell(short)
            # a writer process starts with the first failure (a few ms): a clean import
            # never pays for it
            self._start_writer(_chosen(self.settings.writer_process, large))
            plans = {i: SkipPlan(f.skip, f.maybe_sent) for i, f in enumerate(reading)
                     if f.skip or f.maybe_sent}
            self._source = await asyncio.to_thread(
                open_batch_source, files, self.settings.batch_size,
                max(1, self.settings.concurrency), _chosen(self.settings.reader_process, large),
                plans, self._plan.first_batch if self._plan is not None else 1,
                self._source_options(files))
            log.info("Import of %d file(s) started as job #%s: batch size %d, concurrency "
                     "up to %d", len(files), self.summary.job or "?", self.settings.batch_size,
                     self.settings.concurrency)
            progress_task = asyncio.create_task(self._progress_loop())
            s = self.settings
            await self.network.prepare([s.customers_url, s.households_url
                                        or households_url_for(s.customers_url),
                                        self.auth.token_url])
            await self._send_everything()
        finally:
            if self._abort_handle is not None:
                self._abort_handle.cancel()
            if self._source is not None:
                await asyncio.to_thread(self._source.close)
            try:
                if self._refused is None:
                    await self._finish()  # progress goes on while result files are written
            finally:
                if self._reserve is not None:
                    self._reserve.release()
                self._presence.leave()
                if progress_task is not None:
                    progress_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await progress_task
        return self.summary

    async def _send_everything(self) -> None:
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(
            maxsize=max(2, self.settings.concurrency * 2))
        async with self._make_session() as session:
            self._sender = BatchSender(session, self.settings, self.auth, self._stop_event,
                                       self._resume_event, self._known_uncertain,
                                       duplicate_ids=self._duplicate_ids,
                                       redactor=self.redactor, network=self.network)
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

    # -- the job ---------------------------------------------------------------------------

    async def _plan_job(self) -> list[PlannedFile] | None:
        """Find the files and make (or resume) the job; the files to read, None if refused."""
        files: list[Path] = []
        if self.resume_job is None:
            search = await asyncio.to_thread(find_customer_files, self.paths)
            files = search.files
            self.summary.skipped_files = [str(s) for s in search.skipped]
            if search.skipped:
                log.warning("Skipped %d file(s) this app wrote itself: %s",
                            len(search.skipped),
                            "; ".join(str(s) for s in search.skipped[:10]))
            for problem in search.problems:
                self._problem(str(problem))
            for note in search.link_notes():  # folder links (Windows' "My Music"...)
                self._note(note)
            self._known_uncertain = await asyncio.to_thread(load_uncertain_ids, self.paths)
        if not self.settings.keep_history:
            return self._without_history(files)
        try:
            plan, notes = await self._plan_patiently(files)
        except (JournalTooNew, JobRefused) as exc:
            self._refused = str(exc)
            return None
        except JournalBusy as exc:
            self.summary.error = self._refused = str(exc)
            return None
        except JournalError as exc:
            # the folder's history cannot be used: the import itself still can
            self._note(f"{exc}; this import is not kept in the import history and cannot be "
                       "resumed after a crash")
            return self._without_history(files)
        for note in notes:
            self._note(note)
        self._plan = plan
        self._recorder = JobRecorder(journal_path(Path(self.settings.output_dir)), plan,
                                     wait_s=self.settings.journal_wait_s,
                                     on_trouble=self._journal_trouble_from_thread)
        self.summary.job = plan.job_id
        self.summary.resumed = plan.resumed
        self.summary.files = [str(f.path) for f in plan.files]
        self._counts.skipped = plan.skipped_customers
        for note in plan.notes:
            self._note(note)
        return plan.files_to_read

    def _source_options(self, files: list[Path]) -> SourceOptions:
        options = source_options(self.settings, files)
        if options.unassigned_files:
            self._note(f"the assignment is not applied to {len(options.unassigned_files)} "
                       "retry file(s): they hold the values given when their customers were "
                       "first sent")
        return options

    def _take_reading_settings(self, saved: dict[str, Any]) -> None:
        for name in READING_SETTINGS:
            if name in saved:
                setattr(self.settings, name, saved[name])
        self.summary.on_existing = OnExisting(self.settings.on_existing).value

    def _without_history(self, files: list[Path]) -> list[PlannedFile]:
        self.summary.files = [str(f) for f in files]
        return [PlannedFile(i, path, FileFingerprint(str(path), 0, ""))
                for i, path in enumerate(files)]

    async def _plan_patiently(self, files: list[Path]) -> tuple[JobPlan, list[str]]:
        """`_make_plan`, waiting while another program holds the import history, up to
        `journal_wait_s`; then JournalBusy, with a message for the user."""
        wait = self.settings.journal_wait_s
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                return await asyncio.to_thread(self._make_plan, files)
            except JournalBusy as exc:
                if time.monotonic() >= deadline:
                    raise JournalBusy(
                        f"{exc}, and stayed so for over {wait:g} s: nothing was sent. Close "
                        "the program that holds it (or let the import using it finish), then "
                        "start again") from None
                if not told:
                    told = True
                    history = journal_path(Path(self.settings.output_dir))
                    self._tell(f"the import history {history} is in "
                               "use by another program; waiting for it (up to "
                               f"{wait:g} s)…", keep=False)
                # each attempt waited ATTEMPT_BUSY_S for the lock already; this only keeps
                # an error that comes at once from spinning
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _make_plan(self, files: list[Path]) -> tuple[JobPlan, list[str]]:
        journal = Journal.open(Path(self.settings.output_dir), busy_timeout_s=ATTEMPT_BUSY_S)
        try:
            owner = self._presence.mark.name
            if self.resume_job is not None:
                # read the files as the first run did: same mappings, sheets, rules
                with contextlib.suppress(JournalError):  # no such job: refused below
                    self._take_reading_settings(journal.job(self.resume_job).settings)
                plan = plan_resumed_job(journal, self.resume_job, owner=owner,
                                        is_alive=self._presence.is_alive)
            else:
                if self._prints is None:  # once: the journal may be busy and planned again
                    self._prints = [fingerprint(path) for path in files]
                plan = plan_new_job(journal, files, settings=self.job_settings(),
                                    owner=owner, repeat=self.repeat, kind=self.job_kind,
                                    prints=self._prints)
            return plan, list(journal.notes)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise JournalBusy(f"the import history {journal.path} is in use by another "
                                  f"program ({exc})") from None
            raise JournalError(f"the import history {journal.path} cannot be written "
                               f"({exc})") from None
        finally:
            journal.close()

    def _check_space(self, files: list[Path]) -> str | None:
        """A note when the results folder's disk may be too small; the room kept for the
        import history (see `SpaceReserve`) is taken here."""
        total = 0
        for path in files:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        note = space_note(self._results_dir, total)
        # a sync client would upload the reserve: none in a synced folder
        if self._recorder is not None and self._presence.is_held() \
                and cloud_sync_service(self._results_dir) is None:
            reserve = SpaceReserve(self._presence.mark.with_suffix(".reserve"), reserve_bytes(
                self.settings.batch_size, self.settings.concurrency))
            if reserve.make():
                self._reserve = reserve
        return note

    def _journal_trouble_from_thread(self, trouble: JournalTrouble | None) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the import is over
                loop.call_soon_threadsafe(self._journal_trouble, trouble)

    def _journal_trouble(self, trouble: JournalTrouble | None) -> None:
        """The journal cannot be written for now (see `JournalWriter`), or can again."""
        if trouble is None:
            if self._journal_told is not None:
                self._tell("the import history is written again", keep=False)
            self._journal_told = None
            if self._halt_for_busy_journal and self.state == ImportState.PAUSED:
                self.resume()
            return
        if trouble.message != self._journal_told:
            self._journal_told = trouble.message
            self._tell(trouble.message, keep=False)
        if trouble.disk:
            self._disk_problem(f"{trouble.message}; sending is paused until it can be "
                               "written again (nothing is sent that it could not record)")
        elif trouble.stalled:
            self._pause_for(f"{trouble.message}; sending is paused until it is free "
                            "(nothing is sent that it could not record)", busy_journal=True)

    def job_settings(self) -> dict[str, Any]:
        """What the journal keeps of the settings: enough to resume, never a secret."""
        s = self.settings
        headers = {name: ("***" if SECRET_HEADER.search(name) else value)
                   for name, value in s.extra_headers.items()}
        return {
            "customers_url": s.customers_url, "households_url": s.households_url,
            "batch_size": s.batch_size, "concurrency": s.concurrency,
            "max_retries": s.max_retries, "timeout_s": s.timeout_s,
            "verify_tls": s.verify_tls, "write_single_failures": s.write_single_failures,
            "extra_headers": headers, "connection": dict(s.connection),
            "auth": self.auth.description,
            **{name: getattr(s, name) for name in READING_SETTINGS},
        }

    async def _refusal(self) -> ImportSummary:
        """The job could not start (see `_refused`): say why; nothing was sent."""
        message = self._refused or "the import could not start"
        self.summary.refused = message
        if self.summary.error is None:
            self._problem(message)
        else:  # not a file that could not be read: the summary's error says it
            log.error("Not started: %s", message)
        self.summary.duration_s = time.monotonic() - self._t0
        self.state = ImportState.FINISHED
        self._report_progress()
        self.listener.finished(self.summary)
        return self.summary

    def _make_session(self) -> aiohttp.ClientSession:
        s = self.settings
        timeout = aiohttp.ClientTimeout(total=s.timeout_s, sock_connect=s.connect_timeout_s)
        return self.network.session(limit=max(1, s.concurrency) + 2, timeout=timeout)

    async def _produce(self, queue: asyncio.Queue[Batch | None]) -> None:
        assert self._source is not None
        source = self._source
        max_batches = max(1, self.settings.concurrency)
        # One chunk waits for its journal commit while the one before is handed to the
        # senders: the commit's latency hides behind batches already waiting to be sent.
        waiting: tuple[list[Batch], Future[None] | None] | None = None
        try:
            while True:
                if self._stop_event.is_set() and self._halt is not None \
                        and self._recorder is not None:
                    # stopped because nothing could be recorded (a full disk, the history
                    # unavailable): the rest stays unread, for a resume of the job to send
                    break
                chunk = await asyncio.to_thread(source.next_chunk, max_batches)
                self._take_chunk_records(chunk)
                if chunk.batches:
                    # never send a batch before the journal knows it may have been sent
                    committed = (self._recorder.queued(chunk.batches)
                                 if self._recorder is not None else None)
                    if waiting is not None:
                        await self._hand_over(queue, *waiting)
                    waiting = (chunk.batches, committed)
                if chunk.exhausted:
                    break
            if waiting is not None:
                await self._hand_over(queue, *waiting)
        finally:
            for _ in range(max(1, self.settings.concurrency)):
                await queue.put(None)

    async def _hand_over(self, queue: asyncio.Queue[Batch | None], batches: list[Batch],
                         committed: Future[None] | None) -> None:
        """Give `batches` to the senders once the journal holds them as queued."""
        if committed is not None:
            await self._until_committed(committed)
        for batch in batches:
            if self._stop_event.is_set():
                self._finish_batch(batch, BatchOutcome(
                    failures=not_sent_failures(batch, self._not_sent_reason())))
            else:
                await queue.put(batch)

    async def _until_committed(self, committed: Future[None]) -> None:
        """Wait until the journal holds what was queued, or the import stops (the batches
        are then not sent); should the journal never take it, stop."""
        waiting = asyncio.wrap_future(committed)
        if not waiting.done():
            stopping = asyncio.ensure_future(self._stop_event.wait())
            either: set[asyncio.Future[Any]] = {waiting, stopping}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
        if not waiting.done():
            waiting.add_done_callback(lambda done: done.cancelled() or done.exception())
        elif not waiting.cancelled() and waiting.exception() is not None:
            self.cancel(str(waiting.exception()))

    def _take_chunk_records(self, chunk: SourceChunk) -> None:
        self._counts.read += chunk.records_read
        if self._plan is None or not self._plan.resumed:
            self._counts.skipped += chunk.skipped  # a resumed job's own earlier work is not that
        self._duplicate_ids |= chunk.new_duplicate_ids
        for note in chunk.notes:
            log.warning("%s", note)
        for problem in chunk.problems:
            self._problem(str(problem))
        if self._recorder is not None and chunk.files_read:
            self._recorder.files_read(chunk.files_read)
        self._error_lines.add(chunk.error_lines)
        self._counts.invalid += len(chunk.invalid)
        if chunk.invalid:
            if self._recorder is not None:
                self._recorder.refused(chunk.invalid)
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
        created_before = 0
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
                if part.update_of_existing:
                    total.updated += outcome.succeeded
                else:
                    total.succeeded += outcome.succeeded
                total.skipped_existing += outcome.skipped_existing
                created_before += outcome.created_before_interruption
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
            uncertain = set(batch.uncertain_ids)
            self._write_in_background(lambda writer: writer.note_uncertain(uncertain))
        total.created_before_interruption = created_before
        self._finish_batch(batch, total)

    def _fatal_stop(self, message: str) -> None:
        if self._fatal is None:
            self._fatal = message
            log.error("Import stopped: %s", message)
            self.cancel(message)

    def _finish_batch(self, batch: Batch, outcome: BatchOutcome) -> None:
        counts = self._counts
        counts.succeeded += outcome.succeeded
        counts.updated += outcome.updated
        counts.skipped_existing += outcome.skipped_existing
        counts.created_before_interruption += outcome.created_before_interruption
        if self._recorder is not None:
            resolved = self._recorder.finished(batch, outcome.succeeded, outcome.failures)
            if resolved:
                counts.resolved += len(resolved)
                self.listener.failures_resolved(resolved, self._recorder.job_id, now_text())
        if outcome.failures:
            self._add_failures(outcome.failures, batch.number)
            by_result = Counter(f.result for f in outcome.failures)
            if by_result.keys() - {Result.NOT_SENT}:
                # "50 HTTP_ERROR", not "HTTP_ERROR 50", which reads like a status code
                log.info("%s: %d of %d customers failed: %s", batch.label,
                         len(outcome.failures), len(batch),
                         ", ".join(f"{v} {k}" for k, v in by_result.most_common()))

    def _add_failures(self, failures: list[FailureRecord], batch_number: int) -> None:
        self._counts.add_failures(failures)
        if self._recorder is not None:
            for failure in failures:
                failure.job = self._recorder.job_id
        self.listener.failures_found(failures)
        rows = [f.to_row() for f in failures]
        self._failure_batches.append((batch_number, rows))
        # INVALID failures (batch 0) only go to the summary's notRetried list
        self._unwritten_failures.append((batch_number, rows))
        self._unwritten_count += len(rows)
        if self._unwritten_count >= WRITER_GROUP_FAILURES:
            self._hand_failures_to_writer()
        elif self._writer_flush is None:
            self._writer_flush = asyncio.get_running_loop().call_later(
                WRITER_GROUP_S, self._hand_failures_to_writer)

    def _hand_failures_to_writer(self) -> None:
        """One job for the writer per group of failed batches: a job per batch would keep
        thousands of futures waiting while the writer is busy with single-failure files."""
        if self._writer_flush is not None:
            self._writer_flush.cancel()
            self._writer_flush = None
        if self._results_lost:  # they are in _failure_batches: written again with the rest
            self._unwritten_failures, self._unwritten_count = [], 0
        if self._unwritten_failures:
            groups, self._unwritten_failures = self._unwritten_failures, []
            self._unwritten_count = 0
            self._write_in_background(lambda writer: writer.add_failure_batches(groups),
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
        headers, body = redact.headers(attempt.headers), redact.body(attempt.body)
        note = redact.text(attempt.error or f"{len(outcome.failures)} customers failed")
        self._write_in_background(lambda writer: writer.add_response(
            batch_label=batch.label, batch_number=batch.number, status=attempt.status,
            headers=headers, body=body, customer_ids=list(batch.ids), note=note))

    def _start_writer(self, use_process: bool, retry_folder: Path | None = None) -> None:
        self._writer = ResultFileWriter(
            self._results_dir, self.started_at,
            write_single_failures=self.settings.write_single_failures,
            use_process=use_process, retry_folder=retry_folder,
            journal_dir=Path(self.settings.output_dir))

    def _write_in_background(self, write: Callable[[ResultFileWriter], Future[_T]],
                             on_done: Callable[[_T], None] | None = None) -> None:
        """`write(writer)` hands a job to the result writer; `on_done(result)` then runs on
        the event loop."""
        if self._results_lost:
            return  # everything is written again once the disk allows (see _write_again)
        if self._writer is None:
            self._start_writer(use_process=False)
        assert self._writer is not None
        try:
            job = write(self._writer)
        except BrokenProcessPool:
            self._replace_broken_writer()
            return  # the replacement was given everything, this included
        future = asyncio.wrap_future(job)
        self._write_jobs.add(future)
        future.add_done_callback(lambda done: self._write_done(done, on_done))

    def _write_done(self, future: asyncio.Future[_T],
                    on_done: Callable[[_T], None] | None) -> None:
        self._write_jobs.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, BrokenProcessPool):
            self._replace_broken_writer()
        elif exc is not None:
            self._result_write_failed(exc)
        elif on_done is not None:
            on_done(future.result())

    def _result_write_failed(self, exc: BaseException) -> None:
        """A result file could not be written: they are all written again later (every
        outcome is in _failure_batches and the journal). A full disk or a folder that
        refuses pauses the sending."""
        self._results_lost = True
        if isinstance(exc, OSError):
            message = describe_write_problem(self._results_dir, exc)  # no file name: no data
        else:
            message = f"could not write a result file in {self._results_dir}: {exc}"
        if message not in self.summary.write_errors:
            self.summary.write_errors.append(message)
            log.error(message)
        if is_disk_problem(exc):
            self._disk_problem(f"{message}; sending is paused")

    def _disk_problem(self, reason: str) -> None:
        """The disk of the results is full or refuses: stop writing results and sending;
        give the import history the room kept for it."""
        self._results_lost = True
        # what the writer still holds would take the room the history needs now
        for job in list(self._write_jobs):
            job.cancel()
        if self._reserve is not None and self._reserve.release():
            log.warning("The room kept for the import history was given back to it")
        self._pause_for(reason)

    def _schedule_rewrite(self) -> None:
        if self._results_lost and (self._rewrite is None or self._rewrite.done()) \
                and self.state not in _WRITING_OR_FINISHED:
            self._rewrite = asyncio.ensure_future(self._write_again())

    async def _write_again(self) -> None:
        """After a failed result write: a new writer is given every failure again, in the
        same retry folder (files of the same names are replaced, strays removed)."""
        old = self._writer
        folder: Path | None = None
        if old is not None:
            if old.output_dir == self._results_dir:
                with contextlib.suppress(Exception):  # a dead process knows nothing more
                    folder = await asyncio.wrap_future(old.retry_folder())
            await asyncio.to_thread(old.stop)
            if old.output_dir != self._results_dir:  # another folder: its files only
                self.summary.retry_files.clear()
                self._retry_paths_seen.clear()
        self._results_lost = False
        self._start_writer(use_process=old.in_process if old is not None else False,
                           retry_folder=folder)
        log.info("Writing the result files again in %s", self._results_dir)
        self._give_new_writer_everything()

    def _tell(self, message: str, *, keep: bool = True) -> None:
        """Tell the user now, while the import goes on; `keep`: among the summary's notes."""
        if keep:
            self._note(message)
        else:
            log.warning("%s", message)
        self.listener.note(message)

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
        self._give_new_writer_everything()

    def _give_new_writer_everything(self) -> None:
        """A new result writer gets every failure so far, those not handed over yet too."""
        if self._uncertain_ids:
            uncertain = set(self._uncertain_ids)
            self._write_in_background(lambda writer: writer.note_uncertain(uncertain))
        self._unwritten_failures, self._unwritten_count = [], 0
        if self._failure_batches:
            groups = list(self._failure_batches)
            self._write_in_background(lambda writer: writer.add_failure_batches(groups),
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
        counts = self._counts
        done = counts.done
        self._rate_samples.append((now, done))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > RATE_WINDOW_S:
            self._rate_samples.popleft()
        first_t, first_done = self._rate_samples[0]
        rate = (done - first_done) / (now - first_t) if now - first_t > 0.3 else 0.0
        if self.state in _WRITING_OR_FINISHED and now > self._t0:
            rate = done / (now - self._t0)  # the final report shows the average
        source = self._source
        bytes_done = source.bytes_done if source else 0
        bytes_total = source.bytes_total if source else 0
        progress = ImportProgress(
            state=self.state, read=counts.read, succeeded=counts.succeeded,
            failed=counts.failed, in_flight=self._in_flight_customers,
            bytes_done=bytes_done, bytes_total=bytes_total, elapsed_s=now - self._t0,
            rate=rate, current_file=source.current_file if source else "",
            expected_total=self.expected_total, skipped=counts.skipped,
            retry_files=len(self.summary.retry_files), writes_pending=len(self._write_jobs),
            concurrency=self._sender.limit.current if self._sender else 0,
            concurrency_ceiling=max(1, self.settings.concurrency), updated=counts.updated,
            skipped_existing=counts.skipped_existing, pause_reason=self._halt or "",
            requests_in_flight=len(self._sender.in_flight) if self._sender else 0)
        progress.eta_s = self._eta(progress)
        return progress

    def _eta(self, p: ImportProgress) -> float | None:
        if p.state != ImportState.RUNNING or p.rate <= 0:
            return None
        if p.expected_total:
            return max(0.0, (p.expected_total - p.done - p.skipped) / p.rate)
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
            now = time.monotonic()
            if self._recorder is not None and \
                    now - self._counts_written_at >= JOURNAL_COUNTS_INTERVAL_S:
                self._counts_written_at = now
                self._write_counts()

    def _write_counts(self) -> None:
        if self._recorder is not None:
            counts = self._counts
            self._recorder.counts(read=counts.read, succeeded=counts.succeeded,
                                  failed=counts.failed, skipped=counts.skipped)

    # -- the end ---------------------------------------------------------------------------

    async def _finish(self) -> None:
        """Write everything still pending, then the summaries; report `finished`."""
        self.state = ImportState.WRITING
        self._report_progress()
        s = self.summary
        s.cancelled = self._stop_event.is_set() and self._fatal is None
        s.fatal_error = self._fatal
        if s.cancelled and self._halt is not None:
            s.error = self._halt  # stopped because nothing more could be recorded
        s.output_dir = self._results_dir
        recorder = self._recorder
        if recorder is not None:
            self._write_counts()
            await asyncio.to_thread(recorder.close)  # all committed before the lists are made
            if recorder.error:
                s.write_errors.append(recorder.error)
        if self._reserve is not None:
            self._reserve.release()  # the history is written: the room is the results' now
        totals = {"read": s.total, "succeeded": s.succeeded, "failed": s.failed,
                  "failedByResult": dict(s.failed_by_result), "updated": s.updated,
                  "skippedExisting": s.skipped_existing,
                  "onExisting": s.on_existing}
        if self._error_lines.count:
            await asyncio.to_thread(self._write_error_report)
        self._error_lines.close()
        report = await self._finish_writing(totals)
        self._retry_files_written(report.retry_files)
        s.write_errors.extend(report.errors)
        s.result_files_complete = not self._results_lost and not report.errors
        for message in report.errors:
            log.error(message)
        for note in report.notes:
            self._note(note)
        s.failed_file = report.failed_file
        s.single_failures_dir = report.single_failures_dir
        s.retry_dir = report.retry_dir
        s.retry_customers = report.retry_customers
        s.duration_s = time.monotonic() - self._t0
        if recorder is not None:
            await asyncio.to_thread(self._close_job, recorder)
        self.state = ImportState.FINISHED
        log.info("Import finished in %.1f s: %d read, %d imported, %d failed", s.duration_s,
                 s.total, s.succeeded, s.failed)
        self._report_progress()
        self.listener.finished(s)

    def _write_error_report(self) -> None:
        """The refused rows, one line per reason, as a CSV beside the other results."""
        folder = self._results_dir
        stem = f"error_report_{self.started_at:%Y%m%d_%H%M%S}"
        if self.summary.job is not None:
            stem += f"_job{self.summary.job}"
        path = folder / f"{stem}.csv"
        try:
            path = new_unique_file(folder, stem, ".csv")
            self._error_lines.write(path)
        except OSError as exc:
            message = f"the error report {path} could not be written ({exc.strerror or exc})"
            log.error(message)
            self.summary.write_errors.append(message)
            return
        self.summary.error_report = path
        log.info("Error report: %d line(s) in %s", self._error_lines.count, path.name)

    def _close_job(self, recorder: JobRecorder) -> None:
        """Give the job its final state and, for a resumed one, the whole job's totals."""
        s = self.summary
        if s.fatal_error:
            state = JobState.FAILED
        elif s.cancelled:
            state = JobState.CANCELLED
        elif s.failed or s.problems:
            state = JobState.COMPLETED_WITH_FAILURES
        else:
            state = JobState.COMPLETED
        try:
            journal = Journal.open(Path(self.settings.output_dir),
                                   busy_timeout_s=self.settings.journal_wait_s)
        except JournalError as exc:
            s.write_errors.append(str(exc))
            return
        try:
            if recorder.plan.resumed:
                read, succeeded, failed = journal.batch_totals(recorder.job_id)
                s.counts = replace(s.counts, read=read, succeeded=succeeded, failed=failed,
                                   skipped=recorder.plan.earlier.get("skipped", 0))
            journal.finish_job(recorder.job_id, state, duration_s=s.duration_s,
                               retry_dir=str(s.retry_dir) if s.retry_dir else None,
                               error=s.fatal_error, counts=(s.total, s.succeeded, s.failed,
                                                            s.skipped_already_imported),
                               error_report=str(s.error_report) if s.error_report else None,
                               updated=s.updated, skipped_existing=s.skipped_existing)
            s.open_failures = journal.open_failure_count()
        except Exception as exc:  # the results are written; only the history is short
            s.write_errors.append(f"the import history could not be updated ({exc})")
        finally:
            journal.close()

    async def _finish_writing(self, totals: dict[str, Any]) -> ResultFilesReport:
        """Wait for the writer's jobs, then have it write the summaries (once more on a
        thread if its process died meanwhile). Result files lost to a failed write are all
        written again first (the disk may have room by now)."""
        self._hand_failures_to_writer()
        if self._rewrite is not None:
            await self._rewrite
        if self._results_lost:
            await self._write_again()
        resumed = self._recorder is not None and self._recorder.plan.resumed
        for _attempt in range(2):
            while self._write_jobs:
                await asyncio.gather(*list(self._write_jobs), return_exceptions=True)
            if self._writer is None:
                self._start_writer(use_process=False)
            writer = self._writer
            assert writer is not None
            try:
                return await asyncio.wrap_future(writer.finish(
                    totals, self.summary.files,
                    job_id=self._recorder.job_id if self._recorder is not None else None,
                    lists_changed=bool(self._counts.failed or self._counts.resolved
                                       or resumed),
                    whole_job=resumed))
            except BrokenProcessPool:
                self._replace_broken_writer()
            finally:
                writer.shutdown()
        raise AssertionError("a thread writer cannot break")  # pragma: no cover


#: Settings that decide what is read from the files and sent: kept with the job, and taken
#: from it again when the job is resumed.
READING_SETTINGS = ("mapping", "file_mappings", "sheet", "file_sheets", "assignment",
                    "on_existing")


def source_options(settings: ImportSettings, files: Sequence[Path]) -> SourceOptions:
    """How the import's `files` are read, from its settings: retry files (in a folder with
    this app's retry_summary.json) are left out of the assignment, since they hold the
    entries as they were first sent, assigned values included."""
    unassigned = []
    if settings.assignment:
        retry_folders: dict[Path, bool] = {}
        for path in files:
            folder = Path(path).parent
            if folder not in retry_folders:
                summary = folder / "retry_summary.json"
                retry_folders[folder] = summary.is_file() and own_result_file(summary) is not None
            if retry_folders[folder]:
                unassigned.append(str(path))
    return SourceOptions(mapping=settings.mapping, file_mappings=dict(settings.file_mappings),
                         sheet=settings.sheet, file_sheets=dict(settings.file_sheets),
                         assignment=dict(settings.assignment), unassigned_files=unassigned)
