"""What README.md and docs/ promise, checked: a resume checks each file's SHA-256 first and
resumes a cancelled job too; 503s and timeouts lower the requests in flight; a version-1
import history is migrated with its jobs and failures; remembered secrets go to the
keychain and never to the settings file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import orjson
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from app.models.jobs import FileFingerprint, JobState
from app.models.records import customer_key
from app.services.connection.secret_store import SERVICE, SecretStore, secret_name
from app.services.jobs.journal import _MIGRATIONS, SCHEMA_VERSION, Journal, journal_path
from app.services.pipeline import concurrency_limit
from app.services.pipeline.import_engine import ImportEngine
from app.services.pipeline.import_events import ImportSummary
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxServer, SandboxThread
from app.services.sources.file_fingerprint import fingerprint
from app.views.main_window import MainWindow
from tests.conftest import until, wait_for_signal

MakeEngine = Callable[..., ImportEngine]


# -- resume: the files' SHA-256 first; a cancelled job too --------------------------------


async def cancel_partway(make_engine: MakeEngine, sandbox: SandboxServer,
                         source: Path) -> ImportSummary:
    """Import `source` (400 customers) and cancel once 100 are in: a cancelled job."""
    sandbox.config.latency_ms = 20
    engine = make_engine([source], batch_size=10, concurrency=2)
    run = asyncio.ensure_future(engine.run())
    assert await until(lambda: len(sandbox.customers) >= 100)
    engine.cancel()
    summary = await run
    sandbox.config.latency_ms = 0
    assert summary.cancelled and summary.job is not None
    assert 100 <= summary.succeeded < 400
    assert job_state(summary.output_dir, summary.job) is JobState.CANCELLED
    return summary


def job_state(output_dir: Path | None, job: int) -> JobState:
    assert output_dir is not None
    journal = Journal.open(output_dir, create=False)
    try:
        return journal.job(job).state
    finally:
        journal.close()


async def test_a_cancelled_job_is_resumed_sending_only_what_it_had_not_sent(
        make_engine: MakeEngine, sandbox: SandboxServer, tmp_path: Path) -> None:
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(400))
    stopped = await cancel_partway(make_engine, sandbox, source)
    assert stopped.job is not None and stopped.output_dir is not None
    resumed = await make_engine([], resume_job=stopped.job).run()
    assert resumed.refused is None and resumed.resumed and resumed.job == stopped.job
    # the whole job's totals, every customer imported
    assert (resumed.total, resumed.succeeded, resumed.failed) == (400, 400, 0)
    assert len(sandbox.customers) == 400
    # a cancel lets the requests under way finish: the resume sent only the rest, so each
    # customer reached the service once
    assert len(sandbox.create_attempts) == 400
    assert max(sandbox.create_attempts.values()) == 1
    assert job_state(stopped.output_dir, stopped.job) is JobState.COMPLETED


async def test_a_file_changed_since_the_job_read_it_stops_the_resume(
        make_engine: MakeEngine, sandbox: SandboxServer, tmp_path: Path) -> None:
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(400))
    stopped = await cancel_partway(make_engine, sandbox, source)
    assert stopped.job is not None and stopped.output_dir is not None
    # one customer's language changed; size and modification time as they were, so only
    # the content's SHA-256 tells
    original = source.read_bytes()
    before = source.stat()
    at = original.rindex(b'"languageCode":"') + len(b'"languageCode":"')
    source.write_bytes(original[:at] + b"xx" + original[at + 2:])
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = source.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    requests = sandbox.request_count

    refused = await make_engine([], resume_job=stopped.job).run()
    assert refused.refused is not None
    assert str(source) in refused.refused and "has changed since the job read it" in \
        refused.refused
    assert sandbox.request_count == requests  # nothing was sent
    assert job_state(stopped.output_dir, stopped.job) is JobState.CANCELLED

    # the file as the job read it: the resume goes ahead
    source.write_bytes(original)
    resumed = await make_engine([], resume_job=stopped.job).run()
    assert resumed.refused is None and (resumed.total, resumed.succeeded) == (400, 400)


# -- backing off on 503 and on timeouts ---------------------------------------------------


async def test_503_answers_lower_the_requests_in_flight(
        make_engine: MakeEngine, sandbox: SandboxServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # no second try at 2 at once during this import, however slow the machine
    monkeypatch.setattr(concurrency_limit, "FIRST_PROBE_PAUSE_S", 600.0)
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(150))
    sandbox.config.fail_first_requests = 2  # the first two requests (sent together): 503
    sandbox.config.latency_ms = 5
    engine = make_engine([source], batch_size=5, concurrency=8, max_retries=3)
    summary = await engine.run()
    assert (summary.succeeded, summary.failed) == (150, 0)
    assert sandbox.fault_counts["fail_first_requests"] == 2
    # it starts with 2 requests at once; refused at 2, it cut the number and tries 2 again
    # only after a pause (longer than this import); without the cut it would go up to 8
    assert sandbox.request_count == 30 + 2
    assert sandbox.peak_in_flight <= 2
    assert max(sandbox.create_attempts.values()) == 1  # a 503 came before any processing


async def test_timeouts_lower_the_requests_in_flight(
        make_engine: MakeEngine, sandbox: SandboxServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency_limit, "FIRST_PROBE_PAUSE_S", 600.0)
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(150))
    sandbox.config.hang_first_requests = 2  # the first two requests get no answer in time
    sandbox.config.hang_s = 60
    sandbox.config.latency_ms = 5
    engine = make_engine([source], batch_size=5, concurrency=8, max_retries=3, timeout_s=0.5)
    summary = await engine.run()
    assert (summary.succeeded, summary.failed) == (150, 0)
    assert sandbox.fault_counts["hang_first_requests"] == 2
    # the two held requests stay on the server; beside them, after the cut, one at a time
    # until the pause before trying 2 again is over
    assert sandbox.peak_in_flight <= 2 + 1
    assert len(sandbox.create_attempts) == 150
    assert max(sandbox.create_attempts.values()) == 1  # the held ones were never processed


# -- the import history of version 1 --------------------------------------------------------


def write_version_1_history(output_dir: Path, source: Path, entries: list[dict]) -> str:
    """An import history as version 1 of the schema wrote it: one job that read `source`,
    imported its first 9 customers and failed the 10th (still open). Returns its key."""
    output_dir.mkdir(parents=True)
    printed = fingerprint(source)
    last = entries[-1]
    key = customer_key("customers", last["person"]["customerId"])
    db = sqlite3.connect(journal_path(output_dir))
    try:
        db.executescript(_MIGRATIONS[1])
        db.execute("INSERT INTO jobs (id, kind, state, started, finished, settings, read, "
                   "succeeded, failed, skipped, duration_s, retry_dir) VALUES "
                   "(1, 'import', 'completed_with_failures', '2025-11-03T10:00:00', "
                   "'2025-11-03T10:00:02', ?, 10, 9, 1, 0, 1.5, NULL)",
                   ('{"batch_size": 50, "concurrency": 5}',))
        db.execute("INSERT INTO job_files (job_id, file_index, path, size, sha256, mtime, "
                   "records) VALUES (1, 0, ?, ?, ?, ?, 10)",
                   (str(source), printed.size, printed.sha256, printed.mtime))
        db.execute("INSERT INTO batches (job_id, number, file_index, records, customers, "
                   "state, succeeded, failed) VALUES (1, 1, 0, '1-10', 10, 'done', 9, 1)")
        db.execute(
            "INSERT INTO failures (key, state, customer_id, username, result, error, "
            "timestamp, batch_info, source_file, record_number, batch_number, http_status, "
            "kind, retriable, whole_batch, original, attempts, first_job, last_job, "
            "origin_sha, origin_record) VALUES (?, 'open', ?, 'ÅSA ÖBERG-1009', 'FAILED', "
            "'Tjänsten svarade: försök igen', '2025-11-03T10:00:01', 'Batch 1', ?, 10, 1, "
            "200, 'customers', 1, 0, ?, 1, 1, 1, ?, 10)",
            (key, last["person"]["customerId"], str(source), orjson.dumps(last),
             printed.sha256))
        db.execute("PRAGMA user_version = 1")
        db.commit()
    finally:
        db.close()
    return key


async def test_a_version_1_history_is_migrated_with_its_jobs_and_failures(
        make_engine: MakeEngine, sandbox: SandboxServer, tmp_path: Path) -> None:
    source = tmp_path / "in" / "kunder.json"
    entries = list(generate_customers(10))
    write_customer_file(source, entries)
    out = tmp_path / "out"
    key = write_version_1_history(out, source, entries)

    journal = Journal.open(out)
    try:
        assert journal.connection.execute("PRAGMA user_version").fetchone()[0] == \
            SCHEMA_VERSION > 1
        [job] = journal.jobs()
        assert (job.id, job.state, job.started, job.finished) == (
            1, JobState.COMPLETED_WITH_FAILURES, "2025-11-03T10:00:00", "2025-11-03T10:00:02")
        assert (job.read, job.succeeded, job.failed, job.skipped, job.open_failures) == (
            10, 9, 1, 0, 1)
        assert job.settings == {"batch_size": 50, "concurrency": 5}
        assert job.files == [FileFingerprint(str(source), source.stat().st_size,
                                             fingerprint(source).sha256,
                                             fingerprint(source).mtime)]
        # the columns version 2 added, as for a job that updated and skipped nothing
        assert (job.updated, job.skipped_existing, job.error_report) == (0, 0, None)
        assert journal.open_failure_keys() == {key}
        [row] = list(journal.failure_rows())
        assert row[:4] == (entries[-1]["person"]["customerId"], "ÅSA ÖBERG-1009", "FAILED",
                           "Tjänsten svarade: försök igen")
        assert orjson.loads(row[6]) == entries[-1]
    finally:
        journal.close()

    # and it serves the next import: the 9 imported are not sent again, the failed one is,
    # and its failure is resolved
    summary = await make_engine([source]).run()
    assert (summary.job, summary.skipped_already_imported, summary.total) == (2, 9, 1)
    assert (summary.succeeded, summary.resolved, summary.open_failures) == (1, 1, 0)
    assert set(sandbox.create_attempts) == {entries[-1]["person"]["customerId"]}
    journal = Journal.open(out, create=False)
    try:
        assert [(j.id, j.state) for j in journal.jobs()] == [
            (2, JobState.COMPLETED), (1, JobState.COMPLETED_WITH_FAILURES)]
        [row] = list(journal.failure_rows(state="resolved"))
        assert row[14] == key and row[17] == 2  # key, resolved by job 2
    finally:
        journal.close()


# -- secrets in the keychain -----------------------------------------------------------------


class DictKeyring(KeyringBackend):
    """A keychain kept in a dict: a working backend in place of the system's."""

    priority = 1  # type: ignore[assignment]  # any priority above 0 is a real keychain

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError("no such entry")


