"""The reader and writer processes of large imports: they never outlive the import, and a
reader that dies costs nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sources.batch_source import ProcessBatchSource
from tests.conftest import ROOT


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Wait for `condition` to hold, checking every 50 ms, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.05)
    return True


def python_children(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if "python" in p.name().lower()]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def large_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "stora_kunder.json"
    write_customer_file(path, generate_customers(26_000))
    assert path.stat().st_size >= 8 * 1024 * 1024  # large enough for both helpers
    return path


def test_helpers_end_when_the_import_is_killed(sandbox_thread, large_file, tmp_path):
    server = sandbox_thread.server
    server.config.latency_ms = 20
    server.config.error_rate = 0.3  # failures from the start: the writer process starts too
    command = [sys.executable, str(ROOT / "main.py"), "import", str(large_file),
               "--url", server.customers_url("c4r"), "--token", server.static_token,
               "--retries", "0", "--output-dir", str(tmp_path / "out"), "--json"]
    importer = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    try:
        # the reader, the writer (and, on POSIX, multiprocessing's resource tracker)
        assert wait_until(lambda: len(python_children(importer.pid)) >= 2), \
            "the helper processes never started"
        # on Windows a venv's python.exe is a launcher: the import is the interpreter it
        # started, and its helpers are that one's children
        from tests.child_processes import interpreter_process

        interpreter = interpreter_process(importer)
        helpers = [p for p in python_children(importer.pid) if p.pid != interpreter.pid]
        interpreter.kill()  # kill -9 on POSIX, TerminateProcess on Windows
        interpreter.wait(timeout=10)
        importer.wait(timeout=10)
        gone, alive = psutil.wait_procs(helpers, timeout=10)
        assert alive == [], f"helpers outlived the import: {alive}"
        assert len(gone) == len(helpers)
        # nobody holds the import's standard output open any more: reading ends
        reader = threading.Thread(target=importer.stdout.read, daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "a helper still holds the import's output"
    finally:
        if importer.poll() is None:
            importer.kill()
        importer.stdout.close()


def _read_all(source: ProcessBatchSource, kill_after: set[int]) -> tuple[list[int], list[str]]:
    """Record numbers delivered and problems, killing the reader after the chunks named."""
    numbers: list[int] = []
    problems: list[str] = []
    chunk_index = 0
    while True:
        chunk = source.next_chunk(4)
        for batch in chunk.batches:
            numbers.extend(batch.record_numbers)
        problems.extend(str(p) for p in chunk.problems)
        if chunk.exhausted:
            return numbers, problems
        if chunk_index in kill_after:
            source.process.kill()
            source.process.join(10)
        chunk_index += 1


def test_a_reader_process_that_dies_is_replaced_and_nothing_is_lost(tmp_path):
    first = tmp_path / "a.json"
    write_customer_file(first, generate_customers(3_000))
    second = tmp_path / "b.json"
    write_customer_file(second, generate_customers(2_000, start_id=90_000))
    source = ProcessBatchSource([first, second], batch_size=50, max_batches=4)
    try:
        numbers, problems = _read_all(source, kill_after={2, 20})
    finally:
        source.close()
    assert problems == []
    # every record of both files exactly once
    assert len(numbers) == 5_000
    assert sorted(numbers) == sorted([*range(1, 3_001), *range(1, 2_001)])


def test_a_reader_that_dies_twice_at_one_place_gives_up_only_that_file(tmp_path):
    first = tmp_path / "a.json"
    write_customer_file(first, generate_customers(300))
    second = tmp_path / "b.json"
    write_customer_file(second, generate_customers(200, start_id=90_000))
    source = ProcessBatchSource([first, second], batch_size=50, max_batches=4)
    try:
        for _ in range(2):  # before it delivers anything, twice
            source.process.kill()
            source.process.join(10)
            chunk = source.next_chunk(4)
            assert chunk.batches == []
        assert len(chunk.problems) == 1
        assert "a.json, record 1: the file reader stopped 2 times" in str(chunk.problems[0])
        assert "records from 1 on were not read" in str(chunk.problems[0])
        numbers, problems = _read_all(source, kill_after=set())
    finally:
        source.close()
    assert problems == [] and sorted(numbers) == list(range(1, 201))


def test_a_reader_process_gives_way_to_the_window(tmp_path):
    from tests.test_import_process import runs_below_normal

    path = tmp_path / "kunder.json"
    write_customer_file(path, generate_customers(2_000))
    source = ProcessBatchSource([path], batch_size=50, max_batches=4)
    try:
        assert wait_until(lambda: runs_below_normal(source.process.pid), 10)
        chunk = source.next_chunk(4)
        assert len(chunk.batches) >= 1
    finally:
        source.close()
