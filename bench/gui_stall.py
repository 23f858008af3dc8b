"""How long does the window freeze during a big import? How fast is a list of a million failures?

    python bench/gui_stall.py [--customers 210000] [--failures 100000] [--stacks]
                              [--sandbox-priority below|normal]
    python bench/gui_stall.py --million          # or --list-failures N

Default: runs the real main window offscreen (QT_QPA_PLATFORM=offscreen) on the qasync loop
and imports a generated file through it against the sandbox API running in its own
process (below normal priority, as the import's helper processes: it stands in for a
service on another machine), with "Auto-refresh during import" on and the Failed Customers
tab showing; 210,000 customers run in the import's own process, as in the app. A
QTimer ticking every 10 ms records the gaps between its ticks: the worst gap is the longest
the window could not repaint or react. It goes on ticking for 3 s after the import finished
(final refresh, summaries, the retry prompt), reported apart. Garbage collections on the GUI
thread are timed (gc.callbacks, observing only), and with --stacks a sampling thread notes
where the GUI thread's Python code was whenever a tick is late, to see what a gap is made
of. Targets: worst gap < 16 ms during the import, < 33 ms after it. The last line printed
is `gui stall: worst during import N ms, after import M ms, p99 P ms`.

--million (--list-failures N): fills a results folder's journal with 1,000,000 (N) open
failures in bulk SQL (in a child process, so that this one's memory is the window's), then
opens the main window on that folder with the Failed Customers tab showing, and prints the
time until the tab shows its rows, the time of a sort by each column (both directions), and
the process's peak RSS. Targets: rows < 1 s, each sort < 0.5 s, peak RSS < 400 MB.

Prints figures; it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

import psutil  # noqa: E402
from import_throughput import TOKEN, sandbox_call, start_sandbox  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.models.failure_query import LIST_INDEXES_DDL  # noqa: E402
from app.services.jobs.journal import Journal  # noqa: E402
from app.services.sandbox.sample_customers import (  # noqa: E402
    FIRST_NAMES,
    LAST_NAMES,
    generate_customers,
    write_customer_file,
)
from app.util import background  # noqa: E402
from app.util.event_loop import GuiEventLoop  # noqa: E402
from app.util.helper_processes import HELPER_NICENESS  # noqa: E402
from app.views.main_window import MainWindow  # noqa: E402

TARGET_DURING_MS = 16.0
TARGET_AFTER_MS = 33.0
TARGET_ROWS_S = 1.0
TARGET_SORT_S = 0.5
TARGET_RSS_MB = 400.0
AFTER_IMPORT_S = 3.0
LONG_GAP_MS = 16.0  # gaps listed with the time they happened
LATE_TICK_MS = 12.0  # --stacks: the GUI thread is sampled once a tick is this late


class StallMeter:
    """Ticks every 10 ms on the GUI thread and keeps the gaps between ticks."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.gaps_ms: list[float] = []
        self.long_gaps: list[tuple[float, float]] = []  # (seconds since start, gap ms)
        self.since_start = QElapsedTimer()
        self.last_tick = time.perf_counter()  # read by the stack sampler's thread
        self.started_at = time.perf_counter()

    def start(self) -> None:
        self.gaps_ms.clear()
        self.long_gaps.clear()
        self.clock.start()
        self.since_start.start()
        self.last_tick = self.started_at = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        gap = self.clock.nsecsElapsed() / 1e6
        self.gaps_ms.append(gap)
        if gap > LONG_GAP_MS:
            self.long_gaps.append((self.since_start.elapsed() / 1000, gap))
        self.clock.restart()
        self.last_tick = time.perf_counter()


