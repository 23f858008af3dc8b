"""End-to-end imports against the sandbox API over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from pathlib import Path

import pytest

from app.models.failure_store import FailureStore
from app.services.pipeline.import_events import ImportState, ImportSummary
from app.services.results.failure_list_file import load_failure_list
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import RecordingListener


def already_exists(summary: ImportSummary) -> set[str]:
    """The ids of the failures the summary's failure list reports as ALREADY_EXISTS."""
    return {r.customer_id for r in load_failure_list(summary.failed_file)
            if r.result == "ALREADY_EXISTS"}


def write_sample(path: Path, count: int, **kwargs) -> Path:
    write_customer_file(path, generate_customers(count, **kwargs))
    return path


async def test_clean_import_imports_everyone(make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "kunder.json", 230)
    listener = RecordingListener()
    summary = await make_engine([source], listener=listener).run()
    assert (summary.total, summary.succeeded, summary.failed) == (230, 230, 0)
    assert len(sandbox.customers) == 230
    assert summary.retry_dir is None and summary.exit_code == 0
    assert listener.summary is summary
    assert listener.progress_reports[-1].state == ImportState.FINISHED


async def test_mixed_failures_are_accounted_exactly(make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "mixed.json", 120, conflicts=4, refused=6,
                          invalid=4)
    store = FailureStore()
    summary = await make_engine([source], store=store).run()
    assert summary.total == 120
    assert summary.succeeded + summary.failed == 120
    assert summary.failed_by_result == {"CONFLICT": 4, "FAILED": 6, "INVALID": 4}
    assert len(store) == 14
    by_result = {}
    for record in store.records():
        by_result.setdefault(record.result, []).append(record)
        assert record.original_data is not None
        assert record.source_file.endswith("mixed.json")
        assert record.record_number > 0
    invalid_errors = " ".join(r.error for r in by_result["INVALID"])
    assert "customerId" in invalid_errors and "birthday" in invalid_errors
    assert "mixed.json, record" in invalid_errors
    assert all(r.error for r in by_result["FAILED"])
    # the sample's conflicts repeat ids of the same file: said so, and never retried
    assert len(by_result["CONFLICT"]) == 4
    for record in by_result["CONFLICT"]:
        assert "hold this id more than once" in record.error and not record.retriable
    # retry folder holds the 6 refused customers in API format; INVALID and the
    # conflicts with an id of the same import stay out of it
    retry_files = sorted(summary.retry_dir.glob("retry_batch_*_failed.json"))
    entries = [e for f in retry_files for e in json.loads(f.read_text("utf-8"))["data"]]
    assert len(entries) == 6
    summary_file = json.loads((summary.retry_dir / "retry_summary.json").read_text("utf-8"))
    assert len(summary_file["notRetried"]) == 8
    assert (summary.retry_dir / "RETRY_INSTRUCTIONS.md").exists()
    saved = json.loads(summary.failed_file.read_text("utf-8"))
    assert len(saved) == 14 and {"customerId", "username", "result", "error", "timestamp",
                                 "batchInfo", "originalData"} <= saved[0].keys()
    singles = summary.single_failures_dir
    assert len(list((singles / "CONFLICT").glob("customer_*.json"))) == 4
    assert (singles / "CONFLICT" / "_SUMMARY_CONFLICT.json").exists()
    assert summary.exit_code == 1


async def test_retry_files_reimport_to_full_success(make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 300)
    sandbox.config.error_rate = 1.0  # every request fails: all customers end in retry files
    first = await make_engine([source], max_retries=1).run()
    assert first.succeeded == 0 and first.failed == 300
    assert set(first.failed_by_result) == {"HTTP_ERROR"}
    sandbox.config.error_rate = 0.0
    second = await make_engine([first.retry_dir]).run()
    assert (second.total, second.succeeded, second.failed) == (300, 300, 0)
    assert len(sandbox.customers) == 300
    # the first run's requests were all refused unread: each customer reached the service
    # once, with the retry
    assert len(sandbox.create_attempts) == 300
    assert max(sandbox.create_attempts.values()) == 1


async def test_outcome_unknown_conflict_is_reported_as_already_exists(make_engine, sandbox,
                                                                       tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 100)
    sandbox.config.error_after_processing_rate = 0.3
    summary = await make_engine([source], batch_size=10).run()
    assert summary.total == 100
    assert summary.succeeded + summary.failed == 100
    processed_then_500 = sandbox.fault_counts["error_after_processing"]
    assert processed_then_500 > 0
    assert set(summary.failed_by_result) <= {"ALREADY_EXISTS"}
    assert "CONFLICT" not in summary.failed_by_result
    assert len(sandbox.customers) == 100
    # sent again only where an answer was lost: each lost answer's 10 customers once more
    assert len(sandbox.create_attempts) == 100
    assert sandbox.create_attempts.total() == 100 + 10 * processed_then_500
    resent = {c for c, n in sandbox.create_attempts.items() if n > 1}
    assert resent == already_exists(summary)


