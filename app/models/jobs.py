"""Import jobs as plain records: a job, its state, its files, what became of a file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.models.record_ranges import RecordRanges


class JobState(StrEnum):
    """Where a job stands. `INTERRUPTED`: it says running, but its process is gone."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return {"completed_with_failures": "completed with failures"}.get(self.value,
                                                                         self.value)


#: States a job can be resumed from.
RESUMABLE = frozenset({JobState.INTERRUPTED, JobState.CANCELLED})
@dataclass(slots=True, frozen=True)
class FileFingerprint:
    """A file as a job read it: where, how big, and its content's SHA-256."""

    path: str
    size: int
    sha256: str
    mtime: float = 0.0


@dataclass(slots=True)
class JobRecord:
    """One job as the History lists it."""

    id: int
    kind: str
    state: JobState
    started: str
    finished: str | None
    settings: dict[str, Any]
    read: int
    succeeded: int
    failed: int
    skipped: int
    open_failures: int
    duration_s: float
    files: list[FileFingerprint] = field(default_factory=list)
    retry_dir: str | None = None
    error: str | None = None
    owner: str | None = None
    updated: int = 0  # customers that existed and were updated (duplicate strategy)
    skipped_existing: int = 0  # customers that existed and were skipped
    error_report: str | None = None  # the CSV of rows refused before sending

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "state": self.state.value,
            "started": self.started, "finished": self.finished,
            "files": [f.path for f in self.files], "total": self.read,
            "succeeded": self.succeeded, "failed": self.failed,
            "open_failures": self.open_failures, "skipped_already_imported": self.skipped,
            "duration_s": round(self.duration_s, 3), "retry_dir": self.retry_dir,
            "error": self.error, "updated": self.updated,
            "skipped_existing": self.skipped_existing, "error_report": self.error_report,
        }


@dataclass(slots=True, frozen=True)
class FileHistory:
    """What earlier jobs did with a file's content (by SHA-256)."""

    sha256: str
    records: int  # entries in the file, as the last job that read it all counted them
    imported: RecordRanges  # records known to be imported
    open_failures: int  # of its customers, failures still open
    last_job: int
    last_imported_at: str

    @property
    def all_imported(self) -> bool:
        return self.records > 0 and len(self.imported) >= self.records


def duration_text(seconds: float) -> str:
    """`1:02:03` or `2:03`, as the history shows a job's duration."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def files_text(job: JobRecord) -> str:
    """A job's files in a few words: `a.json, b.json` or `a.json and 4 more`."""
    # os.path, not Path: a thousand jobs' worth of Path objects is a noticeable wait
    names = [os.path.basename(f.path) for f in job.files]
    if len(names) <= 2:
        return ", ".join(names) or "–"
    return f"{names[0]} and {len(names) - 1} more"