class CollectionTimer:
    """Times Python's garbage collections (gc.callbacks: observing, changing nothing).

    With `promotions`, it also notes what a collection of the middle generation is about
    to move into the oldest (everything alive in the two young ones is): the objects that
    make full collections come.
    """

    def __init__(self, promotions: bool = False) -> None:
        self.promotions: Counter[str] | None = Counter() if promotions else None
        self.gui_thread = threading.get_ident()
        self.started: dict[int, float] = {}
        self.gui: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.other: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.full: list[tuple[float, float, bool]] = []  # (perf_counter, ms, on GUI thread)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            if self.promotions is not None and info["generation"] == 1:
                for generation in (0, 1):
                    self.promotions.update(f"{type(o).__module__}.{type(o).__qualname__}"
                                           for o in gc.get_objects(generation))
            self.started[thread] = time.perf_counter()
            return
        began = self.started.pop(thread, None)
        if began is None:
            return
        took = (time.perf_counter() - began) * 1000
        generation = info["generation"]
        (self.gui if thread == self.gui_thread else self.other)[generation].append(took)
        if generation == 2:
            self.full.append((began, took, thread == self.gui_thread))

    def report(self, started_at: float) -> str:
        parts = []
        for where, times in (("GUI thread", self.gui), ("other threads", self.other)):
            counts = ", ".join(f"gen{g} {len(t)}× (worst {max(t, default=0):.1f} ms)"
                               for g, t in times.items())
            parts.append(f"  {where}: {counts}")
        if self.full:
            parts.append("  full collections: " + ", ".join(
                f"{took:.0f} ms at {began - started_at:.1f} s"
                + ("" if on_gui else " (another thread)") for began, took, on_gui in self.full))
        if self.promotions:
            total = sum(self.promotions.values())
            parts.append(f"  moved into the oldest generation: {total:,} objects; most of "
                         "them: " + ", ".join(f"{name} {count:,}" for name, count
                                            in self.promotions.most_common(25)))
        return "Garbage collections:\n" + "\n".join(parts)


class StackSampler(threading.Thread):
    """Notes the GUI thread's Python stack whenever the stall meter's tick is late."""

    def __init__(self, meter: StallMeter, gui_thread: int) -> None:
        super().__init__(name="stack-sampler", daemon=True)
        self.meter = meter
        self.gui_thread = gui_thread
        self.samples: list[tuple[float, str]] = []  # (seconds since the meter started, stack)
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.004):
            if (time.perf_counter() - self.meter.last_tick) * 1000 < LATE_TICK_MS:
                continue
            frame = sys._current_frames().get(self.gui_thread)
            if frame is None:
                continue
            lines = [f"{Path(f.filename).name}:{f.lineno} {f.name}"
                     for f in traceback.extract_stack(frame)[-7:]]
            self.samples.append((time.perf_counter() - self.meter.started_at,
                                 " < ".join(reversed(lines))))

    def report(self, ended_at: float, top: int = 12) -> str:
        lines = []
        for label, wanted in (("during the import", lambda t: t < ended_at),
                              ("after it", lambda t: t >= ended_at)):
            stacks = Counter(stack for t, stack in self.samples if wanted(t))
            lines.append(f"Where the GUI thread was while a tick was late, {label} "
                         f"({sum(stacks.values())} samples, 4 ms apart):")
            lines += [f"  {count:4d}  {stack}" for stack, count in stacks.most_common(top)]
        return "\n".join(lines)


def _held() -> Counter[str]:
    """The types of the objects the collector tracks, after a collection (--promotions)."""
    gc.collect()
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def _ms(value: float) -> str:
    return f"{value:.0f}"


