"""Result files written by a separate process, and what happens when that process dies."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
from pathlib import Path

from app.models.records import FailureRecord, RecordKind
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import ImportState, ImportSummary
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import RecordingListener


def retry_ids(summary: ImportSummary) -> list[str]:
    assert summary.retry_dir is not None
    return sorted(entry["person"]["customerId"]
                  for path in summary.retry_dir.glob("retry_batch_*_failed.json")
                  for entry in json.loads(path.read_text("utf-8"))["data"])


def single_failure_files(summary: ImportSummary) -> list[str]:
    assert summary.single_failures_dir is not None
    return sorted(str(p.relative_to(summary.single_failures_dir))
                  for p in summary.single_failures_dir.rglob("*.json"))


def saved_ids(summary: ImportSummary) -> list[str]:
    assert summary.failed_file is not None
    return sorted(r["customerId"] for r in json.loads(summary.failed_file.read_text("utf-8")))


def test_failure_records_survive_pickling() -> None:
    record = FailureRecord("42", "ÅSA ÖBERG", "CONFLICT", "exists", "2025-01-07T10:00:00",
                           "batch 3", {"person": {"customerId": 42, "firstName": "Åsa"}},
                           source_file="kunder.json", record_number=7, batch_number=3,
                           http_status=207, kind=RecordKind.HOUSEHOLDS)
    copy = pickle.loads(pickle.dumps(record))
    assert copy == record and copy.kind is RecordKind.HOUSEHOLDS
    assert copy.original_data["person"]["firstName"] == "Åsa"


async def test_writer_process_writes_what_the_writer_thread_writes(
        make_engine, sandbox, tmp_path: Path) -> None:
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(400, conflicts=12, refused=30, invalid=5))
    in_thread = await make_engine([source], output_dir=tmp_path / "thread",
                                  writer_process=False).run()
    sandbox.reset()  # the same answers again
    listener = RecordingListener()
    in_process = await make_engine([source], listener=listener, output_dir=tmp_path / "process",
                                   writer_process=True).run()
    for summary in (in_thread, in_process):
        assert (summary.failed, summary.write_errors) == (47, [])
    assert in_process.failed_by_result == in_thread.failed_by_result
    assert retry_ids(in_process) == retry_ids(in_thread) and len(retry_ids(in_thread)) == 30
    assert single_failure_files(in_process) == single_failure_files(in_thread)
    assert saved_ids(in_process) == saved_ids(in_thread) and len(saved_ids(in_thread)) == 47
    assert in_process.retry_customers == 30  # FAILED; INVALID and repeated ids stay out
    assert sorted(in_process.retry_files) == sorted(
        in_process.retry_dir.glob("retry_batch_*_failed.json"))
    # the window can say what is going on while the last files are written
    states = [p.state for p in listener.progress_reports]
    assert ImportState.WRITING in states
    assert states.index(ImportState.WRITING) < states.index(ImportState.FINISHED)


async def test_a_writer_process_that_dies_is_replaced_and_nothing_is_lost(
        make_engine, sandbox, tmp_path: Path) -> None:
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(1500, refused=400, conflicts=20))
    killed: list[int] = []
    kill_tasks: set[asyncio.Task[None]] = set()

    class KillWriterOnFirstRetryFile(RecordingListener):
        engine: ImportEngine | None = None

        def retry_file_written(self, path: Path) -> None:
            super().retry_file_written(path)
            if not killed and not kill_tasks and self.engine is not None:
                task = asyncio.get_running_loop().create_task(self.kill_writer())
                kill_tasks.add(task)

        async def kill_writer(self) -> None:
            writer = self.engine.result_writer if self.engine else None
            assert writer is not None and writer.in_process
            pid = await asyncio.wrap_future(writer.process_id())
            assert pid != os.getpid()
            os.kill(pid, signal.SIGTERM)
            killed.append(pid)

    listener = KillWriterOnFirstRetryFile()
    sandbox.config.latency_ms = 5  # long enough to kill the writer mid-import
    engine = make_engine([source], listener=listener, batch_size=25, concurrency=2,
                         writer_process=True)
    listener.engine = engine
    summary = await engine.run()
    assert killed, "the writer process was never killed"
    assert any("stopped unexpectedly" in e for e in summary.write_errors)
    assert (summary.total, summary.succeeded, summary.failed) == (1500, 1080, 420)
    # everything is there all the same, in one retry folder (but for the 20 customers
    # whose id the file holds twice: their CONFLICT can never be fixed by a retry)
    assert len(retry_ids(summary)) == 400
    assert len(list((tmp_path / "out").glob("retry_batches_*"))) == 1
    assert len(saved_ids(summary)) == 420
    singles = single_failure_files(summary)
    assert len([s for s in singles if "_SUMMARY_" not in s]) == 420
    summary_file = json.loads((summary.retry_dir / "retry_summary.json").read_text("utf-8"))
    assert summary_file["totals"]["retryCustomers"] == 400
    assert len(summary.retry_files) == len(set(summary.retry_files))
