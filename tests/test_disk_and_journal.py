"""Disks and the journal: a full disk, a results folder that cannot be written, an import
history another program holds, network shares. Real folders, real mounts where the system
allows them, the sandbox API over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath

import pytest
from PySide6.QtCore import QSettings, Qt

from app.services.jobs.journal import Journal, JournalTooNew, journal_path
from app.services.jobs.journal_writer import JournalUnavailable, JournalWriter
from app.services.pipeline.import_events import ImportState
from app.services.results.cloud_folders import cloud_folder_note
from app.services.results.disk_space import (
    SpaceReserve,
    folder_write_problem,
    space_note,
)
from app.services.results.failure_list_file import load_failure_list
from app.services.results.network_folders import (
    is_network_fs_type,
    is_unc_path,
    mount_fs_type,
    network_share,
    parse_mounts,
)
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from tests.conftest import RecordingListener, run_cli, until, wait_for_signal

LINUX_ROOT = sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0


# -- real disks ---------------------------------------------------------------------------------


def mount_tmpfs(point: Path, options: str) -> None:
    """Mount a tmpfs of its own at `point`, or skip the test saying why it cannot be."""
    if not LINUX_ROOT:
        pytest.skip("a disk of its own needs `mount`, which only root on Linux may use here")
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")


def unmount(point: Path) -> None:
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


def make_room(point: Path, size: str = "256m") -> None:
    """Free space on the small disk: it grows, as when the user deletes files elsewhere."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(point)], check=True,
                   capture_output=True)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real disk of 3 MB, small enough for an import's result files to fill."""
    point = tmp_path / "small_disk"
    mount_tmpfs(point, "size=3m,mode=0700")
    try:
        yield point
    finally:
        unmount(point)


@pytest.fixture(params=["read-only mount", "no write permission"])
def unwritable_folder(request, tmp_path) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """A folder nothing can be written in, and the prefix a command needs to feel it: a
    read-only mount (root ignores permissions), or a folder without write permission (for
    root, the command runs without the capability that overrides permissions)."""
    point = tmp_path / "locked"
    if request.param == "read-only mount":
        mount_tmpfs(point, "ro,size=1m")
        try:
            yield point, ()
        finally:
            unmount(point)
        return
    if os.name != "posix":
        pytest.skip("folder permissions as POSIX defines them")
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("root ignores permissions, and capsh is missing to drop that power")
        prefix = (capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                  '"$0" "$@"')
    point.mkdir()
    point.chmod(0o500)
    try:
        yield point, prefix
    finally:
        point.chmod(0o700)


def customers_with_refusals(count: int, every: int = 3, start_id: int = 100_000):
    """`count` customers; every `every`-th lacks its last name, which the service refuses
    (a single-failure file each): the failures come all along the file."""
    for index, customer in enumerate(generate_customers(count, start_id=start_id)):
        if index % every == 0:
            del customer["person"]["lastName"]
        yield customer


def journal_accounts(out: Path, job: int) -> dict[str, int]:
    """What the journal knows of a job: customers imported, failures, batches still queued."""
    with contextlib.closing(sqlite3.connect(journal_path(out))) as db:
        imported = db.execute("SELECT coalesce(sum(succeeded), 0) FROM batches WHERE job_id = ?"
                              " AND state = 'done'", (job,)).fetchone()[0]
        failures = db.execute("SELECT count(*) FROM failures WHERE last_job = ? AND "
                              "state = 'open'", (job,)).fetchone()[0]
        queued = db.execute("SELECT count(*) FROM batches WHERE job_id = ? AND "
                            "state = 'queued'", (job,)).fetchone()[0]
        batches = db.execute("SELECT count(*) FROM batches WHERE job_id = ? AND number > 0",
                             (job,)).fetchone()[0]
        state = db.execute("SELECT state FROM jobs WHERE id = ?", (job,)).fetchone()[0]
    return {"imported": imported, "failures": failures, "queued": queued,
            "batches": batches, "state": state}