@pytest.mark.parametrize("fault", [
    {"rate_limit_rate": 0.4, "retry_after_s": 0.01},
    {"error_rate": 0.4},
    {"max_concurrent": 2, "retry_after_s": 0.01},
    {"max_batch_size": 7},
    {"shuffle_results": True},
    {"failures_only": True, "errors_array": True},
])
async def test_every_fault_keeps_exact_accounting(make_engine, sandbox, tmp_path, fault):
    source = write_sample(tmp_path / "in" / "f.json", 200, conflicts=3, refused=4, invalid=2)
    for key, value in fault.items():
        setattr(sandbox.config, key, value)
    summary = await make_engine([source], batch_size=20, max_retries=20).run()
    assert summary.total == 200
    assert summary.succeeded + summary.failed == 200
    by_result = Counter(summary.failed_by_result)
    # after a 500 the outcome is unknown, so a real CONFLICT may honestly read ALREADY_EXISTS
    by_result["CONFLICT"] += by_result.pop("ALREADY_EXISTS", 0)
    assert by_result == {"CONFLICT": 3, "FAILED": 4, "INVALID": 2}
    assert len(sandbox.customers) == 191


async def test_401_with_static_token_stops_and_loses_nothing(make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 120)
    summary = await make_engine([source], token="not-a-valid-token").run()
    assert summary.exit_code == 3
    assert "401" in summary.fatal_error
    assert summary.succeeded == 0
    assert summary.failed_by_result == {"NOT_SENT": 120}
    retried = [e for f in summary.retry_dir.glob("retry_batch_*.json")
               for e in json.loads(f.read_text("utf-8"))["data"]]
    assert sorted(e["person"]["customerId"] for e in retried) == sorted(
        c["person"]["customerId"] for c in generate_customers(120))


async def test_cancel_mid_import_puts_every_unsent_customer_in_retry_files(
        make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 2000)
    sandbox.config.latency_ms = 20
    engine = make_engine([source], batch_size=10, concurrency=2)
    seen_progress = asyncio.Event()

    class CancelSoon(RecordingListener):
        def progress(self, progress):
            if progress.succeeded >= 50:
                seen_progress.set()

    engine.listener = CancelSoon()
    task = asyncio.create_task(engine.run())
    await asyncio.wait_for(seen_progress.wait(), 10)
    engine.cancel()
    summary = await task
    assert summary.cancelled and summary.exit_code == 1
    assert summary.total == 2000
    assert summary.succeeded + summary.failed == 2000
    assert summary.failed_by_result["NOT_SENT"] == summary.failed
    retried = [e for f in summary.retry_dir.glob("retry_batch_*.json")
               for e in json.loads(f.read_text("utf-8"))["data"]]
    assert len(retried) == summary.failed
    imported = set(sandbox.customers)
    assert not imported & {e["person"]["customerId"] for e in retried}


async def test_pause_holds_requests_until_resume(make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 2000)
    engine = make_engine([source], batch_size=10, concurrency=2)
    sandbox.config.latency_ms = 10
    task = asyncio.create_task(engine.run())
    while sandbox.request_count < 3:  # condition poll: the import is under way
        await asyncio.sleep(0.005)
    engine.pause()
    while engine._sender.in_flight:  # requests already sent may finish
        await asyncio.sleep(0.005)
    settled = sandbox.request_count
    # proving that nothing happens takes some time: 20 latency periods
    for _ in range(20):
        await asyncio.sleep(0.01)
        assert sandbox.request_count == settled and engine.state == ImportState.PAUSED
    assert not task.done()
    engine.resume()
    summary = await task
    assert summary.succeeded == 2000 and summary.failed == 0


async def test_unreadable_file_is_reported_and_others_go_on(make_engine, sandbox, tmp_path):
    write_sample(tmp_path / "in" / "good.json", 30)
    bad = tmp_path / "in" / "broken.json"
    bad.write_text('{"data": [{"changeType": "CREATE", "person": {"customerId": "1", '
                   '"lastName": "Sjöberg"}},, ]}', encoding="utf-8")
    listener = RecordingListener()
    summary = await make_engine([tmp_path / "in"], listener=listener).run()
    assert summary.succeeded == 31
    assert len(listener.problems) == 1
    assert "broken.json, record 2" in listener.problems[0]
    assert "broken JSON" in listener.problems[0]
    assert summary.exit_code == 2