@pytest.fixture
def keychain() -> Iterator[DictKeyring]:
    """A working keychain for this test (the others run with the failing backend)."""
    previous = keyring.get_keyring()
    backend = DictKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_the_secret_store_keeps_remembered_secrets_in_the_keychain(
        keychain: DictKeyring) -> None:
    store = SecretStore()
    assert store.available and "DictKeyring" in store.reason
    name = secret_name("c4r", "password", "åsa.öberg")
    store.set(name, "lösenord-Åäö", persist=True)
    assert keychain.entries == {(SERVICE, name): "lösenord-Åäö"}
    assert SecretStore().get(name) == "lösenord-Åäö"  # the next start reads it back
    # not remembered: out of the keychain, kept for this session only
    store.set(name, "lösenord-Åäö", persist=False)
    assert keychain.entries == {}
    assert store.get(name) == "lösenord-Åäö" and SecretStore().get(name) == ""


def test_remembered_secrets_are_in_the_keychain_and_never_in_the_settings_file(
        qtbot, qloop, keychain: DictKeyring, sandbox_thread: SandboxThread,
        tmp_path: Path) -> None:
    token = sandbox_thread.server.static_token
    password, passport = "hemligt7-lösenord-Å", "GKP4711-Öl"
    user = "åsa.öberg"
    settings_file = tmp_path / "settings.ini"
    source = tmp_path / "in" / "kunder.json"
    write_customer_file(source, generate_customers(5))

    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.import_tab.set_run_settings({"output_dir": tmp_path / "out"})
    panel = window.import_tab.connection
    assert panel.remember_check.isChecked()  # on where a keychain works
    panel.profile_combo.setCurrentIndex(panel.profile_combo.findData("sandbox"))
    panel.host_edit.setText(sandbox_thread.base_url)
    panel.token_edit.setText(token)
    panel.user_edit.setText(user)
    panel.password_edit.setText(password)
    panel.passport_edit.setText(passport)
    window.files_tab.add_paths([source])
    qtbot.waitUntil(lambda: len(window.files_tab.ready_files()) == 1
                    and not window.files_tab.is_counting(), timeout=10_000)

    async def import_and_wait() -> ImportSummary:
        qtbot.mouseClick(window.import_tab.start_button, Qt.MouseButton.LeftButton)
        (summary,) = await wait_for_signal(window.runner.finished, 60)
        return summary

    assert qloop.run_until_complete(import_and_wait()).succeeded == 5
    window.close()  # saves the settings
    QApplication.processEvents()

    assert keychain.entries == {
        (SERVICE, secret_name("sandbox", "token")): token,
        (SERVICE, secret_name("sandbox", "password", user)): password,
        (SERVICE, secret_name("sandbox", "passport")): passport,
    }
    written = settings_file.read_bytes()
    assert b"connection" in written and sandbox_thread.base_url.encode() in written
    # not as they are, nor escaped (their ASCII beginnings)
    for text in (token, password, passport, "hemligt7", "GKP4711"):
        assert text.encode() not in written, text

    # the next start: the secrets come back from the keychain into the form
    again = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    panel = again.import_tab.connection
    assert panel.profile_combo.currentData() == "sandbox" and panel.user_edit.text() == user
    assert (panel.token_edit.text(), panel.password_edit.text(),
            panel.passport_edit.text()) == (token, password, passport)
    # Remember secrets off: they leave the keychain, kept until the app quits
    panel.remember_check.setChecked(False)
    panel.save_secrets()
    assert keychain.entries == {}
    assert again.secrets.get(secret_name("sandbox", "token")) == token