def retry_folder_customers(folder: Path) -> tuple[int, int]:
    """(customers in the retry files, customers listed as not retried) of a retry folder."""
    summary = json.loads((folder / "retry_summary.json").read_text("utf-8"))
    on_disk = sorted(p.name for p in folder.glob("retry_batch_*_failed.json"))
    assert on_disk == sorted(entry["file"] for entry in summary["files"])  # no strays
    in_files = 0
    for name in on_disk:
        body = json.loads((folder / name).read_text("utf-8"))
        in_files += sum(len(v) for v in body.values())
    return in_files, len(summary["notRetried"])


class PauseListener(RecordingListener):
    """Records events; `paused_event` is set when the import pauses itself."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []
        self.reasons: list[str] = []
        self.paused_event = asyncio.Event()
        self.progress_event = asyncio.Event()

    def note(self, message: str) -> None:
        self.notes.append(message)

    def paused(self, reason: str) -> None:
        self.reasons.append(reason)
        self.paused_event.set()

    def progress(self, progress) -> None:  # type: ignore[override]
        super().progress(progress)
        self.progress_event.set()

    async def next_progress_reports(self, count: int) -> None:
        for _ in range(count):
            self.progress_event.clear()
            await asyncio.wait_for(self.progress_event.wait(), 10)


@contextlib.asynccontextmanager
async def ended_in_any_case(engine, run: asyncio.Future):
    """Should an assertion fail while the import is paused, stop it all the same."""
    try:
        yield
    finally:
        if not run.done():
            engine.cancel("the test ended")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, 60)


# -- 8. a full disk --------------------------------------------------------------------------


def test_a_full_disk_stops_the_command_line_and_a_resume_writes_what_is_missing(
        sandbox_thread, small_disk, tmp_path):
    server = sandbox_thread.server
    server.config.latency_ms = 30  # the disk fills while there is still much to send
    customers, refused = 2_000, 667
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, customers_with_refusals(customers))
    out = small_disk / "results"
    common = ["--token", server.static_token, "--output-dir", str(out), "--json",
              "--retries", "0"]
    first = run_cli("import", str(source), "--url", server.customers_url("c4r"), *common,
                    "--batch-size", "20", "--concurrency", "2")
    assert first.returncode == 2, first.stderr
    assert "Traceback" not in first.stderr
    summary = json.loads(first.stdout)
    # it said so as it started, and why it stopped, naming the folder and the cause
    # (the result files or the import history: whichever found the disk full first)
    assert f"note: the results folder {out} has " in first.stderr
    error = summary["error"]
    assert error.startswith((f"the results folder {out} is on a full disk (No space left "
                             "on device)", f"the import history {out / 'import_history'}"))
    assert "disk is full" in error or "No space left on device" in error
    assert f"error: {error}\nStopping: " in first.stderr
    if not summary["result_files_complete"]:
        assert "Retry files: " not in first.stderr  # never claimed complete
        assert "The result files are incomplete" in first.stderr
    assert 0 < summary["total"] < customers  # it stopped reading: the rest is for a resume
    # every customer read is accounted for in the journal: imported or failed, none queued
    accounts = journal_accounts(out, summary["job"])
    assert accounts["queued"] == 0
    assert accounts["imported"] + accounts["failures"] == summary["total"]
    assert accounts["imported"] == len(server.customers) == summary["succeeded"]
    # cancelled, or, when even its final state found no room, interrupted: resumable
    listed = run_cli("history", "--output-dir", str(out), "--json")
    assert json.loads(listed.stdout)[0]["state"] in ("cancelled", "interrupted")

    make_room(small_disk)
    second = run_cli("import", "--resume", "last", *common)
    assert second.returncode == 1, second.stderr  # the refused customers still fail
    resumed = json.loads(second.stdout)
    assert resumed["resumed"] and resumed["error"] is None
    assert resumed["result_files_complete"] is True
    assert (resumed["total"], resumed["succeeded"], resumed["failed"]) == (
        customers, customers - refused, refused)
    # every customer was sent once: the resume sent nobody the first run had sent
    assert server.state()["repeated_create_ids"] == []
    assert server.state()["create_attempts_total"] == customers
    assert server.state()["duplicate_creations"] == []
    # every customer not imported is in failed_customers.json, the retry files (or their
    # not-retried list) and has a single-failure file: those the full disk lost included
    failed = load_failure_list(out / "failed_customers" / "failed_customers.json")
    imported_ids = set(server.customers)
    assert len(failed) == refused
    assert {f.customer_id for f in failed}.isdisjoint(imported_ids)
    singles = list((out / "failed_customers" / "single_failures" / "FAILED").glob("customer_*"))
    assert len(singles) == refused
    assert sum(retry_folder_customers(Path(resumed["retry_dir"]))) == refused
    accounts = journal_accounts(out, resumed["job"])
    assert accounts["imported"] + accounts["failures"] == customers
    assert accounts["state"] == "completed_with_failures"


def start_on_a_small_disk(make_engine, sandbox, source: Path, out: Path):
    """An import of `source` into `out` (on the small disk), slow enough to fill it while
    it runs; returns the engine, its running task and the listener that hears it pause."""
    sandbox.config.latency_ms = 30
    listener = PauseListener()
    engine = make_engine([source], listener=listener, output_dir=out, batch_size=20,
                         concurrency=2, max_retries=0, journal_wait_s=10)
    return engine, asyncio.ensure_future(engine.run()), listener


async def test_a_full_disk_pauses_sending_and_retry_writes_every_result_file(
        make_engine, sandbox, small_disk, tmp_path):
    customers, refused = 2_000, 667
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, customers_with_refusals(customers))
    out = small_disk / "results"
    engine, run, listener = start_on_a_small_disk(make_engine, sandbox, source, out)
    async with ended_in_any_case(engine, run):
        await asyncio.wait_for(listener.paused_event.wait(), 60)
        [reason] = listener.reasons  # the result files or the history: the first to fail
        assert str(out) in reason and ("No space left" in reason or "disk is full" in reason)
        assert engine.state == ImportState.PAUSED and engine.progress().pause_reason == reason
        # the requests under way finish; then nothing more is sent while it is paused
        assert await until(lambda: engine.progress().requests_in_flight == 0)
        sent = sandbox.request_count
        await listener.next_progress_reports(3)
        assert sandbox.request_count == sent
        assert engine.progress().done < customers

        make_room(small_disk)
        engine.resume()  # the window's Retry
        summary = await asyncio.wait_for(run, 120)
    assert not summary.cancelled and summary.error is None
    assert summary.result_files_complete
    assert (summary.total, summary.succeeded, summary.failed) == (
        customers, customers - refused, refused)
    failed = load_failure_list(out / "failed_customers" / "failed_customers.json")
    assert len(failed) == refused
    singles = list((out / "failed_customers" / "single_failures" / "FAILED").glob("customer_*"))
    assert len(singles) == refused
    assert sum(retry_folder_customers(summary.retry_dir)) == refused
    assert not list((out / ".running").glob("*.reserve"))  # the room kept is given back


async def test_another_folder_chosen_on_a_full_disk_gets_every_result_file(
        make_engine, sandbox, small_disk, tmp_path):
    customers, refused = 1_500, 500
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, customers_with_refusals(customers))
    out, elsewhere = small_disk / "results", tmp_path / "elsewhere"
    engine, run, listener = start_on_a_small_disk(make_engine, sandbox, source, out)
    async with ended_in_any_case(engine, run):
        await asyncio.wait_for(listener.paused_event.wait(), 60)
        # a folder that cannot be used changes nothing (here: a file, not a folder)
        assert engine.move_results(source) == folder_write_problem(source) is not None
        assert engine.state == ImportState.PAUSED
        # the history stays on this disk: it needs a little room, the result files go
        make_room(small_disk, "6m")
        assert engine.move_results(elsewhere) is None  # the window's Choose Another Folder
        summary = await asyncio.wait_for(run, 120)
    assert summary.result_files_complete and summary.output_dir == elsewhere
    assert (summary.succeeded, summary.failed) == (customers - refused, refused)
    failed = load_failure_list(elsewhere / "failed_customers" / "failed_customers.json")
    assert len(failed) == refused
    assert summary.retry_dir.parent == elsewhere
    assert sum(retry_folder_customers(summary.retry_dir)) == refused
    accounts = journal_accounts(out, summary.job)  # the history stayed where it was
    assert accounts["imported"] + accounts["failures"] == customers


async def test_result_files_lost_to_a_full_disk_are_never_claimed_complete(
        make_engine, sandbox, small_disk, tmp_path):
    from app.cli import format_summary

    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, customers_with_refusals(1_500, every=1))  # all refused
    out = small_disk / "results"
    engine, run, listener = start_on_a_small_disk(make_engine, sandbox, source, out)
    async with ended_in_any_case(engine, run):
        await asyncio.wait_for(listener.paused_event.wait(), 60)
        engine.cancel(listener.reasons[0])  # as the command line does: no room is made
        summary = await asyncio.wait_for(run, 120)
    assert summary.cancelled and summary.error == listener.reasons[0]
    assert summary.result_files_complete is False
    assert summary.exit_code == 2
    text = format_summary(summary)
    assert "Retry files: " not in text and "The result files are incomplete" in text
    assert f"could not write result files in {out}: No space left on device" \
        in summary.write_errors  # the cause, never a file name (it may name a customer)
    # the journal has every outcome all the same
    accounts = journal_accounts(out, summary.job)
    assert accounts["queued"] == 0 and accounts["imported"] == 0
    assert accounts["failures"] == summary.total == summary.failed


def test_space_note_and_reserve_on_a_real_disk(small_disk):
    free_note = space_note(small_disk, 10 << 20)  # 10 MB of input on a 3 MB disk
    assert free_note is not None and str(small_disk) in free_note
    assert space_note(small_disk.parent, 1 << 20) is None  # the test machine's own disk
    reserve = SpaceReserve(small_disk / "room.reserve", 1 << 20)
    assert reserve.make() and (small_disk / "room.reserve").stat().st_size == 1 << 20
    assert reserve.release() and not (small_disk / "room.reserve").exists()
    too_big = SpaceReserve(small_disk / "big.reserve", 64 << 20)
    assert not too_big.make() and not (small_disk / "big.reserve").exists()


# -- 9. a results folder that cannot be written ------------------------------------------------


def test_an_unwritable_results_folder_is_refused_before_anything_is_sent(
        sandbox_thread, unwritable_folder, tmp_path):
    server = sandbox_thread.server
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(2_000))
    folder, prefix = unwritable_folder
    out = folder / "results"
    done = run_cli("import", str(source), "--url", server.customers_url("c4r"), "--token",
                   server.static_token, "--output-dir", str(out), "--json", prefix=prefix)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary["error"].startswith(f"the results folder {out} cannot be written (")
    assert f"Not started: the results folder {out} cannot be written" in done.stderr
    assert server.request_count == 0 and server.customers == {}
    assert summary["total"] == 0 and summary["job"] is None
    if not prefix:  # (this process keeps its powers)
        assert folder_write_problem(out) == summary["error"]


@pytest.fixture
def gui_settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_the_window_refuses_start_when_the_results_folder_cannot_be_written(
        qtbot, qloop, gui_settings, sandbox_thread, unwritable_folder, tmp_path):
    from tests.test_main_window import connect_to, open_window

    folder, prefix = unwritable_folder
    if prefix:
        pytest.skip("root ignores permissions inside this process: the read-only mount "
                    "variant covers the window")
    out = folder / "results"
    window = open_window(qtbot, gui_settings, out, max_retries=1)
    write_customer_file(tmp_path / "kunder.json", generate_customers(50))
    window.files_tab.add_paths([tmp_path / "kunder.json"])
    qtbot.waitUntil(lambda: bool(window.files_tab.ready_files())
                    and not window.files_tab.is_counting(), timeout=10_000)
    connect_to(window, sandbox_thread)
    qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
    text = window.import_tab.state_label.text()
    assert text.startswith(f"Cannot start: the results folder {out} cannot be written (")
    assert not window.runner.running and window.import_tab.start_button.isEnabled()
    assert sandbox_thread.server.request_count == 0


SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def test_the_window_offers_retry_when_the_disk_is_full(qtbot, qloop, gui_settings,
                                                       sandbox_thread, small_disk, tmp_path):
    from tests.test_main_window import connect_to, open_window

    out = small_disk / "results"
    window = open_window(qtbot, gui_settings, out, max_retries=0)
    customers, refused = 1_500, 500
    write_customer_file(tmp_path / "kunder.json", customers_with_refusals(customers))
    window.files_tab.add_paths([tmp_path / "kunder.json"])
    qtbot.waitUntil(lambda: bool(window.files_tab.ready_files())
                    and not window.files_tab.is_counting(), timeout=10_000)
    connect_to(window, sandbox_thread)
    window.import_tab.set_run_settings({"batch_size": 20, "concurrency": 2})
    sandbox_thread.server.config.latency_ms = 30
    tab = window.import_tab

    async def scenario():
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
        (reason,) = await wait_for_signal(window.runner.pausedItself, 60)
        assert tab.pause_banner.isVisible() and tab.retry_button.isVisible()
        assert tab.other_folder_button.isVisible()
        # the result files or the history: the first to find the disk full
        assert str(out) in reason and ("No space left" in reason or "disk is full" in reason)
        assert tab.pause_text.text().startswith(reason[:1].upper() + reason[1:])
        assert tab.pause_button.text() == "Resume"
        SCREENSHOTS.mkdir(exist_ok=True)
        window.tabs.setCurrentWidget(tab)
        assert window.grab().save(str(SCREENSHOTS / "paused_for_a_full_disk.png"))
        make_room(small_disk)
        qtbot.mouseClick(tab.retry_button, Qt.MouseButton.LeftButton)
        assert not tab.pause_banner.isVisible()
        (summary,) = await wait_for_signal(window.runner.finished, 120)
        return summary

    async def stop():
        window.runner.cancel()
        await window.runner.wait()

    try:
        summary = qloop.run_until_complete(scenario())
    finally:
        if window.runner.running:  # an assertion failed while it was paused
            qloop.run_until_complete(stop())
    assert summary.result_files_complete and summary.error is None
    assert (summary.succeeded, summary.failed) == (customers - refused, refused)
    assert len(load_failure_list(out / "failed_customers" / "failed_customers.json")) == refused


# -- 10. a busy journal ------------------------------------------------------------------------


def hold(path: Path) -> sqlite3.Connection:
    """Another program's exclusive lock on the database at `path`."""
    holder = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_the_journal_writer_keeps_writes_while_the_journal_is_held(tmp_path):
    path = tmp_path / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE outcomes (n INTEGER)")
    troubles = []
    told = threading.Event()

    def on_trouble(trouble):
        troubles.append(trouble)
        told.set()

    writer = JournalWriter(path, wait_s=60, on_trouble=on_trouble)
    holder = hold(path)
    try:
        for n in range(100):
            writer.write(lambda db, n=n: db.execute("INSERT INTO outcomes VALUES (?)", (n,)))
        checkpoint = writer.checkpoint()
        assert told.wait(30)
        assert "in use by another program" in troubles[0].message and not troubles[0].disk
        assert not checkpoint.done()  # not answered before the writes are committed
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    checkpoint.result(timeout=30)
    writer.close()
    assert troubles[-1] is None and writer.error is None
    with contextlib.closing(sqlite3.connect(path)) as reader:
        assert reader.execute("SELECT count(*) FROM outcomes").fetchone()[0] == 100