async def test_a_byte_that_is_not_utf8_costs_only_its_customer(make_engine, sandbox, tmp_path):
    customers = list(generate_customers(6))
    text = json.dumps({"data": customers}, ensure_ascii=False, indent=1)
    raw = text.encode("utf-8")
    # customer 5's last name in Windows-1252: one byte, not UTF-8
    name = customers[4]["person"]["lastName"]
    raw = raw.replace(f'"{name}"'.encode(), f'"Ström{name}"'.encode("cp1252"))
    source = tmp_path / "in" / "mixed_bytes.json"
    source.parent.mkdir(parents=True)
    source.write_bytes(raw)
    store = FailureStore()
    summary = await make_engine([source], store=store).run()
    assert (summary.total, summary.succeeded, summary.failed) == (6, 5, 1)
    [failure] = store.records()
    assert failure.result == "INVALID" and failure.record_number == 5
    assert "mixed_bytes.json, record 5, field person.lastName" in failure.error
    assert "0xF6, which is not UTF-8" in failure.error
    assert failure.username.endswith(f"STRÖM{name.upper()}")  # shown as it was meant
    assert summary.exit_code == 1


async def test_names_with_nordic_letters_survive_every_file(make_engine, sandbox, tmp_path):
    customers = list(generate_customers(3))
    customers[0]["person"].update(firstName="Åsa", lastName="Ström Öberg")  # space: fine
    customers[1]["person"].update(firstName="Anna Lena", lastName="Sjöberg")  # refused
    customers[2]["person"].update(firstName="Zoé", lastName="Lefèvre")
    customers[2]["person"]["customerId"] = customers[0]["person"]["customerId"]  # CONFLICT
    source = tmp_path / "in" / "nordiska_kunder_Åäö.json"
    write_customer_file(source, customers)
    summary = await make_engine([source]).run()
    assert summary.failed_by_result == {"FAILED": 1, "CONFLICT": 1}
    stored = sandbox.customers[customers[0]["person"]["customerId"]]
    assert stored.get("person", stored)["lastName"] == "Ström Öberg"
    retry_text = "".join(f.read_text("utf-8") for f in summary.retry_dir.glob("retry_*.json"))
    assert "Sjöberg" in retry_text  # Lefèvre repeats an id of the file: not retried
    names = [p.name for p in summary.single_failures_dir.rglob("customer_*.json")]
    assert any("SJÖBERG" in n for n in names) and any("LEFÈVRE" in n for n in names)
    saved = summary.failed_file.read_text("utf-8")
    assert "Sjöberg" in saved and "Lefèvre" in saved and "\\u00" not in saved


async def test_households_go_to_their_endpoint(make_engine, sandbox, tmp_path):
    # members must exist first, as in the real service
    people = write_sample(tmp_path / "people.json", 30)
    assert (await make_engine([people]).run()).succeeded == 30
    households = [{"changeType": "CREATE", "household": {
        "householdId": f"H{i}", "name": f"Familjen Åström {i}",
        "members": [{"customerId": str(50000001000 + i), "role": "HEAD"}]}}
        for i in range(30)]
    earlier = tmp_path / "hushåll_förra.json"
    write_customer_file(earlier, [{"changeType": "CREATE", "household": {"householdId": "H0"}}],
                        wrapper="households")
    assert (await make_engine([earlier]).run()).succeeded == 1
    source = tmp_path / "hushåll.json"
    write_customer_file(source, households, wrapper="households")
    store = FailureStore()
    summary = await make_engine([source], store=store, batch_size=8).run()
    assert (summary.succeeded, summary.failed) == (29, 1)
    assert len(sandbox.households) == 30
    (failure,) = store.records()
    assert failure.customer_id == "H0" and failure.result == "CONFLICT"
    retry = json.loads(next(summary.retry_dir.glob("retry_batch_*.json")).read_text("utf-8"))
    assert list(retry) == ["households"]


async def test_timeout_after_processing_is_retried_without_double_creation(
        make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 60)
    sandbox.config.timeout_after_processing_rate = 0.25
    sandbox.config.hang_s = 5
    summary = await make_engine([source], batch_size=10, timeout_s=0.5).run()
    assert sandbox.fault_counts["timeout_after_processing"] > 0
    assert summary.succeeded + summary.failed == 60
    assert set(summary.failed_by_result) <= {"ALREADY_EXISTS"}
    assert summary.failed_by_result["ALREADY_EXISTS"] > 0
    assert len(sandbox.customers) == 60
    # only the customers whose answer was lost were sent again; the others once
    assert len(sandbox.create_attempts) == 60
    resent = {c for c, n in sandbox.create_attempts.items() if n > 1}
    assert len(resent) >= 10  # at least the batch of one lost answer
    assert resent == already_exists(summary)
    # the uncertain ones are named in the retry summary for whoever re-imports them
    retry_summary = json.loads((summary.retry_dir / "retry_summary.json").read_text("utf-8"))
    assert len(retry_summary["uncertainCustomerIds"]) >= summary.failed


