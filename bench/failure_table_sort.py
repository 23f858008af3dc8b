"""Failed Customers table benchmark: sorting and live inserts at 100,000 failures.

Run from the repository root (with the project's venv active):

    python bench/failure_table_sort.py               # 100,000 records
    python bench/failure_table_sort.py --records 20000

What it measures, with a FailureTableModel + FailureFilterProxy + the tab's table view
(offscreen, shown, 1200x700) as in the Failed Customers tab:

1. sorting by each column, ascending and descending, through the view
   (`QTableView.sortByColumn`, what a header click does), until the view has processed
   the layout change; target < 0.5 s each;
2. filtering by search text and by result type; then, in the real tab, select all rows,
   sort with everything selected, and copy the selection;
3. the model taking in 100,000 records arriving in chunks of 1,000 (one
   `pull_new_records()` per chunk, view attached), total and worst chunk;
4. the same arrival from a worker thread with live updates on (the 150 ms timer pulls),
   at --rate failures/s and then as fast as possible, while a 16 ms GUI timer measures
   how long the event loop was kept busy (stutter).

It is a measurement, not a test: it always exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QEvent, Qt, QTimer
from PySide6.QtWidgets import QApplication, QTableView

from app.models.failure_store import FailureStore
from app.models.failure_table_model import (
    COL_TIMESTAMP,
    COL_USERNAME,
    COLUMNS,
    FailureFilterProxy,
    FailureTableModel,
)
from app.models.records import FailureRecord
from app.services.sandbox.sample_customers import generate_customers
from app.views.failed_customers_tab import FailedCustomersTab
from app.views.growing_table_view import GrowingTableView
from app.views.text_only_delegate import TextOnlyDelegate

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


def make_records(count: int) -> list[FailureRecord]:
    """`count` failures of realistic sample customers, in a shuffled-looking order."""
    records = []
    for n, customer in enumerate(generate_customers(count, seed=11)):
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


def build_view(model: FailureTableModel) -> tuple[FailureFilterProxy, QTableView]:
    proxy = FailureFilterProxy()
    proxy.setSourceModel(model)
    view = GrowingTableView()  # as the Failed Customers tab has it
    view.setItemDelegate(TextOnlyDelegate(view))
    view.setModel(proxy)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    view.setSortingEnabled(True)
    view.resize(1200, 700)
    view.show()
    return proxy, view


def timed(app: QApplication, action) -> float:
    start = time.perf_counter()
    action()
    app.processEvents()  # let the view handle the change as it would on screen
    return time.perf_counter() - start


def bench_sort(app: QApplication, records: list[FailureRecord]) -> None:
    store = FailureStore()
    store.upsert(records)
    model = FailureTableModel(store)
    proxy, view = build_view(model)
    app.processEvents()
    view.selectRow(5)  # a selection makes the persistent-index update part of the cost
    print(f"\nSorting {model.rowCount():,} rows through the view (target < {SORT_TARGET_S} s)")
    print(f"  {'column':<14}{'ascending':>12}{'descending':>12}")
    worst = 0.0
    for column, name in enumerate(COLUMNS):
        times = []
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            seconds = timed(app, lambda c=column, o=order: view.sortByColumn(c, o))
            times.append(seconds)
            worst = max(worst, seconds)
        print(f"  {name:<14}{times[0]:>11.3f}s{times[1]:>11.3f}s")
    verdict = "OK" if worst < SORT_TARGET_S else "SLOWER THAN TARGET"
    print(f"  worst: {worst:.3f} s  -> {verdict}")

    print("\nFiltering")
    for label, action in (
        ("search 'andersson'", lambda: proxy.set_search_text("andersson")),
        ("search cleared", lambda: proxy.set_search_text("")),
        ("result = CONFLICT", lambda: proxy.set_result_filter("CONFLICT")),
        ("result = all", lambda: proxy.set_result_filter(None)),
    ):
        seconds = timed(app, action)
        print(f"  {label:<22}{seconds:>8.3f}s  ({proxy.rowCount():,} rows shown)")
    seconds = timed(app, model.result_counts)
    seconds += timed(app, model.error_type_summary)
    print(f"  summary (first time)  {seconds:>8.3f}s")
    view.close()
    model.detach()


def bench_tab_selection(app: QApplication, records: list[FailureRecord]) -> None:
    store = FailureStore()
    store.upsert(records)
    tab = FailedCustomersTab(store, lambda: Path(tempfile.gettempdir()) / "none.json")
    tab.resize(1200, 700)
    tab.show()
    app.processEvents()
    print(f"\nThe Failed Customers tab with all {len(records):,} rows selected (Ctrl+A)")
    seconds = timed(app, tab.table.selectAll)
    print(f"  select all            {seconds:>8.3f}s")
    for column in (COL_USERNAME, COL_TIMESTAMP):
        seconds = timed(app, lambda c=column: tab.table.sortByColumn(
            c, Qt.SortOrder.DescendingOrder))
        print(f"  sort by {COLUMNS[column]:<13} {seconds:>8.3f}s  "
              f"({len(tab.selected_records()):,} still selected)")
    seconds = timed(app, tab.copy_selected)
    print(f"  copy selected         {seconds:>8.3f}s")
    tab.close()
    tab.deleteLater()  # gone now, not in whatever order Python's shutdown picks
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


def bench_chunked_inserts(app: QApplication, records: list[FailureRecord]) -> None:
    store = FailureStore()
    model = FailureTableModel(store)
    _proxy, view = build_view(model)
    app.processEvents()
    inserts = 0

    def count_insert(*_args: object) -> None:
        nonlocal inserts
        inserts += 1

    model.rowsInserted.connect(count_insert)
    pulls: list[float] = []
    paints: list[float] = []
    for first in range(0, len(records), CHUNK):
        store.upsert(records[first:first + CHUNK])
        t0 = time.perf_counter()
        model.pull_new_records()  # model + proxy + view bookkeeping, all synchronous
        t1 = time.perf_counter()
        app.processEvents()  # the repaint that follows
        pulls.append(t1 - t0)
        paints.append(time.perf_counter() - t1)
    print(f"\nTaking in {len(records):,} records in chunks of {CHUNK:,} (view attached)")
    print(f"  {inserts} row inserts; pull_new_records: total {sum(pulls):.3f} s, "
          f"mean {sum(pulls) / len(pulls) * 1000:.1f} ms, worst {max(pulls) * 1000:.1f} ms "
          f"per chunk")
    print(f"  repaint after each chunk: mean {sum(paints) / len(paints) * 1000:.1f} ms "
          f"(with live updates at most one per 150 ms)")
    view.close()
    model.detach()


def bench_live(app: QApplication, records: list[FailureRecord], rate: int) -> None:
    store = FailureStore()
    model = FailureTableModel(store)
    _proxy, view = build_view(model)
    model.set_live_updates(True)
    app.processEvents()

    def producer() -> None:  # an import appending failures from another thread
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

    def tick() -> None:
        gaps.append(clock.restart())

    ticker.timeout.connect(tick)
    thread = threading.Thread(target=producer, daemon=True)
    start = time.perf_counter()
    clock.start()
    ticker.start()
    thread.start()
    while thread.is_alive() or model.rowCount() < len(records):
        app.processEvents()
        time.sleep(0.001)
    total = time.perf_counter() - start
    ticker.stop()
    gaps.sort()
    p95 = gaps[int(len(gaps) * 0.95)] if gaps else 0
    pace = f"{rate:,}/s" if rate else "as fast as possible"
    print(f"\nLive: {len(records):,} records appended by a worker thread ({pace}), "
          "150 ms pulls")
    print(f"  all shown after {total:.2f} s; GUI timer (16 ms) gaps: "
          f"p95 {p95} ms, worst {max(gaps, default=0)} ms")
    view.close()
    model.detach()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=20_000,
                        help="failures per second in the live run (default 20,000: twice "
                             "the importer's whole throughput target)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    t0 = time.perf_counter()
    records = make_records(args.records)
    print(f"Built {len(records):,} failure records in {time.perf_counter() - t0:.2f} s "
          f"(Python {sys.version.split()[0]})")
    bench_sort(app, records)
    bench_tab_selection(app, records)
    bench_chunked_inserts(app, records)
    bench_live(app, records, args.rate)
    bench_live(app, records, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
