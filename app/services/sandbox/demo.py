"""The built-in demo: sample customer files and a local sandbox API, no credentials needed."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from platformdirs import user_data_path

from app.models.jobs import JobState
from app.services.jobs.history_tasks import load_jobs
from app.services.jobs.journal import JournalError
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxConfig, SandboxThread
from app.services.sources.row_validation import luhn_check_digit

log = logging.getLogger("bulk_import")

DEMO_TOKEN = "demo-token-not-a-secret"


@dataclass(frozen=True, slots=True)
class DemoFile:
    name: str
    count: int
    start_id: int
    conflicts: int = 0
    refused: int = 0
    invalid: int = 0
    json_lines: bool = False


DEMO_FILES = (
    DemoFile("kunder_stockholm.json", 1500, 50000010000),
    DemoFile("kunder_göteborg.jsonl", 600, 50000020000, refused=6, json_lines=True),
    DemoFile("kunder_malmö_med_fel.json", 300, 50000030000, conflicts=8, refused=6,
             invalid=5),
)


def demo_folder() -> Path:
    return user_data_path("Bulk Customer Import", appauthor=False) / "demo"


def ensure_demo_files(folder: Path | None = None) -> list[Path]:
    """Write the sample files once (deterministic); returns their paths."""
    folder = folder or demo_folder() / "customers"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in DEMO_FILES:
        path = folder / spec.name
        if not path.exists():
            customers = generate_customers(spec.count, start_id=spec.start_id,
                                           seed=spec.start_id, conflicts=spec.conflicts,
                                           refused=spec.refused, invalid=spec.invalid)
            write_customer_file(path, customers, json_lines=spec.json_lines)
        paths.append(path)
    return paths


DEMO_FOLDERS_LOOKED_AT = 5  # the newest demo folders searched for an interrupted import


def demo_results_folder(results_folder: Path) -> Path:
    """Where one launch of the demo writes its results: `Demo/<date time>` in the results
    folder (the folder itself when it is already such a folder); but the folder of a
    launch killed during its import, when there is one, so that the demo offers to resume
    that import as an installed app would."""
    base = results_folder
    if base.parent.name == "Demo":
        base = base.parent.parent
    elif base.name == "Demo":
        base = base.parent
    interrupted = _interrupted_demo(base / "Demo")
    if interrupted is not None:
        return interrupted
    folder = base / "Demo" / datetime.now().strftime("%Y-%m-%d %H.%M.%S")
    number = 1
    while folder.exists():  # two launches within a second
        number += 1
        folder = folder.with_name(f"{folder.name.split(' (')[0]} ({number})")
    return folder


def _interrupted_demo(demo_root: Path) -> Path | None:
    """The newest demo folder whose import stopped in the middle (none when unreadable)."""
    try:
        folders = sorted((p for p in demo_root.iterdir() if p.is_dir()), reverse=True)
    except OSError:
        return None
    for folder in folders[:DEMO_FOLDERS_LOOKED_AT]:  # names sort by date and time
        try:
            jobs = load_jobs(folder)
        except (OSError, JournalError, sqlite3.Error):
            continue
        if any(job.state is JobState.INTERRUPTED for job in jobs):
            return folder
    return None


DEMO_SPREADSHEET = "medlemmar_uppsala.csv"
_MEMBER_HEADER = ("CustomerID;MMID;HHID;LoyaltyAccountid;FirstName;LastName;SSN;BirthDate;"
                  "IshouseholdOwner;MemberStatus;ReasonCode")




def ensure_demo_spreadsheet(folder: Path | None = None, count: int = 240) -> Path:
    """A member export as European Excel saves it (UTF-8 with BOM, `;`, dates 01.05.1966,
    NULL), for trying the mapping step and the review: use the *Member export* mapping.
    A few rows are wrong on purpose (a date that does not exist, a personal number with a
    wrong check digit, a repeated MMID)."""
    folder = folder or demo_folder() / "spreadsheets"
    path = folder / DEMO_SPREADSHEET
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    lines = [_MEMBER_HEADER]
    for n, customer in enumerate(generate_customers(count, start_id=50000040000, seed=40)):
        person = customer["person"]
        year, month, day = person["birthday"].split("-")
        ssn = f"{year}{month}{day}{n % 1000:03d}"
        ssn += luhn_check_digit(ssn[2:])
        mmid = f"{9000000 + n}"
        birth = f"{day}.{month}.{year}"
        if n == 17:
            birth = f"31.02.{year}"
        if n == 42:
            ssn = ssn[:-1] + str((int(ssn[-1]) + 1) % 10)
        if n == 99:
            mmid = "9000007"
        if n % 5 == 3:
            ssn = "NULL"
        lines.append(";".join([str(n + 1), mmid, f"H{n // 2 + 1}", f"L{n + 1}",
                               person["firstName"], person["lastName"], ssn, birth,
                               "1" if n % 2 == 0 else "0", "Active", "NULL"]))
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


@dataclass
class DemoEnvironment:
    """A sandbox API in a background thread plus sample files, for `main.py --demo`.

    The first import meets a short outage (the first requests get HTTP 503), so a new user
    sees failed batches land in retry files, and then re-imports them successfully.
    """

    files: list[Path] = field(default_factory=list)
    sandbox: SandboxThread | None = None
    outage_pending: bool = True

    def start(self, folder: Path | None = None) -> str:
        self.files = ensure_demo_files(folder)
        ensure_demo_spreadsheet(None if folder is None else folder.parent / "spreadsheets")
        config = SandboxConfig(static_token=DEMO_TOKEN, latency_ms=15, latency_jitter_ms=25,
                               seed=11)
        self.sandbox = SandboxThread(config)
        url = self.sandbox.start()
        log.info("Demo sandbox API listening at %s", url)
        return url

    @property
    def base_url(self) -> str:
        return self.sandbox.base_url if self.sandbox else ""

    def before_import(self, retries: int, concurrency: int) -> None:
        """Arrange the one-time outage: enough 503s to use up the first batches' retries."""
        if self.sandbox is None or not self.outage_pending:
            return
        self.outage_pending = False
        server = self.sandbox.server
        # counted from the requests served so far, so a Test Connection before is harmless
        server.config.fail_first_requests = (server.request_count
                                             + (retries + 1) * max(1, concurrency))

    def after_import(self) -> None:
        if self.sandbox is not None:
            self.sandbox.server.config.fail_first_requests = 0

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