async def test_connection_refused_is_retried_then_reported(tmp_path, make_engine):
    source = write_sample(tmp_path / "in" / "c.json", 20)
    store = FailureStore()
    engine = make_engine([source], max_retries=2, store=store)
    engine.settings.customers_url = "http://127.0.0.1:9/nothing-listens-here"
    summary = await engine.run()
    assert summary.failed_by_result == {"CONNECTION_ERROR": 20}
    assert "cannot connect" in store.records()[0].error


@pytest.mark.slow
def test_a_200k_customer_file_is_streamed(tmp_path):
    """The importer's own process stays small while it imports a 200,000-customer file."""
    import subprocess
    import sys

    import psutil

    from app.services.sandbox.sandbox_server import SandboxThread
    from tests.child_processes import interpreter_process

    source = write_sample(tmp_path / "big.json", 200_000)
    assert source.stat().st_size > 80e6
    root = Path(__file__).resolve().parents[1]
    with SandboxThread() as sandbox:
        server = sandbox.server
        child = subprocess.Popen(
            [sys.executable, str(root / "main.py"), "import", str(source), "--url",
             server.customers_url(), "--token", server.static_token, "--batch-size", "250",
             "--output-dir", str(tmp_path / "out"), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # the importer's own process (on Windows, Popen's pid may be a launcher's)
        watched = interpreter_process(child)
        peak = 0
        while True:
            with contextlib.suppress(psutil.NoSuchProcess):
                peak = max(peak, watched.memory_info().rss)
            try:
                child.wait(timeout=0.05)  # sample memory until the importer exits
                break
            except subprocess.TimeoutExpired:
                continue
        summary = json.loads(child.stdout.read())
        child.stdout.close()
        assert len(server.customers) == 200_000
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (200_000, 200_000, 0)
    # Parsed whole, this file would take well over 500 MB in Python objects.
    assert peak < 150e6, f"peak RSS {peak / 1e6:.0f} MB"


async def test_rejected_batch_fails_named_customers_and_resends_the_rest(
        make_engine, sandbox, tmp_path):
    source = write_sample(tmp_path / "in" / "c.json", 40, refused=3)
    sandbox.config.reject_invalid_batches = True
    store = FailureStore()
    summary = await make_engine([source], store=store, batch_size=20).run()
    assert (summary.succeeded, summary.failed) == (37, 3)
    assert summary.failed_by_result == {"REJECTED": 3}
    assert all(r.http_status == 400 and r.error for r in store.records())
    assert len(sandbox.customers) == 37
    kept = list((tmp_path / "out" / "api_responses").glob("*_HTTP400.json"))
    assert kept, "the 400 answer is kept for troubleshooting"


async def test_reader_process_accounts_like_the_reader_thread(make_engine, sandbox, tmp_path):
    write_sample(tmp_path / "in" / "mixed.json", 150, conflicts=3, refused=4,
                          invalid=2)
    broken = tmp_path / "in" / "trasig.json"
    broken.write_text('{"data": [{"changeType": "CREATE", "person": {"customerId": "9"', "utf-8")
    store = FailureStore()
    listener = RecordingListener()
    summary = await make_engine([tmp_path / "in"], store=store, listener=listener,
                                reader_process=True).run()
    assert summary.total == 150 and summary.succeeded == 141
    assert summary.failed_by_result == {"CONFLICT": 3, "FAILED": 4, "INVALID": 2}
    assert any("trasig.json" in p for p in listener.problems)
    conflict = next(r for r in store.records() if r.result == "CONFLICT")
    assert conflict.original_data["person"]["customerId"] == conflict.customer_id
    assert conflict.source_file.endswith("mixed.json") and conflict.record_number > 140


async def test_cancel_while_the_result_files_are_written_changes_nothing(make_engine, sandbox,
                                                                        tmp_path):
    source = write_sample(tmp_path / "in" / "kunder.json", 120, refused=10)

    class CancelWhileWriting(RecordingListener):
        engine = None

        def progress(self, progress) -> None:  # type: ignore[override]
            super().progress(progress)
            if progress.state == ImportState.WRITING:
                self.engine.cancel()

    listener = CancelWhileWriting()
    engine = make_engine([source], listener=listener)
    listener.engine = engine
    summary = await engine.run()
    assert not summary.cancelled and summary.failed == 10 and summary.retry_customers == 10
    states = [p.state for p in listener.progress_reports]
    assert ImportState.WRITING in states and ImportState.STOPPING not in states
    assert states[-1] == ImportState.FINISHED
