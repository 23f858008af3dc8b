"""How long does the window freeze during a big import? And how fast does the failure table sort?

    python bench/gui_stall.py [--customers 210000] [--failures 100000]

Runs the real main window offscreen (QT_QPA_PLATFORM=offscreen) on the qasync loop and
imports a generated file through it against the sandbox API running in its own process,
with "Auto-refresh during import" on and the Failed Customers tab showing. A QTimer ticking
every 10 ms records the gaps between its ticks: the worst gap is the longest the window
could not repaint or react. It goes on ticking for 3 s after the import finished (final
refresh, summaries, the retry prompt), reported apart. Then the failure table is sorted by
each column.
Prints figures; it is a measurement, not a test. Targets: worst stall < 50 ms, sort < 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

import qasync  # noqa: E402
from import_throughput import TOKEN, sandbox_call, start_sandbox  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.services.sandbox.sample_customers import generate_customers, write_customer_file  # noqa: E402
from app.views.main_thread_gc import MainThreadGarbageCollector  # noqa: E402
from app.views.main_window import MainWindow  # noqa: E402

TARGET_STALL_MS = 50.0
TARGET_SORT_S = 0.5
AFTER_IMPORT_S = 3.0
LONG_GAP_MS = 30.0  # gaps listed with the time they happened


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

    def start(self) -> None:
        self.gaps_ms.clear()
        self.long_gaps.clear()
        self.clock.start()
        self.since_start.start()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        gap = self.clock.nsecsElapsed() / 1e6
        self.gaps_ms.append(gap)
        if gap > LONG_GAP_MS:
            self.long_gaps.append((self.since_start.elapsed() / 1000, gap))
        self.clock.restart()


async def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace, work: Path, window: MainWindow, base_url: str) -> None:
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
    finished = asyncio.get_running_loop().create_future()
    window.runner.finished.connect(lambda s: finished.done() or finished.set_result(s))
    shown = window.failed_tab if args.show == "failed" else window.import_tab
    meter.start()
    window.start_import()
    window.tabs.setCurrentWidget(shown)  # by default the failure table is on screen: worst case
    summary = await finished
    during_import = len(meter.gaps_ms)
    # what follows the import (final refresh, summaries, the retry prompt) counts too
    await asyncio.sleep(AFTER_IMPORT_S)
    meter.stop()
    after = sorted(meter.gaps_ms[during_import:]) or [0.0]
    gaps = sorted(meter.gaps_ms[1:during_import]) or [0.0]
    worst = gaps[-1]
    p99 = gaps[int(len(gaps) * 0.99) - 1] if len(gaps) > 100 else worst
    over = sum(1 for g in gaps if g > TARGET_STALL_MS)
    rows = window.failed_tab.model.rowCount()
    print(f"\nImport: {summary.total:,} read, {summary.succeeded:,} imported, "
          f"{summary.failed:,} failed in {summary.duration_s:.1f} s "
          f"({summary.total / summary.duration_s:,.0f} customers/s); table rows {rows:,}")
    print(f"GUI thread, 10 ms ticks: {len(gaps):,} gaps, median {statistics.median(gaps):.1f} ms,"
          f" p99 {p99:.1f} ms, worst {worst:.1f} ms, {over} gaps over {TARGET_STALL_MS:.0f} ms"
          f"   {'✓' if worst < TARGET_STALL_MS else '✗'} (target worst < 50 ms)")
    if meter.long_gaps:
        longest = sorted(meter.long_gaps, key=lambda tg: -tg[1])[:8]
        shown = ", ".join(f"{g:.0f} ms at {t:.1f} s" for t, g in sorted(longest))
        print(f"  the {len(longest)} longest gaps over {LONG_GAP_MS:.0f} ms, in time order "
              f"(import took {summary.duration_s:.1f} s): {shown}")
    print(f"The {AFTER_IMPORT_S:.0f} s after it finished: worst gap {after[-1]:.1f} ms, "
          f"{sum(1 for g in after if g > TARGET_STALL_MS)} gaps over "
          f"{TARGET_STALL_MS:.0f} ms   {'✓' if after[-1] < TARGET_STALL_MS else '✗'}")
    model = window.failed_tab.model
    print(f"\nSorting the failure table ({rows:,} rows, shown through the proxy):")
    for column in range(model.columnCount()):
        name = model.headerData(column, Qt.Orientation.Horizontal)
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            started = time.perf_counter()
            window.failed_tab.table.sortByColumn(column, order)
            QApplication.processEvents()
            took = time.perf_counter() - started
            mark = "✓" if took < TARGET_SORT_S else "✗"
            print(f"  {name:<12} {order.name:<16} {took * 1000:7.1f} ms  {mark}")
    state = sandbox_call(window._bench_sandbox, "GET", "/_sandbox/state")  # type: ignore[attr-defined]
    print(f"\nSandbox holds {state['customers']:,} customers")


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gui-stall-") as tmp:
        work = Path(tmp)
        sandbox = start_sandbox(work)
        try:
            app = QApplication.instance() or QApplication([])
            collector = MainThreadGarbageCollector(app)  # as run_gui does
            loop = qasync.QEventLoop(app)
            asyncio.set_event_loop(loop)
            window = MainWindow(settings=QSettings(str(work / "s.ini"),
                                                   QSettings.Format.IniFormat))
            window._bench_sandbox = sandbox  # type: ignore[attr-defined]
            window.resize(1280, 820)
            window.show()
            QApplication.processEvents()
            collector.freeze_startup_objects()  # as run_gui does once the window is up
            with loop:
                loop.run_until_complete(run(args, work, window, sandbox.base_url))
                window.close()  # saves settings and stops the file workers
                window.deleteLater()
                QApplication.processEvents()
        finally:
            sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
