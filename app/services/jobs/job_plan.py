"""Before an import sends anything: which job it is, and what of each file is left to send.

A new job looks its files up by content (SHA-256) in the journal: records an earlier job
imported are not sent again (unless the user says so), and a file whose customers all went
in before is skipped, naming the job that imported it. A resumed job sends only what it had
not finished: its files are checked against their fingerprints first, and the batches that
were under way when it stopped are sent again as "outcome unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from app.models.record_ranges import RecordRanges
from app.services.jobs.journal import (
    RESUMABLE,
    FileFingerprint,
    FileHistory,
    Journal,
    JournalError,
)
from app.services.sources.file_fingerprint import fingerprint


class Repeat(StrEnum):
    """What to do with customers an earlier job of the folder imported already."""

    REST = "rest"  # send only the customers not imported yet (the default)
    SKIP = "skip"  # leave out every file imported before
    ALL = "all"  # send everything again (--force)


class JobRefused(JournalError):
    """The job cannot go ahead (a resumed job whose file changed, an unknown job)."""


@dataclass(slots=True)
class PlannedFile:
    """One file of a job: what is left of it to send."""

    index: int
    path: Path
    fingerprint: FileFingerprint
    skip: RecordRanges = field(default_factory=RecordRanges)  # not to be sent
    maybe_sent: RecordRanges = field(default_factory=RecordRanges)  # resumed: outcome unknown
    history: FileHistory | None = None
    skipped_whole: bool = False  # every customer of it was imported before

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(slots=True)
class JobPlan:
    """A job about to run (new, or resumed), with its files."""

    job_id: int
    resumed: bool
    files: list[PlannedFile]
    open_keys: set[str]
    notes: list[str] = field(default_factory=list)
    skipped_customers: int = 0  # in files left out entirely
    # what a resumed job had done before, so that its totals stay the whole job's
    earlier: dict[str, int] = field(default_factory=dict)
    first_batch: int = 1  # the number the job's next batch gets

    @property
    def files_to_read(self) -> list[PlannedFile]:
        return [f for f in self.files if not f.skipped_whole]


def plan_new_job(journal: Journal, files: list[Path], *, settings: dict[str, Any],
                 owner: str | None, repeat: Repeat = Repeat.REST,
                 kind: str = "import", prints: list[FileFingerprint] | None = None) -> JobPlan:
    """Fingerprint the files (unless `prints` has them), look them up, and create the job
    in the journal."""
    if prints is None:
        prints = [fingerprint(path) for path in files]
    histories = journal.file_history([p.sha256 for p in prints]) \
        if repeat is not Repeat.ALL else {}
    planned: list[PlannedFile] = []
    notes: list[str] = []
    skipped = 0
    for index, (path, print_) in enumerate(zip(files, prints, strict=True)):
        history = histories.get(print_.sha256)
        item = PlannedFile(index, Path(path), print_, history=history)
        if history is not None and history.last_job:
            when = history.last_imported_at.replace("T", " ")[:16]
            if repeat is Repeat.SKIP or history.all_imported:
                item.skipped_whole = True
                count = len(history.imported)
                skipped += count
                whole = ("all its customers" if history.all_imported
                         else f"{count:,} of its customers")
                notes.append(f"{item.name}: {whole} were imported before (job "
                             f"#{history.last_job}, {when}): skipped")
            else:
                item.skip = history.imported
                notes.append(f"{item.name}: imported before in part (job #{history.last_job}, "
                             f"{when}); only the {history.records - len(history.imported):,} "
                             "customers not imported yet are sent"
                             if history.records else
                             f"{item.name}: imported before in part (job "
                             f"#{history.last_job}, {when}); only the customers not imported "
                             "yet are sent")
        planned.append(item)
    job_id = journal.create_job(kind=kind, settings=settings, files=prints, owner=owner)
    return JobPlan(job_id, False, planned, journal.open_failure_keys(), notes, skipped)


def plan_resumed_job(journal: Journal, job_id: int, *, owner: str | None,
                     is_alive: Any = None) -> JobPlan:
    """The rest of an interrupted or cancelled job; refuses one whose files changed."""
    job = journal.job(job_id, is_alive)
    if job.state not in RESUMABLE:
        raise JobRefused(f"job #{job_id} is {job.state.label}: only an interrupted or "
                         "cancelled job can be resumed")
    handled = journal.handled_records(job_id)
    planned: list[PlannedFile] = []
    for index, recorded in enumerate(job.files):
        path = Path(recorded.path)
        try:
            now = fingerprint(path)
        except OSError as exc:
            what = "is missing" if isinstance(exc, FileNotFoundError) else "cannot be read"
            raise JobRefused(f"job #{job_id} cannot be resumed: {path} {what} "
                             f"({exc.strerror or exc})") from None
        if now.sha256 != recorded.sha256:
            raise JobRefused(f"job #{job_id} cannot be resumed: {path} has changed since the "
                             "job read it (its content is different); import it as a new job "
                             "instead")
        done, maybe = handled.get(index, (RecordRanges(), RecordRanges()))
        planned.append(PlannedFile(index, path, now, skip=done, maybe_sent=maybe))
    first_batch = journal.take_over(job_id, owner or "")
    earlier = {"read": job.read, "succeeded": job.succeeded, "failed": job.failed,
               "skipped": job.skipped}
    return JobPlan(job_id, True, planned, journal.open_failure_keys(), [], 0, earlier,
                   first_batch)
