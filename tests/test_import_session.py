"""The import session without a window: its decisions, signals and answers, against the
sandbox API over loopback; and the options the command line and the window build."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.cli import build_parser, command_line_settings
from app.models.file_list_model import FileEntry
from app.services.connection.auth import PasswordGrant, Secret, StaticToken
from app.services.connection.connection_profiles import ConnectionSecrets, ConnectionSettings
from app.services.jobs.history_tasks import load_jobs
from app.services.jobs.job_plan import Repeat
from app.services.jobs.journal import JobState
from app.services.sandbox.sample_customers import generate_customers, write_customer_file
from app.services.sandbox.sandbox_server import SandboxThread
from app.services.session.import_options import (
    ConnectionOptions,
    RunOptions,
    import_settings,
    token_provider,
)
from app.services.session.import_session import (
    FileChoice,
    ImportRequest,
    ImportSession,
    Notice,
    Page,
)
from app.services.sources.source_options import SourceOptions
from tests.conftest import ROOT, wait_for_signal
from tests.test_helper_processes import wait_until

SIGNALS = ("notice", "importedBeforeAsked", "reviewAsked", "importStarting", "runningChanged",
           "pausedChanged", "pausedItself", "cloudFolderFound", "importEnded",
           "importFinished", "importCrashed", "retryOffered", "retryFilesChosen",
           "resumeOffered", "cancelAsked", "closeAsked", "closeReady")


@dataclass
class Inputs:
    """What the window's tabs would hold, as a test sets it (the session's ImportInputs)."""

    connection: ConnectionOptions
    run: RunOptions
    files: FileChoice = field(default_factory=FileChoice)
    sources: SourceOptions = field(default_factory=SourceOptions)
    restored: list[tuple[ConnectionSettings | None, RunOptions]] = field(default_factory=list)

    def request(self) -> ImportRequest:
        return ImportRequest(self.connection, self.run, self.sources, self.files)

    def restore(self, connection: ConnectionSettings | None, run: RunOptions) -> None:
        self.restored.append((connection, run))
        self.run = run


def sandbox_connection(base_url: str, token: str) -> ConnectionOptions:
    return ConnectionOptions.from_profile(
        ConnectionSettings(profile="sandbox", host=base_url, tenant="demo"),
        ConnectionSecrets(token=Secret(token)))


def record(session: ImportSession) -> list[tuple[str, tuple[object, ...]]]:
    """Every signal the session emits, in order, with its arguments."""
    events: list[tuple[str, tuple[object, ...]]] = []
    for name in SIGNALS:
        getattr(session, name).connect(lambda *args, name=name: events.append((name, args)))
    return events


def names(events: list[tuple[str, tuple[object, ...]]]) -> list[str]:
    return [name for name, _args in events]


def notices(events: list[tuple[str, tuple[object, ...]]]) -> list[Notice]:
    return [args[0] for name, args in events if name == "notice"]  # type: ignore[misc]


@pytest.fixture
def inputs(sandbox_thread: SandboxThread, tmp_path: Path) -> Inputs:
    return Inputs(sandbox_connection(sandbox_thread.base_url, sandbox_thread.server.static_token),
                  RunOptions(output_dir=tmp_path / "out", max_retries=0, concurrency=1))


def test_an_import_reports_its_failures_and_offers_the_retry_files(qloop, inputs,
                                                                   sandbox_thread, tmp_path):
    source = tmp_path / "in" / "kunder_åäö.json"
    write_customer_file(source, generate_customers(120))
    inputs.files = FileChoice(ready=[source], listed=[source], customers=120)
    session = ImportSession(inputs)
    events = record(session)
    resolved: list[str] = []
    session.runner.failuresResolved.connect(lambda keys, _job, _when: resolved.extend(keys))
    sandbox_thread.server.config.fail_first_requests = 1  # the first batch of 50, no retry

    async def import_once():
        session.start()
        assert session.running
        (outcome,) = await wait_for_signal(session.importFinished, 60)
        return outcome

    async def import_and_offer():
        outcome = await import_once()
        (offer,) = await wait_for_signal(session.retryOffered, 10)  # the history read first
        return outcome, offer

    outcome, offer = qloop.run_until_complete(import_and_offer())
    summary = outcome.summary
    assert (summary.succeeded, summary.failed_by_result) == (70, {"HTTP_ERROR": 50})
    assert len(session.store) == 50  # fed from the import's failure events
    assert outcome.failed == [(source, 50)] and outcome.imported == []
    assert outcome.text.startswith("Finished in ") and "70 imported, 50 failed" in outcome.text
    assert [name for name in names(events) if name != "notice"] == [
        "importStarting", "runningChanged", "importEnded", "runningChanged", "importFinished",
        "retryOffered"]  # the offer once the job's open failures were counted
    said = notices(events)
    assert said[0] == Notice(page=Page.IMPORT)  # the Import tab shows it going
    assert any(n.status.startswith("Retry file written: retry_batch_") for n in said)
    start = events[0][1][0]
    assert start.files == [source] and start.customers == 120  # type: ignore[attr-defined]
    assert [args for name, args in events if name == "runningChanged"] == [(True,), (False,)]
    assert notices(events)[-1].outcome == outcome.text
    (offered,) = [args[0] for name, args in events if name == "retryOffered"]
    assert offered is offer and (offer.customers, offer.job) == (50, summary.job)
    assert offer.to_correct == {}

    # Yes, load them: written from the history, with the same duplicate strategy
    events.clear()

    async def accept():
        session.accept_retry(offer)
        (folder, strategy) = await wait_for_signal(session.retryFilesChosen, 10)
        return folder, strategy

    folder, strategy = qloop.run_until_complete(accept())
    assert strategy == "" and folder.name.startswith("retry_batches_")
    assert notices(events)[-1].page is Page.FILES
    assert "50 open failures loaded as retry files" in notices(events)[-1].status

    inputs.files = FileChoice(ready=[folder], listed=[folder])
    retry = qloop.run_until_complete(import_once()).summary
    assert (retry.total, retry.succeeded, retry.failed) == (50, 50, 0)
    assert len(resolved) == 50 and len(set(resolved)) == 50  # the earlier 50 resolved
    assert len(session.store) == 50  # resolved failures stay, as resolved


def test_start_is_refused_with_the_reason(qapp, tmp_path):
    source = tmp_path / "a.json"
    write_customer_file(source, generate_customers(3))
    inputs = Inputs(sandbox_connection("http://127.0.0.1:9", ""),
                    RunOptions(output_dir=tmp_path / "out"))
    session = ImportSession(inputs)
    events = record(session)
    session.start()
    assert notices(events)[-1] == Notice(outcome="Nothing to import: add customer files on "
                                         "the Files tab first.", page=Page.FILES)
    inputs.files = FileChoice(ready=[source], listed=[source])
    session.start()
    assert notices(events)[-1] == Notice(outcome="Cannot start: enter the bearer token.",
                                         page=Page.IMPORT)
    inputs.connection = replace(inputs.connection, token=Secret("t"))
    inputs.sources = SourceOptions(assignment={"mode": "round-robin",
                                               "target": "person.homeStore"})
    session.start()
    assert notices(events)[-1].outcome == ("Cannot start: Assignment: a round-robin "
                                           "assignment needs at least one value.")
    (tmp_path / "file").write_text("not a folder")
    inputs.sources = SourceOptions()
    inputs.run = RunOptions(output_dir=tmp_path / "file" / "out")
    session.start()
    refused = notices(events)[-1]
    assert refused.outcome.startswith("Cannot start: the results folder ")
    assert refused.status == refused.outcome and refused.page is Page.IMPORT
    assert names(events) == ["notice"] * 4 and not session.running


def test_files_imported_before_and_spreadsheets_are_asked_about_first(qapp, tmp_path):
    sheet, entries = tmp_path / "in" / "medlemmar.csv", tmp_path / "in" / "kunder.json"
    out = tmp_path / "out"
    inputs = Inputs(sandbox_connection("http://127.0.0.1:9", "t"),
                    RunOptions(output_dir=out),
                    FileChoice(ready=[entries], listed=[entries],
                               imported_before=[FileEntry(path=entries)]))
    session = ImportSession(inputs)
    events = record(session)
    session.start()
    assert names(events) == ["importedBeforeAsked"]
    assert [e.path for e in events[0][1][0]] == [entries]  # type: ignore[attr-defined]
    session.answer_imported_before(Repeat.SKIP)  # the only file: nothing left to send
    assert notices(events)[-1].outcome == ("Nothing to import: every file listed was "
                                           "imported before and is skipped.")
    session.answer_imported_before(Repeat.ALL)  # asked once, answered once
    assert len(events) == 2 and not session.running

    events.clear()
    inputs.files = FileChoice(ready=[sheet, entries], listed=[sheet, entries])
    session.start()
    session.start()  # while the review is open: to the front again, not a second one
    assert names(events) == ["reviewAsked", "reviewAsked"]
    review = events[0][1][0]
    assert events[1][1][0] is review
    assert review.files == [sheet, entries]  # type: ignore[attr-defined]
    assert review.report == out / ".review" / "error_report_review.csv"  # type: ignore[attr-defined]
    assert (out / ".review").is_dir()
    session.answer_review(False)
    assert notices(events)[-1] == Notice(status="Not started: change the mappings or the "
                                         "files, then Start again", status_ms=8000,
                                         page=Page.FILES)
    assert not session.running


def test_an_interrupted_job_is_offered_once_and_resumed_with_its_settings(
        qloop, inputs, sandbox_thread, tmp_path):
    server = sandbox_thread.server
    server.config.latency_ms = 40
    source = tmp_path / "kunder.json"
    write_customer_file(source, generate_customers(1_500))
    out = inputs.run.output_dir
    command = [sys.executable, str(ROOT / "main.py"), "import", str(source), "--url",
               server.customers_url("c4r"), "--token", server.static_token,
               "--output-dir", str(out), "--batch-size", "20", "--concurrency", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(server.customers) >= 300)
    finally:
        process.kill()
        process.wait(10)
    server.config.latency_ms = 0
    jobs = load_jobs(out)
    assert [job.state for job in jobs] == [JobState.INTERRUPTED]
    session = ImportSession(inputs)
    events = record(session)
    session.jobs_loaded(out, jobs)
    session.jobs_loaded(out, jobs)  # the folder's jobs read again: not offered twice
    assert events == [("resumeOffered", (jobs[0],))]

    async def resume():
        session.resume(jobs[0])
        (outcome,) = await wait_for_signal(session.importFinished, 60)
        return outcome.summary

    summary = qloop.run_until_complete(resume())
    # a job of the command line: its connection is not a window profile, its run settings
    # are taken
    ((connection, run),) = inputs.restored
    assert connection is None and (run.batch_size, run.concurrency) == (20, 2)
    assert summary.resumed and summary.job == 1
    assert (summary.total, summary.succeeded, summary.failed) == (1_500, 1_500, 0)
    assert len(server.customers) == 1_500
    assert load_jobs(out)[0].state is JobState.COMPLETED


def test_cancel_asks_and_a_close_during_an_import_stops_it_first(qloop, inputs,
                                                                 sandbox_thread, tmp_path):
    source = tmp_path / "many.json"
    write_customer_file(source, generate_customers(3000))
    inputs.files = FileChoice(ready=[source], listed=[source], customers=3000)
    inputs.run = replace(inputs.run, concurrency=2)
    sandbox_thread.server.config.latency_ms = 30
    session = ImportSession(inputs)
    events = record(session)

    async def scenario():
        session.start()
        await wait_for_signal(session.progressChanged, 10)
        session.ask_cancel()  # answered No: nothing happens
        assert session.running
        assert not session.may_close()
        assert session.may_close() is False  # asked again: the first answer is still due
        session.stop_and_close()
        assert not session.may_close()  # stopping: not asked again
        await wait_for_signal(session.closeReady, 30)

    qloop.run_until_complete(scenario())
    assert session.may_close()
    (text,) = [args[0] for name, args in events if name == "cancelAsked"]
    assert "every customer not sent yet goes to the retry files" in text
    assert names(events).count("closeAsked") == 2
    (outcome,) = [args[0] for name, args in events if name == "importFinished"]
    summary = outcome.summary
    assert summary.cancelled and summary.succeeded + summary.failed == 3000
    assert summary.failed == summary.failed_by_result["NOT_SENT"] > 0
    assert len(session.store) == summary.failed
    # closing: the retry files are not offered, the window is told it may close
    assert "retryOffered" not in names(events) and names(events)[-1] == "closeReady"


def test_run_options_read_saved_and_partial_values():
    base = RunOptions(output_dir=Path("/tmp/ut"))
    changed = base.updated({"batch_size": "80", "timeout_s": 45, "output_dir": "",
                            "on_existing": "sometimes", "concurrency": "many",
                            "keep_history": "false", "unknown": 1})
    assert changed == replace(base, batch_size=80, timeout_s=45.0, keep_history=False)
    assert RunOptions().updated(changed.to_dict()) == changed


@pytest.mark.parametrize("auth", ["token", "c4r"])
def test_the_command_line_and_the_window_build_the_same_import(qtbot, tmp_path, monkeypatch,
                                                               auth):
    from app.views.main_window import MainWindow

    for name in ("BULK_IMPORT_HISTORY_WAIT_S", "BULK_IMPORT_TOKEN", "BULK_IMPORT_PASSWORD",
                 "BULK_IMPORT_PASSPORT", "BULK_IMPORT_CLIENT_SECRET", "BULK_IMPORT_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    out, source = tmp_path / "utdata", tmp_path / "kunder.json"
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    tab = window.import_tab
    if auth == "token":
        url = "https://crm.example.com/customers-import/v1/customers"
        tab.set_connection_options(ConnectionOptions(
            profile="custom", customers_url=url, token=Secret("tök-1"),
            passport=Secret("pass-å"), proxy=Secret("http://127.0.0.1:3128")))
        sign_in = ["--token", "tök-1"]
    else:
        tab.set_connection_options(ConnectionOptions(
            profile="c4r", host="https://retail.example.com", tenant="butik_åre",
            auth_mode="c4r", username="märta", client_id="bulk-import",
            password=Secret("lösen"), client_secret=Secret("hemlig"),
            passport=Secret("pass-å"), proxy=Secret("http://127.0.0.1:3128")))
        url = tab.connection_options().customers_url
        sign_in = ["--auth", "c4r", "--tenant", "butik_åre", "--username", "märta",
                   "--password", "lösen", "--client-id", "bulk-import", "--client-secret",
                   "hemlig"]
    tab.set_run_settings({"batch_size": 20, "concurrency": 3, "max_retries": 2,
                          "timeout_s": 45, "output_dir": out, "on_existing": "update",
                          "assignment": {"mode": "single", "target": "person.homeStore",
                                         "values": ["S01"]}})
    args = build_parser().parse_args([
        "import", str(source), "--url", url, *sign_in, "--passport", "pass-å",
        "--proxy", "http://127.0.0.1:3128", "--batch-size", "20", "--concurrency", "3",
        "--retries", "2", "--timeout", "45", "--output-dir", str(out),
        "--on-existing", "update", "--assign", "single:person.homeStore=S01"])
    cli_settings, cli_connection, cli_run = command_line_settings(args)
    request = window.session.inputs.request()
    window_settings = import_settings(request.connection, request.run, request.sources)

    assert request.run == cli_run
    assert request.connection.sign_in() == cli_connection.sign_in()
    # the same import, but for how the job names its connection (a window profile, or
    # the command line: each resumes its own kind)
    assert window_settings.connection["profile"] == ("custom" if auth == "token" else "c4r")
    assert cli_settings.connection["profile"] == "command line"
    assert replace(window_settings, connection={}) == replace(cli_settings, connection={})
    assert window_settings.extra_headers == {"GK-Passport": "pass-å"}
    assert window_settings.assignment == {"mode": "single", "target": "person.homeStore",
                                          "values": ["S01"]}
    window_auth, cli_auth = (token_provider(request.connection, request.run),
                             token_provider(cli_connection, cli_run))
    assert type(window_auth) is type(cli_auth) is (StaticToken if auth == "token"
                                                   else PasswordGrant)
    assert window_auth.known_secrets() == cli_auth.known_secrets()
    assert window_auth.token_url == cli_auth.token_url
