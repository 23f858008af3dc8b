"""Two imports sharing one results folder (two windows, or a window and a scheduled run)."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from app.models.records import FailureRecord
from app.services.jobs.result_files import ImportResultFiles
from app.services.results.output_folder import ImportPresence, merging_results
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.child_processes import interpreter_process
from tests.conftest import ROOT
from tests.test_helper_processes import wait_until


def _save_failures_after(barrier: multiprocessing.Barrier, output_dir: Path, first_id: int,
                         count: int) -> None:
    files = ImportResultFiles(output_dir, datetime.now(), write_single_failures=True)
    files.add_failures(1, [
        FailureRecord(str(first_id + i), f"KUND {i}", "FAILED", "lastName is required",
                      datetime.now().isoformat(), "batch 1",
                      {"changeType": "CREATE", "person": {"customerId": str(first_id + i)}})
        for i in range(count)])
    barrier.wait()  # both merge at the same moment
    report = files.finish({"read": count}, [])
    assert not report.errors, report.errors


def test_two_imports_saving_together_lose_no_failure_record(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    savers = [context.Process(target=_save_failures_after,
                              args=(barrier, tmp_path, first_id, 10_000))
              for first_id in (1_000_000, 2_000_000)]
    for saver in savers:
        saver.start()
    for saver in savers:
        saver.join(120)
        assert saver.exitcode == 0
    saved = json.loads((tmp_path / "failed_customers" / "failed_customers.json")
                       .read_text("utf-8"))
    assert len(saved) == 20_000
    assert len({r["customerId"] for r in saved}) == 20_000
    summary = json.loads((tmp_path / "failed_customers" / "single_failures" / "FAILED"
                          / "_SUMMARY_FAILED.json").read_text("utf-8"))
    assert summary["count"] == 20_000


def test_a_second_import_is_told_that_another_writes_into_the_folder(sandbox_thread,
                                                                      tmp_path):
    server = sandbox_thread.server
    out = tmp_path / "out"
    first_file = tmp_path / "first.json"
    write_customer_file(first_file, generate_customers(1000))
    server.config.latency_ms = 50  # the first import takes a few seconds
    command = [sys.executable, str(ROOT / "main.py"), "import", "--url",
               server.customers_url("c4r"), "--token", server.static_token,
               "--output-dir", str(out), "--concurrency", "1", "--batch-size", "10",
               "--json"]
    first = subprocess.Popen([*command, str(first_file)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert wait_until(lambda: any((out / ".running").glob("import-*.lock")))
        # the importer's own pid (on Windows, Popen's may be a launcher's)
        first_pid = interpreter_process(first).pid
        second_file = tmp_path / "second.json"
        write_customer_file(second_file, generate_customers(5, start_id=70_000))
        second = subprocess.run([*command, str(second_file)], cwd=ROOT, capture_output=True,
                                text=True, encoding="utf-8", timeout=120)
        assert second.returncode == 0, second.stderr
        notes = json.loads(second.stdout)["notes"]
        assert len(notes) == 1
        assert f"by process {first_pid}" in notes[0]
        assert "is writing into this results folder too" in notes[0]
        assert "Note: An import started" in second.stderr
    finally:
        first_out, _ = first.communicate(timeout=120)
    assert json.loads(first_out)["succeeded"] == 1000
    # both gone: nobody is marked as running any more
    assert list((out / ".running").glob("import-*.lock")) == []


def test_the_interpreter_of_a_child_is_the_process_that_runs_python():
    """The pid the test above expects is the one the child's Python has."""
    report_pid = "import os, sys; print(os.getpid(), flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", report_pid], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        reported = int(child.stdout.readline())
        assert interpreter_process(child).pid == reported
    finally:
        child.communicate("", timeout=30)
    assert child.returncode == 0


def test_a_mark_left_by_a_dead_import_is_not_reported(tmp_path):
    stale = tmp_path / ".running" / "import-99999-20260101_000000_000000.lock"
    stale.parent.mkdir()
    stale.write_text("", encoding="utf-8")
    presence = ImportPresence(tmp_path)
    assert presence.enter() == []
    assert not stale.exists()
    presence.leave()
    assert list(stale.parent.iterdir()) == []


def test_waiting_for_the_folder_is_said(tmp_path):
    messages: list[str] = []
    with merging_results(tmp_path):
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=_merge_and_report, args=(tmp_path,))
        child.start()
        child.join(3)
        assert child.is_alive()  # waiting for the lock this process holds
    child.join(30)
    assert child.exitcode == 0
    messages = (tmp_path / "said.txt").read_text("utf-8").splitlines()
    assert len(messages) == 1 and "another import is saving its results" in messages[0]


def _merge_and_report(folder: Path) -> None:
    said: list[str] = []
    with merging_results(folder, on_wait=said.append):
        pass
    (folder / "said.txt").write_text("\n".join(said), encoding="utf-8")
