"""Import jobs: the journal, resume after a crash, what a second import sends, history."""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.models.failure_store import FailureStore
from app.services.jobs.journal import JobState, Journal, JournalTooNew, journal_path
from app.services.jobs.journal_writer import GROUP_S
from app.services.pipeline.import_events import ImportState
from app.services.results.failure_list_file import load_failure_list
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import ROOT, run_cli, until
from tests.test_helper_processes import wait_until


def history(output: Path) -> list[dict]:
    done = run_cli("history", "--output-dir", str(output), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_killed_import_is_resumed_with_exact_accounting(sandbox_thread, tmp_path):
    server = sandbox_thread.server
    server.config.latency_ms = 40
    customers = 4_000
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(customers))
    out = tmp_path / "out"
    base = [sys.executable, str(ROOT / "main.py"), "import", "--token", server.static_token,
            "--output-dir", str(out), "--batch-size", "20", "--concurrency", "4", "--json"]
    first = [*base, str(source), "--url", server.customers_url("c4r")]
    resume = [*base, "--resume", "last"]
    rng = random.Random(20261130)
    kills = 0
    for low, high in ((0.10, 0.25), (0.35, 0.55), (0.65, 0.85)):
        threshold = int(customers * rng.uniform(low, high))
        command = first if kills == 0 else resume
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            assert wait_until(lambda t=threshold: len(server.customers) >= t, timeout=60)
        finally:
            process.kill()  # kill -9: no chance to write anything more
            process.wait(timeout=10)
        kills += 1
        [job] = history(out)
        assert job["state"] == "interrupted"
    done = subprocess.run(resume, cwd=ROOT, capture_output=True, text=True,
                          encoding="utf-8", timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed"] and summary["job"] == 1
    # the whole job's totals, every customer imported once
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (customers,
                                                                           customers, 0)
    assert len(server.customers) == customers
    state = server.state()
    # a kill costs at most the batches in flight (4) and those finished since the last
    # journal commit: at 4 batches per 40 ms, GROUP_S's worth and the commit under way
    finished_meanwhile = math.ceil(4 / 0.040 * GROUP_S) + 1
    # each customer reached the service, and was sent again only when a kill left it
    # unrecorded: so few of them, and none more than once per kill
    assert len(server.create_attempts) == customers
    assert state["repeated_creates"] <= kills * (4 + finished_meanwhile) * 20
    assert max(server.create_attempts.values()) <= 1 + kills
    resent = state["create_attempts_total"] - customers
    assert resent <= kills * (4 + finished_meanwhile) * 20, resent
    [job] = history(out)
    assert (job["state"], job["total"], job["succeeded"], job["failed"]) == (
        "completed", customers, customers, 0)
    assert job["open_failures"] == 0


def test_a_second_import_sends_only_the_customers_not_yet_imported(sandbox_thread, tmp_path):
    server = sandbox_thread.server
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(300, refused=6))
    out = tmp_path / "out"
    common = ["--url", server.customers_url("c4r"), "--token", server.static_token,
              "--output-dir", str(out), "--json", "--retries", "0", "--concurrency", "1"]
    server.config.fail_first_requests = 3  # the first 3 batches of 50 fail as a whole
    first = json.loads(run_cli("import", str(source), *common).stdout)
    assert first["failed_by_result"] == {"HTTP_ERROR": 150, "FAILED": 6}
    requests_before = server.request_count
    server.config.fail_first_requests = 0
    second = json.loads(run_cli("import", str(source), *common).stdout)
    assert second["skipped_already_imported"] == 144
    assert second["total"] == 156 and second["succeeded"] == 150
    assert second["failed_by_result"] == {"FAILED": 6}
    assert second["resolved"] == 150 and second["open_failures"] == 6
    assert server.request_count - requests_before == 4  # 156 customers in batches of 50
    # all in now but the refused six: a third import skips the file's imported customers
    third = run_cli("import", str(source), *common)
    summary = json.loads(third.stdout)
    assert summary["skipped_already_imported"] == 294 and summary["total"] == 6
    # with --force, everything is sent again
    forced = json.loads(run_cli("import", str(source), *common, "--force").stdout)
    assert forced["total"] == 300 and forced["skipped_already_imported"] == 0
    assert forced["failed_by_result"]["CONFLICT"] == 294


