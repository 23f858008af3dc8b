"""The import history of a results folder, as people read it: jobs, newest first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.models.jobs import JobRecord, duration_text, files_text
from app.services.results.output_folder import RUNNING_FOLDER, mark_is_held


def running_check(output_dir: Path) -> Callable[[str], bool]:
    """Tells whether the process that owns a running job of `output_dir` still lives."""
    folder = Path(output_dir) / RUNNING_FOLDER
    return lambda owner: bool(owner) and mark_is_held(folder / owner)




def format_history(jobs: list[JobRecord]) -> str:
    """A plain-text table of `jobs` for a terminal."""
    header = ("Job", "State", "Started", "Files", "Customers", "Imported", "Failed", "Open",
              "Duration")
    rows = [header]
    for job in jobs:
        rows.append((f"#{job.id}", job.state.label, job.started.replace("T", " ")[:16],
                     files_text(job), f"{job.read:,}", f"{job.succeeded:,}",
                     f"{job.failed:,}", f"{job.open_failures:,}",
                     duration_text(job.duration_s)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {4, 5, 6, 7, 8}
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