def test_writes_still_held_when_the_writer_must_close_fail_their_checkpoint(tmp_path):
    path = tmp_path / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE outcomes (n INTEGER)")
    writer = JournalWriter(path, wait_s=0.5)
    holder = hold(path)
    try:
        writer.write(lambda db: db.execute("INSERT INTO outcomes VALUES (1)"))
        checkpoint = writer.checkpoint()
        writer.close()
        with pytest.raises(JournalUnavailable):
            checkpoint.result(timeout=10)
        assert writer.error is not None and "1 writes" in writer.error
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_a_journal_held_mid_import_pauses_sending_and_loses_no_batch(
        make_engine, sandbox, tmp_path):
    customers, batch = 3_000, 20
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(customers))
    out = tmp_path / "out"
    sandbox.config.latency_ms = 10
    listener = PauseListener()
    engine = make_engine([source], listener=listener, batch_size=batch, concurrency=2,
                         journal_wait_s=1.0)
    run = asyncio.ensure_future(engine.run())
    async with ended_in_any_case(engine, run):
        assert await until(lambda: engine.progress().done >= 400)
        holder = await asyncio.to_thread(hold, journal_path(out))
        try:
            await asyncio.wait_for(listener.paused_event.wait(), 60)
            assert engine.state == ImportState.PAUSED
            assert "has been in use by another program for over 1 s" in listener.reasons[0]
            assert any("in use by another program; waiting" in n for n in listener.notes)
            assert await until(lambda: engine.progress().requests_in_flight == 0)
            # nothing was sent that the journal does not hold as (at least) queued
            recorded = holder.execute(
                "SELECT count(*) FROM batches WHERE job_id = 1").fetchone()[0]
            assert sandbox.request_count <= recorded
            assert engine.progress().done < customers
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        summary = await asyncio.wait_for(run, 120)  # goes on by itself once it is free
    assert (summary.total, summary.succeeded, summary.failed) == (customers, customers, 0)
    assert summary.write_errors == [] and summary.error is None
    assert any(n == "the import history is written again" for n in listener.notes)
    accounts = journal_accounts(out, summary.job)
    assert accounts["batches"] == customers // batch and accounts["queued"] == 0
    assert accounts["imported"] == customers and accounts["state"] == "completed"
    # the same file again: nothing is sent
    requests = sandbox.request_count
    again = await make_engine([source]).run()
    assert sandbox.request_count == requests
    assert again.total == 0 and again.skipped_already_imported == customers


