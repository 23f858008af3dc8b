"""History tab benchmark: how long the tab takes to show a results folder's jobs.

Run from the repository root (with the project's venv active):

    python bench/history_open.py               # 1,000 jobs
    python bench/history_open.py --jobs 5000

What it does:

1. builds an import history (``import_history.sqlite``) in a temporary results folder
   with the journal's own functions: --jobs jobs of 1 to 3 files and 40 batches each,
   every tenth job with 200 failures (half of them resolved by the next job), so the
   tables hold what a long-used folder holds;
2. reads the jobs as the tab's worker thread does (`load_jobs`), several times;
3. in an offscreen window of the real History tab (1200x700, shown), measures from
   `refresh()` to the first paint with every job in the table: what a user waits for on
   opening the tab; then sorts by each column through the view (a header click);
4. while doing so, a 16 ms GUI timer watches for the longest time the event loop was
   kept busy (the tab loads on a worker thread: the window should not stall).

It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.models.jobs import FileFingerprint
from app.models.records import FailureRecord, RecordKind
from app.services.jobs import journal as ops
from app.services.jobs.history_tasks import load_jobs
from app.services.jobs.journal import JobState, Journal, journal_path
from app.views.history_tab import HistoryTab

OPEN_TARGET_S = 0.3
BATCHES_PER_JOB = 40
CUSTOMERS_PER_BATCH = 50
FAILING_EVERY = 10
FAILURES_PER_FAILING_JOB = 200


def build_history(folder: Path, jobs: int) -> float:
    """Fill `folder`'s journal with `jobs` finished jobs; returns the seconds it took."""
    started = time.perf_counter()
    journal = Journal.open(folder)
    try:
        for number in range(jobs):
            files = [FileFingerprint(str(folder / f"export_{number:05d}_{part}.json"),
                                     1_000_000 + part, f"{number:056d}{part:08d}",
                                     1_700_000_000.0 + number)
                     for part in range(1 + number % 3)]
            job_id = journal.create_job(kind="import", settings={"batch_size": 50},
                                        files=files, owner=None)
            failing = number % FAILING_EVERY == 0
            failures = FAILURES_PER_FAILING_JOB if failing else 0
            with journal.transaction() as db:
                ops.queue_batches(db, job_id, [
                    (b + 1, b % len(files),
                     f"{b * CUSTOMERS_PER_BATCH + 1}-{(b + 1) * CUSTOMERS_PER_BATCH}",
                     CUSTOMERS_PER_BATCH) for b in range(BATCHES_PER_JOB)])
                for b in range(BATCHES_PER_JOB):
                    failed = failures // BATCHES_PER_JOB
                    ops.finish_batch(db, job_id, b + 1, ops.BATCH_DONE,
                                     CUSTOMERS_PER_BATCH - failed, failed)
                if failures:
                    ops.record_failures(db, job_id, _failure_rows(number, failures, files))
                if number % FAILING_EVERY == 1:  # the next job resolves half of them
                    earlier = number - 1
                    ops.resolve_failures(db, job_id, [
                        f"customers:id:{earlier}-{i}"
                        for i in range(0, FAILURES_PER_FAILING_JOB, 2)], ops.now_text())
            total = BATCHES_PER_JOB * CUSTOMERS_PER_BATCH
            journal.finish_job(job_id, JobState.COMPLETED_WITH_FAILURES if failures
                               else JobState.COMPLETED, duration_s=1.5, retry_dir=None,
                               counts=(total, total - failures, failures, 0))
    finally:
        journal.close()
    return time.perf_counter() - started


def _failure_rows(number: int, count: int, files: list[FileFingerprint]
                  ) -> list[tuple[object, ...]]:
    rows = []
    for i in range(count):
        customer_id = f"{number}-{i}"
        failure = FailureRecord(
            customer_id, f"kund{i}@example.se", "CONFLICT",
            f"Customer {customer_id} already exists with this ID", ops.now_text(),
            f"batch {i // 5 + 1}", {"customerId": customer_id, "firstName": "Åsa",
                                   "lastName": "Öberg"},
            source_file=files[0].path, record_number=i + 1, batch_number=i // 5 + 1,
            http_status=409, kind=RecordKind.CUSTOMERS)
        row = failure.to_row()
        rows.append((*row[:15], files[0].sha256, i + 1))
    return rows