async def run_import(args: argparse.Namespace, work: Path, window: MainWindow,
                     base_url: str) -> None:
    source = work / "kunder_210k.json"
    started = time.perf_counter()
    write_customer_file(source, generate_customers(args.customers, refused=args.failures))
    print(f"Generated {args.customers:,} customers ({args.failures:,} built to fail) in "
          f"{time.perf_counter() - started:.1f} s")
    window.files_tab.add_paths([source])
    await wait_until(lambda: bool(window.files_tab.ready_files())
                     and not window.files_tab.is_counting(), 120)
    panel = window.import_tab.connection
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    panel.host_edit.setText(base_url)
    panel.token_edit.setText(TOKEN)
    window.import_tab.set_run_settings({"batch_size": args.batch_size,
                                        "concurrency": args.concurrency,
                                        "output_dir": work / "out"})
    window.failed_tab.auto_refresh_check.setChecked(not args.no_auto_refresh)
    meter = StallMeter()
    collections = CollectionTimer(promotions=args.promotions)
    sampler = StackSampler(meter, threading.get_ident()) if args.stacks else None
    finished = asyncio.get_running_loop().create_future()
    window.runner.finished.connect(lambda s: finished.done() or finished.set_result(s))
    window.runner.crashed.connect(
        lambda why: finished.done() or finished.set_exception(RuntimeError(why)))
    shown = window.failed_tab if args.show == "failed" else window.import_tab
    held_before = _held() if args.promotions else None
    gc.callbacks.append(collections)
    meter.start()
    if sampler is not None:
        sampler.start()
    window.start_import()
    window.tabs.setCurrentWidget(shown)  # by default the failure table is on screen: worst case
    summary = await finished
    during_import = len(meter.gaps_ms)
    held_after = _held() if args.promotions else None
    ended_at = meter.since_start.elapsed() / 1000
    # what follows the import (final refresh, summaries, the retry prompt) counts too
    await asyncio.sleep(AFTER_IMPORT_S)
    meter.stop()
    if sampler is not None:
        sampler.stop_event.set()
        sampler.join()
    gc.callbacks.remove(collections)
    after = sorted(meter.gaps_ms[during_import:]) or [0.0]
    gaps = sorted(meter.gaps_ms[1:during_import]) or [0.0]
    worst = gaps[-1]
    p99 = gaps[int(len(gaps) * 0.99) - 1] if len(gaps) > 100 else worst
    rows = window.failed_tab.model.rowCount()
    print(f"\nImport: {summary.total:,} read, {summary.succeeded:,} imported, "
          f"{summary.failed:,} failed in {summary.duration_s:.1f} s "
          f"({summary.total / max(summary.duration_s, 1e-9):,.0f} customers/s); "
          f"table rows {rows:,}")
    print(f"GUI thread, 10 ms ticks during the import: {len(gaps):,} gaps, median "
          f"{statistics.median(gaps):.1f} ms, p99 {p99:.1f} ms, worst {worst:.1f} ms, "
          f"{sum(1 for g in gaps if g > TARGET_DURING_MS)} over {TARGET_DURING_MS:.0f} ms"
          f"   {'✓' if worst < TARGET_DURING_MS else '✗'} (target worst < "
          f"{TARGET_DURING_MS:.0f} ms)")
    print(f"The {AFTER_IMPORT_S:.0f} s after it finished: worst gap {after[-1]:.1f} ms, "
          f"{sum(1 for g in after if g > TARGET_AFTER_MS)} over {TARGET_AFTER_MS:.0f} ms"
          f"   {'✓' if after[-1] < TARGET_AFTER_MS else '✗'} (target < "
          f"{TARGET_AFTER_MS:.0f} ms)")
    if meter.long_gaps:
        longest = sorted(meter.long_gaps, key=lambda tg: -tg[1])[:10]
        listed = ", ".join(f"{g:.0f} ms at {t:.1f} s" for t, g in sorted(longest))
        print(f"  the {len(longest)} longest gaps over {LONG_GAP_MS:.0f} ms, in time order "
              f"(the import ended at {ended_at:.1f} s): {listed}")
    print(collections.report(meter.started_at))
    if held_before is not None and held_after is not None:
        grown = held_after - held_before
        print(f"  tracked objects the process holds: {sum(held_before.values()):,} before the "
              f"import, {sum(held_after.values()):,} at its end; grown most: "
              + ", ".join(f"{name} +{count:,}" for name, count in grown.most_common(15)))
    if sampler is not None:
        print(sampler.report(ended_at))
    model = window.failed_tab.model
    print(f"\nSorting the failure table ({rows:,} rows):")
    for column in range(model.columnCount()):
        name = model.headerData(column, Qt.Orientation.Horizontal)
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            took = await timed_sort(window, column, order)
            print(f"  {name:<12} {order.name:<16} {took * 1000:7.1f} ms  "
                  f"{'✓' if took < TARGET_SORT_S else '✗'}")
    state = sandbox_call(window._bench_sandbox, "GET", "/_sandbox/state")  # type: ignore[attr-defined]
    print(f"\nSandbox holds {state['customers']:,} customers")
    print(f"gui stall: worst during import {_ms(worst)} ms, after import {_ms(after[-1])} ms, "
          f"p99 {_ms(p99)} ms")


async def timed_sort(window: MainWindow, column: int, order: Qt.SortOrder) -> float:
    """Seconds from a header click's sort until the table shows the new order."""
    model = window.failed_tab.model
    started = time.perf_counter()
    window.failed_tab.table.sortByColumn(column, order)
    while model.is_busy():
        await asyncio.sleep(0.002)
    QApplication.processEvents()  # the view takes the new order in and paints it
    return time.perf_counter() - started


# -- a million failures --------------------------------------------------------------------


def fill_journal(folder: Path, count: int) -> None:
    """`count` open failures in the folder's journal, written in bulk SQL: the rows in one
    statement, the list's indexes built afterwards (faster than row by row)."""
    journal = Journal.open(folder)
    try:
        db = journal.connection
        with journal.transaction():
            db.execute("INSERT INTO jobs (id, kind, state, started, finished, settings, read, "
                       "failed) VALUES (1, 'import', 'completed_with_failures', "
                       "'2025-01-07T10:00:00', '2025-01-07T11:00:00', '{}', ?, ?)",
                       (count, count))
            for ddl in LIST_INDEXES_DDL:
                db.execute(f"DROP INDEX IF EXISTS {ddl.split()[5]}")
            db.execute(_FILL_SQL, {"count": count,
                                   "first": json.dumps([n.upper() for n in FIRST_NAMES]),
                                   "last": json.dumps([n.upper() for n in LAST_NAMES]),
                                   "nfirst": len(FIRST_NAMES), "nlast": len(LAST_NAMES)})
            for ddl in LIST_INDEXES_DDL:
                db.execute(ddl)
    finally:
        journal.close()