def test_a_journal_held_at_start_ends_the_command_line_cleanly(sandbox_thread, tmp_path):
    server = sandbox_thread.server
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(100))
    out = tmp_path / "out"
    Journal.open(out).close()
    holder = hold(journal_path(out))
    try:
        done = run_cli("import", str(source), "--url", server.customers_url("c4r"),
                       "--token", server.static_token, "--output-dir", str(out), "--json",
                       env={"BULK_IMPORT_HISTORY_WAIT_S": "2"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "is in use by another program; waiting for it (up to 2 s)" in done.stderr
    summary = json.loads(done.stdout)
    assert "in use by another program" in summary["error"]
    assert "stayed so for over 2 s: nothing was sent" in summary["error"]
    assert server.request_count == 0 and summary["job"] is None


@pytest.mark.parametrize("case", ["no paths", "no url", "bad mapping", "resume nothing",
                                  "resume and mapping", "dry run bad mapping"])
def test_json_is_printed_on_every_early_exit(case, tmp_path):
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(5))
    out = ["--output-dir", str(tmp_path / "out"), "--json"]
    args = {
        "no paths": ["import", *out],
        "no url": ["import", str(source), *out],
        "bad mapping": ["import", str(source), "--url", "http://127.0.0.1:9/x", "--token",
                        "t", "--mapping", str(tmp_path / "missing.json"), *out],
        "resume nothing": ["import", "--resume", "last", *out],
        "resume and mapping": ["import", "--resume", "last", "--mapping", "x", *out],
        "dry run bad mapping": ["import", str(source), "--dry-run", "--mapping",
                                str(tmp_path / "missing.json"), *out],
    }[case]
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    summary = json.loads(done.stdout)
    assert summary["error"] and f"error: {summary['error']}" in done.stderr
    assert "Traceback" not in done.stderr


def test_history_json_says_why_it_cannot_list(tmp_path):
    out = tmp_path / "out"
    Journal.open(out).close()
    with contextlib.closing(sqlite3.connect(journal_path(out))) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(JournalTooNew):
        Journal.open(out)
    done = run_cli("history", "--output-dir", str(out), "--json")
    assert done.returncode == 2
    assert "newer version" in json.loads(done.stdout)["error"]


# -- 11. network shares ------------------------------------------------------------------------

MOUNTS = r"""sysfs /sys sysfs rw,nosuid 0 0
/dev/sda2 / ext4 rw,relatime 0 0
fileserver:/export/kunder /mnt/kunder nfs4 rw,relatime,vers=4.2 0 0
//nas/delade\040mappar /mnt/delade\040mappar cifs rw,vers=3.1.1 0 0
tmpfs /mnt/kunder/lokal tmpfs rw 0 0
anna@host:/srv /home/anna/fjärr fuse.sshfs rw,nosuid 0 0
"""


def test_network_file_systems_are_told_from_local_ones():
    assert parse_mounts(MOUNTS)[3] == ("/mnt/delade mappar", "cifs")
    assert mount_fs_type("/mnt/kunder/resultat", MOUNTS) == "nfs4"
    assert mount_fs_type("/mnt/kunder", MOUNTS) == "nfs4"
    assert mount_fs_type("/mnt/kunder/lokal/resultat", MOUNTS) == "tmpfs"  # deeper mount
    assert mount_fs_type("/mnt/kunderna", MOUNTS) == "ext4"  # a prefix is not a parent
    assert mount_fs_type("/mnt/delade mappar/x", MOUNTS) == "cifs"
    assert mount_fs_type("/home/anna/fjärr/ut", MOUNTS) == "fuse.sshfs"
    assert [t for t in ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "NFS4")
            if not is_network_fs_type(t)] == []
    assert [t for t in ("ext4", "tmpfs", "apfs", "ntfs", "btrfs", "fuse.portal", "overlay")
            if is_network_fs_type(t)] == []
    assert is_unc_path(r"\\fileserver\kunder\resultat")
    assert is_unc_path("//fileserver/kunder") and is_unc_path(r"\\?\UNC\fileserver\kunder")
    assert not is_unc_path(r"C:\Users\anna\Documents") and not is_unc_path(r"\\?\C:\x")
    assert not is_unc_path(str(PureWindowsPath("D:/resultat")))