def test_a_file_whose_customers_all_went_in_is_skipped_naming_the_job(sandbox_thread,
                                                                       tmp_path):
    server = sandbox_thread.server
    source = tmp_path / "kunder_klara.json"
    write_customer_file(source, generate_customers(120))
    common = ["--url", server.customers_url("c4r"), "--token", server.static_token,
              "--output-dir", str(tmp_path / "out"), "--json"]
    assert json.loads(run_cli("import", str(source), *common).stdout)["job"] == 1
    again = run_cli("import", str(source), *common)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["total"] == 0 and summary["skipped_already_imported"] == 120
    started = history(tmp_path / "out")[1]["started"][:16].replace("T", " ")
    assert summary["notes"] == ["kunder_klara.json: all its customers were imported before "
                                f"(job #1, {started}): skipped"]
    assert "Note: kunder_klara.json: all its customers were imported before" in again.stderr


async def test_the_failure_list_after_a_successful_retry(make_engine, sandbox, tmp_path):
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(400, refused=10))
    sandbox.config.fail_first_requests = 4  # an outage: 4 batches of 50 fail as a whole
    store = FailureStore()
    first = await make_engine([source], store=store, max_retries=0, concurrency=1).run()
    assert first.failed_by_result == {"HTTP_ERROR": 200, "FAILED": 10}
    assert store.open_count == 210
    singles = first.single_failures_dir
    assert not (singles / "HTTP_ERROR").exists()  # an outage writes no single files
    sandbox.config.fail_first_requests = 0
    retry = await make_engine([first.retry_dir], store=store).run()
    assert (retry.succeeded, retry.failed) == (200, 10)
    assert retry.resolved == 200
    # one open failure per customer, and the retried ones are gone from every list
    open_records = load_failure_list(retry.failed_file)
    assert len(open_records) == 10 == retry.open_failures
    assert [r.result for r in open_records] == ["FAILED"] * 10
    assert {r.attempts for r in open_records} == {2}
    assert store.open_count == 10 and len(store) == 210  # resolved ones stay, greyed
    summary = json.loads((singles / "FAILED" / "_SUMMARY_FAILED.json").read_text("utf-8"))
    assert summary["count"] == 10


def test_a_journal_of_a_newer_version_is_refused(sandbox_thread, tmp_path):
    out = tmp_path / "out"
    Journal.open(out).close()
    with sqlite3.connect(journal_path(out)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(JournalTooNew):
        Journal.open(out)
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(10))
    server = sandbox_thread.server
    done = run_cli("import", str(source), "--url", server.customers_url("c4r"), "--token",
                   server.static_token, "--output-dir", str(out), "--json")
    assert done.returncode == 2
    summary = json.loads(done.stdout)
    assert "written by a newer version of Bulk Customer Import" in summary["refused"]
    assert server.request_count == 0 and summary["total"] == 0