# names, results and errors vary as an import's do; the original data is a real entry
_FILL_SQL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1),
people AS (
    SELECT i, 50000001000 + i AS id,
           json_extract(:first, '$[' || ((i * 7919) % :nfirst) || ']') AS first,
           json_extract(:last, '$[' || ((i * 104729) % :nlast) || ']') AS last,
           CASE i % 5 WHEN 0 THEN 'CONFLICT' WHEN 1 THEN 'FAILED' WHEN 2 THEN 'INVALID'
                      WHEN 3 THEN 'HTTP_ERROR' ELSE 'TIMEOUT' END AS result
    FROM n
)
INSERT INTO failures (key, state, customer_id, username, result, error, timestamp,
    batch_info, source_file, record_number, batch_number, http_status, kind, retriable,
    whole_batch, original, attempts, first_job, last_job, origin_sha, origin_record)
SELECT 'customers:id:' || id, 'open', CAST(id AS TEXT), first || ' ' || last, result,
    CASE result
        WHEN 'CONFLICT' THEN printf('Customer %d already exists with this ID', id)
        WHEN 'FAILED' THEN 'lastName is required' || char(10) || 'field: person.lastName'
        WHEN 'INVALID' THEN printf('customerId must be a number (record %d)', i + 1)
        WHEN 'HTTP_ERROR' THEN 'HTTP 503 after 4 attempts: Service Unavailable'
        ELSE 'no answer within 30 s' END,
    printf('2025-01-07T%02d:%02d:%02d.%06d', 10 + i / 360000 % 12, i / 6000 % 60,
           i / 100 % 60, i % 100 * 10000),
    printf('%s · batch %d', CASE WHEN result IN ('HTTP_ERROR', 'TIMEOUT')
                                 THEN 'Whole batch failed' ELSE 'Found in structured '
                                 || 'response data' END, i / 50 + 1),
    '/data/kunder_1m.json', i + 1, i / 50 + 1,
    CASE result WHEN 'CONFLICT' THEN 409 WHEN 'FAILED' THEN 400 WHEN 'HTTP_ERROR' THEN 503
                ELSE NULL END,
    'customers', result NOT IN ('CONFLICT', 'INVALID'), result IN ('HTTP_ERROR', 'TIMEOUT'),
    CAST(json_object('changeType', 'CREATE', 'type', 'PERSON', 'person', json_object(
        'customerId', CAST(id AS TEXT), 'status', 'UNACTIVATED', 'firstName', first,
        'lastName', last, 'languageCode', 'sv', 'birthday', '1970-01-01',
        'addresses', json_array(json_object('addressType', 'HOME', 'street', 'Storgatan',
            'streetNumber', CAST(1 + i % 120 AS TEXT), 'postalCode', '11122',
            'city', 'Stockholm', 'countryCode', 'SE')))) AS BLOB),
    1, 1, 1, NULL, i + 1
FROM people
"""


class RssSampler:
    """The process's resident memory, sampled on a timer (psutil); the highest kept."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.sample)
        self.timer.start()

    def sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)