class StallWatch(QObject):
    """A 16 ms timer on the GUI thread; `worst_ms` is the longest gap between its ticks."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = QElapsedTimer()
        self.worst_ms = 0.0
        self.timer = QTimer(self)
        self.timer.setInterval(16)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.worst_ms = 0.0
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        self.worst_ms = max(self.worst_ms, self.clock.restart() - 16)

    def stop(self) -> float:
        self.timer.stop()
        return max(0.0, self.worst_ms)


class PaintWatch(QObject):
    """Notes when the watched widget has painted."""

    def __init__(self) -> None:
        super().__init__()
        self.painted = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.painted = True
        return False


def wait_until(app: QApplication, condition, timeout_s: float = 60.0) -> bool:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            return False
        # blocks until something happens (the stall timer ticks every 16 ms at least)
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    return True


def measure_tab(app: QApplication, folder: Path, jobs: int, rounds: int
                ) -> tuple[list[float], float, list[tuple[str, float]]]:
    """(open times, worst stall while opening, sort times by column) for the real tab."""
    tab = HistoryTab(lambda: folder)
    tab.resize(1200, 700)
    tab.show()
    app.processEvents()
    watch = StallWatch()
    paints = PaintWatch()
    tab.table.viewport().installEventFilter(paints)
    opens: list[float] = []
    worst_stall = 0.0
    for _ in range(rounds):
        tab.model.set_jobs([])
        app.processEvents()
        paints.painted = False
        loaded: list[int] = []
        tab.jobsLoaded.connect(loaded.append)
        watch.start()  # also keeps events coming while wait_until waits for more
        started = time.perf_counter()
        tab.refresh()
        ok = wait_until(app, lambda got=loaded: bool(got) and tab.proxy.rowCount() == jobs)
        paints.painted = False
        tab.table.viewport().update()
        wait_until(app, lambda: paints.painted)
        opens.append(time.perf_counter() - started)
        worst_stall = max(worst_stall, watch.stop())
        tab.jobsLoaded.disconnect(loaded.append)
        if not ok:
            print(f"  the tab showed {tab.proxy.rowCount()} of {jobs} jobs", file=sys.stderr)
    sorts: list[tuple[str, float]] = []
    for column in range(tab.model.columnCount()):
        name = str(tab.model.headerData(column, Qt.Orientation.Horizontal,
                                        Qt.ItemDataRole.DisplayRole))
        started = time.perf_counter()
        tab.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
        app.processEvents()
        sorts.append((name, time.perf_counter() - started))
    tab.close()
    return opens, worst_stall, sorts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv)
    folder = Path(tempfile.mkdtemp(prefix="history-bench-"))
    try:
        seconds = build_history(folder, args.jobs)
        size = sum(f.stat().st_size for f in folder.glob(journal_path(folder).name + "*"))
        print(f"Built a history of {args.jobs:,} jobs in {seconds:.1f} s "
              f"({size / 1024 / 1024:.1f} MB)")
        loads = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            loaded = load_jobs(folder)
            loads.append(time.perf_counter() - started)
        print(f"  load_jobs (worker thread's part): median {statistics.median(loads) * 1000:.0f}"
              f" ms, worst {max(loads) * 1000:.0f} ms, {len(loaded):,} jobs")
        opens, stall, sorts = measure_tab(app, folder, args.jobs, args.rounds)
        median = statistics.median(opens)
        mark = "✓" if median <= OPEN_TARGET_S else "✗"
        print(f"  History tab open, refresh to painted: median {median * 1000:.0f} ms, "
              f"worst {max(opens) * 1000:.0f} ms (target <= {OPEN_TARGET_S * 1000:.0f} ms) "
              f"{mark}")
        print(f"  longest GUI stall while opening: {stall:.0f} ms")
        print("  sort through the view: " + ", ".join(
            f"{name} {s * 1000:.0f} ms" for name, s in sorts))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
