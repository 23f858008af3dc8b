"""Failed Customers table benchmark: sorting, filtering and live arrival at 100,000 failures.

Run from the repository root (with the project's venv active):

    python bench/failure_table_sort.py               # 100,000 records
    python bench/failure_table_sort.py --records 20000

What it measures, with the Failed Customers tab (offscreen, shown, 1200x700) over a
`FailureStore` holding the failures in its own database (a list no journal backs):

1. sorting by each column, ascending and descending, through the view
   (`QTableView.sortByColumn`, what a header click does), until the table shows the new
   order; target < 0.5 s each;
2. filtering by search text and by result type; then selecting all rows, sorting with
   everything selected, and copying the selection;
3. failures arriving from a worker thread with live updates on (as during an import), at
   --rate failures/s and then as fast as possible, while a 16 ms GUI timer measures how
   long the event loop was kept busy (stutter).

For a million failures in a results folder's journal, see `bench/gui_stall.py --million`.
It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QEvent, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.models.failure_store import FailureStore
from app.models.failure_table_model import COL_TIMESTAMP, COL_USERNAME, COLUMNS
from app.models.records import FailureRecord
from app.services.sandbox.sample_customers import generate_customers
from app.util import background
from app.views.failed_customers_tab import FailedCustomersTab

SORT_TARGET_S = 0.5
CHUNK = 1_000

FAILURES = (
    ("CONFLICT", "Customer {id} already exists with this ID",
     "Found in structured response data"),
    ("FAILED", "lastName is required for customer {id}", "Found in structured response data"),
    ("INVALID", "customerId is not a number in record {n}", "Refused before sending"),
    ("HTTP_ERROR", "HTTP 503 after 4 attempts: Service Unavailable",
     "Whole batch failed (HTTP 503)"),
    ("TIMEOUT", "no answer within 30 s", "Whole batch failed (timeout)"),
)


def make_records(count: int, start: int = 0) -> list[FailureRecord]:
    """`count` failures of realistic sample customers, in a shuffled-looking order."""
    records = []
    for n, customer in enumerate(generate_customers(count, seed=11, start_id=50000001000
                                                    + start), start=start):
        person = customer["person"]
        result, error, info = FAILURES[(n * 7) % len(FAILURES)]
        batch = n // 250 + 1
        cid = person["customerId"] if n % 97 else f"X-{n}"
        records.append(FailureRecord(
            customer_id=cid,
            username=f"{person['firstName']} {person['lastName']}".upper(),
            result=result,
            error=error.format(id=cid, n=n + 1),
            timestamp=f"2025-01-07T{10 + n % 12:02d}:{(n * 13) % 60:02d}:"
                      f"{(n * 29) % 60:02d}.{n % 1_000_000:06d}",
            batch_info=f"{info} · batch {batch}",
            original_data=customer,
            source_file="/data/customers_2025.json",
            record_number=n + 1,
            batch_number=batch,
            http_status=409 if result == "CONFLICT" else None,
        ))
    return records


def make_tab(store: FailureStore) -> FailedCustomersTab:
    tab = FailedCustomersTab(store, lambda: Path(tempfile.gettempdir()) / "none")
    tab.resize(1200, 700)
    tab.show()
    return tab


def settle(app: QApplication, tab: FailedCustomersTab) -> None:
    while tab.model.is_busy() or not tab.model.is_idle():
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()  # the view takes the answer in and paints it


def timed(app: QApplication, tab: FailedCustomersTab, action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    settle(app, tab)
    return time.perf_counter() - start


def close(app: QApplication, tab: FailedCustomersTab) -> None:
    tab.close()
    tab.deleteLater()  # gone now, not in whatever order Python's shutdown picks
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


def bench_sort_and_filter(app: QApplication, records: list[FailureRecord]) -> None:
    store = FailureStore()
    started = time.perf_counter()
    store.upsert(records)
    print(f"Stored {len(records):,} failures in {time.perf_counter() - started:.2f} s")
    tab = make_tab(store)
    seconds = timed(app, tab, lambda: None)
    print(f"Listed {tab.model.rowCount():,} rows in {seconds:.2f} s (sort indexes made)")
    tab.table.selectRow(5)  # a selection: keeping it is part of the cost
    print(f"\nSorting {tab.model.rowCount():,} rows through the view "
          f"(target < {SORT_TARGET_S} s)")
    print(f"  {'column':<14}{'ascending':>12}{'descending':>12}")
    worst = 0.0
    for column, name in enumerate(COLUMNS):
        times = [timed(app, tab, lambda c=column, o=order: tab.table.sortByColumn(c, o))
                 for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder)]
        worst = max(worst, *times)
        print(f"  {name:<14}{times[0]:>11.3f}s{times[1]:>11.3f}s")
    print(f"  worst: {worst:.3f} s  -> {'OK' if worst < SORT_TARGET_S else 'SLOWER THAN TARGET'}")

    print("\nFiltering")
    model = tab.model
    for label, action in (
        ("search 'andersson'", lambda: model.set_search_text("andersson")),
        ("search 'ström'", lambda: model.set_search_text("ström")),
        ("search cleared", lambda: model.set_search_text("")),
        ("result = CONFLICT", lambda: model.set_result_filter("CONFLICT")),
        ("result = all", lambda: model.set_result_filter(None)),
    ):
        seconds = timed(app, tab, action)
        print(f"  {label:<22}{seconds:>8.3f}s  ({model.rowCount():,} rows shown)")
    seconds = timed(app, tab, model.request_summary)
    print(f"  kinds of error        {seconds:>8.3f}s")

    print(f"\nAll {model.rowCount():,} rows selected (Ctrl+A)")
    seconds = timed(app, tab, tab.table.selectAll)
    print(f"  select all            {seconds:>8.3f}s")
    for column in (COL_USERNAME, COL_TIMESTAMP):
        seconds = timed(app, tab, lambda c=column: tab.table.sortByColumn(
            c, Qt.SortOrder.DescendingOrder))
        print(f"  sort by {COLUMNS[column]:<13} {seconds:>8.3f}s  "
              f"({len(tab.selected_rows()):,} still selected)")
    copied: list[str] = []
    tab.statusMessage.connect(copied.append)
    started = time.perf_counter()
    tab.copy_selected()
    while not any(m.startswith("Copied") for m in copied):
        app.processEvents()
        time.sleep(0.001)
    print(f"  copy selected         {time.perf_counter() - started:>8.3f}s (read off the GUI "
          "thread)")
    close(app, tab)
    store.close()


def bench_live(app: QApplication, records: list[FailureRecord], rate: int) -> None:
    store = FailureStore()
    tab = make_tab(store)
    settle(app, tab)
    tab.set_import_running(True)

    def producer() -> None:  # an import's failures arriving from another thread
        begin = time.perf_counter()
        for first in range(0, len(records), CHUNK):
            store.upsert(records[first:first + CHUNK])
            # keep to `rate` failures per second (0: as fast as possible)
            due = begin + (first + CHUNK) / rate if rate else 0
            time.sleep(max(0.0, due - time.perf_counter()))

    clock = QElapsedTimer()
    gaps: list[int] = []
    ticker = QTimer()
    ticker.setInterval(16)
    ticker.timeout.connect(lambda: gaps.append(clock.restart()))
    thread = threading.Thread(target=producer, daemon=True)
    start = time.perf_counter()
    clock.start()
    ticker.start()
    thread.start()
    while thread.is_alive() or tab.model.rowCount() < len(records):
        app.processEvents()
        time.sleep(0.001)
    total = time.perf_counter() - start
    ticker.stop()
    gaps.sort()
    p95 = gaps[int(len(gaps) * 0.95)] if gaps else 0
    pace = f"{rate:,}/s" if rate else "as fast as possible"
    print(f"\nLive: {len(records):,} failures stored by a worker thread ({pace})")
    print(f"  all shown after {total:.2f} s; GUI timer (16 ms) gaps: "
          f"p95 {p95} ms, worst {max(gaps, default=0)} ms")
    tab.set_import_running(False)
    close(app, tab)
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=20_000,
                        help="failures per second in the live run (default 20,000: twice "
                             "the importer's whole throughput target)")
    args = parser.parse_args()
    current = QApplication.instance()
    app = current if isinstance(current, QApplication) else QApplication([])
    t0 = time.perf_counter()
    records = make_records(args.records)
    print(f"Built {len(records):,} failure records in {time.perf_counter() - t0:.2f} s "
          f"(Python {sys.version.split()[0]})")
    bench_sort_and_filter(app, records)
    bench_live(app, records, args.rate)
    bench_live(app, records, 0)
    background.wait_for_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