def test_a_corrupt_journal_is_moved_aside_and_a_new_one_started(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    journal_path(out).write_bytes(b"this is not a database" * 100)
    (out / "retry_batches_20260101_000000").mkdir()
    journal = Journal.open(out)
    try:
        assert len(journal.notes) == 1 and "moved aside" in journal.notes[0]
        assert journal.jobs() == []
    finally:
        journal.close()
    aside = list(out.glob("import_history.unreadable-*.sqlite"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert (out / "retry_batches_20260101_000000").is_dir()  # result files untouched


def test_an_earlier_failure_list_is_taken_into_the_history(tmp_path):
    from app.models.records import FailureRecord
    from app.services.results.failure_list_file import write_failure_list

    out = tmp_path / "out"
    older = [FailureRecord(str(7000 + i % 3), "ÅSA", "FAILED", f"attempt {i}",
                           f"2026-01-0{i + 1}T10:00:00", "b", {"person": {}})
             for i in range(5)]
    write_failure_list(out / "failed_customers" / "failed_customers.json",
                       [r.to_row() for r in older])
    journal = Journal.open(out)
    try:
        rows = list(journal.failure_rows())
        assert len(rows) == 3  # one per customer
        assert any("taken over" in note for note in journal.notes)
    finally:
        journal.close()


async def test_job_states_follow_the_import(make_engine, sandbox, tmp_path):
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(200))
    out = tmp_path / "out"
    sandbox.config.latency_ms = 20
    engine = make_engine([source], batch_size=10, concurrency=1)
    run = asyncio.ensure_future(engine.run())
    assert await until(lambda: engine.state == ImportState.RUNNING
                       and engine.progress().done >= 20)
    engine.pause()
    assert await until(lambda: job_state(out) == "paused")
    engine.resume()
    assert await until(lambda: job_state(out) == "running")
    summary = await run
    assert summary.succeeded == 200
    assert job_state(out) == "completed"
    # failures: completed with failures; a cancel: cancelled; a refused token: failed
    write_customer_file(source, generate_customers(10, start_id=9_000, refused=2))
    await make_engine([source]).run()
    assert job_state(out) == "completed_with_failures"
    write_customer_file(source, generate_customers(300, start_id=20_000))
    cancelled = make_engine([source], batch_size=10, concurrency=1)
    run = asyncio.ensure_future(cancelled.run())
    assert await until(lambda: cancelled.progress().done >= 20)
    cancelled.cancel()
    assert (await run).cancelled
    assert job_state(out) == "cancelled"
    write_customer_file(source, generate_customers(10, start_id=30_000))
    await make_engine([source], token="wrong").run()
    assert job_state(out) == "failed"


def job_state(out: Path) -> str:
    journal = Journal.open(out, create=False)
    try:
        return journal.jobs()[0].state.value
    finally:
        journal.close()


def test_a_running_job_without_a_live_process_is_interrupted(tmp_path):
    from app.services.jobs.history import running_check
    from app.services.jobs.journal import FileFingerprint

    out = tmp_path / "out"
    journal = Journal.open(out)
    try:
        job = journal.create_job(kind="import", settings={}, owner="import-1-x.lock",
                                 files=[FileFingerprint("/in/a.json", 10, "ab" * 32)])
        [record] = journal.jobs(running_check(out))
        assert record.id == job and record.state is JobState.INTERRUPTED
        assert journal.jobs()[0].state is JobState.RUNNING  # as written
    finally:
        journal.close()


def test_journal_writes_are_committed_without_a_checkpoint_and_in_groups(tmp_path):
    from app.services.jobs.journal_writer import JournalWriter

    path = tmp_path / "journal.sqlite"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE outcomes (n INTEGER)")
    setup.commit()
    writer = JournalWriter(path)
    try:
        for n in range(200):
            writer.write(lambda db, n=n: db.execute("INSERT INTO outcomes VALUES (?)", (n,)))
        # nobody waits on a checkpoint: the writer commits on its own, shortly
        reader = sqlite3.connect(path)
        assert wait_until(lambda: reader.execute(
            "SELECT count(*) FROM outcomes").fetchone()[0] == 200, timeout=10)
        reader.close()
        assert 1 <= writer.commits < 200  # grouped, not one transaction per write
    finally:
        writer.close()
    assert writer.error is None


def test_a_journal_write_that_breaks_leaves_the_import_going(tmp_path):
    from app.services.jobs.journal_writer import JournalWriter

    path = tmp_path / "journal.sqlite"
    sqlite3.connect(path).close()
    writer = JournalWriter(path)

    def broken(db: sqlite3.Connection) -> None:
        raise ValueError("a bug in a write")

    writer.write(broken)
    # the checkpoint is answered (the import must not hang) and the error is told
    writer.checkpoint().result(timeout=10)
    writer.write(lambda db: db.execute("CREATE TABLE later (x)"))
    writer.checkpoint().result(timeout=10)
    writer.close()
    assert writer.error is not None and "a bug in a write" in writer.error
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []  # after an error the journal is left as it was


def test_record_ranges_cover_exactly_the_numbers_given():
    from app.models.record_ranges import RecordRanges

    assert RecordRanges.of([3, 4, 5, 5, 6]).to_text() == "3-6"
    assert RecordRanges.of([9, 1, 2, 4]).to_text() == "1-2,4,9"
    assert RecordRanges.of([]).to_text() == ""
    parsed = RecordRanges.parse("1-2,4,9")
    assert [n for n in range(12) if n in parsed] == [1, 2, 4, 9]


async def test_the_journal_lists_what_the_import_showed(make_engine, sandbox, tmp_path):
    from app.models.failure_store import FailureStore

    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(300, conflicts=20, refused=30, invalid=10))
    store = FailureStore()
    summary = await make_engine([source], store=store).run()
    assert summary.failed == 60 and len(store) == 60
    live = store.records()
    notices: list[int] = []
    store.add_listener(notices.append)
    # the journal holds what the import showed, to the last field: the window's list,
    # which is the journal once attached, shows the same
    store.attach(journal_path(tmp_path / "out"))
    assert notices == [0] and store.source.journal
    def by_key(records: list) -> list:
        return sorted(records, key=lambda r: r.customer_key)

    assert by_key(store.records()) == by_key(live) and len(live) == 60