async def run_million(args: argparse.Namespace, work: Path, window: MainWindow) -> None:
    count = args.list_failures
    folder = work / "million"
    folder.mkdir()
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--fill-journal", str(folder), str(count)],
                   check=True)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(f"Filled a journal with {count:,} failures ({size:,.0f} MB) in "
          f"{time.perf_counter() - started:.1f} s (bulk SQL, another process)")
    rss = RssSampler()
    tab, model = window.failed_tab, window.failed_tab.model
    window.tabs.setCurrentWidget(tab)
    QApplication.processEvents()
    marks: dict[str, float] = {}
    window.import_tab.outputDirChanged.connect(
        lambda _folder: marks.setdefault("asked", time.perf_counter()))
    tab.refreshFinished.connect(lambda _rows: marks.setdefault("listed", time.perf_counter()))
    window.import_tab.set_run_settings({"output_dir": folder})  # as if the folder was chosen
    await wait_until(lambda: "listed" in marks, 120)
    QApplication.processEvents()  # the table takes the rows in and paints them
    shown = model.rowCount() == count and model.data(model.index(0, 0)) is not None
    took = time.perf_counter() - marks["asked"]
    print(f"\nThe Failed Customers tab shows its {model.rowCount():,} rows {took:.2f} s after "
          f"the folder was chosen (the list ready {marks['listed'] - marks['asked']:.2f} s)"
          f"   {'✓' if took < TARGET_ROWS_S and shown else '✗'} (target < "
          f"{TARGET_ROWS_S:.0f} s)")
    worst = 0.0
    print("Sorting by each column (a header click until the table shows the new order):")
    for column in range(model.columnCount()):
        name = model.headerData(column, Qt.Orientation.Horizontal)
        times = [await timed_sort(window, column, order)
                 for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder)]
        worst = max(worst, *times)
        first = model.data(model.index(0, column))
        print(f"  {name:<12} ascending {times[0] * 1000:6.0f} ms, descending "
              f"{times[1] * 1000:6.0f} ms  {'✓' if max(times) < TARGET_SORT_S else '✗'}  "
              f"(first row now: {first})")
    started = time.perf_counter()
    model.set_search_text("ström")
    while model.is_busy():
        await asyncio.sleep(0.002)
    print(f"Searching 'ström': {model.rowCount():,} rows in "
          f"{time.perf_counter() - started:.2f} s")
    model.set_search_text("")
    while model.is_busy():
        await asyncio.sleep(0.002)
    rss.sample()
    peak_mb = rss.peak / 1e6
    os_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KB on Linux
    print(f"Peak RSS {peak_mb:.0f} MB (psutil, sampled every 20 ms; the system's high-water "
          f"mark {os_peak_mb:.0f} MB)   {'✓' if peak_mb < TARGET_RSS_MB else '✗'} "
          f"(target < {TARGET_RSS_MB:.0f} MB)")
    print(f"million list: rows shown {took:.2f} s, worst sort {worst:.2f} s, "
          f"peak RSS {peak_mb:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=210_000)
    parser.add_argument("--failures", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--no-auto-refresh", action="store_true",
                        help="uncheck 'Auto-refresh during import'")
    parser.add_argument("--show", choices=("failed", "import"), default="failed",
                        help="the tab on screen during the import")
    parser.add_argument("--sandbox-priority", choices=("below", "normal"), default="below",
                        help="the sandbox's priority: below normal like the import's helper "
                             "processes (default: it stands in for another machine), or "
                             "normal, taking a core from the window")
    parser.add_argument("--stacks", action="store_true",
                        help="sample the GUI thread's stack whenever a tick is late")
    parser.add_argument("--promotions", action="store_true",
                        help="list what moves into the collector's oldest generation "
                             "(slows the import: a diagnosis, not a measurement)")
    parser.add_argument("--million", action="store_const", const=1_000_000,
                        dest="list_failures", help="list a journal of 1,000,000 failures")
    parser.add_argument("--list-failures", type=int, metavar="N",
                        help="list a journal of N failures instead of importing")
    parser.add_argument("--fill-journal", nargs=2, metavar=("FOLDER", "N"),
                        help=argparse.SUPPRESS)  # the child process of --list-failures
    args = parser.parse_args()
    if args.fill_journal:
        fill_journal(Path(args.fill_journal[0]), int(args.fill_journal[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="gui-stall-") as tmp:
        work = Path(tmp)
        sandbox = None if args.list_failures else start_sandbox(work)
        if sandbox is not None and args.sandbox_priority == "below":
            # the service stands in for one on another machine: it gives way to the window
            # as the import's own helper processes do, instead of taking the window's core
            psutil.Process(sandbox.process.pid).nice(HELPER_NICENESS)
        try:
            current = QApplication.instance()
            app = current if isinstance(current, QApplication) else QApplication([])
            loop = GuiEventLoop(app)
            asyncio.set_event_loop(loop)
            window = MainWindow(settings=QSettings(str(work / "s.ini"),
                                                   QSettings.Format.IniFormat))
            window._bench_sandbox = sandbox  # type: ignore[attr-defined]
            window.resize(1280, 820)
            window.show()
            QApplication.processEvents()
            with loop:
                if args.list_failures:
                    loop.run_until_complete(run_million(args, work, window))
                else:
                    assert sandbox is not None
                    loop.run_until_complete(run_import(args, work, window, sandbox.base_url))
                window.close()  # saves settings and stops the file workers
                window.deleteLater()
                QApplication.processEvents()
                background.wait_for_all()  # as run_gui does before the app ends
        finally:
            if sandbox is not None:
                sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