def test_a_real_local_mount_is_not_a_network_share(tmp_path):
    point = tmp_path / "mounted"
    mount_tmpfs(point, "size=1m")
    try:
        mounts = Path("/proc/self/mounts").read_text("utf-8")
        assert mount_fs_type(str(point / "results"), mounts) == "tmpfs"
        assert network_share(point / "results") is None
    finally:
        unmount(point)
    assert network_share(tmp_path) is None


def journal_mode(out: Path) -> str:
    with contextlib.closing(sqlite3.connect(journal_path(out))) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def test_on_a_network_share_the_journal_uses_the_rollback_journal(tmp_path):
    def nfs(_folder: Path) -> str:
        return "a network share (nfs4)"

    shared, local = tmp_path / "shared", tmp_path / "local"
    Journal.open(shared, share_check=nfs).close()
    Journal.open(local, share_check=lambda _folder: None).close()
    assert journal_mode(shared) == "delete" and journal_mode(local) == "wal"
    # a local history moved onto a share is switched; once switched it stays so, also when
    # opened from the file server itself, so that the other computers keep working
    Journal.open(local, share_check=nfs).close()
    assert journal_mode(local) == "delete"
    journal = Journal.open(local, share_check=lambda _folder: None)
    try:
        job = journal.create_job(kind="import", settings={}, files=[], owner=None)
        assert journal.job(job).id == job
    finally:
        journal.close()
    assert journal_mode(local) == "delete"
    # a WAL history another import has open cannot be switched now: it says so, and works
    moved = tmp_path / "moved"
    Journal.open(moved, share_check=lambda _folder: None).close()
    other = Journal.open(moved, share_check=lambda _folder: None)
    try:
        journal = Journal.open(moved, share_check=nfs)
        assert [n for n in journal.notes if "another import has it open" in n] != []
        journal.close()
    finally:
        other.close()
    assert journal_mode(moved) == "wal"


def test_the_cloud_folder_note_mentions_the_import_history():
    note = cloud_folder_note(Path("/x/OneDrive/results"), "OneDrive")
    assert "import_history.sqlite" in note and "one file per failed customer" in note
