"""Workers of the window nap now and then, so that it gets Python's lock to paint."""

from __future__ import annotations

import time

from app.services import worker_pacing
from app.services.jobs.journal import Journal
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.worker_pacing import NAP_EVERY_S, GilPacer, paced


def test_a_pacer_naps_once_per_slice_of_work(monkeypatch):
    naps: list[float] = []
    monkeypatch.setattr(worker_pacing.time, "sleep", naps.append)
    pace = GilPacer()
    pace()
    assert naps == []  # no work done yet: no nap
    deadline = time.perf_counter() + NAP_EVERY_S * 5
    calls = 0
    while time.perf_counter() < deadline:
        pace()
        calls += 1
    # about one nap per 2 ms of work (fewer when the machine stalls us), never one a call
    assert 1 <= len(naps) <= 6 and calls > len(naps) * 10
    assert set(naps) == {worker_pacing.NAP_S}


def test_paced_keeps_every_item_in_order():
    calls = []
    assert list(paced(range(200), lambda: calls.append(1), every=64)) == list(range(200))
    assert len(calls) == 4  # items 0, 64, 128 and 192


async def test_the_journal_paces_its_long_reads(make_engine, tmp_path):
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(300, refused=150))
    summary = await make_engine([source]).run()
    assert summary.failed == 150
    journal = Journal.open(tmp_path / "out", create=False)
    calls: list[int] = []
    journal.pace = lambda: calls.append(1)
    try:
        rows = list(journal.failure_rows())
        after_rows = len(calls)
        jobs = journal.jobs()
        after_jobs = len(calls)
        histories = journal.file_history([f.sha256 for f in jobs[0].files])
    finally:
        journal.close()
    assert len(rows) == 150 and len(jobs) == 1 and len(histories) == 1
    assert after_rows == 3  # rows 0, 64 and 128
    assert after_jobs > after_rows  # the job and its file
    # the file's history: its batches, and its 150 failures every 64
    assert len(calls) - after_jobs >= 1 + 3
